"""Dataset loaders and splits."""
from pyg_hyper.datasets.node_classification import (
    NODE_DATASETS,
    MissingRawFilesError,
    load_node_dataset,
    missing_raw_files,
)
from pyg_hyper.datasets.splits import SPLITS, make_split, random_class_split

__all__ = [
    'NODE_DATASETS',
    'MissingRawFilesError',
    'load_node_dataset',
    'missing_raw_files',
    'SPLITS',
    'make_split',
    'random_class_split',
]
