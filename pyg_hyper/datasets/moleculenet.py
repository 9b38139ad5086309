r"""Building an OGB-layout molecule dataset from a MoleculeNet CSV.

OGB's molecule datasets are MoleculeNet sets turned into graphs by
:func:`ogb.utils.smiles2graph` and split by scaffold. Where OGB's files are
absent (no network, or a set OGB never released in its layout),
:func:`build_ogb_dataset_from_csv` writes the same layout from the CSV, so
that :class:`~pyg_hyper.datasets.OGBGraphDataset` and OGB's
:class:`~ogb.graphproppred.Evaluator` apply unchanged.

The scaffold split is the one OGB's files were made with (the
``snap-stanford/pretrain-gnns`` splitter): molecules are grouped by their
Bemis-Murcko scaffold (RDKit :obj:`MurckoScaffoldSmiles` with chirality), the
groups are sorted by size, largest first (ties: the group whose first
molecule comes later first), and whole groups fill train up to 80% of the
molecules, then valid up to 90%, and the rest goes to test. Each part's
indices are then sorted, as in OGB's files.

SMILES that RDKit cannot parse cannot become graphs. They are left out, as in
OGB, but never silently: the returned :class:`MoleculeBuildReport` counts
and lists them, a warning names the count, and
:obj:`mapping/invalid_smiles.csv` in the dataset folder records them.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from pyg_hyper.datasets.ogb import (
    ogb_graph_dataset_names,
    ogb_meta_info,
    resolve_ogb_name,
)
from pyg_hyper.utils.checks import first_few

__all__ = [
    'MOLECULENET_CSVS',
    'MoleculeBuildReport',
    'scaffold_split',
    'build_ogb_dataset_from_csv',
    'build_ogb_dataset_from_moleculenet',
]

#: Where each OGB molecule set's source lies in PyG's MoleculeNet layout
#: (``<root>/<folder>/raw/<file>``), with its label and identifier columns.
MOLECULENET_CSVS: Dict[str, Dict] = {
    'ogbg-molhiv': dict(path='hiv/raw/HIV.csv', labels=['HIV_active'],
                        id_column=None),
    'ogbg-molbbbp': dict(path='bbbp/raw/BBBP.csv', labels=['p_np'],
                         id_column='name'),
    'ogbg-moltox21': dict(
        path='tox21/raw/tox21.csv',
        labels=['NR-AR', 'NR-AR-LBD', 'NR-AhR', 'NR-Aromatase', 'NR-ER',
                'NR-ER-LBD', 'NR-PPAR-gamma', 'SR-ARE', 'SR-ATAD5', 'SR-HSE',
                'SR-MMP', 'SR-p53'],
        id_column='mol_id'),
    'ogbg-molesol': dict(path='esol/raw/delaney-processed.csv',
                         labels=['measured log solubility in mols per litre'],
                         id_column='Compound ID'),
    'ogbg-molfreesolv': dict(path='freesolv/raw/SAMPL.csv', labels=['expt'],
                             id_column='iupac'),
    'ogbg-mollipo': dict(path='lipo/raw/Lipophilicity.csv', labels=['exp'],
                         id_column='CMPD_CHEMBLID'),
}


@dataclass
class MoleculeBuildReport:
    r"""What :func:`build_ogb_dataset_from_csv` did.

    Attributes:
        name (str): The OGB dataset name.
        folder (str): The dataset folder written.
        num_rows (int): Rows in the CSV.
        num_graphs (int): Molecules written (valid SMILES).
        invalid (List[Tuple[int, str]]): (CSV row, SMILES) of every SMILES
            that RDKit could not parse, hence left out.
        split_sizes (Dict[str, int]): Sizes of train, valid and test.
    """
    name: str
    folder: str
    num_rows: int
    num_graphs: int
    invalid: List[Tuple[int, str]] = field(default_factory=list)
    split_sizes: Dict[str, int] = field(default_factory=dict)

    @property
    def num_invalid(self) -> int:
        return len(self.invalid)

    def __str__(self) -> str:
        return (f"{self.name}: {self.num_graphs} graphs from {self.num_rows} "
                f"rows, {self.num_invalid} invalid SMILES left out, split "
                f"{self.split_sizes} -> {self.folder}")


def _murcko_scaffold(smiles: str) -> str:
    from rdkit.Chem.Scaffolds import MurckoScaffold
    return MurckoScaffold.MurckoScaffoldSmiles(smiles=smiles,
                                               includeChirality=True)


def scaffold_split(smiles: Sequence[str], frac_train: float = 0.8,
                   frac_valid: float = 0.1) -> Dict[str, List[int]]:
    r"""OGB's deterministic scaffold split of :obj:`smiles` (see the module
    docstring). All SMILES must be valid.

    Returns:
        dict: :obj:`{'train', 'valid', 'test'}` sorted index lists.
    """
    if not 0 < frac_train < 1 or not 0 <= frac_valid < 1 - frac_train:
        raise ValueError(f"Expected 0 < frac_train < 1 and 0 <= frac_valid < "
                         f"1 - frac_train (got {frac_train}, {frac_valid})")
    groups: Dict[str, List[int]] = {}
    from rdkit import rdBase
    with rdBase.BlockLogs():
        for i, s in enumerate(smiles):
            try:
                scaffold = _murcko_scaffold(s)
            except ValueError:  # rdkit's bare 'No molecule provided'
                raise ValueError(f"scaffold_split got an invalid SMILES at "
                                 f"index {i}: {s!r}; drop or fix it first "
                                 f"(the CSV loader counts and reports "
                                 f"them)") from None
            groups.setdefault(scaffold, []).append(i)
    # Largest group first; among equal sizes, the group whose first molecule
    # comes later goes first (this is what ``reverse=True`` on the
    # (size, first index) key of OGB's splitter does).
    sets = sorted(groups.values(), key=lambda g: (len(g), g[0]), reverse=True)
    train_cutoff = frac_train * len(smiles)
    valid_cutoff = (frac_train + frac_valid) * len(smiles)
    split: Dict[str, List[int]] = {'train': [], 'valid': [], 'test': []}
    for group in sets:
        if len(split['train']) + len(group) <= train_cutoff:
            split['train'] += group
        elif (len(split['train']) + len(split['valid']) + len(group)
              <= valid_cutoff):
            split['valid'] += group
        else:
            split['test'] += group
    return {part: sorted(idx) for part, idx in split.items()}


def _find_column(columns: Sequence[str], wanted: str, what: str,
                 csv_path: str) -> str:
    for c in columns:
        if c == wanted:
            return c
    for c in columns:  # 'SMILES', 'Smiles', ...
        if c.lower() == wanted.lower():
            return c
    raise ValueError(f"The CSV '{csv_path}' has no {what} column "
                     f"'{wanted}' (its columns are: {', '.join(columns)})")


def _label_columns(label_columns: Union[str, Sequence[str]],
                   columns: Sequence[str], csv_path: str, name: str,
                   num_tasks: int) -> List[str]:
    """The CSV's label columns, one per task of :obj:`name`, in order."""
    if isinstance(label_columns, str):
        # A bare string is one column name, not a sequence of letters.
        if num_tasks != 1:
            raise ValueError(f"'label_columns' is the single column "
                             f"'{label_columns}', but '{name}' has "
                             f"{num_tasks} tasks; pass a list of {num_tasks} "
                             f"column names in OGB's task order")
        label_columns = [label_columns]
    found = [_find_column(columns, c, 'label', csv_path)
             for c in label_columns]
    # After the case-insensitive match, so that 'y' and 'Y' count as one.
    repeated = sorted({c for c in found if found.count(c) > 1})
    if repeated:
        raise ValueError(f"Label column(s) {repeated} of '{csv_path}' are "
                         f"given more than once in {list(label_columns)}; "
                         f"each of the {num_tasks} task(s) of '{name}' needs "
                         f"its own column")
    if len(found) != num_tasks:
        raise ValueError(f"'{name}' has {num_tasks} task(s), but "
                         f"{len(found)} label column(s) were given: {found}")
    return found


