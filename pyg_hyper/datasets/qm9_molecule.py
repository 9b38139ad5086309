r"""Turns one QM9 molecule (elements and XYZ coordinates) into the arrays of
a :class:`torch_geometric.datasets.QM9` graph.

Kept apart from the dataset class so that worker processes import only RDKit
and NumPy, and so that both raw sources (the ``qm9pack`` CSVs and PyG's own
``gdb9.sdf``) share one featurizer and give identical graphs.
"""
import contextlib
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'ATOM_TYPES',
    'BOND_TYPES',
    'STATUS_CODES',
    'parse_elements',
    'parse_xyz',
    'mol_from_xyz',
    'featurize',
    'process_rows',
]

#: The one-hot order of PyG's atom types (columns 0-4 of ``x``).
ATOM_TYPES = {'H': 0, 'C': 1, 'N': 2, 'O': 3, 'F': 4}
#: The one-hot order of PyG's bond types (columns of ``edge_attr``).
BOND_TYPES = ('SINGLE', 'DOUBLE', 'TRIPLE', 'AROMATIC')

#: How the bonds of a molecule were obtained, from best to worst.
#: ``ok``: bond orders from the coordinates agree with the SMILES;
#: ``hueckel``: the distance-based connectivity failed (strained rings put
#: non-bonded atoms within bonding distance) and extended Hueckel theory gave
#: bonds that agree with the SMILES; ``smiles_mismatch``: bonds were determined
#: from the coordinates but disagree with the SMILES (kept: the targets belong
#: to the geometry); ``parse_failed``: no valid bond orders could be found, the
#: graph holds the distance-based connectivity as single bonds.
STATUS_CODES = ('ok', 'hueckel', 'smiles_mismatch', 'parse_failed')

_TYPE_OF_Z = np.zeros(10, dtype=np.int64)
_TYPE_OF_Z[[1, 6, 7, 8, 9]] = [ATOM_TYPES[s] for s in 'HCNOF']


def parse_elements(text: str) -> List[str]:
    """Parses qm9pack's ``"['C','H',...]"`` element lists."""
    return [e.strip().strip("'\"") for e in text.strip('[]').split(',')]


def parse_xyz(text: str) -> np.ndarray:
    """Parses qm9pack's ``"[[x,y,z],...]"`` coordinates (Å) to ``[N, 3]``."""
    flat = text.replace('[', '').replace(']', '').split(',')
    return np.asarray(flat, dtype=np.float64).reshape(-1, 3)


def mol_from_xyz(elements: Sequence[str], pos: np.ndarray):
    """An RDKit molecule with atoms in XYZ order, a 3D conformer and no
    bonds."""
    from rdkit import Chem

    # RDKit's C++ XYZ reader is faster than adding atoms from Python. It
    # rejects scientific notation, hence fixed point (QM9 gives 10 digits).
    lines = [str(len(elements)), ''] + [
        f'{e} {x:.10f} {y:.10f} {z:.10f}'
        for e, (x, y, z) in zip(elements, pos.tolist())
    ]
    mol = Chem.MolFromXYZBlock('\n'.join(lines))
    if mol is None:
        raise ValueError(f'RDKit could not read the coordinates of '
                         f'{"".join(elements)}')
    return mol


@contextlib.contextmanager
def _quiet_stdout():
    # RDKit's Hueckel code (YAeHMOP) prints warnings straight to file
    # descriptors 1 and 2, which Python-level redirection cannot catch.
    try:
        fd, fd2 = os.dup(1), os.dup(2)
    except OSError:  # pragma: no cover - no stdout at all
        yield
        return
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 1)
        os.dup2(fd2, 2)
        os.close(fd)
        os.close(fd2)


def _canonical(mol) -> str:
    from rdkit import Chem
    return Chem.MolToSmiles(mol, isomericSmiles=False)


def _reference_smiles(smiles: str) -> Tuple[Optional[str], int]:
    """Canonical SMILES with every hydrogen as an atom, and the formal
    charge, of the dataset's SMILES (``None`` if it does not parse)."""
    from rdkit import Chem
    ref = Chem.MolFromSmiles(smiles)
    if ref is None:
        return None, 0
    return _canonical(Chem.AddHs(ref)), Chem.GetFormalCharge(ref)


