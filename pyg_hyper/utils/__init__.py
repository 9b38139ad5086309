"""Utilities shared across :mod:`pyg_hyper`."""
from .checks import *  # noqa: F401,F403
from .checks import __all__  # noqa: F401
