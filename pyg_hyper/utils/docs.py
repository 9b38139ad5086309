"""Argument docs shared by several classes, written once."""
import re
from typing import Callable, Dict, TypeVar

__all__ = ['fill_docs']

T = TypeVar('T')

# Markers are upper-case names ending in _ARGS, e.g. '{DATASET_ARGS}' (LaTeX
# such as '\mathrm{ELU}' never ends that way).
_MARKER = re.compile(r'\{[A-Z_]+_ARGS\}')


def fill_docs(texts: Dict[str, str]) -> Callable[[T], T]:
    """A class decorator that replaces each marker of :obj:`texts` (e.g.
    ``'{DATASET_ARGS}'``) in the class docstring and in its
    own :meth:`forward` docstring, if it defines one, by the marker's
    text.

    A marker left unfilled would reach the rendered docs verbatim, so one
    that :obj:`texts` lacks raises :class:`KeyError` at import."""
    def decorate(cls: T) -> T:
        owners = [cls]
        if 'forward' in vars(cls):  # not an inherited one, shared by others
            owners.append(cls.forward)
        for owner in owners:
            doc = owner.__doc__ or ''
            for marker, text in texts.items():
                doc = doc.replace(marker, text)
            unknown = _MARKER.findall(doc)
            if unknown:
                raise KeyError(f"'{cls.__name__}' docstring names unknown "
                               f"shared-doc markers {unknown}")
            owner.__doc__ = doc
        return cls
    return decorate
