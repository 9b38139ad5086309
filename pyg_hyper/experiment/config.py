"""Experiment configs: YAML files plus dotted ``key=value`` overrides.

A config is a nested :class:`dict`. Its set of valid keys is fixed by the
defaults (the runner's own keys plus the task's
:meth:`~pyg_hyper.experiment.Task.default_config`): a YAML file or a
command-line override may only set keys that exist there, so a typo fails
loudly with the closest valid key instead of being silently ignored.
"""
import copy
import difflib
import os
import re
import warnings
from typing import Any, Dict, Iterable, List, Mapping, Optional

import yaml

__all__ = [
    'ConfigError',
    'load_yaml',
    'flatten',
    'merge',
    'parse_override',
    'apply_overrides',
    'get_key',
]

#: Key of a YAML file that names another YAML file (relative path) whose
#: values it extends, so configs can share a common base.
BASE_KEY = 'base'


class ConfigError(ValueError):
    """A config file or override is invalid (unknown key, wrong type, ...).

    It is a :class:`ValueError`, so callers that catch bad input in general
    also catch it; the CLI prints its message without a traceback.
    """


class _NumbersLoader(yaml.SafeLoader):
    """YAML 1.2's numbers, as users write them: PyYAML follows YAML 1.1,
    where ``1e-3`` is a string, ``010`` the octal 8 and ``1:30`` the
    base-60 90. Here a number is a decimal int or float (``1e-3``,
    ``.5``, ``010`` = 10, ``.inf``, ``.nan``); anything else that YAML 1.1
    would read as a number stays text."""


_INT_TAG, _FLOAT_TAG = 'tag:yaml.org,2002:int', 'tag:yaml.org,2002:float'
_NumbersLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers
            if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_NumbersLoader.add_implicit_resolver(
    _INT_TAG, re.compile(r'^[-+]?[0-9]+$'), list('-+0123456789'))
_NumbersLoader.add_implicit_resolver(
    _FLOAT_TAG, re.compile(r'^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)'
                           r'(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)'
                           r'|\.(?:nan|NaN|NAN))$'),
    list('-+0123456789.'))
_NumbersLoader.add_constructor(
    _INT_TAG, lambda loader, node: int(loader.construct_scalar(node), 10))


class _UniqueKeyLoader(_NumbersLoader):
    """PyYAML keeps the last of repeated keys; a config that sets
    ``epochs`` twice is a mistake to report, not a choice to guess."""
    def construct_mapping(self, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice",
                    key_node.start_mark)
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str) -> Dict[str, Any]:
    """Reads a YAML config, following ``base:`` links (relative paths)."""
    return _load_yaml(os.path.abspath(path), seen=())


def _load_yaml(path: str, seen: tuple) -> Dict[str, Any]:
    if path in seen:
        raise ConfigError(f"config 'base' links form a cycle: "
                          f"{' -> '.join(seen + (path, ))}")
    if os.path.isdir(path):
        raise ConfigError(f"config file '{path}' is a folder; give the path "
                          f"of a YAML file in it")
    if not os.path.isfile(path):
        raise ConfigError(f"config file '{path}' does not exist")
    with open(path, encoding='utf-8') as f:
        try:
            cfg = yaml.load(f, Loader=_UniqueKeyLoader)
        except yaml.YAMLError as e:
            raise ConfigError(f"config file '{path}' is not valid YAML: "
                              f"{e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file '{path}' is not UTF-8 text "
                              f"({e.reason} at byte {e.start})") from None
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping at the "
                          f"top level (got {type(cfg).__name__})")
    base = cfg.pop(BASE_KEY, None)
    if base is None:
        return cfg
    if not isinstance(base, str):
        raise ConfigError(f"config file '{path}': '{BASE_KEY}' must be the "
                          f"path of another YAML file, relative to this one "
                          f"(got {base!r})")
    base_path = os.path.join(os.path.dirname(path), base)
    return merge(_load_yaml(base_path, seen + (path, )), cfg)


