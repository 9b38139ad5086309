import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

import torch_geometric.datasets.qm9 as pyg_qm9
from torch_geometric.loader import DataLoader

from pyg_hyper.datasets import QM9, qm9_standard_split, target_statistics
from pyg_hyper.datasets.qm9 import (
    HARTREE_TO_EV,
    KCALMOL_TO_EV,
    QM9_TARGETS,
    atom_energy_table,
    find_qm9pack_data,
)
from pyg_hyper.datasets.qm9_molecule import BOND_TYPES

QM9PACK = find_qm9pack_data()
needs_qm9pack = pytest.mark.skipif(
    QM9PACK is None, reason="qm9pack is not installed (pip install qm9pack)")

# Methane (gdb_1) as torch_geometric.datasets.QM9 stores it: the raw QM9
# values converted with the units of PyG's documented target table (eV for
# orbital energies, ZPVE and U0/U/H/G; atomization energies from
# gdb9.sdf.csv's kcal/mol, e.g. U0_atom = -395.999594 kcal/mol).
METHANE_PYG = [
    0.0, 13.21, -0.3877 * 27.211386246, 0.1171 * 27.211386246,
    0.5048 * 27.211386246, 35.3641, 0.044749 * 27.211386246,
    -40.47893 * 27.211386246, -40.476062 * 27.211386246,
    -40.475117 * 27.211386246, -40.498597 * 27.211386246, 6.469,
    -395.999594 * 0.04336414, -398.643290 * 0.04336414,
    -401.014647 * 0.04336414, -372.471772 * 0.04336414,
    157.7118, 157.70997, 157.70699,
]


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp('qm9')
    return QM9(str(root), max_molecules=40, num_workers=1, log=False)


def test_constants_match_pyg():
    assert HARTREE_TO_EV == pyg_qm9.HAR2EV
    assert KCALMOL_TO_EV == pyg_qm9.KCALMOL2EV
    assert len(QM9_TARGETS) == pyg_qm9.conversion.numel() == 19


@needs_qm9pack
def test_atomref_matches_pyg(small):
    for target, refs in pyg_qm9.atomrefs.items():
        ours = small.atomref(target)
        if 7 <= target <= 10:
            expected = torch.tensor(refs, dtype=torch.float)
            torch.testing.assert_close(ours.view(-1)[[1, 6, 7, 8, 9]],
                                       expected, rtol=0, atol=1e-4)
        else:
            assert ours is None


@needs_qm9pack
def test_attributes_like_pyg(small):
    assert len(small) == 40
    data = small[0]
    assert data.name == 'gdb_1' and int(data.idx) == 0
    assert data.smiles == '[H]C([H])([H])[H]'
    assert data.z.tolist() == [6, 1, 1, 1, 1]
    assert data.pos.shape == (5, 3) and data.pos.dtype == torch.float
    assert data.x.shape == (5, 11)
    # C: one-hot C, Z=6, not aromatic, sp3, 4 hydrogens.
    assert data.x[0].tolist() == [0, 1, 0, 0, 0, 6, 0, 0, 0, 1, 4]
    assert data.edge_index.tolist() == [[0, 0, 0, 0, 1, 2, 3, 4],
                                        [1, 2, 3, 4, 0, 0, 0, 0]]
    assert data.edge_attr.tolist() == [[1., 0., 0., 0.]] * 8
    assert data.y.shape == (1, 19)
    # Bond lengths in Angstrom: C-H of methane is 1.09 A.
    row, col = data.edge_index
    d = (data.pos[row] - data.pos[col]).norm(dim=-1)
    torch.testing.assert_close(d, torch.full_like(d, 1.0919), atol=2e-3,
                               rtol=0)


@needs_qm9pack
def test_units_match_pyg_table_on_methane(small):
    y = small[0].y.view(-1).double()
    torch.testing.assert_close(y, torch.tensor(METHANE_PYG,
                                               dtype=torch.double),
                               rtol=1e-6, atol=2e-4)


