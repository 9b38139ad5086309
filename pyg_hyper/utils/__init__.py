"""Utilities shared across :mod:`pyg_hyper`."""
from .checks import *  # noqa: F401,F403
from .checks import __all__ as _checks_all
from .malloc import (  # noqa: F401
    add_malloc_option,
    apply_malloc_option,
    malloc_setting,
    reuse_freed_memory,
)

__all__ = _checks_all + ['reuse_freed_memory', 'malloc_setting',
                         'add_malloc_option', 'apply_malloc_option']
