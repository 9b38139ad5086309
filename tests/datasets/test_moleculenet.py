import gzip

import numpy as np
import pandas as pd
import pytest
import torch

from pyg_hyper.datasets import (
    OGBGraphDataset,
    build_ogb_dataset_from_csv,
    build_ogb_dataset_from_moleculenet,
    scaffold_split,
)
from tests.ogb_data import copy_ogb, no_network  # noqa: F401

GRAPH_FILES = ['edge', 'edge-feat', 'node-feat', 'num-node-list',
               'num-edge-list']
SPLIT_FILES = ['train', 'valid', 'test']


def read_text(path):
    with gzip.open(path, 'rt') as f:
        return f.read()


def assert_same_as_ogb(built, real):
    """Same graphs and split (file contents) and same labels. Labels are
    compared as values: some of OGB's ESOL labels differ from the CSV's in
    the last bit of a float64 (e.g. -5.7360000000000015 vs -5.736000000000001),
    which vanishes in the float32 the models see."""
    for name in GRAPH_FILES:
        assert read_text(built / 'raw' / f'{name}.csv.gz') == \
            read_text(real / 'raw' / f'{name}.csv.gz'), name
    for name in SPLIT_FILES:
        assert read_text(built / 'split' / 'scaffold' / f'{name}.csv.gz') == \
            read_text(real / 'split' / 'scaffold' / f'{name}.csv.gz'), name
    labels = [pd.read_csv(d / 'raw' / 'graph-label.csv.gz', header=None)
              for d in (built, real)]
    np.testing.assert_allclose(labels[0].values, labels[1].values,
                               rtol=1e-14, atol=0)
    np.testing.assert_array_equal(labels[0].values.astype(np.float32),
                                  labels[1].values.astype(np.float32))


def test_rebuild_reproduces_ogb_molesol(shared_data, tmp_path, no_network):
    csv = shared_data / 'MoleculeNet' / 'esol' / 'raw' / \
        'delaney-processed.csv'
    report = build_ogb_dataset_from_moleculenet(csv.parents[2], tmp_path,
                                                'molesol')
    assert report.num_rows == report.num_graphs == 1128
    assert report.num_invalid == 0
    assert report.split_sizes == {'train': 902, 'valid': 113, 'test': 113}
    assert_same_as_ogb(tmp_path / 'ogbg_molesol',
                       shared_data / 'OGB' / 'ogbg_molesol')

    # And the loader sees the same tensors as from OGB's own files.
    built = OGBGraphDataset(tmp_path, 'molesol')
    real = OGBGraphDataset(
        copy_ogb(shared_data, 'ogbg-molesol', tmp_path / 'ogb'), 'molesol')
    for key in ('x', 'edge_index', 'edge_attr', 'y'):
        assert torch.equal(built._data[key], real._data[key]), key
    for part in SPLIT_FILES:
        assert torch.equal(built.get_idx_split()[part],
                           real.get_idx_split()[part])


def test_rebuild_reproduces_ogb_molbace(shared_data, tmp_path, no_network):
    # The original MoleculeNet bace.csv has no clean copy; OGB's own mapping
    # (label, SMILES, id) is the CSV here. Graphs and split are recomputed.
    real = shared_data / 'OGB' / 'ogbg_molbace'
    report = build_ogb_dataset_from_csv(real / 'mapping' / 'mol.csv.gz',
                                        tmp_path, 'ogbg-molbace', ['Class'],
                                        id_column='mol_id')
    assert report.num_graphs == 1513
    assert_same_as_ogb(tmp_path / 'ogbg_molbace', real)


def write_csv(path, smiles, labels=None):
    labels = labels if labels is not None else list(range(len(smiles)))
    pd.DataFrame({'Smiles': smiles, 'logS': labels}).to_csv(path, index=False)
    return path


def test_invalid_smiles_are_counted_and_reported(tmp_path):
    smiles = ['CCO', 'c1ccccc1', 'C1CC1(', 'CC(=O)O', '', 'CCN',
              'c1ccccc1CC', 'not_a_smiles', 'CCCl', 'OCC(O)CO']
    csv = write_csv(tmp_path / 'toy.csv', smiles)
    with pytest.warns(UserWarning, match='3 of 10 SMILES'):
        report = build_ogb_dataset_from_csv(csv, tmp_path, 'molesol',
                                            ['logS'])
    assert report.num_invalid == 3
    assert [row for row, _ in report.invalid] == [2, 4, 7]
    assert report.num_graphs == 7
    assert '3 invalid SMILES' in str(report)
    listed = pd.read_csv(tmp_path / 'ogbg_molesol' / 'mapping' /
                         'invalid_smiles.csv')
    assert listed['csv_row'].tolist() == [2, 4, 7]
    dataset = OGBGraphDataset(tmp_path, 'molesol')
    assert len(dataset) == 7
    # Labels stay attached to their molecules after the invalid rows go.
    assert dataset._data.y.view(-1).tolist() == [0., 1., 3., 5., 6., 8., 9.]
    assert sum(report.split_sizes.values()) == 7


