"""Node-classification datasets, loaded through PyG's own classes.

Every dataset lives under one ``root`` in PyG's layout (the layout of
``shared/data`` too)::

    <root>/Planetoid/<Cora|CiteSeer|PubMed>/raw/ind.<name>.*
    <root>/Amazon/<Computers|Photo>/raw/amazon_electronics_<name>.npz
    <root>/WikipediaNetwork/<chameleon|squirrel>/geom_gcn/raw/...

Raw files are checked *before* PyG is asked to load, so a missing file never
turns into a hanging download: it is copied from :obj:`raw_source` (a folder
with the same layout; zipped or gzipped copies are unpacked), taken from the
package (Cora ships with it), downloaded by PyG if the download host answers
within a few seconds, or reported with the list of missing files and where to
put them.
"""
import gzip
import os
import pickle
import shutil
import socket
import zipfile
from dataclasses import dataclass
from typing import IO, Callable, Dict, List, Optional, Tuple

from torch_geometric.data import InMemoryDataset

from pyg_hyper.datasets.cache import load_rebuilding_damaged_cache
from pyg_hyper.experiment.results import atomic_write_stream

__all__ = [
    'MissingRawFilesError',
    'NODE_DATASETS',
    'load_node_dataset',
    'missing_raw_files',
]

_PACKAGE_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             'data')
_PROBE_TIMEOUT_S = 3.0


class MissingRawFilesError(ValueError):
    """Raw files of a dataset are missing and cannot be downloaded, or are
    present but cannot be read (truncated or damaged copies)."""


@dataclass(frozen=True)
class _Spec:
    family: str  # PyG class name
    pyg_name: str  # the name PyG's class expects
    raw_dir: str  # relative to root
    files: Tuple[str, ...]
    host: str  # where PyG downloads from
    #: The published graph's size (PyG's loading, no pre_transform): a raw
    #: text file cut at a line boundary reads without any error.
    num_nodes: int
    num_edges: int

    def build(self, root: str, **kwargs):
        from torch_geometric import datasets
        cls = getattr(datasets, self.family)
        path = os.path.join(root, self.family)
        if self.family == 'WikipediaNetwork':
            kwargs['geom_gcn_preprocess'] = True
        return cls(path, self.pyg_name, **kwargs)


def _planetoid(name: str, num_nodes: int, num_edges: int) -> _Spec:
    low = name.lower()
    files = tuple(f'ind.{low}.{ext}' for ext in
                  ('x', 'tx', 'allx', 'y', 'ty', 'ally', 'graph',
                   'test.index'))
    return _Spec('Planetoid', name, f'Planetoid/{name}/raw', files,
                 'github.com', num_nodes, num_edges)


def _amazon(name: str, num_nodes: int, num_edges: int) -> _Spec:
    return _Spec('Amazon', name, f'Amazon/{name}/raw',
                 (f'amazon_electronics_{name.lower()}.npz', ),
                 'github.com', num_nodes, num_edges)


def _wikipedia(name: str, num_nodes: int, num_edges: int) -> _Spec:
    files = ('out1_node_feature_label.txt', 'out1_graph_edges.txt') + tuple(
        f'{name}_split_0.6_0.2_{i}.npz' for i in range(10))
    return _Spec('WikipediaNetwork', name,
                 f'WikipediaNetwork/{name}/geom_gcn/raw', files,
                 'raw.githubusercontent.com', num_nodes, num_edges)


#: Supported datasets (canonical names; look-up is case-insensitive), with
#: the sizes PyG's classes give them (PyG's dataset table; Chameleon and
#: Squirrel as the Geom-GCN files load).
NODE_DATASETS: Dict[str, _Spec] = {
    'Cora': _planetoid('Cora', 2708, 10556),
    'CiteSeer': _planetoid('CiteSeer', 3327, 9104),
    'PubMed': _planetoid('PubMed', 19717, 88648),
    'Computers': _amazon('Computers', 13752, 491722),
    'Photo': _amazon('Photo', 7650, 238162),
    'Chameleon': _wikipedia('chameleon', 2277, 36101),
    'Squirrel': _wikipedia('squirrel', 5201, 217073),
}

#: Planetoid's public split: 500 validation and 1000 test nodes.
_PLANETOID_EVAL_SIZES = (500, 1000)


def canonical_name(name: str) -> str:
    """Maps a case-insensitive dataset name to its canonical spelling."""
    for key in NODE_DATASETS:
        if key.lower() == str(name).lower():
            return key
    raise ValueError(f"unknown dataset '{name}'; valid datasets: "
                     f"{', '.join(NODE_DATASETS)}")


