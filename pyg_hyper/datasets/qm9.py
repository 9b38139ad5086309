r"""QM9 built offline, as :class:`torch_geometric.datasets.QM9` builds it.

Two raw sources are understood:

* the PyPI package ``qm9pack`` (``pip install qm9pack``, or the ``qm9`` extra),
  whose CSVs ship all 130,831 molecules with SMILES, XYZ coordinates in Å and
  every property in Hartree, debye, bohr³, GHz and cal/(mol K);
* PyG's own raw files (``gdb9.sdf``, ``gdb9.sdf.csv``, ``uncharacterized.txt``)
  when a user already has them in ``root/raw``.

Both give graphs with PyG's attributes, target order and units, and the
same graphs as each other. Against PyG's own processing of its raw files
they differ in the perceived chemistry only (tested against
:class:`torch_geometric.datasets.QM9`): PyG reads ``gdb9.sdf`` unsanitized,
so its bonds are Kekule single/double and its aromatic and hybridization
columns (``x[:, 6:10]``) are zero for every atom
(pyg-team/pytorch_geometric#2163); here RDKit perceives aromaticity and
hybridization, so aromatic rings have ``AROMATIC`` bonds and those columns
are set. ``z``, ``pos``, ``edge_index``, ``y``, ``idx``, ``name`` and the
other ``x`` columns are identical.
"""
import hashlib
import importlib.util
import json
import multiprocessing
import os
import os.path as osp
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.io import fs

from pyg_hyper.datasets.cache import discard_unreadable_cache
from pyg_hyper.datasets.dataset_docs import with_dataset_docs
from pyg_hyper.experiment.results import atomic_write_json
from pyg_hyper.utils.checks import (
    check_non_negative_int,
    check_positive_int,
    first_few,
)
from pyg_hyper.datasets.qm9_molecule import (
    BOND_TYPES,
    STATUS_CODES,
    featurize,
    process_rows,
)

__all__ = [
    'QM9',
    'TargetStats',
    'HARTREE_TO_EV',
    'KCALMOL_TO_EV',
    'QM9_TARGETS',
    'NUM_QM9_MOLECULES',
    'qm9_standard_split',
    'target_statistics',
]

#: Hartree in eV (CODATA 2018), the factor PyG applies.
HARTREE_TO_EV = 27.211386246
#: kcal/mol in eV, the factor PyG applies to the atomization energies of
#: ``gdb9.sdf.csv``.
KCALMOL_TO_EV = 0.04336414
NUM_QM9_MOLECULES = 130831

#: ``(name, unit)`` of the 19 targets, in PyG's order.
QM9_TARGETS = (
    ('mu', 'D'), ('alpha', 'a0^3'), ('homo', 'eV'), ('lumo', 'eV'),
    ('gap', 'eV'), ('r2', 'a0^2'), ('zpve', 'eV'), ('U0', 'eV'), ('U', 'eV'),
    ('H', 'eV'), ('G', 'eV'), ('cv', 'cal/(mol K)'), ('U0_atom', 'eV'),
    ('U_atom', 'eV'), ('H_atom', 'eV'), ('G_atom', 'eV'), ('A', 'GHz'),
    ('B', 'GHz'), ('C', 'GHz'),
)

# Energies of the free atoms H, C, N, O, F (B3LYP/6-31G(2df,p), Hartree) for
# U0, U, H and G: the reference of the atomization energies (targets 12-15)
# and the per-element atomrefs of targets 7-10. Values of the QM9 paper's
# atomref table (Ramakrishnan et al., Sci. Data 2014); PyG's ``atomrefs`` are
# the same numbers in eV.
_ATOM_ENERGY_HARTREE = {
    1: (-0.500273, -0.498857, -0.497912, -0.510927),
    6: (-37.846772, -37.845355, -37.844411, -37.861317),
    7: (-54.583861, -54.582445, -54.581501, -54.598897),
    8: (-75.064579, -75.063162, -75.062219, -75.079532),
    9: (-99.718730, -99.717314, -99.716370, -99.733544),
}

# qm9pack columns, in PyG's target order (12-15 are derived, see below).
_QM9PACK_COLUMNS = (
    ('Dipole_debye', 1.), ('Polarizability_bohr3', 1.),
    ('HOMO_au', HARTREE_TO_EV), ('LUMO_au', HARTREE_TO_EV),
    ('HOMO_LUMO_gap_au', HARTREE_TO_EV), ('R2_bohr2', 1.),
    ('ZPVE_au', HARTREE_TO_EV), ('InternalEnergy_0K_au', HARTREE_TO_EV),
    ('InternalEnergy_298K_au', HARTREE_TO_EV),
    ('Enthalphy_298K_au', HARTREE_TO_EV),
    ('GibbsFreeEnergy_298K_au', HARTREE_TO_EV),
    ('Heatcapacity_Cv_cal_mol_K', 1.),
)
_QM9PACK_ROT = ('RotA_GHz', 'RotB_GHz', 'RotC_GHz')
_QM9PACK_FILES = ('qm9_part1.csv', 'qm9_part2.csv', 'qm9_part3.csv')
_PYG_RAW_FILES = ('gdb9.sdf', 'gdb9.sdf.csv', 'uncharacterized.txt')

