"""The plug-in interface between a benchmark and the experiment runner.

A benchmark subclasses :class:`Task` and registers it with
:func:`register_task`; the runner (:func:`pyg_hyper.experiment.run`) then
owns everything that is the same across benchmarks: the config, seeds,
early stopping, model selection, timing, results files and plots.
See ``docs/source/runner.rst`` for the contract.
"""
import importlib
from typing import Any, Dict, List, Tuple, Type

import torch

__all__ = ['Task', 'register_task', 'get_task', 'available_tasks', 'adam']

_REGISTRY: Dict[str, Type['Task']] = {}

#: Modules imported on first look-up so that built-in tasks register
#: themselves without importing heavy benchmark code at package import.
#: Benchmarks add their module here (one line) or call
#: :func:`register_task` before running.
BUILTIN_TASK_MODULES: List[str] = [
    'pyg_hyper.experiment.ogb_task',
    'pyg_hyper.experiment.tu_task',
    'pyg_hyper.experiment.qm9_task',
    'pyg_hyper.experiment.tasks.node_classification',
]


def hyper_variant_label(model: Dict[str, Any]) -> str:
    """The run-name suffix of a hyper model's non-default generator options
    (``model.generator_init``, ``model.normalize_code``), so that runs that
    differ only in them never resume into each other's folders."""
    from pyg_hyper.nn.hyper_linear import GENERATOR_INITS
    init = model['generator_init']
    if init not in GENERATOR_INITS:
        raise ValueError(f"model.generator_init must be one of "
                         f"{list(GENERATOR_INITS)} (got {init!r})")
    label = '' if init == 'uniform' else f'-{init}init'
    return label + ('-ncode' if model['normalize_code'] else '')


def adam(params, **kwargs) -> torch.optim.Adam:
    """The experiments' optimizer: :class:`torch.optim.Adam`, fused into one
    kernel per step where torch supports it (floating-point parameters on
    CPU or CUDA), and the default multi-tensor Adam elsewhere. Fusing gives
    the same update up to rounding and reads each parameter's state once
    instead of once per elementwise operation: 3.4x faster on the CPU for
    the full Hyper-GIN's 59 M parameters, where the unfused update took a
    tenth of the training step.

    Args:
        params: Parameters or parameter groups, as for
            :class:`torch.optim.Adam`.
        **kwargs: Adam's options (:obj:`lr`, :obj:`weight_decay`, ...).
    """
    params = list(params)
    tensors = [p for group in params
               for p in (group['params'] if isinstance(group, dict)
                         else [group])]
    fusable = bool(tensors) and all(
        p.is_floating_point() and not p.is_sparse
        and p.device.type in ('cpu', 'cuda') for p in tensors)
    if fusable and 'foreach' not in kwargs and 'fused' not in kwargs:
        kwargs['fused'] = True
    return torch.optim.Adam(params, **kwargs)


