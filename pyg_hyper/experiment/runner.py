"""The experiment runner: seeds loop, early stopping, model selection.

It is benchmark-agnostic; a benchmark plugs in through
:class:`~pyg_hyper.experiment.Task`.
"""
import contextlib
import math
import os
import time
import warnings
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

import torch
from torch_geometric import seed_everything
from tqdm.auto import tqdm

from pyg_hyper.experiment.distributed import is_main_process
from pyg_hyper.experiment.config import (
    ConfigError,
    apply_overrides,
    flatten,
    load_yaml,
    merge,
)
from pyg_hyper.experiment.plots import plot_learning_curves
from pyg_hyper.experiment.results import (
    SCHEMA_VERSION,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    check_writable,
    environment_record,
    load_results,
    markdown_report,
    session_history,
    summarize,
)
from pyg_hyper.experiment.task import Task, get_task

__all__ = [
    'RUNNER_DEFAULTS',
    'build_config',
    'resolve_device',
    'seed_list',
    'train',
    'resumable_record',
    'evaluate',
]

#: Keys the runner owns; every task config has them too.
RUNNER_DEFAULTS: Dict[str, Any] = {
    'task': '',  # registry name of the Task
    'name': '',  # run name for tables; default: task.describe(cfg)
    'seeds': 10,  # number of seeds ...
    'seed_start': 0,  # ... run as seed_start, seed_start + 1, ...
    'epochs': 1000,  # maximum number of training epochs
    'patience': 200,  # epochs without validation gain before stopping; 0=off
    'min_epochs': 0,  # no early stop before this many epochs
    # Model selection: 'val' keeps the epoch with a strictly better val
    # score; 'val_and_loss' is GAT's official rule: keep an epoch whose val
    # score is at least and val loss at most the best seen, and reset the
    # patience when either improves (LGNN's code uses it too, on its
    # penalized training objective; see the citation README).
    'selection': 'val',
    'select_from': 0,  # epochs before this are neither kept nor counted
    'eval_every': 1,  # evaluate every this many epochs
    'checkpoint_every': 0,  # save a resumable mid-seed state; 0 = never
    'save_models': True,  # keep best-validation weights for 'evaluate'
    'threads': 0,  # torch.set_num_threads; 0 = leave torch's default
    # On CPU, flush subnormal floats to zero (as TensorFlow does by default):
    # weights that weight decay drives towards zero make subnormal products,
    # which the CPU computes several times slower.
    'flush_denormal': True,
}

# Keys that may differ between an interrupted run and its resumption: they
# choose which seeds run or how, not what one seed computes (with the task's
# Task.location_keys: where the same files are read from). Top-level names
# cover their whole section.
_RESUMABLE_KEYS = ('seeds', 'seed_start', 'threads', 'checkpoint_every',
                   'save_models', 'flush_denormal')


def build_config(path: Optional[str] = None,
                 overrides: Optional[Sequence[str]] = None,
                 task: Optional[str] = None) -> Dict[str, Any]:
    """Builds the full config of a run.

    Order of precedence (last wins): runner defaults, the task's
    :meth:`~Task.default_config`, the YAML file at :obj:`path`, then the
    ``key=value`` :obj:`overrides`. Unknown keys raise
    :class:`~pyg_hyper.experiment.config.ConfigError` naming the closest
    valid key.
    """
    file_cfg = load_yaml(path) if path is not None else {}
    name = task or file_cfg.get('task')
    for text in overrides or []:
        if text.split('=', 1)[0].strip() == 'task':
            name = text.split('=', 1)[1].strip() if '=' in text else name
    if not name:
        raise ConfigError("no task given: set 'task:' in the config file or "
                          "pass task=<name>")
    if isinstance(overrides, (str, bytes, os.PathLike)):
        raise TypeError(f"'overrides' must be a list of 'key=value' strings "
                        f"(got the single {type(overrides).__name__} "
                        f"{overrides!r}; wrap it in a list)")
    task_obj = get_task(str(name))
    defaults = _defaults(task_obj, str(name))
    origin = f"file '{path}'" if path is not None else 'config'
    cfg = merge(defaults, file_cfg, strict=True, origin=origin)
    cfg = apply_overrides(cfg, overrides)
    cfg['task'] = str(name)
    return check_config(cfg)