_FORMAT_VERSION = 1


def atom_energy_table(unit: str = 'eV') -> Tensor:
    """Free-atom energies as a ``[10, 4]`` table indexed by atomic number
    (columns U0, U, H, G), in :obj:`unit` ``'eV'`` (default) or
    ``'Hartree'``."""
    scale = {'eV': HARTREE_TO_EV, 'Hartree': 1.}.get(unit)
    if scale is None:
        raise ValueError(f"Unknown unit '{unit}' (expected 'eV' or "
                         f"'Hartree')")
    table = torch.zeros(10, 4, dtype=torch.float64)
    for z, energies in _ATOM_ENERGY_HARTREE.items():
        table[z] = torch.tensor(energies, dtype=torch.float64)
    return table * scale


def find_qm9pack_data() -> Optional[str]:
    """The folder of qm9pack's CSVs, found without importing qm9pack (its
    ``__init__`` needs the removed ``pkg_resources``)."""
    spec = importlib.util.find_spec('qm9pack')
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = osp.join(location, 'data')
        if all(osp.exists(osp.join(folder, f)) for f in _QM9PACK_FILES):
            return folder
    return None


def qm9_standard_split(num_molecules: int = NUM_QM9_MOLECULES,
                       train_size: int = 110000, valid_size: int = 10000,
                       seed: int = 42) -> Dict[str, Tensor]:
    r"""The standard QM9 split of DimeNet and DIG:
    ``numpy.random.RandomState(42).permutation(130831)`` cut into 110,000
    training, 10,000 validation and 10,831 test molecules.

    Returns:
        dict: ``{'train', 'valid', 'test'}`` index tensors.
    """
    check_positive_int('qm9_standard_split', num_molecules=num_molecules,
                       train_size=train_size)
    check_non_negative_int('qm9_standard_split', valid_size=valid_size)
    if train_size + valid_size > num_molecules:
        raise ValueError(f"Split sizes {train_size} + {valid_size} exceed the "
                         f"{num_molecules} molecules")
    perm = torch.from_numpy(
        np.random.RandomState(seed).permutation(num_molecules))
    return {
        'train': perm[:train_size],
        'valid': perm[train_size:train_size + valid_size],
        'test': perm[train_size + valid_size:],
    }


@dataclass
class TargetStats:
    r"""Normalization of one target, fit on training molecules only.

    A model predicts :math:`\hat{y} = \sum_{v} (\mathrm{std}\cdot o_v +
    \mathrm{mean}) + \sum_v \mathrm{atomref}[z_v]` when :obj:`per_atom` is
    set (per-atom normalization, as msgnet and SchNet do), or
    :math:`\mathrm{std}\cdot o + \mathrm{mean} + \sum_v \mathrm{atomref}[z_v]`
    per molecule otherwise.

    Attributes:
        mean (float): Mean of the (reference-subtracted) target.
        std (float): Its standard deviation.
        per_atom (bool): Whether mean and std are per atom.
        atomref (torch.Tensor, optional): Per-element reference ``[100]``.
    """
    mean: float
    std: float
    per_atom: bool
    atomref: Optional[Tensor] = None


def _num_atoms(dataset: InMemoryDataset) -> Tensor:
    return dataset.slices['z'].diff() if dataset.slices is not None else \
        torch.tensor([dataset._data.z.numel()])


def _training_index(train_idx, num_molecules: int) -> Tensor:
    """:obj:`train_idx` as a long index tensor into the dataset. A cast to
    long would turn a boolean mask into indices 0 and 1, and tensor indexing
    would take negative indices from the end, so both are checked."""
    expected = (f"expected a boolean mask of shape [{num_molecules}] or "
                f"integer indices in [0, {num_molecules - 1}]")
    train_idx = torch.as_tensor(train_idx)
    if train_idx.dtype == torch.bool:
        if tuple(train_idx.shape) != (num_molecules, ):
            raise ValueError(f"'train_idx' is a boolean mask of shape "
                             f"{list(train_idx.shape)} for a dataset of "
                             f"{num_molecules} molecules; {expected}")
        train_idx = train_idx.nonzero().view(-1)
    elif train_idx.is_floating_point() or train_idx.is_complex() or \
            train_idx.dim() != 1:
        raise ValueError(f"'train_idx' of dtype {train_idx.dtype} and shape "
                         f"{list(train_idx.shape)}: {expected}")
    if train_idx.numel() == 0:
        raise ValueError(f"'train_idx' selects no molecule; {expected}")
    lo, hi = int(train_idx.min()), int(train_idx.max())
    if lo < 0 or hi >= num_molecules:
        raise ValueError(f"'train_idx' holds indices from {lo} to {hi}; "
                         f"{expected}")
    return train_idx.long()