def missing_raw_files(name: str, root: str) -> List[str]:
    """The raw files of :obj:`name` that are not under :obj:`root`."""
    spec = NODE_DATASETS[canonical_name(name)]
    raw_dir = os.path.join(root, spec.raw_dir)
    return [f for f in spec.files
            if not os.path.isfile(os.path.join(raw_dir, f))]


def _stage(open_source: Callable[[], IO[bytes]], dst: str) -> None:
    """Copies one raw file atomically: an interrupted copy must not leave a
    partial file that the next run takes as present."""
    def copy(out: IO[bytes]) -> None:
        with open_source() as f:
            shutil.copyfileobj(f, out)
    atomic_write_stream(dst, copy)


def _fill_from(source_dir: str, raw_dir: str, missing: List[str]) -> None:
    """Copies missing files from :obj:`source_dir`, unpacking ``.gz`` copies
    and zips that contain them. A damaged copy there is an error that names
    it (never a partial file here)."""
    if not os.path.isdir(source_dir):
        return
    os.makedirs(raw_dir, exist_ok=True)
    for name in missing:
        src = os.path.join(source_dir, name)
        dst = os.path.join(raw_dir, name)
        if os.path.isfile(src):
            _stage_readable(src, lambda: open(src, 'rb'), dst)
        elif os.path.isfile(src + '.gz'):
            _stage_readable(src + '.gz', lambda: gzip.open(src + '.gz', 'rb'),
                            dst)
    left = [n for n in missing if not os.path.isfile(os.path.join(raw_dir, n))]
    for entry in sorted(os.listdir(source_dir)) if left else []:
        if not entry.endswith('.zip'):
            continue
        archive = os.path.join(source_dir, entry)
        try:
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    dst = os.path.join(raw_dir, os.path.basename(member))
                    if (os.path.basename(member) in left
                            and not os.path.isfile(dst)):
                        _stage(lambda: z.open(member), dst)
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise _damaged_source(archive, e) from e


def _stage_readable(src: str, open_source: Callable[[], IO[bytes]],
                    dst: str) -> None:
    try:
        _stage(open_source, dst)
    except (OSError, EOFError) as e:
        raise _damaged_source(src, e) from e


def _damaged_source(path: str, e: BaseException) -> 'MissingRawFilesError':
    return MissingRawFilesError(
        f"raw file '{path}' cannot be read ({type(e).__name__}: {e}); "
        f"replace it with a good copy (the published file, in PyG's layout) "
        f"or remove it")


def _unreadable(path: str) -> Optional[str]:
    """Why the raw file :obj:`path` cannot be what PyG reads, or
    :obj:`None`. Called only once PyG's read has failed, whose error names
    no file: Planetoid's pickles and the ``.npz`` archives are read in full
    (as PyG reads them); text files, which PyG parses line by line, are
    taken as cut off when they do not end with a newline."""
    try:
        if path.endswith('.npz'):
            import numpy as np
            with np.load(path) as archive:
                for key in archive.files:  # decompresses, checks the CRC
                    archive[key]
        elif path.endswith(('.txt', '.index')):
            with open(path, 'rb') as f:
                f.seek(0, os.SEEK_END)
                if f.tell() == 0:
                    return 'the file is empty'
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b'\n':
                    return 'the last line is cut off'
        else:
            with open(path, 'rb') as f:
                pickle.load(f, encoding='latin1')
    except Exception as e:  # noqa: BLE001 - any failure to read the file
        return f'{type(e).__name__}: {e}'
    return None


def _supply_advice(spec: _Spec, download: bool = True) -> str:
    """Where good raw files come from; ends the messages of both errors."""
    online = ('connect to the internet' if download else
              'allow downloading (download=True) with the internet')
    return (f"that folder (PyG's {spec.family} layout: "
            f"<root>/{spec.raw_dir}/), pass a folder with that layout as "
            f"raw_source (data.raw_source=...), or {online}")