def _defaults(task_obj, name: str) -> Dict[str, Any]:
    task_defaults = task_obj.default_config()
    clash = set(task_defaults) & set(RUNNER_DEFAULTS)
    if clash:
        raise ConfigError(f"task '{name}' redefines runner keys "
                          f"{sorted(clash)}")
    defaults = merge(RUNNER_DEFAULTS, task_defaults)
    defaults['task'] = name
    return defaults


def check_config(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """:obj:`cfg` checked as :func:`build_config` checks what it builds:
    every key known to its task, every value of its key's kind and range.
    Missing keys take their defaults. For configs built in code and passed
    to :func:`train` directly."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"a config must be a mapping (got "
                          f"{type(cfg).__name__})")
    name = cfg.get('task')
    if not name:
        raise ConfigError("the config names no task (set cfg['task'])")
    task_obj = get_task(str(name))
    checked = merge(_defaults(task_obj, str(name)), cfg, strict=True,
                    origin='config')
    _validate_runner_keys(checked)
    task_obj.check_config(checked)
    if not checked['name']:
        checked['name'] = task_obj.describe(checked)
    return checked


#: Model-selection rules (config key ``selection``).
SELECTIONS = ('val', 'val_and_loss')


def _validate_runner_keys(cfg: Mapping[str, Any]) -> None:
    for key, low in (('seeds', 1), ('epochs', 1), ('eval_every', 1),
                     ('patience', 0), ('min_epochs', 0), ('seed_start', 0),
                     ('checkpoint_every', 0), ('threads', 0),
                     ('select_from', 0)):
        if not isinstance(cfg[key], int) or cfg[key] < low:
            raise ConfigError(f"config key '{key}' must be an integer >= "
                              f"{low} (got {cfg[key]!r})")
    if cfg['seed_start'] + cfg['seeds'] > 2**32:
        raise ConfigError(f"config keys 'seed_start' + 'seeds' "
                          f"({cfg['seed_start']} + {cfg['seeds']}) must stay "
                          f"within torch's seeds, 0 to 2**32 - 1")
    if cfg['select_from'] >= cfg['epochs']:
        raise ConfigError(f"config key 'select_from' ({cfg['select_from']}) "
                          f"must be below 'epochs' ({cfg['epochs']}): no "
                          f"epoch could be selected")
    if not isinstance(cfg['flush_denormal'], bool):
        raise ConfigError(f"config key 'flush_denormal' must be true or "
                          f"false (got {cfg['flush_denormal']!r})")
    if cfg['selection'] not in SELECTIONS:
        raise ConfigError(f"config key 'selection' must be one of "
                          f"{', '.join(SELECTIONS)} (got "
                          f"{cfg['selection']!r})")
    _validate_common_values(cfg)


def _validate_common_values(cfg: Mapping[str, Any]) -> None:
    # Keys every task names alike, checked when the config is built, so a
    # '--dry-run' catches them (the optimizer or the layer would reject them
    # later, without naming the config key).
    for key, value in flatten(cfg).items():
        leaf = key.rsplit('.', 1)[-1]
        if value is None or isinstance(value, bool) or \
                not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            # YAML reads '.inf' and '.nan' as floats; no key means them.
            raise ConfigError(f"config key '{key}' must be a finite number "
                              f"(got {value!r})")
        if leaf.endswith('dropout') and not 0.0 <= value < 1.0:
            raise ConfigError(f"config key '{key}' must be a probability in "
                              f"[0, 1) (got {value!r})")
        if leaf == 'lr' and not value > 0:
            raise ConfigError(f"config key '{key}' must be positive (got "
                              f"{value!r})")
        if leaf.endswith('weight_decay') and value < 0:
            raise ConfigError(f"config key '{key}' must be >= 0 (got "
                              f"{value!r})")
        if isinstance(value, int):
            # Sizes, counts, indices and seeds: a negative one would slice
            # from the end (split[:-5]) instead of failing.
            low = 1 if leaf in _POSITIVE_INTS else 0
            if value < low:
                raise ConfigError(f"config key '{key}' must be an integer >= "
                                  f"{low} (got {value!r})")
        elif leaf in _FRACTIONS and not 0.0 <= value < 1.0:
            raise ConfigError(f"config key '{key}' must be a fraction in "
                              f"[0, 1) (got {value!r})")
        elif leaf in _NON_NEGATIVE and value < 0:
            raise ConfigError(f"config key '{key}' must be >= 0 (got "
                              f"{value!r})")
        elif leaf in _POSITIVE and not value > 0:
            raise ConfigError(f"config key '{key}' must be positive (got "
                              f"{value!r})")


#: Integer keys (by their last name) that 0 would not make sense for; every
#: other integer key must be >= 0 (0 often means "all" or "default").
_POSITIVE_INTS = frozenset({
    'batch_size', 'eval_batch_size', 'train_eval_size', 'hidden_channels',
    'hyper_channels', 'emb_dim', 'num_layers', 'heads', 'output_heads',
    'step_size', 'decay_steps'})
#: Float keys with a range: a fraction of a set, and scales.
_FRACTIONS = frozenset({'inner_val'})
_NON_NEGATIVE = frozenset({'cutoff', 'min_lr', 'reg_weight'})
_POSITIVE = frozenset({'decay_rate', 'gamma'})


def seed_list(cfg: Mapping[str, Any]) -> List[int]:
    """The seeds a config runs: ``seed_start, ..., seed_start + seeds - 1``."""
    return list(range(cfg['seed_start'], cfg['seed_start'] + cfg['seeds']))


def resolve_device(device: str) -> torch.device:
    """Parses ``'cpu'``, ``'cuda'`` or ``'cuda:<i>'`` and checks that it
    exists."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device '{device}'; use 'cpu', 'cuda' or "
                         f"'cuda:<index>'") from None
    if dev.type not in ('cpu', 'cuda'):
        raise ValueError(f"unsupported device '{device}'; use 'cpu', 'cuda' "
                         f"or 'cuda:<index>'")
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' was requested but CUDA is not "
                         f"available here; use --device cpu")
    return dev