def target_statistics(dataset: 'QM9', target: int, train_idx: Tensor,
                      per_atom: bool = True,
                      atomref: Optional[str] = None) -> TargetStats:
    r"""Fits the normalization of :obj:`target` on the training molecules
    :obj:`train_idx` only (PyG's ``examples/qm9_nn_conv.py`` z-scores with
    the statistics of the whole dataset, test set included; this does not).

    Args:
        dataset (QM9): The whole dataset (not a subset view).
        target (int): Target column (0-18).
        train_idx (torch.Tensor): Training indices into :obj:`dataset`, or
            a boolean mask over it.
        per_atom (bool, optional): Normalize per atom. (default: :obj:`True`)
        atomref (str, optional): :obj:`None`; :obj:`"qm9"` for the free-atom
            energies of targets 7-10 (PyG's :meth:`QM9.atomref`); or
            :obj:`"fit"` for per-element references fit by least squares on
            the training molecules' element counts (any target).
            (default: :obj:`None`)
    """
    if not 0 <= target < len(QM9_TARGETS):
        raise ValueError(f"'target' must be in [0, {len(QM9_TARGETS) - 1}] "
                         f"(got {target})")
    if getattr(dataset, '_indices', None) is not None:
        raise ValueError("target_statistics needs the whole QM9 dataset "
                         "(indices refer to it), not a subset view; pass "
                         "the dataset and the training indices")
    train_idx = _training_index(train_idx, len(dataset))
    data = dataset._data
    y = data.y[:, target].to(torch.float64)
    num_atoms = _num_atoms(dataset)
    graph = torch.repeat_interleave(torch.arange(num_atoms.numel()),
                                    num_atoms)
    counts = torch.zeros(num_atoms.numel(), 10, dtype=torch.float64)
    counts.index_put_((graph, data.z), torch.ones_like(graph,
                                                       dtype=torch.float64),
                      accumulate=True)
    ref = None
    if atomref == 'qm9':
        ref = dataset.atomref(target)
        if ref is None:
            raise ValueError(f"atomref='qm9' exists for targets 7-10 only "
                             f"(got target {target}); use atomref='fit'")
        ref = ref.view(-1).to(torch.float64)
    elif atomref == 'fit':
        # Fit only the elements the training molecules contain (the others
        # get 0). The full count matrix always has all-zero columns (Z = 0
        # and 2-5 never occur in QM9), so it is rank deficient, and torch's
        # default CPU driver 'gelsy' then returns a zero or garbage solution
        # that depends on stale memory (pytorch/pytorch#187411). Dropping
        # those columns and solving with the SVD-based, rank-revealing
        # 'gelsd' (minimum-norm if elements are still collinear) makes the
        # fit correct and deterministic.
        a = counts[train_idx]
        present = a.ne(0).any(0).nonzero().view(-1)
        sol = torch.linalg.lstsq(a[:, present], y[train_idx, None],
                                 driver='gelsd')
        ref = torch.zeros(100, dtype=torch.float64)
        ref[present] = sol.solution.view(-1)
    elif atomref is not None:
        raise ValueError(f"Unknown atomref '{atomref}' (expected None, 'qm9' "
                         f"or 'fit')")
    if ref is not None:
        y = y - counts @ ref[:10]
    if per_atom:
        y = y / num_atoms.to(torch.float64)
    y_train = y[train_idx]
    return TargetStats(mean=float(y_train.mean()),
                       std=float(y_train.std()), per_atom=per_atom,
                       atomref=None if ref is None else ref.float())


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            h.update(block)
    return h.hexdigest()


def _collated_storage(parts: Dict[str, object], y: Tensor, idx: Tensor,
                      names: List[str]):
    """Builds :class:`InMemoryDataset`'s storage (one concatenated
    :class:`Data` plus slices) straight from concatenated arrays, which is
    what :meth:`InMemoryDataset.collate` returns for the same graphs, without
    creating 130k intermediate objects."""
    num_atoms = torch.from_numpy(parts['num_atoms'])
    num_edges = torch.from_numpy(parts['num_edges'])
    n = num_atoms.numel()
    zero = torch.zeros(1, dtype=torch.long)
    atom_slice = torch.cat([zero, num_atoms.cumsum(0)])
    edge_slice = torch.cat([zero, num_edges.cumsum(0)])
    graph_slice = torch.arange(n + 1)
    edge_type = torch.from_numpy(parts['edge_type']).long()
    edge_attr = torch.nn.functional.one_hot(edge_type,
                                            len(BOND_TYPES)).float()
    data = Data(
        x=torch.from_numpy(parts['x']),
        z=torch.from_numpy(parts['z']),
        pos=torch.from_numpy(parts['pos']),
        edge_index=torch.from_numpy(parts['edge_index']),
        smiles=list(parts['smiles']),
        edge_attr=edge_attr,
        y=y.float(),
        name=names,
        idx=idx,
    )
    slices = {
        'x': atom_slice, 'z': atom_slice, 'pos': atom_slice,
        'edge_index': edge_slice, 'smiles': graph_slice,
        'edge_attr': edge_slice, 'y': graph_slice, 'name': graph_slice,
        'idx': graph_slice,
    }
    return data, slices