#: OGB task type -> (which labels fit it, what is expected). OGB's molecule
#: sets are binary classification or regression only.
_LABEL_RULES = {
    'binary classification': (lambda y: y.isin([0, 1]), '0 or 1'),
    'regression': (np.isfinite, 'finite numbers'),
}


def _rows(column: pd.Series, where: pd.Series, limit: int = 5) -> str:
    """``"row 3: 'abc', ..."`` for the first offending rows."""
    rows = column[where]
    return first_few([f'row {r}: {v!r}' for r, v in rows.head(limit).items()],
                     len(rows), limit)


def _checked_labels(column: pd.Series, name: str, csv_path: str,
                    dataset: str, task_type: str) -> pd.Series:
    """The label column as numbers, checked against OGB's task type: a
    label that OGB would read differently (text, booleans, a class other
    than 0/1, an infinite target) would silently train on wrong targets.
    Rows are counted from 0 after the header, as in the build report."""
    is_bool = column.map(lambda v: isinstance(v, (bool, np.bool_)))
    numbers = pd.to_numeric(column.mask(is_bool), errors='coerce')
    where = f"Label column '{name}' of '{csv_path}'"
    text = column.notna() & numbers.isna()
    if text.any():
        raise ValueError(f"{where} holds {int(text.sum())} non-numeric "
                         f"value(s): {_rows(column, text)}; labels must be "
                         f"numbers, with an empty cell for a missing label")
    if task_type in _LABEL_RULES:
        fits, expected = _LABEL_RULES[task_type]
        wrong = numbers.notna() & ~fits(numbers)
        if wrong.any():
            raise ValueError(f"{where} holds {int(wrong.sum())} label(s) "
                             f"that do not fit the {task_type} task of "
                             f"'{dataset}': {_rows(column, wrong)}; expected "
                             f"{expected} (or empty for a missing label)")
    return numbers


