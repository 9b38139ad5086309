r"""The text format of the GIN paper's data release (powerful-gnns
``dataset.zip``), with the fixed 10-fold splits it ships (``10fold_idx``,
which IGN's code uses; GIN's own code draws stratified folds with seed 0)."""
import io
import os
import os.path as osp
import zipfile
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import coalesce, degree, to_undirected

from pyg_hyper.datasets.cache import discard_unreadable_cache
from pyg_hyper.datasets.dataset_docs import with_dataset_docs
from pyg_hyper.experiment.results import atomic_torch_save

__all__ = ['GINFormatDataset', 'parse_gin_graphs', 'NUM_FOLDS']

NUM_FOLDS = 10


def parse_gin_graphs(text: str, source: str = '<text>'
                     ) -> List[Tuple[int, List[int], List[List[int]]]]:
    r"""Parses the GIN text format.

    The first line is the number of graphs; every graph starts with a line
    ``n label`` followed by :math:`n` node lines ``tag k nbr_1 ... nbr_k``
    (trailing node attributes, if any, are ignored as in GIN's loader).
    Blank lines are skipped.

    Args:
        text (str): The file's contents.
        source (str, optional): The file's name, for error messages.

    Returns:
        A list of :obj:`(label, tags, neighbor_lists)` per graph.

    Raises:
        ValueError: If the text is not in this format, or holds more or
            fewer graphs than its first line declares; the message names
            :obj:`source` and the line number.
    """
    # (line number in the file, tokens), so that errors point at the file.
    lines = [(number, line.split())
             for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, tokens) for number, tokens in lines if tokens]
    end = len(text.splitlines()) + 1  # where a missing line would be

    def fail(i, why):
        number = lines[i][0] if i < len(lines) else end
        raise ValueError(f"Malformed GIN-format file '{source}' at line "
                         f"{number}: {why} (expected a first line with the "
                         f"number of graphs, then per graph an 'n label' "
                         f"header followed by n lines 'tag k nbr_1 .. "
                         f"nbr_k')")

    def ints(i, tokens, what):
        try:
            return [int(v) for v in tokens]
        except ValueError:
            fail(i, f"expected integers for {what} (got "
                 f"{' '.join(tokens)!r})")

    if not lines:
        fail(0, 'the file is empty')
    if len(lines[0][1]) != 1:
        fail(0, f"the first line must hold the number of graphs only (got "
             f"{' '.join(lines[0][1])!r})")
    num_graphs, = ints(0, lines[0][1], 'the number of graphs')
    if num_graphs < 1:
        fail(0, f'the number of graphs must be positive (got {num_graphs})')
    graphs, i = [], 1
    for g in range(num_graphs):
        if i >= len(lines):
            fail(i, f'the file ends after {g} of the {num_graphs} declared '
                 f'graphs')
        if len(lines[i][1]) != 2:
            fail(i, f"the header of graph {g} (from 0) must be 'n label' "
                 f"(got {' '.join(lines[i][1])!r})")
        n, label = ints(i, lines[i][1], 'a graph header')
        if n < 0:
            fail(i, f'graph {g} (from 0) has a negative number of nodes '
                 f'({n})')
        i += 1
        tags, nbrs = [], []
        for _ in range(n):
            if i >= len(lines):
                fail(i, 'the file ends inside a graph')
            row = lines[i][1]
            if len(row) < 2:
                fail(i, f"a node line needs at least 'tag k' (got "
                     f"{' '.join(row)!r})")
            tag, k = ints(i, row[:2], "a node's tag and degree")
            if k < 0 or len(row) < k + 2:
                fail(i, f'node line lists {len(row) - 2} neighbors, '
                     f'announces {k}')
            nb = ints(i, row[2:k + 2], 'neighbor indices')
            if any(v < 0 or v >= n for v in nb):
                fail(i, f'neighbor index out of range for a graph of {n} '
                     f'nodes')
            tags.append(tag)
            nbrs.append(nb)
            i += 1
        graphs.append((label, tags, nbrs))
    if i < len(lines):
        fail(i, f'the file declares {num_graphs} graph(s), but more lines '
             f'follow the last of them')
    return graphs


#: The datasets of the GIN paper's collection (powerful-gnns dataset.zip).
GIN_DATASETS = ('COLLAB', 'IMDBBINARY', 'IMDBMULTI', 'MUTAG', 'NCI1',
                'PROTEINS', 'PTC', 'REDDITBINARY', 'REDDITMULTI5K')