def _config_diff(old: Mapping[str, Any], new: Mapping[str, Any],
                 location_keys: Sequence[str] = ()) -> List[str]:
    a, b = flatten(old), flatten(new)
    free = set(_RESUMABLE_KEYS) | set(location_keys)
    return sorted(k for k in set(a) | set(b)
                  if k not in free and k.split('.')[0] not in free
                  and a.get(k, '<unset>') != b.get(k, '<unset>'))


class _SeedState:
    """Everything one seed's training loop carries from epoch to epoch;
    saved as the mid-seed checkpoint."""
    def __init__(self) -> None:
        self.epoch = 0  # epochs finished
        self.best_value: Optional[float] = None
        self.best_loss: Optional[float] = None  # selection 'val_and_loss'
        self.best_epoch = 0
        self.best_scores: Dict[str, float] = {}
        self.best_state: Optional[Dict[str, torch.Tensor]] = None
        self.since_best = 0
        self.train_time = 0.0
        self.history: Dict[str, List[float]] = {'epoch': [], 'loss': []}

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> '_SeedState':
        state = cls()
        state.__dict__.update(d)
        return state


def _is_better(value: float, best: Optional[float],
               higher_is_better: bool) -> bool:
    if best is None:
        return True
    return value > best if higher_is_better else value < best


def _check_selection_scores(scores: Mapping[str, float], epoch: int,
                            seed: int) -> None:
    # A NaN compares false with everything: once kept as the best, no later
    # epoch would replace it, and its test score would be reported.
    for key in ('val', 'val_loss'):
        if key in scores and not math.isfinite(scores[key]):
            raise ValueError(f"validation score '{key}' is {scores[key]} at "
                             f"epoch {epoch} of seed {seed}; model "
                             f"selection needs finite scores (check the "
                             f"validation split and the model's outputs)")