def _parse(smiles: Sequence) -> Tuple[List[int], List[Tuple[int, str]]]:
    from rdkit import Chem, rdBase
    valid, invalid = [], []
    with rdBase.BlockLogs():  # the invalid ones are reported below instead
        for row, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s) if isinstance(s, str) else None
            if mol is None or mol.GetNumAtoms() == 0:
                invalid.append((row, str(s)))
            else:
                valid.append(row)
    return valid, invalid


def _write_csv(frame: pd.DataFrame, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    frame.to_csv(path, index=False, header=False, compression='gzip')


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def build_ogb_dataset_from_csv(
    csv_path: str,
    root: str,
    name: str,
    label_columns: Sequence[str],
    smiles_column: str = 'smiles',
    id_column: Optional[str] = None,
    overwrite: bool = False,
) -> MoleculeBuildReport:
    r"""Writes the OGB layout of dataset :obj:`name` under :obj:`root` from
    a CSV with one molecule per row, using :func:`ogb.utils.smiles2graph`
    and OGB's :func:`scaffold_split`.

    The folder is built next to its destination and moved into place in one
    step, so an interrupted build leaves no half-written dataset.

    Args:
        csv_path (str): The CSV (optionally compressed, as pandas reads it).
        root (str): Root under which :obj:`<ogbg_name>/` is written; pass the
            same root to :class:`~pyg_hyper.datasets.OGBGraphDataset`.
        name (str): OGB dataset name, e.g. :obj:`"ogbg-molesol"`; it fixes
            the number of tasks and the metric.
        label_columns (List[str]): The task columns, in OGB's task order
            (a single name is accepted for a single-task dataset). Labels
            must be numbers: 0 or 1 for binary classification, finite for
            regression, empty where missing.
        smiles_column (str, optional): The SMILES column (matched
            case-insensitively). (default: :obj:`"smiles"`)
        id_column (str, optional): A column copied into
            :obj:`mapping/mol.csv.gz` as :obj:`mol_id`. (default: :obj:`None`)
        overwrite (bool, optional): Replace an existing dataset folder.
            (default: :obj:`False`)

    Raises:
        ValueError: If the name is unknown, a column is missing or given
            twice, the number of label columns differs from OGB's number of
            tasks, a label does not fit OGB's task type (the message names
            the column and rows, counted from 0 after the header), or a
            task has no label at all.
        FileExistsError: If the dataset folder exists and
            :obj:`overwrite=False`.
    """
    from ogb.utils import smiles2graph

    name = resolve_ogb_name(name)
    meta = ogb_meta_info(name)
    if meta.get('data type') != 'mol':
        raise ValueError(f"'{name}' is not a molecule dataset; molecule "
                         f"datasets are: {', '.join(MOLECULE_DATASETS)}")
    if not osp.isfile(csv_path):
        raise FileNotFoundError(f"No CSV file at '{csv_path}'")
    frame = pd.read_csv(csv_path)
    columns = [str(c) for c in frame.columns]
    smiles_column = _find_column(columns, smiles_column, 'SMILES', csv_path)
    label_columns = _label_columns(label_columns, columns, csv_path, name,
                                   int(meta['num tasks']))
    for c in label_columns:
        frame[c] = _checked_labels(frame[c], c, csv_path, name,
                                   meta['task type'])
    if id_column is not None:
        id_column = _find_column(columns, id_column, 'identifier', csv_path)

    folder = osp.join(osp.expanduser(str(root)), name.replace('-', '_'))
    # ogb's loader prefers '<folder>_pyg' (its download) when one exists:
    # a build beside it would never be read.
    shadow = folder + '_pyg'
    for existing in (folder, shadow):
        if osp.exists(existing) and not overwrite:
            raise FileExistsError(f"'{existing}' exists; pass overwrite=True "
                                  f"to replace it")

    valid, invalid = _parse(frame[smiles_column].tolist())
    if not valid:
        raise ValueError(f"None of the {len(frame)} SMILES in '{csv_path}' "
                         f"could be parsed by RDKit")
    frame = frame.iloc[valid].reset_index(drop=True)
    # A task without a single label cannot be trained or evaluated (OGB's
    # evaluator would return NaN or refuse it).
    empty = [c for c in label_columns if frame[c].isna().all()]
    if empty:
        raise ValueError(f"Label column(s) {empty} of '{csv_path}' hold no "
                         f"label for any valid molecule (every value is "
                         f"missing); each of the {len(label_columns)} "
                         f"task(s) of '{name}' needs labels")
    smiles = frame[smiles_column].tolist()

    from rdkit import rdBase
    with rdBase.BlockLogs():  # RDKit's sanitization chatter, not errors
        graphs = [smiles2graph(s) for s in smiles]
    # smiles2graph emits every bond in both directions, one after the other;
    # OGB's raw files hold each bond once and ogb re-adds the reverse.
    edge = np.concatenate([g['edge_index'][:, ::2].T for g in graphs])
    edge_feat = np.concatenate([g['edge_feat'][::2] for g in graphs])
    node_feat = np.concatenate([g['node_feat'] for g in graphs])
    split = scaffold_split(smiles)
    empty_parts = [part for part, idx in split.items() if len(idx) == 0]
    if empty_parts:
        warnings.warn(
            f"the scaffold split of the {len(smiles)} valid molecules in "
            f"'{csv_path}' leaves {empty_parts} empty (sizes "
            f"{ {k: len(v) for k, v in split.items()} }): no model can be "
            f"selected or tested on it; use a larger CSV", stacklevel=2)

    os.makedirs(osp.dirname(folder), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(folder)}.',
                           dir=osp.dirname(folder))
    try:
        raw = osp.join(tmp, 'raw')
        _write_csv(pd.DataFrame(edge), osp.join(raw, 'edge.csv.gz'))
        _write_csv(pd.DataFrame(edge_feat), osp.join(raw, 'edge-feat.csv.gz'))
        _write_csv(pd.DataFrame(node_feat), osp.join(raw, 'node-feat.csv.gz'))
        _write_csv(pd.DataFrame([g['num_nodes'] for g in graphs]),
                   osp.join(raw, 'num-node-list.csv.gz'))
        _write_csv(pd.DataFrame([g['edge_index'].shape[1] // 2
                                 for g in graphs]),
                   osp.join(raw, 'num-edge-list.csv.gz'))
        _write_csv(frame[label_columns], osp.join(raw, 'graph-label.csv.gz'))
        for part, idx in split.items():
            _write_csv(pd.DataFrame(idx),
                       osp.join(tmp, 'split', meta['split'],
                                f'{part}.csv.gz'))
        mapping = frame[label_columns + [smiles_column]].rename(
            columns={smiles_column: 'smiles'})
        mapping['mol_id'] = frame[id_column] if id_column else ''
        os.makedirs(osp.join(tmp, 'mapping'))
        mapping.to_csv(osp.join(tmp, 'mapping', 'mol.csv.gz'), index=False,
                       compression='gzip')
        pd.DataFrame(invalid, columns=['csv_row', 'smiles']).to_csv(
            osp.join(tmp, 'mapping', 'invalid_smiles.csv'), index=False)
        _write_provenance(tmp, csv_path, name, len(valid) + len(invalid),
                          invalid, split)
        with open(osp.join(tmp, f"RELEASE_v{meta['version']}.txt"), 'w') as f:
            f.write(f"Built by pyg_hyper from {osp.basename(csv_path)}; see "
                    f"mapping/build.json.\n")
        if osp.exists(shadow):
            shutil.rmtree(shadow)
        if osp.exists(folder):
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if osp.exists(tmp):
            shutil.rmtree(tmp)

    report = MoleculeBuildReport(
        name=name, folder=folder, num_rows=len(valid) + len(invalid),
        num_graphs=len(valid), invalid=invalid,
        split_sizes={k: len(v) for k, v in split.items()})
    if invalid:
        warnings.warn(f"{report.num_invalid} of {report.num_rows} SMILES in "
                      f"'{csv_path}' are invalid for RDKit and were left out "
                      f"(listed in {folder}/mapping/invalid_smiles.csv)",
                      stacklevel=2)
    return report