def _datasets_in(root: str) -> str:
    """The GIN-format datasets a root holds, as zips or unpacked folders."""
    if not osp.isdir(root):
        return ''
    names = set()
    for entry in os.listdir(root):
        path = osp.join(root, entry)
        if entry.endswith('.zip') and osp.isfile(path):
            names.add(entry[:-len('.zip')])
        elif osp.isfile(osp.join(path, f'{entry}.txt')):
            names.add(entry)
    return ', '.join(sorted(names))


@with_dataset_docs
class GINFormatDataset(InMemoryDataset):
    r"""A graph-classification dataset in the text format of the `"How
    Powerful are Graph Neural Networks?" <https://arxiv.org/abs/1810.00826>`_
    data release, with the published 10-fold splits.

    :obj:`root` must hold :obj:`<name>.zip` (as released, e.g.
    ``shared/data/GIN_format/MUTAG.zip``; macOS ``__MACOSX``/``.DS_Store``
    entries are ignored) or the extracted folder
    :obj:`<name>/<name>.txt` with :obj:`<name>/10fold_idx/`. Processed files
    are written to :obj:`<root>/<name>/gin_processed`, so copy read-only data
    first.

    As in GIN's loader, graph labels and node tags are mapped to
    :obj:`0..C-1` in sorted order, node features are the one-hot tags (or
    one-hot degrees with :obj:`degree_as_tag=True`, GIN's choice for the
    social datasets), and edges are made undirected.

    The published test folds are disjoint and each split's training part is
    the complement of its test part, but a test fold holds
    :math:`\lfloor N/10 \rfloor` graphs, so up to 9 graphs are never tested
    (e.g. 8 of MUTAG's 188). They are used as given.

    Args:
        root (str): Folder with the raw data.
        name (str): Dataset name, e.g. :obj:`"MUTAG"`, :obj:`"PTC"`,
            :obj:`"PROTEINS"`, :obj:`"NCI1"`, :obj:`"IMDBBINARY"`.
        degree_as_tag (bool, optional): Use node degrees as tags.
            (default: :obj:`False`)
        {IN_MEMORY_DATASET_ARGS}
    """
    def __init__(self, root: str, name: str, degree_as_tag: bool = False,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None,
                 force_reload: bool = False):
        self.name = name
        self.degree_as_tag = degree_as_tag
        discard_unreadable_cache(
            self._processed_dir(osp.expanduser(str(root))),
            f"GIN-format dataset '{name}'")
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload)
        self.load(self.processed_paths[0])
        self._folds = torch.load(self.processed_paths[1], weights_only=True)

    @property
    def raw_dir(self) -> str:
        return self.root

    @property
    def processed_dir(self) -> str:
        return self._processed_dir(self.root)

    def _processed_dir(self, root: str) -> str:
        suffix = '_degree' if self.degree_as_tag else ''
        return osp.join(root, self.name, f'gin_processed{suffix}')

    @property
    def raw_file_names(self) -> List[str]:
        folder = osp.join(self.name, f'{self.name}.txt')
        if osp.isfile(osp.join(self.root, folder)):
            return [folder]
        return [f'{self.name}.zip']

    @property
    def processed_file_names(self) -> List[str]:
        return ['data.pt', 'folds.pt']

    def download(self):
        raise FileNotFoundError(
            f"GINFormatDataset found no raw data for '{self.name}' in "
            f"'{self.root}': expected '{self.name}.zip' or "
            f"'{self.name}/{self.name}.txt' with '{self.name}/10fold_idx/' "
            f"(from the powerful-gnns dataset.zip); nothing is downloaded. "
            f"Datasets in that root: {_datasets_in(self.root) or 'none'} "
            f"(the GIN collection: {', '.join(GIN_DATASETS)})")

    def _read_raw(self) -> Tuple[Dict[str, str], str]:
        """Returns the member files of the dataset folder by relative path
        (``<name>.txt``, ``10fold_idx/test_idx-1.txt``, ...), and where that
        folder was read from (for error messages)."""
        prefix = f'{self.name}/'
        files: Dict[str, str] = {}
        zip_path = osp.join(self.root, f'{self.name}.zip')
        folder = osp.join(self.root, self.name)
        if osp.isfile(osp.join(folder, f'{self.name}.txt')):
            for dirpath, _, names in os.walk(folder):
                for fname in names:
                    if fname.endswith('.txt'):
                        path = osp.join(dirpath, fname)
                        with open(path) as f:
                            files[osp.relpath(path, folder)] = f.read()
            return files, folder
        with zipfile.ZipFile(zip_path) as zf:
            for member in zf.namelist():
                # Skip macOS metadata left behind by a re-zip.
                if (member.startswith('__MACOSX') or member.endswith('/')
                        or osp.basename(member).startswith('.')
                        or not member.startswith(prefix)):
                    continue
                with zf.open(member) as f:
                    files[member[len(prefix):]] = io.TextIOWrapper(
                        f, encoding='utf-8').read()
        return files, f'{zip_path}:{self.name}'

    def process(self):
        files, origin = self._read_raw()
        if f'{self.name}.txt' not in files:
            raise FileNotFoundError(f"'{self.name}.txt' is missing from the "
                                    f"raw data of '{self.name}'")
        graphs = parse_gin_graphs(files[f'{self.name}.txt'],
                                  source=f'{origin}/{self.name}.txt')
        labels = sorted({g[0] for g in graphs})
        label_index = {v: i for i, v in enumerate(labels)}

        edge_indices, all_tags = [], []
        for _, tags, nbrs in graphs:
            src = [i for i, nb in enumerate(nbrs) for _ in nb]
            dst = [j for nb in nbrs for j in nb]
            ei = torch.tensor([src, dst], dtype=torch.long).view(2, -1)
            ei = coalesce(to_undirected(ei, num_nodes=len(tags)),
                          num_nodes=len(tags))
            edge_indices.append(ei)
            if self.degree_as_tag:
                tags = degree(ei[0], len(tags), dtype=torch.long).tolist()
            all_tags.append(tags)
        tag_values = sorted({t for tags in all_tags for t in tags})
        tag_index = {v: i for i, v in enumerate(tag_values)}

        data_list = []
        # Position of each raw graph in the saved list (-1: filtered out),
        # so that the published folds still name the same graphs.
        position = torch.full((len(graphs), ), -1, dtype=torch.long)
        for i, ((label, _, _), tags, ei) in enumerate(
                zip(graphs, all_tags, edge_indices)):
            idx = torch.tensor([tag_index[t] for t in tags])
            x = torch.nn.functional.one_hot(idx, len(tag_values)).float()
            data = Data(x=x, edge_index=ei, num_nodes=len(tags),
                        y=torch.tensor([label_index[label]]))
            if self.pre_filter is not None and not self.pre_filter(data):
                continue
            if self.pre_transform is not None:
                data = self.pre_transform(data)
            position[i] = len(data_list)
            data_list.append(data)
        self.save(data_list, self.processed_paths[0])
        folds = self._read_folds(files, len(graphs))
        # A fold keeps the graphs that pre_filter kept, at their new index.
        folds = {split: [position[idx][position[idx] >= 0] for idx in ks]
                 for split, ks in folds.items()}
        atomic_torch_save(self.processed_paths[1], folds)

    def _read_folds(self, files: Dict[str, str],
                    num_graphs: int) -> Dict[str, List[Tensor]]:
        folds: Dict[str, List[Tensor]] = {'train': [], 'test': []}
        for k in range(1, NUM_FOLDS + 1):
            for split in ('train', 'test'):
                key = osp.join('10fold_idx', f'{split}_idx-{k}.txt')
                if key not in files:
                    raise FileNotFoundError(
                        f"'{self.name}' has no fixed split file '{key}'")
                # An empty fold would otherwise be a float tensor, which
                # cannot index.
                idx = torch.tensor([int(v) for v in files[key].split()],
                                   dtype=torch.long)
                if idx.numel() and (idx.min() < 0 or idx.max() >= num_graphs):
                    raise ValueError(f"'{key}' of '{self.name}' indexes "
                                     f"graphs outside 0..{num_graphs - 1}")
                folds[split].append(idx)
        return folds

    def fold(self, k: int) -> Tuple[Tensor, Tensor]:
        r"""The published split :obj:`k` in :obj:`0..9` (file
        :obj:`k + 1`): :obj:`(train_index, test_index)`, into this dataset
        (graphs a :obj:`pre_filter` dropped are left out of both)."""
        if isinstance(k, bool) or not isinstance(k, int) or \
                not 0 <= k < NUM_FOLDS:
            raise ValueError(f"fold must be in 0..{NUM_FOLDS - 1} (got {k!r})")
        return self._folds['train'][k], self._folds['test'][k]

    def __repr__(self) -> str:
        return f'{self.name}({len(self)})'