def _select(rule: str, scores: Mapping[str, float], state: _SeedState,
            higher_is_better: bool) -> Tuple[bool, bool]:
    """Applies a selection rule to one evaluation: returns (whether it
    resets the patience, whether its weights are kept), and updates the
    running bests."""
    val = scores['val']
    if rule == 'val':
        better = _is_better(val, state.best_value, higher_is_better)
        if better:
            state.best_value = val
        return better, better
    if 'val_loss' not in scores:
        raise ValueError("selection 'val_and_loss' needs a 'val_loss' "
                         "score from the task's evaluate()")
    loss = scores['val_loss']
    at_least = state.best_value is None or (
        val >= state.best_value if higher_is_better
        else val <= state.best_value)
    at_most = state.best_loss is None or loss <= state.best_loss
    if at_least:
        state.best_value = val
    if at_most:
        state.best_loss = loss
    return at_least or at_most, at_least and at_most


def _load_saved(path: str, what: str, fix: str, **kwargs) -> Any:
    """``torch.load`` of a file this runner wrote, with damage (a truncated
    or foreign file) reported as bad input naming the file and the fix."""
    try:
        return torch.load(path, **kwargs)
    except Exception as e:  # noqa: BLE001 - any failure means a bad file
        # (the unpickler alone raises EOFError, UnpicklingError,
        # struct.error, KeyError, ... on junk).
        raise ValueError(f"cannot read the {what} '{path}' ({type(e).__name__}"
                         f": {str(e).splitlines()[0] if str(e) else ''}); "
                         f"{fix}") from None


def _load_state(module: Any, state: Any, path: str, what: str,
                fix: str) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"the {what} '{path}' does not fit this run's "
                         f"model ({str(e).splitlines()[0]}); {fix}") from None


_CHECKPOINT_FIX = ('delete it to restart that seed from its first epoch, or '
                   'rerun with --fresh')


def _restore_checkpoint(path: str, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer,
                        device: torch.device) -> _SeedState:
    """Continues a seed from its mid-seed checkpoint on any device. It is
    read onto the CPU: the random-number states must stay CPU byte tensors
    (mapped to a GPU, ``set_rng_state`` refuses them), and loading the
    state dicts moves the weights and Adam's moments to the model's
    device."""
    ckpt = _load_saved(path, 'mid-seed checkpoint', _CHECKPOINT_FIX,
                       map_location='cpu', weights_only=False)
    _load_state(model, ckpt['model'], path, 'mid-seed checkpoint',
                _CHECKPOINT_FIX)
    _load_state(optimizer, ckpt['optimizer'], path, 'mid-seed checkpoint',
                _CHECKPOINT_FIX)
    torch.set_rng_state(ckpt['rng_cpu'])
    if device.type == 'cuda' and ckpt.get('rng_cuda') is not None:
        torch.cuda.set_rng_state(ckpt['rng_cuda'], device)
    return _SeedState.from_dict(ckpt['state'])


def _cpu_state_dict(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().to('cpu', copy=True)
            for k, v in model.state_dict().items()}


#: Environment keys whose change between sessions can change the numbers.
_VERSION_KEYS = ('pyg_hyper', 'git_commit', 'torch', 'torch_geometric')


def _warn_mixed_versions(sessions: List[Dict[str, Any]], out_dir: str
                         ) -> None:
    """Warns when the seeds about to run join seeds recorded under other
    code versions (sessions recorded before environments were kept per
    session are not compared)."""
    current = sessions[-1]
    changed = set()
    for old in sessions[:-1]:
        if not old.get('seeds_run'):
            continue
        for key in _VERSION_KEYS:
            if old.get(key) and current.get(key) and \
                    old[key] != current[key]:
                changed.add(f"{key} {old[key]} -> {current[key]}")
    if changed:
        warnings.warn(
            f"'{out_dir}' resumes seeds recorded under other versions "
            f"({'; '.join(sorted(changed))}): its mean mixes them; "
            f"results.json lists each session's seeds and versions (pass "
            f"--fresh to rerun every seed)", stacklevel=3)


