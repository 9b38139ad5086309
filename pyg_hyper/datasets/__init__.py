"""Benchmark datasets, loadable offline, and evaluation protocols."""
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