def _concat_chunks(chunks: Sequence[Dict[str, object]]) -> Dict[str, object]:
    out: Dict[str, object] = {}
    for key in chunks[0]:
        if key == 'smiles':
            out[key] = [s for c in chunks for s in c[key]]
        else:
            out[key] = np.concatenate([c[key] for c in chunks],
                                      axis=-1 if key == 'edge_index' else 0)
    return out


_QM9PACK_REPAIR = ("Reinstall qm9pack ('pip install --force-reinstall "
                   "qm9pack') or replace the damaged file")


def _repr(transform: Optional[Callable]) -> str:
    """A pre_transform or pre_filter as PyG records it (object addresses
    dropped, so that the same transform compares equal across runs)."""
    if transform is None:
        return 'None'
    return re.sub(r'(<.*?)\s.*(>)', r'\1\2', str(transform))


def _read_report(path: str) -> Dict:
    """The build report written next to the cache; raises ValueError when
    it does not parse (e.g. a write cut short)."""
    with open(path) as f:
        report = json.load(f)
    if not isinstance(report, dict) or 'counts' not in report:
        raise ValueError('it holds no build report')
    return report


def _where(rows, limit: int = 5) -> str:
    """``"'file' line L (Index I), ..."`` for the first :obj:`limit` rows of
    a frame from :func:`_checked_qm9pack_frame`."""
    places = [f"'{r['_file']}' line {r['_line']} (Index {r['Index']})"
              for _, r in rows.head(limit).iterrows()]
    return first_few(places, len(rows), limit)


def _checked_qm9pack_frame(frame, path: str):
    """Checks one qm9pack CSV: a truncated or damaged row reads as missing
    (or text) values, which would become NaN targets or bonds of the wrong
    molecule, so every needed cell must be present and every number
    numeric."""
    import pandas as pd
    numeric = ['Index'] + [c for c, _ in _QM9PACK_COLUMNS] + \
        list(_QM9PACK_ROT)
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors='coerce')
    # Line 1 is the header; a row's line is exact as long as no quoted cell
    # spans lines, which qm9pack's cells never do.
    frame['_file'] = path
    frame['_line'] = frame.index + 2
    bad = frame.drop(columns=['_file', '_line']).isna()
    bad_rows = bad.any(axis=1)
    if bad_rows.any():
        columns = [c for c in bad.columns if bad[c].any()]
        raise ValueError(
            f"The qm9pack CSV '{path}' is damaged: {int(bad_rows.sum())} "
            f"row(s) have missing or non-numeric values in columns "
            f"{columns}: {_where(frame[bad_rows])}. {_QM9PACK_REPAIR}")
    number = frame['Index']
    wrong = (number != number.round()) | (number < 1)
    if wrong.any():
        raise ValueError(f"The qm9pack CSV '{path}' has GDB-9 numbers that "
                         f"are not positive integers in column 'Index': "
                         f"{_where(frame[wrong])}. {_QM9PACK_REPAIR}")
    frame['Index'] = frame['Index'].astype(np.int64)
    return frame


def _check_unique_indices(df) -> None:
    """One molecule per GDB-9 number: a repeated ``Index`` would shift
    every later molecule against PyG's ``idx`` and the standard split."""
    dup = df['Index'].duplicated(keep=False)
    if dup.any():
        numbers = sorted(set(df.loc[dup, 'Index'].tolist()))
        raise ValueError(
            f"qm9pack CSVs list {len(numbers)} GDB-9 number(s) more than "
            f"once in column 'Index' (first: {numbers[:5]}): "
            f"{_where(df[dup].sort_values('Index', kind='stable'))}. "
            f"{_QM9PACK_REPAIR}")