def _run_seed(task: Task, cfg: Dict[str, Any], data: Any, seed: int,
              device: torch.device, out_dir: str,
              progress: bool) -> Dict[str, Any]:
    seed_everything(seed)
    seed_data = task.data_for_seed(data, cfg, seed)
    model = task.build_model(cfg, seed_data).to(device)
    optimizer = task.build_optimizer(cfg, model)
    num_params = sum(p.numel() for p in model.parameters())

    ckpt_path = os.path.join(out_dir, 'checkpoints', f'seed_{seed}.pt')
    state = _SeedState()
    if cfg['checkpoint_every'] > 0 and os.path.isfile(ckpt_path):
        # train() has checked its config (_check_checkpoints).
        state = _restore_checkpoint(ckpt_path, model, optimizer, device)

    wall_start = time.perf_counter()
    bar = tqdm(total=cfg['epochs'], initial=state.epoch, desc=f'seed {seed}',
               leave=False, disable=not progress, dynamic_ncols=True)
    stopped_early = False
    while state.epoch < cfg['epochs']:
        start = time.perf_counter()
        loss = float(task.train_epoch(model, seed_data, optimizer, cfg))
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        state.train_time += time.perf_counter() - start
        state.epoch += 1
        bar.update(1)
        if not math.isfinite(loss):
            raise ValueError(f"training loss became {loss} at epoch "
                             f"{state.epoch} of seed {seed}; lower the "
                             f"learning rate (optim.lr) or check the data")
        last = state.epoch == cfg['epochs']
        if state.epoch % cfg['eval_every'] == 0 or last:
            scores = {k: float(v) for k, v in
                      task.evaluate(model, seed_data, cfg).items()}
            missing = {'val', 'test'} - set(scores)
            if missing:
                raise ValueError(f"task '{task.name}' evaluate() must return "
                                 f"'val' and 'test' scores (missing "
                                 f"{sorted(missing)})")
            _check_selection_scores(scores, state.epoch, seed)
            state.history['epoch'].append(state.epoch)
            state.history['loss'].append(loss)
            for key, value in scores.items():
                state.history.setdefault(key, []).append(value)
            improved, keep = False, False
            if state.epoch >= cfg['select_from']:
                improved, keep = _select(cfg['selection'], scores, state,
                                         task.higher_is_better)
                if not improved:
                    state.since_best += cfg['eval_every']
            if keep:
                state.best_epoch = state.epoch
                state.best_scores = scores
                state.best_state = _cpu_state_dict(model)
            if improved:
                state.since_best = 0
            best = ('-' if state.best_value is None
                    else f'{state.best_value:.4f}')
            bar.set_postfix(loss=f'{loss:.4f}', val=f"{scores['val']:.4f}",
                            best=best, refresh=False)
            if (cfg['patience'] > 0 and state.since_best >= cfg['patience']
                    and state.epoch >= cfg['min_epochs']):
                stopped_early = True
                break
        if (cfg['checkpoint_every'] > 0 and is_main_process()
                and state.epoch % cfg['checkpoint_every'] == 0):
            atomic_torch_save(ckpt_path, {
                'config': cfg,
                'model': model.state_dict(),
                'optimizer': optimizer.state_dict(),
                'state': state.to_dict(),
                'rng_cpu': torch.get_rng_state(),
                'rng_cuda': (torch.cuda.get_rng_state(device)
                             if device.type == 'cuda' else None),
            })
    bar.close()

    if (cfg['save_models'] and state.best_state is not None
            and is_main_process()):
        atomic_torch_save(
            os.path.join(out_dir, 'models', f'seed_{seed}.pt'),
            state.best_state)
    return {
        'seed': seed,
        'best_epoch': state.best_epoch,
        'epochs_run': state.epoch,
        'stopped_early': stopped_early,
        'scores': state.best_scores,
        'num_params': num_params,
        'epoch_time_s': state.train_time / max(state.epoch, 1),
        'wall_s': time.perf_counter() - wall_start,
        'history': state.history,
    }


def _filled_config(task: Task, recorded: Mapping[str, Any]) -> Dict[str, Any]:
    """A recorded config with the keys it predates filled in: with what
    records before them ran with (:meth:`Task.legacy_config`), else with
    today's defaults."""
    return merge(merge(build_config(task=task.name),
                       task.legacy_config(dict(recorded))), recorded)