def _bonds_from_xyz(elements, pos, smiles: Optional[str]):
    """Determines bonds from coordinates, checks them against the SMILES and
    returns ``(mol, status)``."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    ref, charge = (None, 0) if smiles is None else _reference_smiles(smiles)
    for use_hueckel in (False, True):
        mol = Chem.Mol(mol_from_xyz(elements, pos))
        try:
            if use_hueckel:
                with _quiet_stdout():
                    rdDetermineBonds.DetermineBonds(mol, useHueckel=True,
                                                    charge=charge)
            else:
                rdDetermineBonds.DetermineBonds(mol, charge=charge)
        except (ValueError, RuntimeError):
            continue
        # A SMILES that does not parse cannot confirm the bonds either.
        if smiles is not None and (ref is None or _canonical(mol) != ref):
            return mol, 'smiles_mismatch'
        return mol, 'hueckel' if use_hueckel else 'ok'
    # Last resort, so that no molecule is dropped (dropping would shift the
    # standard split): connectivity only, every bond single.
    mol = Chem.Mol(mol_from_xyz(elements, pos))
    rdDetermineBonds.DetermineConnectivity(mol)
    return mol, 'parse_failed'


def featurize(mol, sanitize: bool = True) -> Dict[str, np.ndarray]:
    """PyG's QM9 atom and bond features of an RDKit molecule with explicit
    hydrogens, in the molecule's atom order.

    ``x`` columns: one-hot H/C/N/O/F, atomic number, aromatic, sp, sp2, sp3,
    number of bonded hydrogens. Aromaticity and hybridization are perceived
    (partial sanitization when :obj:`sanitize` is set; molecules from
    ``rdDetermineBonds`` are already sanitized), not read from an
    unsanitized file: PyG's own processing reads ``gdb9.sdf`` with
    ``sanitize=False`` and so leaves every atom's aromaticity and
    hybridization unset (``x[:, 6:10]`` all zero) and every bond Kekule
    (pyg-team/pytorch_geometric#2163). Here aromatic rings get
    ``AROMATIC`` bonds and those columns are set.
    """
    from rdkit import Chem
    from rdkit.Chem.rdchem import HybridizationType

    if sanitize:
        flags = (Chem.SanitizeFlags.SANITIZE_SETAROMATICITY
                 | Chem.SanitizeFlags.SANITIZE_SETCONJUGATION
                 | Chem.SanitizeFlags.SANITIZE_SETHYBRIDIZATION)
        mol.UpdatePropertyCache(strict=False)
        Chem.SanitizeMol(mol, flags, catchErrors=True)

    # One pass over atoms and one over bonds: RDKit's Python sequence
    # wrappers are the slowest part of building 130k graphs.
    n = mol.GetNumAtoms()
    atoms = np.array([(a.GetAtomicNum(), a.GetIsAromatic(),
                       int(a.GetHybridization()))
                      for a in (mol.GetAtomWithIdx(i) for i in range(n))],
                     dtype=np.int64).reshape(n, 3)
    z = atoms[:, 0]
    x = np.zeros((n, 11), dtype=np.float32)
    x[np.arange(n), _TYPE_OF_Z[z]] = 1.
    x[:, 5] = z
    x[:, 6] = atoms[:, 1]
    hyb = atoms[:, 2]
    for col, kind in ((7, HybridizationType.SP), (8, HybridizationType.SP2),
                      (9, HybridizationType.SP3)):
        x[:, col] = hyb == int(kind)

    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx(),
                       b.GetBondTypeAsDouble()) for b in mol.GetBonds()],
                     dtype=np.float64).reshape(-1, 3)
    ij = bonds[:, :2].astype(np.int64)
    edge_index = np.concatenate([ij.T, ij[:, ::-1].T], axis=1)
    order = bonds[:, 2]
    # Bond order 1, 2, 3, 1.5 -> single, double, triple, aromatic.
    kind = np.where(order == 1.5, 3, np.clip(order, 1, 3) - 1)
    edge_type = np.concatenate([kind, kind]).astype(np.int8)
    # Same edge order as PyG: sorted by (source, target).
    perm = np.argsort(edge_index[0] * n + edge_index[1], kind='stable')
    edge_index, edge_type = edge_index[:, perm], edge_type[perm]
    # Bonded hydrogens per atom (PyG counts them on the graph, too).
    x[:, 10] = np.bincount(edge_index[1], weights=(z == 1)[edge_index[0]].astype(np.float64),
                           minlength=n)
    return {'z': z, 'x': x, 'edge_index': edge_index, 'edge_type': edge_type,
            'smiles': Chem.MolToSmiles(mol, isomericSmiles=True)}


def process_rows(rows: Sequence[Tuple]) -> Dict[str, object]:
    """Worker entry point: featurizes a chunk of ``(elements, xyz, smiles)``
    rows (raw qm9pack strings) and returns the chunk's arrays concatenated,
    which is far cheaper to send between processes than one object per
    molecule."""
    from rdkit import RDLogger
    RDLogger.DisableLog('rdApp.*')

    parts: Dict[str, List] = {k: [] for k in ('z', 'pos', 'x', 'edge_index',
                                              'edge_type')}
    num_atoms, num_edges, smiles_out, status = [], [], [], []
    for elements, xyz, smiles in rows:
        elements = parse_elements(elements)
        pos = parse_xyz(xyz)
        if pos.shape[0] != len(elements):
            raise ValueError(f"QM9 row has {len(elements)} elements but "
                             f"{pos.shape[0]} coordinates")
        mol, code = _bonds_from_xyz(elements, pos, smiles)
        feats = featurize(mol, sanitize=code == 'parse_failed')
        for key in ('z', 'x', 'edge_index', 'edge_type'):
            parts[key].append(feats[key])
        parts['pos'].append(pos.astype(np.float32))
        num_atoms.append(len(elements))
        num_edges.append(feats['edge_index'].shape[1])
        smiles_out.append(feats['smiles'])
        status.append(STATUS_CODES.index(code))
    out: Dict[str, object] = {
        key: np.concatenate(value, axis=-1 if key == 'edge_index' else 0)
        for key, value in parts.items()
    }
    out['num_atoms'] = np.array(num_atoms, dtype=np.int64)
    out['num_edges'] = np.array(num_edges, dtype=np.int64)
    out['smiles'] = smiles_out
    out['status'] = np.array(status, dtype=np.int8)
    return out
