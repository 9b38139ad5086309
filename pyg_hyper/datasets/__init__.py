"""Datasets."""
from .qm9 import QM9, TargetStats, qm9_standard_split, target_statistics

__all__ = [
    'QM9',
    'TargetStats',
    'qm9_standard_split',
    'target_statistics',
]

classes = __all__
