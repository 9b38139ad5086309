r"""PyG's :class:`~torch_geometric.datasets.TUDataset`, offline."""
import os.path as osp
from typing import Any, List

from torch_geometric.datasets import TUDataset

__all__ = ['REQUIRED_TU_FILES', 'load_tu_dataset']

#: Raw files every graph-classification TU dataset needs; node and edge
#: labels and attributes are optional.
REQUIRED_TU_FILES = ('A', 'graph_indicator', 'graph_labels')


def load_tu_dataset(root: str, name: str, **kwargs: Any) -> TUDataset:
    r"""Loads :obj:`<root>/<name>/raw/<name>_*.txt` with PyG's
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
    raw_dir = osp.join(root, name, 'raw')
    missing: List[str] = [
        f'{name}_{part}.txt' for part in REQUIRED_TU_FILES
        if not osp.isfile(osp.join(raw_dir, f'{name}_{part}.txt'))
    ]
    if missing:
        raise FileNotFoundError(
            f"TU dataset '{name}' is missing raw files in '{raw_dir}': "
            f"{', '.join(missing)} (nothing is downloaded; copy the TU "
            f"Dortmund files there)")
    return TUDataset(root, name, **kwargs)
