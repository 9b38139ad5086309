"""Utilities shared across :mod:`pyg_hyper`."""
from .checks import (check_channels, check_edge_attr, check_edge_index,
                     check_finite, check_shape, is_tracing)

__all__ = [
    'is_tracing',
    'check_channels',
    'check_edge_index',
    'check_edge_attr',
    'check_finite',
    'check_shape',
]
