r"""Offline-capable loading of the OGB graph property prediction datasets.

:class:`OGBGraphDataset` is :class:`ogb.graphproppred.PygGraphPropPredDataset`
with the two failures of ogb 1.3.6 handled:

* Under :obj:`torch>=2.6`, :func:`torch.load` defaults to
  :obj:`weights_only=True`, and ogb's bare :func:`torch.load` of its processed
  file raises :class:`pickle.UnpicklingError`
  (`snap-stanford/ogb#497 <https://github.com/snap-stanford/ogb/issues/497>`_).
  The load runs under :func:`torch.serialization.safe_globals` with PyG's data
  classes allow-listed, which keeps the safe loader.
* If a dataset folder exists without :obj:`RELEASE_v<version>.txt`, ogb asks
  on stdin whether to delete and re-download it, which hangs non-interactive
  runs. The release file is written before ogb looks for it.

A dataset folder that exists but lacks files is never handed to ogb (whose
download would delete the folder first); the error lists what is missing.
A folder that does not exist is downloaded from OGB's server, as ogb does.
A processed file that cannot be read (truncated or damaged) is rebuilt from
the raw files, with a warning that names it.
"""
import gzip
import os
import os.path as osp
import pickle
import shutil
import warnings
import zipfile
from typing import Callable, Dict, List, Optional

import pandas as pd
import torch

from pyg_hyper.experiment.results import atomic_write_text

__all__ = [
    'OGBGraphDataset',
    'ogb_graph_dataset_names',
    'resolve_ogb_name',
    'ogb_meta_info',
    'ogb_required_files',
]


def _master() -> pd.DataFrame:
    import ogb.graphproppred
    path = osp.join(osp.dirname(ogb.graphproppred.__file__), 'master.csv')
    return pd.read_csv(path, index_col=0, keep_default_na=False)


def ogb_graph_dataset_names() -> List[str]:
    r"""The names of all OGB graph property prediction datasets known to the
    installed ogb package (e.g. :obj:`"ogbg-molhiv"`)."""
    return sorted(_master().columns)


def resolve_ogb_name(name: str) -> str:
    r"""Returns the canonical OGB name for :obj:`name`, accepting
    :obj:`"ogbg-molhiv"`, :obj:`"molhiv"` and the folder form
    :obj:`"ogbg_molhiv"`.

    Raises:
        ValueError: If the name is unknown; the message lists valid names.
    """
    valid = ogb_graph_dataset_names()
    key = str(name).strip().lower().replace('_', '-')
    if not key.startswith('ogbg-'):
        key = 'ogbg-' + key
    if key not in valid:
        raise ValueError(f"Unknown OGB graph dataset '{name}'. Valid names "
                         f"are: {', '.join(valid)}")
    return key


def ogb_meta_info(name: str) -> Dict[str, str]:
    r"""OGB's meta information (tasks, metric, task type, split, version,
    ...) for the dataset :obj:`name`."""
    return dict(_master()[resolve_ogb_name(name)])


def ogb_required_files(name: str) -> List[str]:
    r"""The files, relative to the dataset folder, that loading
    :obj:`name` and its official split reads."""
    meta = ogb_meta_info(name)
    if meta['binary'] == 'True':
        files = ['raw/data.npz', 'raw/graph-label.npz']
    else:
        files = ['raw/edge.csv.gz', 'raw/num-node-list.csv.gz',
                 'raw/num-edge-list.csv.gz', 'raw/graph-label.csv.gz']
        if meta['has_node_attr'] == 'True':
            files.append('raw/node-feat.csv.gz')
        if meta['has_edge_attr'] == 'True':
            files.append('raw/edge-feat.csv.gz')
    files += [f"split/{meta['split']}/{part}.csv.gz"
              for part in ('train', 'valid', 'test')]
    return files


def _safe_globals():
    # The classes that a pickled ``(Data, slices)`` tuple refers to; with
    # them allow-listed, torch.load stays in its safe ``weights_only`` mode.
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage
    return torch.serialization.safe_globals(
        [DataEdgeAttr, DataTensorAttr, GlobalStorage])


def _read_split_part(path: str) -> torch.Tensor:
    # ogb reads each part with pandas, which refuses an empty file.
    with gzip.open(path, 'rt') as f:
        return torch.tensor([int(v) for v in f.read().split()],
                            dtype=torch.long)


def _dataset_folder(root: str, name: str) -> str:
    dir_name = name.replace('-', '_')
    # ogb prefers a folder with the ``_pyg`` suffix when one exists.
    if osp.exists(osp.join(root, dir_name + '_pyg')):
        dir_name += '_pyg'
    return osp.join(root, dir_name)


def _missing(folder: str, name: str) -> List[str]:
    return [f for f in ogb_required_files(name)
            if not osp.isfile(osp.join(folder, f))]


def _write_release_file(folder: str, version: str) -> None:
    path = osp.join(folder, f'RELEASE_v{version}.txt')
    if osp.exists(path):
        return
    atomic_write_text(path, f'# Release note\n\nv{version}: written by '
                      f'pyg_hyper so that ogb does not prompt on stdin.\n')


