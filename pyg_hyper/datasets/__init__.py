"""Benchmark datasets, loadable offline."""
from .ogb import (OGBGraphDataset, ogb_graph_dataset_names, ogb_meta_info,
                  ogb_required_files, resolve_ogb_name)
from .moleculenet import (MOLECULENET_CSVS, MoleculeBuildReport,
                          build_ogb_dataset_from_csv,
                          build_ogb_dataset_from_moleculenet, scaffold_split)

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
]
