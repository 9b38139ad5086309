r"""PyG's :class:`~torch_geometric.datasets.TUDataset`, offline."""
import os.path as osp
from typing import Any, List

import numpy as np
from torch_geometric.datasets import TUDataset

from pyg_hyper.datasets.cache import load_rebuilding_damaged_cache

__all__ = ['REQUIRED_TU_FILES', 'load_tu_dataset']

#: Raw files every graph-classification TU dataset needs; node and edge
#: labels and attributes are optional.
REQUIRED_TU_FILES = ('A', 'graph_indicator', 'graph_labels')


def load_tu_dataset(root: str, name: str, **kwargs: Any) -> TUDataset:
    r"""Loads :obj:`<root>/<name>/raw/<name>_*.txt` (:obj:`raw_cleaned/`
    with :obj:`cleaned=True`) with PyG's
    :class:`~torch_geometric.datasets.TUDataset` without ever downloading.

    PyG downloads whatever raw file is missing; here a missing file raises a
    :class:`FileNotFoundError` that lists what is missing instead. PyG
    writes :obj:`processed/` next to :obj:`raw/`, so copy read-only data
    first.

    Args:
        root (str): Folder holding :obj:`<name>/raw/`.
        name (str): Dataset name, e.g. :obj:`"MUTAG"`, :obj:`"PTC_MR"`.
        **kwargs (optional): Further arguments of
            :class:`~torch_geometric.datasets.TUDataset`.
    """
    root = osp.expanduser(str(root))
    raw_dir = _tu_dir(root, name, 'raw', kwargs.get('cleaned', False))
    missing: List[str] = [
        f'{name}_{part}.txt' for part in REQUIRED_TU_FILES
        if not osp.isfile(osp.join(raw_dir, f'{name}_{part}.txt'))
    ]
    if missing:
        raise FileNotFoundError(
            f"TU dataset '{name}' is missing raw files in '{raw_dir}': "
            f"{', '.join(missing)} (nothing is downloaded; copy the TU "
            f"Dortmund files there)")
    processed_dir = _tu_dir(root, name, 'processed',
                            kwargs.get('cleaned', False))
    if kwargs.get('force_reload', False) or not osp.isdir(processed_dir):
        # PyG's reader accepts inconsistent files and fails later, when a
        # graph is indexed; checked once, before processing.
        _check_consistent(raw_dir, name)
    return load_rebuilding_damaged_cache(
        lambda: TUDataset(root, name, **kwargs), processed_dir,
        f"TU dataset '{name}'")


def _tu_dir(root: str, name: str, kind: str, cleaned: bool) -> str:
    """The folder PyG's :class:`TUDataset` reads (:obj:`kind="raw"`) or
    writes (:obj:`"processed"`): the cleaned version, which PyG downloads
    separately, lives in :obj:`<kind>_cleaned/`."""
    return osp.join(root, name, f'{kind}_cleaned' if cleaned else kind)


def _read_ints(path: str) -> np.ndarray:
    with open(path) as f:
        text = f.read().replace(',', ' ')
    return np.array(text.split(), dtype=np.int64)


def _check_consistent(raw_dir: str, name: str) -> None:
    indicator = _read_ints(osp.join(raw_dir, f'{name}_graph_indicator.txt'))
    num_nodes = indicator.size
    num_graphs = int(indicator.max()) if num_nodes else 0
    labels_path = osp.join(raw_dir, f'{name}_graph_labels.txt')
    with open(labels_path) as f:
        num_labels = sum(1 for line in f if line.strip())
    problems = []
    if num_labels != num_graphs:
        problems.append(f'{osp.basename(labels_path)} has {num_labels} '
                        f'labels for the {num_graphs} graphs of '
                        f'{name}_graph_indicator.txt')
    edges = _read_ints(osp.join(raw_dir, f'{name}_A.txt'))
    if edges.size % 2:
        problems.append(f'{name}_A.txt does not hold pairs of node indices')
    elif edges.size and (edges.min() < 1 or edges.max() > num_nodes):
        problems.append(f'{name}_A.txt has node indices from {edges.min()} '
                        f'to {edges.max()}, expected 1 to {num_nodes} (one '
                        f'per line of {name}_graph_indicator.txt)')
    if problems:
        raise ValueError(f"TU dataset '{name}' has inconsistent raw files in "
                         f"'{raw_dir}': {'; '.join(problems)}")