class Task:
    """One benchmark, as seen by the runner.

    Subclasses set :attr:`name`, :attr:`metric` and
    :attr:`higher_is_better`, and implement the methods below. The runner
    calls them in this order::

        data = task.load_data(cfg, device)              # once per run
        for seed in seeds:
            seed_everything(seed)
            seed_data = task.data_for_seed(data, cfg, seed)
            model = task.build_model(cfg, seed_data).to(device)
            optimizer = task.build_optimizer(cfg, model)
            for epoch in range(cfg['epochs']):
                loss = task.train_epoch(model, seed_data, optimizer, cfg)
                scores = task.evaluate(model, seed_data, cfg)
                # ... early stopping on scores['val'] ...

    A task holds no state between calls; everything it needs comes from the
    config, so results are reproducible from the recorded config alone.
    """
    #: Registry name; the config's ``task`` key selects it.
    name: str = ''
    #: Name of the score :meth:`evaluate` returns, e.g. ``'accuracy'``.
    metric: str = ''
    #: Whether a larger :attr:`metric` is better (accuracy, ROC-AUC) or
    #: smaller (MAE, RMSE). Model selection and early stopping follow it.
    higher_is_better: bool = True
    #: Config keys that name folders the data is read from or cached in. A
    #: run continued on another machine (e.g. a GPU session) finds the same
    #: files elsewhere, so a record resumes when only these differ. Keys
    #: that choose *what* is read (a file format, a split) do not belong
    #: here.
    location_keys: Tuple[str, ...] = ('data.root', )

    def default_config(self) -> Dict[str, Any]:
        """All task keys with their defaults (nested dicts).

        Only keys present here may be set by a config file or an override.
        The runner adds its own keys (``seeds``, ``epochs``, ...).
        """
        return {}

    def legacy_config(self, recorded: Dict[str, Any]) -> Dict[str, Any]:
        """The values that the :obj:`recorded` config, written before some
        keys existed, ran with where they differ from those keys' defaults
        (nested dicts; the keys it has tell how old it is).

        A resumed run compares its config with the recorded one after
        filling the keys the record lacks: from here first, then from
        :meth:`default_config`. A key whose default changed the behaviour
        belongs here, so that an old record is not continued under the new
        behaviour.
        """
        return {}

    def check_config(self, cfg: Dict[str, Any]) -> None:
        """Refuses values the task would otherwise refuse only once it runs
        (names of datasets, models, splits, losses), so that a config is
        checked when it is built and ``--dry-run`` catches them. Raises
        :class:`ValueError` naming the key and the valid values. The
        default checks nothing."""

    def load_data(self, cfg: Dict[str, Any], device: torch.device) -> Any:
        """Loads the dataset once per run (may be slow; e.g. processing)."""
        raise NotImplementedError

    def data_for_seed(self, data: Any, cfg: Dict[str, Any], seed: int) -> Any:
        """Returns the data one seed trains on (e.g. a seeded random split).

        Called after the global RNGs are seeded. The default returns
        :obj:`data` unchanged.
        """
        return data

    def build_model(self, cfg: Dict[str, Any], data: Any) -> torch.nn.Module:
        """Builds a freshly initialized model (moved to the device by the
        runner)."""
        raise NotImplementedError

    def build_optimizer(self, cfg: Dict[str, Any],
                        model: torch.nn.Module) -> torch.optim.Optimizer:
        """Builds the optimizer. The default is Adam with ``optim.lr`` and
        ``optim.weight_decay`` (when the task's config has an ``optim``
        section)."""
        optim = cfg.get('optim', {})
        return adam(model.parameters(), lr=optim.get('lr', 1e-3),
                    weight_decay=optim.get('weight_decay', 0.0))

    def train_epoch(self, model: torch.nn.Module, data: Any,
                    optimizer: torch.optim.Optimizer,
                    cfg: Dict[str, Any]) -> float:
        """Trains one epoch and returns the mean training loss."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, data: Any,
                 cfg: Dict[str, Any]) -> Dict[str, float]:
        """Returns :attr:`metric` per split: must contain ``'val'`` and
        ``'test'``; ``'train'`` is optional. Extra keys (e.g.
        ``'val_loss'``) are recorded in the learning curves."""
        raise NotImplementedError

    def describe(self, cfg: Dict[str, Any]) -> str:
        """A short human-readable label of a config (used in tables)."""
        return self.name


def register_task(cls: Type[Task]) -> Type[Task]:
    """Class decorator that registers a :class:`Task` under its
    :attr:`~Task.name`."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f'register_task expects a Task subclass (got {cls!r})')
    if not cls.name or not cls.metric:
        raise ValueError(f"task class '{cls.__name__}' must set 'name' and "
                         f"'metric'")
    old = _REGISTRY.get(cls.name)
    if old is not None and old.__qualname__ != cls.__qualname__:
        raise ValueError(f"task name '{cls.name}' is already registered by "
                         f"'{old.__module__}.{old.__qualname__}'")
    _REGISTRY[cls.name] = cls
    return cls


def _import_builtins() -> None:
    for module in BUILTIN_TASK_MODULES:
        importlib.import_module(module)


def available_tasks() -> List[str]:
    """Names of all registered tasks (built-in ones included)."""
    _import_builtins()
    return sorted(_REGISTRY)


def get_task(name: str) -> Task:
    """Returns a new instance of the task registered as :obj:`name`."""
    _import_builtins()
    if name not in _REGISTRY:
        valid = ', '.join(sorted(_REGISTRY)) or '(none)'
        raise ValueError(f"unknown task '{name}'; valid tasks: {valid}")
    return _REGISTRY[name]()