@needs_qm9pack
def test_units_on_water_and_bonds(small):
    water = small[2]
    assert water.name == 'gdb_3' and water.z.tolist() == [8, 1, 1]
    # Raw QM9 values (Hartree) of water, converted with PyG's factors.
    homo, lumo, gap, u0 = -0.2928, 0.0687, 0.3615, -76.404702
    y = water.y.view(-1).double()
    torch.testing.assert_close(
        y[[2, 3, 4, 7]],
        torch.tensor([homo, lumo, gap, u0], dtype=torch.double) * 27.211386246,
        rtol=1e-6, atol=1e-4)
    # Atomization energy = total energy - free-atom energies (PyG atomrefs).
    ref = pyg_qm9.atomrefs[7]
    torch.testing.assert_close(y[12], y[7] - (ref[3] + 2 * ref[0]),
                               rtol=0, atol=2e-3)
    # Hydrogen cyanide (gdb_5): a triple bond and sp atoms.
    hcn = small[4]
    assert hcn.z.tolist() == [6, 7, 1]
    types = hcn.edge_attr.argmax(-1)[(hcn.edge_index[0] == 0)
                                     & (hcn.edge_index[1] == 1)]
    assert types.tolist() == [2]
    assert hcn.x[:2, 7].tolist() == [1., 1.]


@needs_qm9pack
def test_dipole_is_qm9packs_debye_value(small):
    # mu (target 0) is in debye in qm9pack and in PyG: copied unscaled.
    # Methane's is 0, so the polar water (gdb_3) and HCN (gdb_5) are the
    # molecules that show a wrong factor. The CSV is read here on its own.
    import csv
    with open(osp.join(QM9PACK, 'qm9_part1.csv'), newline='') as f:
        dipole = {int(row['Index']): float(row['Dipole_debye'])
                  for row, _ in zip(csv.DictReader(f), range(5))}
    for i, name in ((2, 'gdb_3'), (4, 'gdb_5')):
        mol = small[i]
        assert mol.name == name and dipole[i + 1] > 1.0
        assert float(mol.y[0, 0]) == pytest.approx(dipole[i + 1], rel=1e-6)


@needs_qm9pack
def test_batches_with_pyg_loader(small):
    batch = next(iter(DataLoader(small, batch_size=8)))
    assert batch.num_graphs == 8 and batch.y.shape == (8, 19)
    assert batch.edge_index.max() < batch.num_nodes


@needs_qm9pack
def test_fast_collation_equals_pyg_collate(tmp_path, small):
    # A pre_transform makes the loader go through InMemoryDataset.collate.
    ref = QM9(str(tmp_path), max_molecules=40, num_workers=1, log=False,
              pre_transform=lambda d: d)
    fast_data, ref_data = small._data, ref._data
    for key in ('x', 'z', 'pos', 'edge_index', 'edge_attr', 'y', 'idx'):
        assert torch.equal(fast_data[key], ref_data[key]), key
        assert torch.equal(small.slices[key], ref.slices[key]), key
    assert fast_data.smiles == ref_data.smiles
    assert fast_data.name == ref_data.name


@needs_qm9pack
def test_zero_workers_build_in_process(tmp_path, monkeypatch):
    # As a DataLoader's num_workers=0: no pool is started.
    import multiprocessing

    def no_pool_context(*args, **kwargs):
        raise AssertionError('a process pool was asked for')

    monkeypatch.setattr(multiprocessing, 'get_context', no_pool_context)
    ds = QM9(str(tmp_path), max_molecules=600, num_workers=0, log=False)
    assert ds.num_workers == 1 and len(ds) == 600


def test_workers_give_identical_graphs(tmp_path, small):
    # 600 molecules span two chunks, so two processes really run.
    multi = QM9(str(tmp_path / 'a'), max_molecules=600, num_workers=2,
                log=False)
    assert len(multi) == 600
    assert multi.idx.tolist() == sorted(multi.idx.tolist())
    for i in (0, 39):
        a, b = multi[i], small[i]
        for key in ('x', 'z', 'pos', 'edge_index', 'edge_attr', 'y'):
            assert torch.equal(a[key], b[key])


def _write_local_csvs(raw, n, tamper):
    """qm9pack-format CSVs with the first n molecules, some SMILES
    replaced."""
    import pandas as pd
    os.makedirs(raw, exist_ok=True)
    df = pd.read_csv(osp.join(QM9PACK, 'qm9_part1.csv'), nrows=n)
    for row, smiles in tamper.items():
        df.loc[row, 'SMILES'] = smiles
    df.to_csv(osp.join(raw, 'qm9_part1.csv'), index=False)
    df.iloc[:0].to_csv(osp.join(raw, 'qm9_part2.csv'), index=False)
    df.iloc[:0].to_csv(osp.join(raw, 'qm9_part3.csv'), index=False)


