"""The general experiment runner behind the ``pyg-hyper`` command.

A benchmark registers a :class:`Task`; the runner does the rest (config,
seeds, early stopping, results, plots). See :doc:`/runner`.
"""
from pyg_hyper.experiment.config import (
    ConfigError,
    apply_overrides,
    load_yaml,
    merge,
    parse_override,
)
from pyg_hyper.experiment.task import (
    Task,
    adam,
    available_tasks,
    get_task,
    register_task,
)
from pyg_hyper.experiment.results import (
    atomic_write_json,
    environment_record,
    load_results,
    mean_std,
)
from pyg_hyper.experiment.runner import (
    RUNNER_DEFAULTS,
    build_config,
    evaluate,
    resumable_record,
    seed_list,
    train,
)
from pyg_hyper.experiment.aggregate import leaderboard
from pyg_hyper.experiment.plots import plot_leaderboard, plot_learning_curves

__all__ = [
    'Task',
    'adam',
    'register_task',
    'get_task',
    'available_tasks',
    'ConfigError',
    'load_yaml',
    'merge',
    'parse_override',
    'apply_overrides',
    'RUNNER_DEFAULTS',
    'build_config',
    'seed_list',
    'train',
    'resumable_record',
    'evaluate',
    'leaderboard',
    'atomic_write_json',
    'environment_record',
    'load_results',
    'mean_std',
    'plot_learning_curves',
    'plot_leaderboard',
]