def test_csv_without_smiles_column(tmp_path):
    csv = tmp_path / 'nosmiles.csv'
    pd.DataFrame({'mol': ['CCO'], 'logS': [1.0]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"no SMILES column 'smiles' \(its "
                       r"columns are: mol, logS\)"):
        build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['logS'])


def test_bad_build_arguments(tmp_path):
    csv = write_csv(tmp_path / 'toy.csv', ['CCO', 'CCN'])
    with pytest.raises(ValueError, match=r"has 12 task\(s\), but 1 label"):
        build_ogb_dataset_from_csv(csv, tmp_path, 'moltox21', ['logS'])
    with pytest.raises(ValueError, match="no label column 'y'"):
        build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['y'])
    with pytest.raises(ValueError, match='Unknown OGB graph dataset'):
        build_ogb_dataset_from_csv(csv, tmp_path, 'esol2', ['logS'])
    with pytest.raises(ValueError, match='not a molecule dataset'):
        build_ogb_dataset_from_csv(csv, tmp_path, 'ppa', ['logS'])
    with pytest.raises(ValueError, match='No MoleculeNet CSV is known'):
        build_ogb_dataset_from_moleculenet(tmp_path, tmp_path, 'molbace')
    build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['logS'])
    with pytest.raises(FileExistsError, match='overwrite=True'):
        build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['logS'])
    report = build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['logS'],
                                        overwrite=True)
    assert report.num_graphs == 2


def test_tiny_build_with_an_empty_split_part_loads(tmp_path):
    # Every acyclic molecule has the empty scaffold: all go to training.
    csv = write_csv(tmp_path / 'toy.csv', ['CCO', 'CCN', 'CCC', 'CCCl',
                                           'c1ccccc1'])
    with pytest.warns(UserWarning, match=r"leaves \['valid'\] empty .*: "
                      r"no model can be selected or tested on it"):
        report = build_ogb_dataset_from_csv(csv, tmp_path, 'molesol',
                                            ['logS'])
    assert report.split_sizes == {'train': 4, 'valid': 0, 'test': 1}
    split = OGBGraphDataset(tmp_path, 'molesol').get_idx_split()
    assert split['valid'].numel() == 0 and split['valid'].dtype == torch.long
    assert sorted(split['train'].tolist() + split['test'].tolist()) == \
        list(range(5))


def test_build_beside_ogbs_own_folder(tmp_path):
    # ogb prefers 'ogbg_molesol_pyg': a build beside it was never read.
    csv = write_csv(tmp_path / 'toy.csv', ['CCO', 'CCN'])
    (tmp_path / 'ogbg_molesol_pyg').mkdir()
    with pytest.raises(FileExistsError, match=r"ogbg_molesol_pyg' exists; "
                       r"pass overwrite=True"):
        build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['logS'])
    with pytest.warns(UserWarning, match='empty'):
        build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['logS'],
                                   overwrite=True)
    assert not (tmp_path / 'ogbg_molesol_pyg').exists()
    assert len(OGBGraphDataset(tmp_path, 'molesol')) == 2


def test_scaffold_split_keeps_scaffolds_together():
    # Three benzene derivatives share a scaffold, two cyclohexanes another,
    # acyclic molecules share the empty scaffold.
    smiles = ['c1ccccc1C', 'CCO', 'c1ccccc1O', 'C1CCCCC1N', 'CCC',
              'c1ccccc1N', 'C1CCCCC1O', 'CCCC', 'CCCCC', 'c1ccncc1']
    split = scaffold_split(smiles)
    assert sorted(sum(split.values(), [])) == list(range(10))
    assert split['train'] == sorted(split['train'])
    part_of = {i: k for k, idx in split.items() for i in idx}
    # The biggest groups (acyclic: 4, benzene: 3) fill train up to 8.
    assert {part_of[i] for i in (1, 4, 7, 8)} == {'train'}
    assert {part_of[i] for i in (0, 2, 5)} == {'train'}
    assert part_of[3] == part_of[6]
    with pytest.raises(ValueError, match='frac_train'):
        scaffold_split(smiles, frac_train=1.5)
    with pytest.raises(ValueError, match="invalid SMILES at index 1: "
                       "'not-a-smiles'"):
        scaffold_split(['CCO', 'not-a-smiles'])


SIX = ['CCO', 'CCN', 'CCC', 'c1ccccc1', 'CCCl', 'OCC(O)CO']