def _host_reachable(host: str) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def load_node_dataset(name: str, root: str = 'data',
                      raw_source: Optional[str] = None,
                      download: bool = True,
                      transform: Optional[Callable] = None,
                      pre_transform: Optional[Callable] = None,
                      force_reload: bool = False
                      ) -> InMemoryDataset:
    r"""Loads a node-classification dataset with PyG's class for it.

    Args:
        name (str): One of
            :data:`~pyg_hyper.datasets.node_classification.NODE_DATASETS`
            (case-insensitive):
            Cora, CiteSeer, PubMed (:class:`~torch_geometric.datasets.Planetoid`),
            Computers, Photo (:class:`~torch_geometric.datasets.Amazon`),
            Chameleon, Squirrel
            (:class:`~torch_geometric.datasets.WikipediaNetwork`, Geom-GCN
            version with its 10 splits).
        root (str, optional): Writable folder holding the datasets in PyG's
            layout (see the module docs). (default: :obj:`"data"`)
        raw_source (str, optional): A folder with the same layout to copy
            missing raw files from (e.g. a read-only shared copy); ``.gz``
            and ``.zip`` copies there are unpacked. (default: :obj:`None`)
        download (bool, optional): Let PyG download missing files when the
            download host is reachable. (default: :obj:`True`)
        transform (callable, optional): PyG transform applied on access.
            (default: :obj:`None`)
        pre_transform (callable, optional): PyG transform applied once,
            before the processed file is saved. (default: :obj:`None`)
        force_reload (bool, optional): Re-process the raw files, as PyG's
            classes do. (default: :obj:`False`)

    Raises:
        ValueError: For an unknown name (listing the valid ones).
        MissingRawFilesError: When raw files are missing and cannot be
            obtained, or PyG cannot read one that is present (e.g. a
            truncated copy); the message names them and where to put good
            copies.
    """
    key = canonical_name(name)
    spec = NODE_DATASETS[key]
    # As PyG's classes do: they would not find '~/data' as typed.
    root = os.path.expanduser(str(root))
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise ValueError(f"data root '{root}' cannot be created "
                         f"({e.strerror or e}); pass a writable folder "
                         f"(data.root=...)") from None
    raw_dir = os.path.join(root, spec.raw_dir)
    missing = missing_raw_files(key, root)
    if missing and raw_source:
        if not os.path.isdir(raw_source):
            raise MissingRawFilesError(
                f"dataset '{key}' is missing raw files in "
                f"'{os.path.abspath(raw_dir)}' and raw_source "
                f"'{raw_source}' is not a folder (data.raw_source=...)")
        _fill_from(os.path.join(raw_source, spec.raw_dir), raw_dir, missing)
        missing = missing_raw_files(key, root)
    if missing:
        _fill_from(os.path.join(_PACKAGE_DATA, spec.raw_dir), raw_dir,
                   missing)
        missing = missing_raw_files(key, root)
    if missing and not (download and _host_reachable(spec.host)):
        why = ('downloading is disabled' if not download else
               f'{spec.host} is not reachable')
        raise MissingRawFilesError(
            f"dataset '{key}' is missing raw files in "
            f"'{os.path.abspath(raw_dir)}': {', '.join(missing)} "
            f"({why}). Put these files in {_supply_advice(spec, download)}"
            + (f"; raw_source '{raw_source}' lacks them too" if raw_source
               else ''))
    try:
        dataset = load_rebuilding_damaged_cache(
            lambda: spec.build(root, transform=transform,
                               pre_transform=pre_transform,
                               force_reload=force_reload),
            os.path.join(os.path.dirname(raw_dir), 'processed'),
            f"dataset '{key}'")
    except Exception as e:
        bad = {}
        for f in spec.files:
            why = _unreadable(os.path.join(raw_dir, f))
            if why is not None:
                bad[f] = why
        if not bad:  # not the raw files' fault (or not detectable)
            raise
        raise MissingRawFilesError(
            f"dataset '{key}' has raw files in "
            f"'{os.path.abspath(raw_dir)}' that look truncated or corrupt: "
            + ', '.join(f'{f} ({why})' for f, why in bad.items())
            + f". PyG could not read them ({type(e).__name__}). Delete "
            f"them, then put good copies in {_supply_advice(spec)}") from e
    if pre_transform is None:
        _check_published_size(key, spec, dataset, raw_dir)
    return dataset


def _check_published_size(key: str, spec: _Spec, dataset: InMemoryDataset,
                          raw_dir: str) -> None:
    """Refuses a graph that is not the published one: raw text files cut
    at a line boundary, or a shortened Planetoid test index, read without
    any error and give a smaller graph or split."""
    data = dataset.get(0)  # before any transform
    found = (data.num_nodes, data.edge_index.size(1))
    problems = []
    if found != (spec.num_nodes, spec.num_edges):
        problems.append(f"{found[0]:,} nodes and {found[1]:,} edges, where "
                        f"the published graph has {spec.num_nodes:,} and "
                        f"{spec.num_edges:,}")
    if spec.family == 'Planetoid':
        sizes = (int(data.val_mask.sum()), int(data.test_mask.sum()))
        if sizes != _PLANETOID_EVAL_SIZES:
            problems.append(f"a public split of {sizes[0]} validation and "
                            f"{sizes[1]} test nodes, where it has "
                            f"{_PLANETOID_EVAL_SIZES[0]} and "
                            f"{_PLANETOID_EVAL_SIZES[1]}")
    if problems:
        raise MissingRawFilesError(
            f"dataset '{key}' read from '{os.path.abspath(raw_dir)}' has "
            + '; '.join(problems) + ": a raw file is probably cut short. "
            f"Delete that folder and its 'processed' sibling, then put "
            f"good copies in {_supply_advice(spec)}")