def flatten(cfg: Mapping[str, Any], prefix: str = '') -> Dict[str, Any]:
    """Flattens nested mappings into ``{'a.b.c': value}``.

    Empty mappings are kept as leaves, so they stay addressable keys.
    """
    out: Dict[str, Any] = {}
    for key, value in cfg.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping) and len(value) > 0:
            out.update(flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def _suggest(key: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:
        # Typos are usually in the last component: compare that alone too.
        leaf = key.rsplit('.', 1)[-1]
        leaves = {k.rsplit('.', 1)[-1]: k for k in valid}
        close = [
            leaves[m]
            for m in difflib.get_close_matches(leaf, list(leaves), n=1,
                                               cutoff=0.6)
        ]
    hint = f"; did you mean '{close[0]}'?" if close else ''
    return f"{hint} Valid keys: {', '.join(valid)}"


def _unknown(key: str, valid: Iterable[str], origin: str) -> ConfigError:
    return ConfigError(f"unknown config key '{key}' ({origin})"
                       f"{_suggest(key, valid)}")


def _same_kind(example: Any, value: Any) -> bool:
    # bool is an int in Python, but not a width; an int is a fine float.
    if isinstance(example, bool) or isinstance(value, bool):
        return isinstance(example, bool) and isinstance(value, bool)
    if isinstance(example, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(example))


def _kind(default: Any) -> str:
    # How an error names the kind of value a key takes.
    if isinstance(default, bool):
        return 'true or false'
    if isinstance(default, int):
        return 'an integer'
    if isinstance(default, float):
        return 'a number'
    if isinstance(default, str):
        return 'a string'
    return f'a {type(default).__name__}'


def _check_type(key: str, default: Any, value: Any, origin: str) -> Any:
    """Checks that an override keeps the kind of value of the default.

    ``None`` defaults accept anything; ints are accepted where floats are
    expected. ``null`` is refused where the default is not ``None`` (no
    such key treats it as "off"). Returns the (possibly converted) value.
    """
    if default is None:
        return value
    if value is None:
        if isinstance(default, Mapping) and len(default) > 0:
            expected = 'a section'
        else:
            expected = f'{_kind(default)}, e.g. {default!r}'
        raise ConfigError(f"config key '{key}' ({origin}) cannot be null: "
                          f"it expects {expected}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' ({origin}) expects true or "
                              f"false (got {value!r})")
        return value
    if isinstance(default, float) and isinstance(value, int) \
            and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' ({origin}) expects "
                              f"{_kind(default)} (got {value!r})")
        if isinstance(default, int) and isinstance(value, float):
            raise ConfigError(f"config key '{key}' ({origin}) expects an "
                              f"integer (got {value!r})")
        return value
    if isinstance(default, str) and not isinstance(value, str):
        hint = ("; YAML reads yes/no/on/off/true/false as booleans, so quote "
                "the text" if isinstance(value, bool) else '')
        raise ConfigError(f"config key '{key}' ({origin}) expects a string "
                          f"(got {value!r}{hint})")
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or (default and not all(
                _same_kind(default[0], item) for item in value)):
            kind = (f'a list of {type(default[0]).__name__}s' if default
                    else 'a list')
            raise ConfigError(f"config key '{key}' ({origin}) expects "
                              f"{kind}, e.g. {list(default)!r} (got "
                              f"{value!r})")
        if default and isinstance(default[0], float):
            return [float(item) for item in value]
        return list(value)
    if isinstance(default, Mapping) and len(default) > 0:
        raise ConfigError(f"config key '{key}' ({origin}) is a section; set "
                          f"its keys instead: "
                          f"{', '.join(sorted(flatten(default, key + '.')))}")
    return value


def merge(defaults: Mapping[str, Any], update: Mapping[str, Any],
          strict: bool = False, origin: str = 'config',
          _prefix: str = '') -> Dict[str, Any]:
    """Deep-merges :obj:`update` into a copy of :obj:`defaults`.

    With :obj:`strict=True`, every key of :obj:`update` must already exist in
    :obj:`defaults` (else :class:`ConfigError` naming the closest valid key)
    and keep its kind of value.
    """
    out = copy.deepcopy(dict(defaults))
    for key, value in update.items():
        name = f'{_prefix}{key}'
        if strict and key not in out:
            raise _unknown(name, flatten(defaults, _prefix) if _prefix else
                           flatten(defaults), origin)
        old = out.get(key)
        if isinstance(old, Mapping) and len(old) > 0:
            if not isinstance(value, Mapping):
                _check_type(name, old, value, origin)
            out[key] = merge(old, value, strict, origin, name + '.')
        else:
            out[key] = (_check_type(name, old, value, origin)
                        if strict else copy.deepcopy(value))
    return out


def _parse_value(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        # 'key=' sets an empty string (YAML would read it as null).
        return ''
    try:
        value = yaml.load(text, Loader=_NumbersLoader)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and not stripped.startswith(('"', "'")):
        # Unquoted text stays as typed: YAML would cut 'run #2' at its
        # comment sign.
        return stripped
    return value


def parse_override(text: str) -> Dict[str, Any]:
    """Turns ``'a.b=3'`` into ``{'a': {'b': 3}}`` (values parsed as YAML)."""
    if '=' not in text:
        raise ConfigError(f"override '{text}' must have the form key=value, "
                          f"e.g. optim.lr=0.01")
    key, raw = text.split('=', 1)
    key = key.strip()
    if not key or any(not part for part in key.split('.')):
        raise ConfigError(f"override '{text}' has an empty key; expected "
                          f"key=value with a dotted key such as optim.lr")
    value = _parse_value(raw)
    for part in reversed(key.split('.')):
        value = {part: value}
    return value


def apply_overrides(cfg: Mapping[str, Any],
                    overrides: Optional[List[str]]) -> Dict[str, Any]:
    """Applies ``key=value`` strings to :obj:`cfg`; only existing keys may
    be set."""
    out = copy.deepcopy(dict(cfg))
    given: Dict[str, str] = {}
    for text in overrides or []:
        update = parse_override(text)
        for key in flatten(update):
            # Wrapper scripts pass common overrides first and let a later
            # one win (experiments/tu/run_*.sh): allowed, but never silent.
            if key in given:
                warnings.warn(f"config key '{key}' is given twice on the "
                              f"command line ('{given[key]}', then "
                              f"'{text}'): the last one is used",
                              stacklevel=2)
            given[key] = text
        out = merge(out, update, strict=True, origin=f"override '{text}'")
    return out


def get_key(cfg: Mapping[str, Any], key: str) -> Any:
    """Reads a dotted key, e.g. ``get_key(cfg, 'model.name')``."""
    value: Any = cfg
    for part in key.split('.'):
        if not isinstance(value, Mapping) or part not in value:
            raise _unknown(key, flatten(cfg), 'lookup')
        value = value[part]
    return value