def _check_checkpoint_config(task: Task, ckpt: Mapping[str, Any],
                             cfg: Mapping[str, Any], path: str) -> None:
    """A mid-seed checkpoint continues only the config that wrote it: its
    optimizer state would otherwise bring back the old learning rate, and
    its weights the old shapes."""
    if 'config' not in ckpt:
        warnings.warn(f"'{path}' predates checkpoints that record their "
                      f"config; resuming it unchecked", stacklevel=3)
        return
    _check_same_config(task, ckpt['config'], cfg,
                       f"mid-seed checkpoint '{path}' was written by")


def _check_checkpoints(task: Task, cfg: Mapping[str, Any], out_dir: str,
                       seeds: List[int]) -> None:
    """Refuses a mid-seed checkpoint of another config before any data is
    loaded or seed trained (a QM9 load takes a minute; a later seed's
    checkpoint would else be refused hours into the run). Memory-mapped:
    only the recorded config is read, not the weights."""
    if cfg['checkpoint_every'] <= 0:
        return
    for seed in seeds:
        path = os.path.join(out_dir, 'checkpoints', f'seed_{seed}.pt')
        if os.path.isfile(path):
            _check_checkpoint_config(
                task, _load_saved(path, 'mid-seed checkpoint',
                                  _CHECKPOINT_FIX, map_location='cpu',
                                  mmap=True, weights_only=False), cfg, path)


def _check_same_config(task: Task, recorded: Mapping[str, Any],
                       cfg: Mapping[str, Any], what: str) -> None:
    diff = _config_diff(_filled_config(task, recorded), cfg,
                        task.location_keys)
    if diff:
        raise ValueError(f"{what} a different config (differs in: "
                         f"{', '.join(diff)}); use another --out folder or "
                         f"pass --fresh to discard it")


def _write_reports(out_dir: str, results: Dict[str, Any],
                   json_too: bool = True) -> None:
    # The JSON first: it is the record that resuming reads; the report and
    # the plot are rebuilt from it (also when a rerun finds nothing left to
    # train, in case a kill fell between the writes).
    if json_too:
        atomic_write_json(os.path.join(out_dir, 'results.json'), results)
    atomic_write_text(os.path.join(out_dir, 'results.md'),
                      markdown_report(results))
    plot_learning_curves(results, os.path.join(out_dir, 'curves.png'))


def _discard_run_state(out_dir: str, results: Dict[str, Any]) -> None:
    """--fresh: the old run's mid-seed checkpoints, saved models and reports
    go with its seeds (else a resume or `evaluate` would silently use
    them), and the new, empty record replaces the old one at once, so that
    a run killed before its first seed does not resume the old record."""
    for sub in ('checkpoints', 'models'):
        folder = os.path.join(out_dir, sub)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith('seed_') and name.endswith('.pt'):
                os.remove(os.path.join(folder, name))
    for name in ('results.md', 'curves.png', 'evaluation.json'):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            os.remove(path)
    atomic_write_json(os.path.join(out_dir, 'results.json'), results)


def resumable_record(cfg: Dict[str, Any],
                     out_dir: str) -> Optional[Dict[str, Any]]:
    """The record in ``out_dir/results.json`` that :func:`train` would
    continue under :obj:`cfg` (:obj:`None` if there is none), or a
    :class:`ValueError` saying why it would refuse: a different config, or
    seeds outside this config's. Reads nothing else; ``pyg-hyper train
    --dry-run`` uses it to check commands against their records."""
    results_path = os.path.join(out_dir, 'results.json')
    if not os.path.isfile(results_path):
        return None
    task = get_task(cfg['task'])
    results = load_results(results_path)
    # A key that the record predates ran with its legacy value, else with
    # what is now its default, so it only counts as a change if the new
    # config sets it otherwise.
    _check_same_config(task, results['config'], cfg,
                       f"'{out_dir}' holds results of")
    extra = sorted((int(s) for s in results['seeds']
                    if int(s) not in seed_list(cfg)))
    if extra:
        raise ValueError(
            f"'{out_dir}' holds seeds {extra} outside this config's "
            f"seeds {seed_list(cfg)} (seed_start={cfg['seed_start']}, "
            f"seeds={cfg['seeds']}); the record's summary covers the "
            f"seeds its config names, so widen 'seeds'/'seed_start', "
            f"use another --out folder, or pass --fresh")
    return results


