"""Utilities shared across :mod:`pyg_hyper`."""
from .checks import *  # noqa: F401,F403
from .checks import __all__ as _checks_all
from .malloc import malloc_setting, reuse_freed_memory  # noqa: F401

__all__ = _checks_all + ['reuse_freed_memory', 'malloc_setting']