@with_dataset_docs
class QM9(InMemoryDataset):
    r"""The QM9 dataset (130,831 molecules, 19 targets), built offline and
    compatible with :class:`torch_geometric.datasets.QM9`.

    Every graph has ``x`` (PyG's 11 atom features), ``z``, ``pos`` (Å),
    ``edge_index`` / ``edge_attr`` (bonds, one-hot single/double/triple/
    aromatic), ``y`` of shape ``[1, 19]`` in PyG's target order and units,
    ``idx`` (PyG's index: the GDB-9 number minus one), ``name``
    (``"gdb_<number>"``) and ``smiles`` (of the graph, explicit hydrogens, as
    PyG writes it).

    .. list-table:: Targets (PyG's order and units)
        :header-rows: 1

        * - #
          - Target
          - Unit
          - Source unit (qm9pack)
        * - 0
          - dipole moment :math:`\mu`
          - D
          - D
        * - 1
          - isotropic polarizability :math:`\alpha`
          - :math:`a_0^3`
          - :math:`a_0^3`
        * - 2, 3, 4
          - :math:`\epsilon_{HOMO}`, :math:`\epsilon_{LUMO}`,
            gap :math:`\Delta\epsilon`
          - eV
          - Hartree
        * - 5
          - electronic spatial extent :math:`\langle R^2 \rangle`
          - :math:`a_0^2`
          - :math:`a_0^2`
        * - 6
          - ZPVE
          - eV
          - Hartree
        * - 7, 8, 9, 10
          - :math:`U_0`, :math:`U`, :math:`H`, :math:`G` (total)
          - eV
          - Hartree
        * - 11
          - heat capacity :math:`c_v` (298.15 K)
          - cal/(mol K)
          - cal/(mol K)
        * - 12, 13, 14, 15
          - atomization :math:`U_0`, :math:`U`, :math:`H`, :math:`G`
          - eV
          - derived: total minus free-atom energies
        * - 16, 17, 18
          - rotational constants :math:`A`, :math:`B`, :math:`C`
          - GHz
          - GHz

    Aromaticity and hybridization are perceived by RDKit: aromatic rings
    have ``AROMATIC`` bonds and ``x[:, 6:10]`` is set, where PyG's own
    processing leaves Kekule bonds and zeros (see the module notes).

    Bonds come from the coordinates, in XYZ atom order (RDKit's
    ``rdDetermineBonds``; extended Hueckel connectivity where strained rings
    defeat the distance rule), and are checked against the SMILES. Nothing
    is dropped, so that the standard split stays valid: molecules whose bonds
    disagree with their SMILES (mostly zwitterions) keep the bonds of their
    geometry, and molecules without valid bond orders keep single bonds;
    both are counted and listed by ``idx`` in :attr:`report` (also written
    to ``processed/``) and in a warning.

    The processed cache is written atomically with a manifest (size,
    SHA-256, and the ``pre_transform`` and ``pre_filter`` it was built with,
    compared as PyG compares them: by their ``repr``); a missing, partial or
    corrupt cache, or one built with other pre-processing, is rebuilt.

    Args:
        root (str): Root directory; ``root/processed`` holds the cache and
            ``root/raw`` may hold PyG's raw files or qm9pack's CSVs.
        source (str, optional): :obj:`"auto"` (PyG raw files in
            ``root/raw`` if present, else qm9pack), :obj:`"qm9pack"` or
            :obj:`"pyg"`. (default: :obj:`"auto"`)
        max_molecules (int, optional): Build only the first this many
            molecules (for tests and quick looks). (default: :obj:`None`)
        num_workers (int, optional): Processes used to build the graphs;
            :obj:`0` or :obj:`1` builds them in this process.
            (default: :obj:`min(2, os.cpu_count())`)
        {IN_MEMORY_DATASET_ARGS}
        log (bool, optional): Print progress. (default: :obj:`True`)

    Attributes:
        report (dict): The build report (also in ``processed/``): the
            ``source``, ``num_molecules``, the ``counts`` of every bond
            status (``ok``, ``hueckel``, ``smiles_mismatch``,
            ``parse_failed``) and, under each status but ``ok``, the
            ``idx`` of its molecules.
    """
    def __init__(
        self,
        root: str,
        source: str = 'auto',
        max_molecules: Optional[int] = None,
        num_workers: Optional[int] = None,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        if source not in ('auto', 'qm9pack', 'pyg'):
            raise ValueError(f"Unknown QM9 source '{source}' (expected "
                             f"'auto', 'qm9pack' or 'pyg')")
        if max_molecules is not None and max_molecules < 1:
            raise ValueError(f"'max_molecules' must be positive "
                             f"(got {max_molecules})")
        # As PyG's Dataset does, so that '~/data' is found before
        # super().__init__ expands it.
        root = osp.expanduser(fs.normpath(str(root)))
        self.root = root
        if source == 'auto':
            source = 'pyg' if all(
                osp.exists(osp.join(root, 'raw', f))
                for f in _PYG_RAW_FILES) else 'qm9pack'
        self.source = source
        self.max_molecules = max_molecules
        if num_workers is not None:
            check_non_negative_int('QM9', num_workers=num_workers)
        # 0 builds in this process, as a DataLoader's num_workers=0 does.
        self.num_workers = (min(2, os.cpu_count() or 1) if num_workers is None
                            else max(num_workers, 1))
        self._discard_invalid_cache(osp.join(root, 'processed'),
                                    _repr(pre_transform), _repr(pre_filter))
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload, log=log)
        try:
            self.load(self.processed_paths[0])
            self._check_loaded()
        except Exception as exc:  # noqa: BLE001 - any unreadable cache
            warnings.warn(f"QM9 cache '{self.processed_paths[0]}' could not "
                          f"be read ({exc}); rebuilding it", stacklevel=2)
            self._remove_cache()
            self._process()
            self.load(self.processed_paths[0])
            self._check_loaded()
        self.report = _read_report(self.processed_paths[2])

    # ------------------------------------------------------------------ files
    @property
    def raw_file_names(self) -> List[str]:
        if self.source == 'pyg':
            return list(_PYG_RAW_FILES)
        return []  # qm9pack's CSVs are located in _qm9pack_folder()

    @property
    def processed_file_names(self) -> List[str]:
        stem = (f'qm9_{self.source}_'
                f'{self.max_molecules or "all"}_v{_FORMAT_VERSION}')
        return [f'{stem}.pt', f'{stem}.manifest.json', f'{stem}.report.json']

    def download(self):
        # Nothing is ever fetched: qm9pack's CSVs are read where pip put
        # them (or from root/raw), and PyG's raw files must be there already.
        if self.source == 'qm9pack':
            self._qm9pack_folder()  # fails early with instructions
            return
        raise FileNotFoundError(
            f"PyG's QM9 raw files {list(_PYG_RAW_FILES)} are missing in "
            f"'{self.raw_dir}'; use source='qm9pack' (pip install qm9pack) "
            f"to build QM9 offline")

    def _qm9pack_folder(self) -> str:
        local = osp.join(self.root, 'raw')
        if all(osp.exists(osp.join(local, f)) for f in _QM9PACK_FILES):
            return local
        folder = find_qm9pack_data()
        if folder is None:
            raise FileNotFoundError(
                "QM9 needs the qm9pack CSVs: 'pip install qm9pack' (or "
                "'pip install pyg-hypernets[qm9]'), or copy "
                f"{list(_QM9PACK_FILES)} into '{local}'")
        return folder

    # ------------------------------------------------------------ cache check
    def _discard_invalid_cache(self, processed_dir: str, pre_transform: str,
                               pre_filter: str) -> None:
        """Deletes a cache whose data file disagrees with its manifest
        (interrupted write, truncated or edited file), whose report does
        not parse (the manifest covers the data file only, and a truncated
        report would otherwise fail every later load), or that was built
        with another ``pre_transform`` or ``pre_filter``: PyG keeps one
        record of those per folder, which the next variant built there
        (another source or ``max_molecules``) overwrites, so each cache's
        manifest records its own."""
        # PyG reads its records before anything else: a damaged one would
        # fail every load with a bare EOFError.
        discard_unreadable_cache(processed_dir, 'QM9',
                                 ('pre_transform.pt', 'pre_filter.pt'))
        names = self.processed_file_names
        data_path = osp.join(processed_dir, names[0])
        manifest_path = osp.join(processed_dir, names[1])
        report_path = osp.join(processed_dir, names[2])
        if not any(osp.exists(osp.join(processed_dir, n)) for n in names):
            return
        reason = None
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
            if os.path.getsize(data_path) != manifest['size']:
                reason = 'its size differs from the manifest'
            elif _sha256(data_path) != manifest['sha256']:
                reason = 'its checksum differs from the manifest'
            elif 'pre_transform' not in manifest:
                reason = ('its manifest does not record the pre_transform '
                          'and pre_filter it was built with (an older '
                          'version wrote it)')
            elif (manifest['pre_transform'], manifest.get('pre_filter')) \
                    != (pre_transform, pre_filter):
                reason = (f"it was built with pre_transform "
                          f"{manifest['pre_transform']} and pre_filter "
                          f"{manifest.get('pre_filter')}, not "
                          f"{pre_transform} and {pre_filter}")
        except (OSError, ValueError, KeyError) as exc:
            reason = f'its manifest is missing or unreadable ({exc})'
        if reason is None:
            try:
                _read_report(report_path)
            except (OSError, ValueError) as exc:
                reason = (f"its report '{names[2]}' is missing or "
                          f"unreadable ({exc})")
        if reason is not None:
            warnings.warn(f"Discarding the QM9 cache in '{processed_dir}': "
                          f"{reason}; it will be rebuilt", stacklevel=3)
            for name in names:
                path = osp.join(processed_dir, name)
                if osp.exists(path):
                    os.remove(path)

    def _remove_cache(self) -> None:
        for path in self.processed_paths:
            if osp.exists(path):
                os.remove(path)

    def _check_loaded(self) -> None:
        with open(self.processed_paths[1]) as f:
            manifest = json.load(f)
        if len(self) != manifest['num_molecules']:
            raise ValueError(f"cache holds {len(self)} molecules, manifest "
                             f"says {manifest['num_molecules']}")
        if self._data.z.numel() != int(self.slices['z'][-1]):
            raise ValueError('cache atom count disagrees with its slices')

    # -------------------------------------------------------------- process
    def process(self) -> None:
        if self.source == 'pyg':
            parts, y, idx, names = self._read_pyg_raw()
        else:
            parts, y, idx, names = self._read_qm9pack()

        status = parts.pop('status')
        report = {
            'source': self.source,
            'num_molecules': int(y.size(0)),
            'counts': {code: int((status == k).sum())
                       for k, code in enumerate(STATUS_CODES)},
        }
        for k, code in enumerate(STATUS_CODES):
            if code != 'ok':
                report[code] = idx[torch.from_numpy(status == k)].tolist()
        problems = {c: report['counts'][c]
                    for c in ('smiles_mismatch', 'parse_failed')
                    if report['counts'][c]}
        if problems:
            first = {c: report[c][:5] for c in problems}
            warnings.warn(f"QM9: kept with caveats {problems} molecules "
                          f"(first idx: {first}); the full lists are in "
                          f"'{self.processed_paths[2]}'", stacklevel=2)

        if self.pre_filter is None and self.pre_transform is None:
            data, slices = _collated_storage(parts, y, idx, names)
        else:
            data_list = self._to_data_list(*_collated_storage(
                parts, y, idx, names))
            if self.pre_filter is not None:
                data_list = [d for d in data_list if self.pre_filter(d)]
            if self.pre_transform is not None:
                data_list = [self.pre_transform(d) for d in data_list]
            data, slices = self.collate(data_list)
        num = int(slices['y'].numel() - 1) if slices is not None else 1

        path = self.processed_paths[0]
        tmp = f'{path}.tmp{os.getpid()}'
        fs.torch_save((data.to_dict(), slices, data.__class__), tmp)
        os.replace(tmp, path)
        atomic_write_json(self.processed_paths[2], report)
        # The manifest goes last: it is what marks the cache as complete.
        atomic_write_json(self.processed_paths[1], {
            'size': os.path.getsize(path), 'sha256': _sha256(path),
            'num_molecules': num, 'format': _FORMAT_VERSION,
            'pre_transform': _repr(self.pre_transform),
            'pre_filter': _repr(self.pre_filter)})

    @staticmethod
    def _to_data_list(data: Data, slices) -> List[Data]:
        storage = InMemoryDataset()
        storage._data, storage.slices = data, slices
        return [storage.get(i) for i in range(len(storage))]

    def _featurize_rows(self, rows: List[tuple]) -> Dict[str, object]:
        from tqdm import tqdm
        chunk = 500
        chunks = [rows[i:i + chunk] for i in range(0, len(rows), chunk)]
        bar = tqdm(total=len(rows), desc='Building QM9 graphs',
                   unit='mol', disable=not self.log)
        results = []
        if self.num_workers > 1 and len(chunks) > 1:
            ctx = multiprocessing.get_context(
                'fork' if 'fork' in multiprocessing.get_all_start_methods()
                else 'spawn')
            with ctx.Pool(self.num_workers) as pool:
                for out in pool.imap(process_rows, chunks):
                    results.append(out)
                    bar.update(len(out['num_atoms']))
        else:
            for c in chunks:
                results.append(process_rows(c))
                bar.update(len(c))
        bar.close()
        return _concat_chunks(results)

    def _read_qm9pack(self):
        import pandas as pd

        folder = self._qm9pack_folder()
        wanted = (['Index', 'SMILES', 'Elements', 'XYZ_Ang']
                  + [c for c, _ in _QM9PACK_COLUMNS] + list(_QM9PACK_ROT))
        frames, remaining = [], self.max_molecules
        for name in _QM9PACK_FILES:
            path = osp.join(folder, name)
            try:
                frame = pd.read_csv(path, usecols=wanted, nrows=remaining)
            except pd.errors.ParserError as e:  # e.g. cut inside a quote
                raise ValueError(
                    f"The qm9pack CSV '{path}' is damaged: {e}. "
                    f"{_QM9PACK_REPAIR}") from None
            frame = _checked_qm9pack_frame(frame, path)
            frames.append(frame)
            if remaining is not None:
                remaining -= len(frame)
                if remaining <= 0:
                    break
        df = pd.concat(frames, ignore_index=True)
        _check_unique_indices(df)
        # PyG's order (and so the standard split) is by GDB-9 number.
        df = df.sort_values('Index', kind='stable', ignore_index=True)
        if self.max_molecules is None and len(df) != NUM_QM9_MOLECULES:
            raise ValueError(f"qm9pack CSVs in '{folder}' hold {len(df)} "
                             f"molecules, expected {NUM_QM9_MOLECULES}")
        rows = list(zip(df['Elements'], df['XYZ_Ang'], df['SMILES']))
        parts = self._featurize_rows(rows)

        y = torch.tensor(np.stack([df[c].to_numpy(np.float64) * f
                                   for c, f in _QM9PACK_COLUMNS], axis=1))
        total = y[:, 7:11]  # U0, U, H, G in eV
        y = torch.cat([y, total - self._atom_energy_sum(parts),
                       torch.tensor(df[list(_QM9PACK_ROT)].to_numpy(
                           np.float64))], dim=1)
        number = df['Index'].to_numpy(np.int64)
        idx = torch.from_numpy(number - 1)
        names = [f'gdb_{k}' for k in number.tolist()]
        return parts, y, idx, names

    @staticmethod
    def _atom_energy_sum(parts) -> Tensor:
        """Sum of the free-atom U0, U, H, G (eV) of every molecule."""
        num_atoms = torch.from_numpy(parts['num_atoms'])
        graph = torch.repeat_interleave(torch.arange(num_atoms.numel()),
                                        num_atoms)
        per_atom = atom_energy_table('eV')[torch.from_numpy(parts['z'])]
        out = torch.zeros(num_atoms.numel(), 4, dtype=torch.float64)
        return out.index_add_(0, graph, per_atom)

    def _read_pyg_raw(self):
        """PyG's raw files: bonds as stored in ``gdb9.sdf`` (as PyG takes
        them), targets from ``gdb9.sdf.csv`` converted as PyG does."""
        from rdkit import Chem, RDLogger
        from tqdm import tqdm
        RDLogger.DisableLog('rdApp.*')

        sdf, csv, uncharacterized = self.raw_paths
        with open(csv) as f:
            lines = f.read().strip().split('\n')[1:]
        table = np.array([[float(v) for v in line.split(',')[1:20]]
                          for line in lines], dtype=np.float64)
        # gdb9.sdf.csv: A, B, C, mu, alpha, homo, lumo, gap, r2, zpve, U0, U,
        # H, G, cv, U0_atom, U_atom, H_atom, G_atom (energies in Hartree,
        # atomization energies in kcal/mol).
        table = np.concatenate([table[:, 3:], table[:, :3]], axis=1)
        factor = np.ones(19)
        factor[[2, 3, 4, 6, 7, 8, 9, 10]] = HARTREE_TO_EV
        factor[12:16] = KCALMOL_TO_EV
        table = table * factor
        with open(uncharacterized) as f:
            skip = {int(line.split()[0]) - 1
                    for line in f.read().split('\n')[9:-2]}

        supplier = Chem.SDMolSupplier(sdf, removeHs=False, sanitize=False)
        limit = self.max_molecules
        feats, pos, keep = [], [], []
        for i, mol in enumerate(tqdm(supplier, disable=not self.log,
                                     desc='Reading gdb9.sdf', unit='mol')):
            if i in skip:
                continue
            if limit is not None and len(keep) >= limit:
                break
            if mol is None:
                raise ValueError(f"gdb9.sdf: molecule {i} does not parse")
            keep.append(i)
            pos.append(mol.GetConformer().GetPositions().astype(np.float32))
            feats.append(featurize(mol))
        parts = _concat_chunks([{
            'z': f['z'], 'x': f['x'], 'pos': p,
            'edge_index': f['edge_index'], 'edge_type': f['edge_type'],
            'num_atoms': np.array([len(f['z'])]),
            'num_edges': np.array([f['edge_index'].shape[1]]),
            'smiles': [f['smiles']],
            # The SDF's bonds are PyG's; there is no SMILES to check them.
            'status': np.zeros(1, dtype=np.int8),
        } for f, p in zip(feats, pos)])
        idx = torch.tensor(keep, dtype=torch.long)
        names = [f'gdb_{i + 1}' for i in keep]
        return parts, torch.from_numpy(table[keep]), idx, names

    # ------------------------------------------------------------------ API
    def atomref(self, target: int) -> Optional[Tensor]:
        r"""Free-atom energies ``[100, 1]`` (eV, indexed by atomic number)
        of targets 7-10, as :meth:`torch_geometric.datasets.QM9.atomref`;
        :obj:`None` for other targets."""
        if 7 <= target <= 10:
            out = torch.zeros(100)
            out[:10] = atom_energy_table('eV')[:, target - 7].float()
            return out.view(-1, 1)
        return None

    def get_idx_split(self, train_size: Optional[int] = None,
                      valid_size: Optional[int] = None,
                      seed: int = 42) -> Dict[str, Tensor]:
        r"""The standard split (:func:`qm9_standard_split`). For a subset
        built with :obj:`max_molecules`, the default sizes keep the standard
        fractions."""
        n = len(self)
        if (self.max_molecules is None and n != NUM_QM9_MOLECULES
                and train_size is None and valid_size is None):
            # A permutation of fewer molecules is not the standard split:
            # its positions would index other molecules.
            raise ValueError(
                f"the standard QM9 split is defined on all "
                f"{NUM_QM9_MOLECULES:,} molecules, but this dataset holds "
                f"{n:,} (did a pre_filter drop some?); take the split of "
                f"the unfiltered dataset and select by 'idx', or pass "
                f"train_size and valid_size for a split of this subset")
        if train_size is None:
            train_size = round(n * 110000 / NUM_QM9_MOLECULES)
        if valid_size is None:
            valid_size = round(n * 10000 / NUM_QM9_MOLECULES)
        return qm9_standard_split(n, train_size, valid_size, seed)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({len(self)}, source={self.source})'