def _import_ogb_dataset():
    from ogb.graphproppred import PygGraphPropPredDataset
    return PygGraphPropPredDataset


class OGBGraphDataset(_import_ogb_dataset()):
    r"""An OGB graph property prediction dataset (`"Open Graph Benchmark"
    <https://arxiv.org/abs/2005.00687>`_), loaded offline from a root in OGB's
    raw layout or downloaded as ogb does.

    The layout under :obj:`root` is OGB's (for :obj:`"ogbg-molhiv"`)::

        root/ogbg_molhiv/raw/{edge,edge-feat,node-feat,graph-label,
                              num-node-list,num-edge-list}.csv.gz
        root/ogbg_molhiv/split/scaffold/{train,valid,test}.csv.gz

    :func:`~pyg_hyper.datasets.build_ogb_dataset_from_csv` writes this layout
    from a MoleculeNet CSV.

    Args:
        root (str): Folder that holds (or will hold) the dataset folder.
        name (str): Dataset name, e.g. :obj:`"ogbg-molhiv"` or
            :obj:`"molhiv"`.
        transform (callable, optional): PyG transform applied on access.
            (default: :obj:`None`)
        pre_transform (callable, optional): PyG transform applied before
            saving. (default: :obj:`None`)
        download (bool, optional): If the dataset folder is absent, download
            it from OGB's server. (default: :obj:`True`)

    Raises:
        ValueError: If :obj:`name` is unknown (the message lists valid names).
        FileNotFoundError: If the dataset folder exists but lacks needed files
            (the message lists them), or is absent and :obj:`download=False`.
    """
    def __init__(self, root: str, name: str,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 download: bool = True):
        name = resolve_ogb_name(name)
        meta = ogb_meta_info(name)
        root = osp.expanduser(str(root))
        folder = _dataset_folder(root, name)
        existed = osp.isdir(folder)
        if existed:
            missing = _missing(folder, name)
            if missing:
                raise FileNotFoundError(
                    f"The dataset folder '{folder}' for '{name}' lacks "
                    f"needed files: {', '.join(missing)}. Complete it (OGB's "
                    f"raw layout), or remove the folder to download it"
                    f"{'' if download else ' (download=True, online)'}.")
            _write_release_file(folder, meta['version'])
        elif not download:
            raise FileNotFoundError(
                f"No dataset folder '{folder}' for '{name}' and "
                f"download=False. Expected these files in it: "
                f"{', '.join(ogb_required_files(name))}")
        try:
            self._init_ogb(folder, name, root, transform, pre_transform)
        except OSError as e:
            if existed:
                raise
            # Only our own, empty, folder is removed: a failed download must
            # not turn into a 'lacks needed files' error on the next run.
            if osp.isdir(folder) and not any(
                    files for _, _, files in os.walk(folder)):
                shutil.rmtree(folder)
            raise RuntimeError(
                f"Could not download '{name}' from {meta['url']} ({e}). To "
                f"work offline, place these files in '{folder}': "
                f"{', '.join(ogb_required_files(name))}") from e

    def _init_ogb(self, folder: str, name: str, root: str,
                  transform: Optional[Callable],
                  pre_transform: Optional[Callable]) -> None:
        # ogb loads its processed file with a bare torch.load, which fails
        # on a truncated or damaged file (interrupted save, full disk) with
        # a miniz, EOF, OS or pickle error that names no file. The file is
        # only a cache of the raw files, so it is rebuilt once; a second
        # failure is not the cache's and propagates.
        # ogb's processed_file_names is a constant, readable before __init__.
        processed = osp.join(folder, 'processed', self.processed_file_names)
        had_cache = osp.isfile(processed)
        try:
            with _safe_globals():
                super().__init__(name, root, transform, pre_transform)
            return
        except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError,
                zipfile.BadZipFile) as e:  # what torch.load raises on a
            # damaged file; a permission or memory error is not the cache's
            if not had_cache:
                raise
            warnings.warn(f"OGB processed file '{processed}' could not be "
                          f"read ({type(e).__name__}: {e}); it looks "
                          f"truncated or corrupt and is rebuilt from the "
                          f"raw files", stacklevel=3)
        os.remove(processed)
        with _safe_globals():
            super().__init__(name, root, transform, pre_transform)

    def get_idx_split(self, split_type: Optional[str] = None
                      ) -> Dict[str, torch.Tensor]:
        r"""The official split as :obj:`{'train', 'valid', 'test'}` index
        tensors."""
        with _safe_globals():
            try:
                return super().get_idx_split(split_type)
            except pd.errors.EmptyDataError:
                pass  # an empty part (a tiny set built from a CSV)
        folder = osp.join(self.root, 'split',
                          split_type or self.meta_info['split'])
        return {part: _read_split_part(osp.join(folder, f'{part}.csv.gz'))
                for part in ('train', 'valid', 'test')}

    @property
    def evaluator(self):
        r"""The official :class:`ogb.graphproppred.Evaluator` of this
        dataset; every reported metric comes from it."""
        from ogb.graphproppred import Evaluator
        return Evaluator(self.name)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.name}, {len(self)})'