def _write_provenance(folder: str, csv_path: str, name: str, num_rows: int,
                      invalid: List[Tuple[int, str]],
                      split: Dict[str, List[int]]) -> None:
    import ogb
    import rdkit
    record = {
        'name': name,
        'source_csv': osp.abspath(csv_path),
        'source_sha256': _sha256(csv_path),
        'num_rows': num_rows,
        'num_invalid_smiles': len(invalid),
        'split_sizes': {k: len(v) for k, v in split.items()},
        'ogb_version': ogb.__version__,
        'rdkit_version': rdkit.__version__,
    }
    with open(osp.join(folder, 'mapping', 'build.json'), 'w') as f:
        json.dump(record, f, indent=2)


def build_ogb_dataset_from_moleculenet(
        moleculenet_root: str, root: str, name: str,
        overwrite: bool = False) -> MoleculeBuildReport:
    r"""Builds OGB dataset :obj:`name` from PyG's MoleculeNet layout under
    :obj:`moleculenet_root` (see
    :data:`~pyg_hyper.datasets.moleculenet.MOLECULENET_CSVS` for which file
    and columns each set uses).

    Example:
        >>> report = build_ogb_dataset_from_moleculenet(
        ...     'data/MoleculeNet', 'data/OGB', 'ogbg-molbbbp')
        >>> dataset = OGBGraphDataset('data/OGB', 'ogbg-molbbbp')
    """
    name = resolve_ogb_name(name)
    if name not in MOLECULENET_CSVS:
        raise ValueError(f"No MoleculeNet CSV is known for '{name}'; known "
                         f"are: {', '.join(sorted(MOLECULENET_CSVS))}. Use "
                         f"build_ogb_dataset_from_csv with explicit columns")
    spec = MOLECULENET_CSVS[name]
    csv_path = osp.join(moleculenet_root, spec['path'])
    return build_ogb_dataset_from_csv(csv_path, root, name, spec['labels'],
                                      id_column=spec['id_column'],
                                      overwrite=overwrite)


MOLECULE_DATASETS = [n for n in ogb_graph_dataset_names()
                     if n.startswith('ogbg-mol')]