@needs_qm9pack
def test_bond_disagreement_reported_not_dropped(tmp_path):
    # Methane labelled as ammonia, water with an unparsable SMILES.
    _write_local_csvs(str(tmp_path / 'raw'), 10, {0: 'N', 2: 'not-smiles'})
    with pytest.warns(UserWarning, match='smiles_mismatch'):
        ds = QM9(str(tmp_path), max_molecules=10, num_workers=1, log=False)
    assert len(ds) == 10
    assert ds.report['smiles_mismatch'] == [0, 2]
    assert ds.report['counts']['smiles_mismatch'] == 2
    assert ds.report['counts']['ok'] + ds.report['counts']['hueckel'] == 8
    # The report also lands next to the cache.
    assert any(f.endswith('.report.json')
               for f in os.listdir(tmp_path / 'processed'))
    # The molecule keeps the bonds of its geometry.
    assert ds[0].z.tolist() == [6, 1, 1, 1, 1]
    assert ds[0].edge_index.size(1) == 8


@needs_qm9pack
def test_corrupt_cache_is_rebuilt(tmp_path):
    root = str(tmp_path)
    ds = QM9(root, max_molecules=12, num_workers=1, log=False)
    expected = ds._data.y.clone()
    path = ds.processed_paths[0]
    with open(path, 'r+b') as f:  # truncate: an interrupted write
        f.truncate(os.path.getsize(path) // 2)
    with pytest.warns(UserWarning, match='size differs'):
        again = QM9(root, max_molecules=12, num_workers=1, log=False)
    assert torch.equal(again._data.y, expected)

    with open(path, 'r+b') as f:  # same size, flipped bytes
        f.seek(100)
        f.write(b'\x00' * 16)
    with pytest.warns(UserWarning, match='checksum'):
        again = QM9(root, max_molecules=12, num_workers=1, log=False)
    assert torch.equal(again._data.y, expected)

    os.remove(ds.processed_paths[1])  # no manifest: a partial cache
    with pytest.warns(UserWarning, match='manifest'):
        again = QM9(root, max_molecules=12, num_workers=1, log=False)
    assert torch.equal(again._data.y, expected)
    assert os.path.exists(ds.processed_paths[1])


class _SetTargets:
    def __call__(self, data):
        data.y = torch.full_like(data.y, -1.0)
        return data

    def __repr__(self):
        return 'SetTargets()'


def test_cache_of_another_pre_transform_is_rebuilt(tmp_path):
    # PyG records pre_transform once per folder; building another variant
    # there (here 30 molecules) overwrote that record, and the 12-molecule
    # cache built with a transform was then served without one.
    root = str(tmp_path)
    marked = QM9(root, max_molecules=12, num_workers=1, log=False,
                 pre_transform=_SetTargets())
    assert (marked._data.y == -1).all()
    QM9(root, max_molecules=30, num_workers=1, log=False)
    with pytest.warns(UserWarning, match=r"built with pre_transform "
                      r"SetTargets\(\) and pre_filter None, not None and "
                      r"None"):
        plain = QM9(root, max_molecules=12, num_workers=1, log=False)
    assert not (plain._data.y == -1).any()
    # The same transform again: the cache is used as it is.
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        QM9(root, max_molecules=12, num_workers=1, log=False)


def test_damaged_pyg_records_do_not_fail_the_load(tmp_path):
    root = str(tmp_path)
    QM9(root, max_molecules=12, num_workers=1, log=False)
    record = tmp_path / 'processed' / 'pre_transform.pt'
    record.write_bytes(b'')  # PyG read it first: a bare EOFError
    with pytest.warns(UserWarning, match=r"\['pre_transform\.pt'\] .* "
                      r"cannot be read"):
        again = QM9(root, max_molecules=12, num_workers=1, log=False)
    assert len(again) == 12


def _write_pyg_raw(raw, ds, skipped_number):
    """PyG's raw layout (gdb9.sdf, gdb9.sdf.csv, uncharacterized.txt) for the
    molecules of `ds`, plus one uncharacterized molecule that must be
    skipped."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    from pyg_hyper.datasets.qm9_molecule import mol_from_xyz

    os.makedirs(raw, exist_ok=True)
    writer = Chem.SDWriter(osp.join(raw, 'gdb9.sdf'))
    writer.SetKekulize(True)
    csv = ['mol_id,A,B,C,mu,alpha,homo,lumo,gap,r2,zpve,u0,u298,h298,g298,'
           'cv,u0_atom,u298_atom,h298_atom,g298_atom']
    molecules = [ds[i] for i in range(len(ds))]
    molecules.insert(1, molecules[0])  # stands in for the skipped molecule
    for k, data in enumerate(molecules):
        symbols = [Chem.GetPeriodicTable().GetElementSymbol(int(z))
                   for z in data.z]
        mol = mol_from_xyz(symbols, data.pos.double().numpy())
        rdDetermineBonds.DetermineBonds(mol)
        mol.SetProp('_Name', f'gdb_{k + 1}')
        writer.write(mol)
        y = data.y.view(-1).double().numpy().copy()
        y[[2, 3, 4, 6, 7, 8, 9, 10]] /= HARTREE_TO_EV
        y[12:16] /= KCALMOL_TO_EV
        row = np.concatenate([y[16:], y[:16]])
        csv.append(f'gdb_{k + 1},' + ','.join(f'{v:.10f}' for v in row))
    writer.close()
    with open(osp.join(raw, 'gdb9.sdf.csv'), 'w') as f:
        f.write('\n'.join(csv) + '\n')
    header = [f'header line {i}' for i in range(9)]
    with open(osp.join(raw, 'uncharacterized.txt'), 'w') as f:
        f.write('\n'.join(header + [f'  {skipped_number}  C1H4  0.1'] +
                          ['footer', '']))


@needs_qm9pack
def test_pyg_raw_files_give_the_same_graphs(tmp_path, small):
    subset = small.index_select(range(8))
    _write_pyg_raw(str(tmp_path / 'raw'), subset, skipped_number=2)
    pyg = QM9(str(tmp_path), log=False)  # source='auto' finds the files
    assert pyg.source == 'pyg' and len(pyg) == 8
    # Molecule 2 is uncharacterized and skipped, so idx jumps as in PyG.
    assert pyg.idx.tolist()[:3] == [0, 2, 3]
    for i in range(8):
        a, b = pyg[i], subset[i]
        assert torch.equal(a.z, b.z)
        torch.testing.assert_close(a.pos, b.pos, atol=1e-4, rtol=0)
        assert torch.equal(a.edge_index, b.edge_index)
        assert torch.equal(a.edge_attr, b.edge_attr)
        assert torch.equal(a.x, b.x)
        torch.testing.assert_close(a.y, b.y, rtol=1e-6, atol=1e-4)


@needs_qm9pack
def test_pyg_raw_files_against_pygs_own_qm9(tmp_path):
    # The reference is torch_geometric.datasets.QM9 processing the same raw
    # files. It reads gdb9.sdf unsanitized: Kekule bonds and no perceived
    # aromaticity or hybridization (x[:, 6:10] is zero for every atom,
    # pyg-team/pytorch_geometric#2163). Ours perceives both (documented):
    # everything else must be identical.
    from torch_geometric.datasets import QM9 as PyGQM9

    # Molecule 49 (pyrrole) is the first with an aromatic ring.
    subset = QM9(str(tmp_path / 'pack'), max_molecules=60, num_workers=1,
                 log=False)
    _write_pyg_raw(str(tmp_path / 'ours' / 'raw'), subset, skipped_number=2)
    shutil.copytree(tmp_path / 'ours' / 'raw', tmp_path / 'ref' / 'raw')
    ours = QM9(str(tmp_path / 'ours'), log=False)
    ref = PyGQM9(str(tmp_path / 'ref'))
    assert len(ours) == len(ref) == 60
    aromatic_bonds = 0
    for a, b in zip(ours, ref):
        assert torch.equal(a.z, b.z) and torch.equal(a.idx, b.idx)
        assert a.name == b.name
        assert torch.equal(a.pos, b.pos)
        assert torch.equal(a.edge_index, b.edge_index)
        torch.testing.assert_close(a.y, b.y, rtol=1e-6, atol=1e-5)
        cols = [0, 1, 2, 3, 4, 5, 10]
        assert torch.equal(a.x[:, cols], b.x[:, cols])
        assert (b.x[:, 6:10] == 0).all()
        kind_a, kind_b = a.edge_attr.argmax(1), b.edge_attr.argmax(1)
        aromatic = kind_a == BOND_TYPES.index('AROMATIC')
        assert torch.equal(kind_a[~aromatic], kind_b[~aromatic])
        assert (kind_b[aromatic] <= 1).all()  # single or double in PyG's
        aromatic_bonds += int(aromatic.sum())
    assert aromatic_bonds > 0


def test_missing_pyg_raw_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='gdb9.sdf'):
        QM9(str(tmp_path), source='pyg', log=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='Unknown QM9 source'):
        QM9(str(tmp_path), source='figshare')
    with pytest.raises(ValueError, match="'num_workers'"):
        QM9(str(tmp_path), num_workers=-1)
    with pytest.raises(ValueError, match='max_molecules'):
        QM9(str(tmp_path), max_molecules=0)


@needs_qm9pack
def test_split_of_a_filtered_dataset_is_refused(small):
    # What a pre_filter leaves of the full dataset (simulated on the small
    # one: built without max_molecules, but short of 130,831 molecules).
    filtered = small.copy()
    filtered.max_molecules = None
    with pytest.raises(ValueError, match="defined on all 130,831 molecules, "
                       "but this dataset holds 40 .*pre_filter"):
        filtered.get_idx_split()
    split = filtered.get_idx_split(train_size=30, valid_size=5)
    assert [len(split[k]) for k in ('train', 'valid', 'test')] == [30, 5, 5]


def test_standard_split():
    split = qm9_standard_split()
    assert [len(split[k]) for k in ('train', 'valid', 'test')] == \
        [110000, 10000, 10831]
    perm = np.random.RandomState(42).permutation(130831)
    assert np.array_equal(torch.cat([split['train'], split['valid'],
                                     split['test']]).numpy(), perm)
    with pytest.raises(ValueError, match='exceed'):
        qm9_standard_split(100, 90, 20)
    # Negative sizes used to overlap the training and test sets silently.
    with pytest.raises(ValueError, match="non-negative integer 'valid_size' "
                       r"\(got -10\)"):
        qm9_standard_split(130831, 110000, -10)
    with pytest.raises(ValueError, match="positive integer 'train_size' "
                       r"\(got -5\)"):
        qm9_standard_split(130831, -5, 10)


@needs_qm9pack
def test_target_statistics_use_training_molecules_only(small):
    split = small.get_idx_split()
    assert sum(len(v) for v in split.values()) == len(small)
    before = target_statistics(small, 7, split['train'], per_atom=True,
                               atomref='qm9')
    # Corrupting validation and test targets must not move the statistics.
    poisoned = small.copy()
    held_out = torch.cat([split['valid'], split['test']])
    poisoned._data.y[held_out] = 1e6
    after = target_statistics(poisoned, 7, split['train'], per_atom=True,
                              atomref='qm9')
    assert (before.mean, before.std) == (after.mean, after.std)
    # U0 minus the free atoms is the atomization energy (target 12).
    u0_atom = small._data.y[split['train'], 12].double()
    n = small.slices['z'].diff()[split['train']].double()
    assert before.mean == pytest.approx(float((u0_atom / n).mean()),
                                        abs=1e-3)

    fit = target_statistics(small, 4, split['train'], per_atom=False,
                            atomref='fit')
    assert fit.atomref.shape == (100, ) and not fit.per_atom
    with pytest.raises(ValueError, match='targets 7-10'):
        target_statistics(small, 4, split['train'], atomref='qm9')
    with pytest.raises(ValueError, match='target'):
        target_statistics(small, 19, split['train'])
    with pytest.raises(ValueError, match='subset view'):
        target_statistics(small[:10], 7, torch.arange(5))


def test_hueckel_fallback_is_quiet_and_bonds_strained_rings(capfd):
    from pyg_hyper.datasets.qm9_molecule import _bonds_from_xyz, featurize

    # gdb_101, bicyclo[1.1.0]butane-like C1C2CC1C2: the distance rule bonds
    # the bridgeheads of the strained ring; Hueckel connectivity does not.
    from rdkit import Chem
    from rdkit.Chem import AllChem
    ref = Chem.AddHs(Chem.MolFromSmiles('C1C2CC1C2'))
    AllChem.EmbedMolecule(ref, randomSeed=0)
    AllChem.MMFFOptimizeMolecule(ref)
    symbols = [a.GetSymbol() for a in ref.GetAtoms()]
    pos = ref.GetConformer().GetPositions()
    mol, status = _bonds_from_xyz(symbols, pos, 'C1C2CC1C2')
    assert status in ('ok', 'hueckel')
    feats = featurize(mol, sanitize=False)
    assert feats['edge_index'].shape[1] == 2 * ref.GetNumBonds()
    out, err = capfd.readouterr()
    assert 'Warning' not in out and 'Warning' not in err


@needs_qm9pack
def test_target_statistics_check_train_idx(small):
    mask = torch.zeros(len(small), dtype=torch.bool)
    mask[10:30] = True
    by_index = target_statistics(small, 0, mask.nonzero().view(-1),
                                 per_atom=False)
    # A cast to long used to turn the mask into the indices 0 and 1.
    by_mask = target_statistics(small, 0, mask, per_atom=False)
    assert (by_mask.mean, by_mask.std) == (by_index.mean, by_index.std)
    with pytest.raises(ValueError, match=r"boolean mask of shape \[39\] "
                       r"for a dataset of 40 molecules"):
        target_statistics(small, 0, mask[1:])
    # Negative indices used to count from the end, silently.
    with pytest.raises(ValueError, match=r"indices from -1 to 5; expected "
                       r"a boolean mask of shape \[40\] or integer indices "
                       r"in \[0, 39\]"):
        target_statistics(small, 0, torch.tensor([-1, 5]))
    with pytest.raises(ValueError, match='indices from 3 to 40'):
        target_statistics(small, 0, torch.tensor([3, 40]))
    with pytest.raises(ValueError, match='dtype torch.float32'):
        target_statistics(small, 0, torch.tensor([1., 2.]))
    with pytest.raises(ValueError, match='selects no molecule'):
        target_statistics(small, 0, torch.zeros(0, dtype=torch.long))


def _write_csv_lines(raw, parts):
    """qm9pack-format CSVs holding, per part, the given lines (header
    added)."""
    os.makedirs(raw, exist_ok=True)
    with open(osp.join(QM9PACK, 'qm9_part1.csv')) as f:
        header = f.readline()
    for name, lines in zip(('qm9_part1.csv', 'qm9_part2.csv',
                            'qm9_part3.csv'), parts):
        with open(osp.join(raw, name), 'w') as f:
            f.write(header + ''.join(lines))


def _qm9pack_lines(n):
    with open(osp.join(QM9PACK, 'qm9_part1.csv')) as f:
        f.readline()
        return [f.readline() for _ in range(n)]


@needs_qm9pack
def test_damaged_qm9pack_csv_is_named(tmp_path):
    lines = _qm9pack_lines(6)
    # An interrupted copy: the last row lost its last six properties, which
    # used to become NaN targets without a word.
    cut = lines[:5] + [lines[5].rstrip('\n').rsplit(',', 6)[0] + '\n']
    _write_csv_lines(str(tmp_path / 'a' / 'raw'), [cut, [], []])
    with pytest.raises(ValueError, match=r"qm9_part1.csv' is damaged: 1 "
                       r"row\(s\) have missing or non-numeric values in "
                       r"columns \['ZPVE_au', .*'Heatcapacity"
                       r"_Cv_cal_mol_K'\]: '.*qm9_part1.csv' line 7 "
                       r"\(Index 6\)"):
        QM9(str(tmp_path / 'a'), max_molecules=6, num_workers=1, log=False)

    text = lines[:2] + [lines[2].replace(',-0.2928,', ',oops,')]
    assert text[2] != lines[2]
    _write_csv_lines(str(tmp_path / 'b' / 'raw'), [text, [], []])
    with pytest.raises(ValueError, match=r"columns \['HOMO_au'\]: .*line 4 "
                       r"\(Index 3\)"):
        QM9(str(tmp_path / 'b'), max_molecules=3, num_workers=1, log=False)

    # Cut inside a quoted cell: pandas' own error named no file.
    _write_csv_lines(str(tmp_path / 'd' / 'raw'),
                     [lines[:4] + [lines[4][:120]], [], []])
    with pytest.raises(ValueError, match=r"qm9_part1.csv' is damaged: Error "
                       r"tokenizing data.*EOF inside string.*Reinstall"):
        QM9(str(tmp_path / 'd'), max_molecules=6, num_workers=1, log=False)

    # Methane again in part 2: two molecules with GDB-9 number 1.
    _write_csv_lines(str(tmp_path / 'c' / 'raw'),
                     [lines[:3], lines[:1], []])
    with pytest.raises(ValueError, match=r"list 1 GDB-9 number\(s\) more "
                       r"than once in column 'Index' \(first: \[1\]\): "
                       r"'.*qm9_part1.csv' line 2 \(Index 1\), "
                       r"'.*qm9_part2.csv' line 2 \(Index 1\)"):
        QM9(str(tmp_path / 'c'), max_molecules=4, num_workers=1, log=False)


@needs_qm9pack
def test_report_lists_molecule_idx_not_positions(tmp_path):
    # Without gdb_2, the molecules after the gap sit one place before
    # their idx: the report must name gdb_4 (unparsable SMILES) and gdb_6
    # (SMILES of another molecule) by idx 3 and 5, not positions 2 and 4.
    lines = _qm9pack_lines(6)
    assert ',"C#C",' in lines[3] and ',"C=O",' in lines[5]
    kept = [lines[0], lines[2], lines[3].replace(',"C#C",', ',"not-smiles",'),
            lines[4], lines[5].replace(',"C=O",', ',"N",')]
    _write_csv_lines(str(tmp_path / 'raw'), [kept, [], []])
    with pytest.warns(UserWarning, match='smiles_mismatch'):
        ds = QM9(str(tmp_path), max_molecules=5, num_workers=1, log=False)
    assert ds.idx.tolist() == [0, 2, 3, 4, 5]
    assert ds.report['smiles_mismatch'] == [3, 5]
    assert [ds[i].name for i in (2, 4)] == ['gdb_4', 'gdb_6']


@needs_qm9pack
def test_truncated_report_is_rebuilt(tmp_path):
    ds = QM9(str(tmp_path), max_molecules=6, num_workers=1, log=False)
    expected = ds.report
    path = ds.processed_paths[2]
    with open(path, 'r+') as f:  # an interrupted write
        f.truncate(os.path.getsize(path) // 2)
    with pytest.warns(UserWarning, match=r"its report 'qm9_qm9pack_6_v1"
                      r".report.json' is missing or unreadable"):
        again = QM9(str(tmp_path), max_molecules=6, num_workers=1,
                    log=False)
    assert again.report == expected
    assert torch.equal(again._data.y, ds._data.y)


@needs_qm9pack
def test_root_with_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    ds = QM9('~/qm9', max_molecules=6, num_workers=1, log=False)
    assert ds.root == str(tmp_path / 'qm9')
    path = ds.processed_paths[0]
    assert path.startswith(str(tmp_path / 'qm9' / 'processed'))
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)
    # The manifest check used to look for '~/qm9' literally and skip.
    with pytest.warns(UserWarning, match='size differs'):
        QM9('~/qm9', max_molecules=6, num_workers=1, log=False)


@needs_qm9pack
def test_fitted_atomref_recovers_exact_element_energies(small):
    # Guards against torch's default CPU lstsq driver ('gelsy') on the
    # rank-deficient element-count matrix (Z = 0, 2-5 never occur): it
    # returned a zero or garbage fit depending on stale memory
    # (pytorch/pytorch#187411). Targets that are exactly a sum of
    # per-element energies must give those energies back, every call.
    from pyg_hyper.datasets.qm9 import _num_atoms
    ds = small.copy()
    ref = torch.zeros(10, dtype=torch.float64)
    ref[[1, 6, 7, 8, 9]] = torch.tensor([-0.5, -37.8, -54.6, -75.1, -99.7],
                                        dtype=torch.float64)
    graph = torch.repeat_interleave(torch.arange(len(ds)), _num_atoms(ds))
    energy = torch.zeros(len(ds), dtype=torch.float64).index_add_(
        0, graph, ref[ds._data.z])
    ds._data.y[:, 4] = energy.float()
    train = torch.arange(30)
    present = ds._data.z[:int(ds.slices['z'][30])].unique()
    absent = torch.ones(100, dtype=torch.bool)
    absent[present] = False
    for _ in range(5):  # the failure depends on stale memory: try again
        stats = target_statistics(ds, 4, train, per_atom=False,
                                  atomref='fit')
        torch.testing.assert_close(stats.atomref[present].double(),
                                   ref[present], atol=1e-3, rtol=0)
        assert not stats.atomref[absent].any()
        assert abs(stats.mean) < 1e-3


@needs_qm9pack
def test_fitted_atomref_uses_training_molecules_only(small):
    # Guards against fitting the per-element references on all molecules,
    # which leaks validation and test targets into the normalization.
    split = small.get_idx_split()
    before = target_statistics(small, 4, split['train'], atomref='fit')
    poisoned = small.copy()
    held_out = torch.cat([split['valid'], split['test']])
    poisoned._data.y[held_out] = 1e6
    after = target_statistics(poisoned, 4, split['train'], atomref='fit')
    assert torch.equal(before.atomref, after.atomref)
    assert (before.mean, before.std) == (after.mean, after.std)


@needs_qm9pack
def test_target_statistics_std_is_unbiased(small):
    # Guards against a population (ddof=0) std of the training targets.
    train = torch.arange(10)
    stats = target_statistics(small, 0, train, per_atom=False)
    y = small._data.y[train, 0].double()
    assert stats.std == pytest.approx(float(y.std(unbiased=True)), rel=1e-9)


def test_atom_energy_table_units():
    # Guards against every unit other than 'eV' silently giving Hartree.
    hartree = atom_energy_table('Hartree')
    assert hartree[1, 0] == -0.500273 and hartree[6, 3] == -37.861317
    torch.testing.assert_close(atom_energy_table(), hartree * HARTREE_TO_EV)
    with pytest.raises(ValueError, match="Unknown unit 'ev' \\(expected 'eV' "
                       "or 'Hartree'\\)"):
        atom_energy_table('ev')


@needs_qm9pack
def test_subset_split_rounds_the_standard_fractions(small):
    # Guards against truncating the standard 110k/10k fractions of a subset:
    # 40 * 110000 / 130831 = 33.6 -> 34; 40 * 10000 / 130831 = 3.06 -> 3.
    split = small.get_idx_split()
    assert [len(split[k]) for k in ('train', 'valid', 'test')] == [34, 3, 3]


@needs_qm9pack
def test_pyg_raw_source_honours_max_molecules(tmp_path, small):
    # Guards against an off-by-one reading max_molecules + 1 molecules from
    # PyG's raw files.
    _write_pyg_raw(str(tmp_path / 'raw'), small.index_select(range(8)),
                   skipped_number=2)
    ds = QM9(str(tmp_path), source='pyg', max_molecules=3, log=False)
    assert len(ds) == 3 and ds.idx.tolist() == [0, 2, 3]


class _MoreThanFourAtoms:
    def __call__(self, data):
        return data.num_nodes > 4

    def __repr__(self):
        return 'MoreThanFourAtoms()'


@needs_qm9pack
def test_cache_of_another_pre_filter_is_rebuilt(tmp_path):
    # Guards against the cache manifest comparing pre_transform only: a
    # cache built with a pre_filter must not be served without it.
    filtered = QM9(str(tmp_path), max_molecules=12, num_workers=1, log=False,
                   pre_filter=_MoreThanFourAtoms())
    assert len(filtered) < 12
    with pytest.warns(UserWarning, match=r"pre_filter MoreThanFourAtoms\(\)"):
        plain = QM9(str(tmp_path), max_molecules=12, num_workers=1,
                    log=False)
    assert len(plain) == 12


@needs_qm9pack
def test_molecules_are_ordered_by_gdb_number_across_parts(tmp_path):
    # Guards against keeping the CSV parts' row order instead of sorting by
    # GDB-9 number (idx and splits refer to that order).
    lines = _qm9pack_lines(6)
    _write_csv_lines(str(tmp_path / 'raw'), [lines[3:], lines[:3], []])
    ds = QM9(str(tmp_path), max_molecules=6, num_workers=1, log=False)
    assert ds.idx.tolist() == [0, 1, 2, 3, 4, 5]
    assert ds[0].name == 'gdb_1'


@needs_qm9pack
def test_gdb_number_zero_is_refused(tmp_path):
    # Guards against accepting GDB-9 number 0 (numbers start at 1; idx would
    # become -1).
    lines = _qm9pack_lines(3)
    assert '.xyz",1,' in lines[0]
    lines[0] = lines[0].replace('.xyz",1,', '.xyz",0,')
    _write_csv_lines(str(tmp_path / 'raw'), [lines, [], []])
    with pytest.raises(ValueError, match='not positive integers'):
        QM9(str(tmp_path), max_molecules=3, num_workers=1, log=False)


def test_process_rows_refuses_mismatched_coordinates():
    # Guards against a molecule whose element list and coordinates differ in
    # length being featurized anyway.
    from pyg_hyper.datasets.qm9_molecule import process_rows
    with pytest.raises(ValueError, match='2 elements but 1 coordinates'):
        process_rows([("['C','H']", '[[0.0,0.0,0.0]]', 'C')])