def train(cfg: Dict[str, Any], out_dir: str, device: str = 'cpu',
          progress: bool = True, fresh: bool = False,
          argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Runs every seed of :obj:`cfg` and writes the results to
    :obj:`out_dir`.

    Seeds already recorded in ``out_dir/results.json`` are skipped (resume),
    provided the recorded config matches and its seeds are among this
    config's; a mid-seed checkpoint resumes only under the config that
    wrote it. :obj:`fresh=True` discards the recorded seeds, checkpoints,
    saved models and reports. One run writes a folder at a time: a second
    run on the same folder is refused while the first holds its lock
    (``.pyg-hyper.lock``), since each rewrites the whole record from its own
    copy. Returns the results record (as written to ``results.json``).
    """
    cfg = check_config(cfg)
    dev = resolve_device(device)
    if not str(out_dir).strip():
        raise ValueError("the results folder is an empty path; pass a "
                         "folder with --out")
    existed = os.path.isdir(out_dir)
    check_writable(out_dir)
    try:
        with _sole_writer(out_dir):
            return _train_seeds(cfg, out_dir, dev, progress, fresh, argv)
    except BaseException:
        if not existed:
            # A run that failed before writing anything (a missing dataset,
            # a typo in a name) leaves no folder holding only its lock.
            _remove_if_only_lock(out_dir)
        raise


def _remove_if_only_lock(out_dir: str) -> None:
    try:
        if os.listdir(out_dir) == [LOCK_FILE]:
            os.remove(os.path.join(out_dir, LOCK_FILE))
            os.rmdir(out_dir)
    except OSError:
        pass


#: Held by the run that writes a results folder.
LOCK_FILE = '.pyg-hyper.lock'


@contextlib.contextmanager
def _sole_writer(out_dir: str) -> Iterator[None]:
    """Holds an exclusive advisory lock on :obj:`out_dir` (rank 0 only:
    under torchrun the other processes do not write). Where ``fcntl`` is
    missing (Windows) runs are not guarded."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        fcntl = None
    if fcntl is None or not is_main_process():
        yield
        return
    path = os.path.join(out_dir, LOCK_FILE)
    with open(path, 'a') as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(
                f"another run is writing '{out_dir}' (it holds '{path}'); "
                f"wait for it to finish, or give this run another --out "
                f"folder") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_checkpoints(out_dir: str, seeds: Iterable[Any]) -> None:
    for seed in seeds:
        path = os.path.join(out_dir, 'checkpoints', f'seed_{seed}.pt')
        if os.path.exists(path):
            os.remove(path)


def _train_seeds(cfg: Dict[str, Any], out_dir: str, dev: torch.device,
                 progress: bool, fresh: bool,
                 argv: Optional[Sequence[str]]) -> Dict[str, Any]:
    task = get_task(cfg['task'])
    if cfg['threads'] > 0:
        torch.set_num_threads(cfg['threads'])
    env = environment_record(str(dev), argv)

    results: Dict[str, Any]
    recorded = None if fresh else resumable_record(cfg, out_dir)
    if recorded is not None:
        results = recorded
        results['config'] = cfg
    else:
        results = {
            'schema': SCHEMA_VERSION,
            'name': cfg['name'],
            'task': task.name,
            'metric': task.metric,
            'higher_is_better': task.higher_is_better,
            'config': cfg,
            'seeds': {},
            'sessions': [],
        }
        if fresh and is_main_process():
            _discard_run_state(out_dir, results)
    results['sessions'] = session_history(results)
    todo = [s for s in seed_list(cfg) if str(s) not in results['seeds']]
    if is_main_process():
        # A kill between recording a seed and deleting its checkpoint
        # leaves one that no rerun would ever read.
        _remove_checkpoints(out_dir, results['seeds'])
    if not todo:
        if results['seeds'] and is_main_process():
            _write_reports(out_dir, results, json_too=False)
        return results
    results['environment'] = env
    # Each session keeps its own environment: a resumed run may mix code
    # versions and machines (e.g. some seeds on a GPU), and its seeds say
    # which ran where.
    results['sessions'].append({**env, 'seeds_run': []})
    if is_main_process():
        _warn_mixed_versions(results['sessions'], out_dir)
    flush = (flush_denormal(cfg['flush_denormal']) if dev.type == 'cpu'
             else contextlib.nullcontext())
    if not fresh:
        # (--fresh: rank 0 has discarded them; under torchrun another rank
        # may get here first and must not judge them.)
        _check_checkpoints(task, cfg, out_dir, todo)
    with flush:
        data = task.load_data(cfg, dev)
        for seed in tqdm(todo, desc=cfg['name'], disable=not progress,
                         dynamic_ncols=True):
            record = _run_seed(task, cfg, data, seed, dev, out_dir, progress)
            results['seeds'][str(seed)] = record
            results['sessions'][-1]['seeds_run'].append(seed)
            results['num_params'] = record['num_params']
            results['summary'] = summarize(results['seeds'])
            if not is_main_process():
                continue  # under torchrun, rank 0 alone writes the results
            _write_reports(out_dir, results)
            _remove_checkpoints(out_dir, [seed])
    return results


def subnormals_flushed() -> bool:
    """Whether the CPU flushes subnormal floats to zero now (torch has a
    setter, :func:`torch.set_flush_denormal`, but no getter)."""
    half_tiny = torch.tensor(torch.finfo(torch.float32).tiny) / 2
    return bool(half_tiny == 0)


@contextlib.contextmanager
def flush_denormal(enabled: bool) -> Iterator[None]:
    """Flushes (or keeps) subnormal floats on CPU inside the block and
    restores the previous setting after it: the setting is process-wide,
    and a run must not change it for the code that called it."""
    before = subnormals_flushed()
    torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def evaluate(run_dir: str, device: str = 'cpu',
             progress: bool = True) -> Dict[str, Any]:
    """Re-evaluates the saved best-validation models of a finished run.

    Rebuilds data and models from the recorded config, loads
    ``models/seed_<s>.pt`` and recomputes every split's score; writes
    ``evaluation.json`` next to ``results.json`` and returns it.
    """
    dev = resolve_device(device)
    results = load_results(run_dir)
    if os.path.isfile(run_dir):  # its results.json: the run is its folder
        run_dir = os.path.dirname(os.path.abspath(run_dir))
    cfg = results['config']
    task = get_task(cfg['task'])
    seeds = sorted(results['seeds'], key=int)
    paths = {s: os.path.join(run_dir, 'models', f'seed_{s}.pt')
             for s in seeds}
    missing = [s for s in seeds if not os.path.isfile(paths[s])]
    if not seeds or missing:
        raise ValueError(f"'{run_dir}' has no saved model for seeds "
                         f"{missing or '(none finished)'}; train with "
                         f"save_models=true first")
    # Checked before the scores are recomputed, which can take long.
    check_writable(run_dir, fix='evaluate writes evaluation.json into the '
                   'run folder: make it writable (or copy the run '
                   'elsewhere)')
    data = task.load_data(cfg, dev)
    per_seed: Dict[str, Dict[str, float]] = {}
    for s in tqdm(seeds, desc='evaluate', disable=not progress):
        seed_everything(int(s))
        seed_data = task.data_for_seed(data, cfg, int(s))
        model = task.build_model(cfg, seed_data).to(dev)
        fix = (f"train the run again to rewrite it (pyg-hyper train with "
               f"--fresh and save_models=true)")
        _load_state(model, _load_saved(paths[s], 'saved model', fix,
                                       map_location=dev, weights_only=True),
                    paths[s], 'saved model', fix)
        per_seed[s] = {k: float(v) for k, v in
                       task.evaluate(model, seed_data, cfg).items()}
    summary = {
        key: stats
        for key, stats in summarize({
            s: {'scores': sc, 'epoch_time_s': 0.0, 'best_epoch': 0}
            for s, sc in per_seed.items()
        }).items() if key not in ('epoch_time_s', 'best_epoch')
    }
    out = {
        'name': results['name'],
        'metric': results['metric'],
        'environment': environment_record(str(dev)),
        'seeds': per_seed,
        'summary': summary,
        'recorded_summary': {k: v for k, v in results['summary'].items()
                             if k in summary},
    }
    atomic_write_json(os.path.join(run_dir, 'evaluation.json'), out)
    return out