@pytest.mark.parametrize('name,labels,match', [
    # Regression values in a binary classification set used to be written
    # as they were and trained on as classes.
    ('molbbbp', [0, 1, 0.3, 1, 2, 0],
     r"Label column 'y' of '.*toy.csv' holds 2 label\(s\) that do not fit "
     r"the binary classification task of 'ogbg-molbbbp': row 2: 0.3, row 4: "
     r"2.0; expected 0 or 1 \(or empty for a missing label\)"),
    ('molbbbp', ['yes', 'no', 'yes', 'no', 'yes', 'no'],
     r"Label column 'y' of '.*toy.csv' holds 6 non-numeric value\(s\): "
     r"row 0: 'yes', row 1: 'no', .* and 1 more; labels must be numbers"),
    ('molbbbp', [True, False, True, False, True, False],
     r"holds 6 non-numeric value\(s\): row 0: True"),
    ('molesol', ['1.0', '2,5', 'abc', '3', '4', '5'],
     r"holds 2 non-numeric value\(s\): row 1: '2,5', row 2: 'abc';"),
    ('molesol', [1., np.inf, 2., 3., 4., 5.],
     r"do not fit the regression task of 'ogbg-molesol': row 1: inf; "
     r"expected finite numbers"),
    ('molesol', [np.nan] * 6,
     r"Label column\(s\) \['y'\] of '.*toy.csv' hold no label for any valid "
     r"molecule"),
])
def test_labels_must_fit_the_task_type(tmp_path, name, labels, match):
    csv = tmp_path / 'toy.csv'
    pd.DataFrame({'smiles': SIX, 'y': labels}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=match):
        build_ogb_dataset_from_csv(csv, tmp_path, name, ['y'])
    assert not (tmp_path / f'ogbg_{name}').exists()


def test_label_columns_given_twice_or_as_a_string(tmp_path):
    csv = tmp_path / 'toy.csv'
    pd.DataFrame({'smiles': SIX, 'tox_a': [0, 1, 0, 1, 0, np.nan],
                  'tox_b': [1, 0, 1, 0, 1, 0]}).to_csv(csv, index=False)
    # One column for both clintox tasks used to pass the count check.
    with pytest.raises(ValueError, match=r"Label column\(s\) \['tox_a'\] of "
                       r"'.*toy.csv' are given more than once in \['tox_a', "
                       r"'TOX_A'\]"):
        build_ogb_dataset_from_csv(csv, tmp_path, 'molclintox',
                                   ['tox_a', 'TOX_A'])
    # A bare string used to be taken letter by letter.
    with pytest.raises(ValueError, match=r"'label_columns' is the single "
                       r"column 'tox_a', but 'ogbg-molclintox' has 2 tasks"):
        build_ogb_dataset_from_csv(csv, tmp_path, 'molclintox', 'tox_a')
    build_ogb_dataset_from_csv(csv, tmp_path, 'molclintox',
                               ['tox_a', 'tox_b'])
    report = build_ogb_dataset_from_csv(csv, tmp_path, 'molbbbp', 'tox_a')
    assert report.num_graphs == 6
    labels = pd.read_csv(tmp_path / 'ogbg_molbbbp' / 'raw' /
                         'graph-label.csv.gz', header=None)
    np.testing.assert_array_equal(labels[0].values,
                                  [0, 1, 0, 1, 0, np.nan])


def test_exact_smiles_column_wins_over_a_case_variant(tmp_path):
    # Guards against a case-insensitive match ('SMILES') being picked before
    # the exact column name ('smiles').
    csv = tmp_path / 'two.csv'
    pd.DataFrame({'SMILES': ['x1', 'x2', 'x3'],
                  'smiles': ['CCO', 'CCN', 'c1ccccc1'],
                  'y': [1.0, 2.0, 3.0]}).to_csv(csv, index=False)
    with pytest.warns(UserWarning, match='empty'):
        report = build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['y'])
    assert report.num_graphs == 3 and report.num_invalid == 0


def test_scaffold_split_refuses_an_empty_test_part():
    # Guards against frac_train + frac_valid == 1 being accepted (no test).
    with pytest.raises(ValueError, match='frac_valid'):
        scaffold_split(['CCO', 'CCN'], frac_train=0.5, frac_valid=0.5)


def test_labels_only_on_invalid_smiles_count_as_none(tmp_path):
    # Guards against checking for labels before dropping invalid SMILES:
    # labels on dropped rows must not make the dataset look labelled.
    csv = tmp_path / 'toy.csv'
    pd.DataFrame({'smiles': ['CCO', 'not_a_smiles', 'CCN'],
                  'y': [np.nan, 1.0, np.nan]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match='hold no label for any valid'):
        build_ogb_dataset_from_csv(csv, tmp_path, 'molesol', ['y'])
