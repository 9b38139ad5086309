"""Benchmark datasets, loadable offline, their splits and evaluation
protocols."""
from .node_classification import (NODE_DATASETS, MissingRawFilesError,
                                  load_node_dataset, missing_raw_files)
from .splits import SPLITS, make_split, random_class_split
from .ogb import (OGBGraphDataset, ogb_graph_dataset_names, ogb_meta_info,
                  ogb_required_files, resolve_ogb_name)
from .moleculenet import (MOLECULENET_CSVS, MoleculeBuildReport,
                          build_ogb_dataset_from_csv,
                          build_ogb_dataset_from_moleculenet, scaffold_split)
from .tu import load_tu_dataset
from .gin_format import GINFormatDataset
from .protocols import gin_protocol, inner_split, inner_val_protocol
from .qm9 import QM9, TargetStats, qm9_standard_split, target_statistics

__all__ = [
    'NODE_DATASETS',
    'MissingRawFilesError',
    'load_node_dataset',
    'missing_raw_files',
    'SPLITS',
    'make_split',
    'random_class_split',
    'OGBGraphDataset',
    'ogb_graph_dataset_names',
    'ogb_meta_info',
    'ogb_required_files',
    'resolve_ogb_name',
    'MOLECULENET_CSVS',
    'MoleculeBuildReport',
    'build_ogb_dataset_from_csv',
    'build_ogb_dataset_from_moleculenet',
    'scaffold_split',
    'load_tu_dataset',
    'GINFormatDataset',
    'gin_protocol',
    'inner_val_protocol',
    'inner_split',
    'QM9',
    'TargetStats',
    'qm9_standard_split',
    'target_statistics',
]
