import shutil

import pytest

from pyg_hyper.datasets import load_tu_dataset
from tests.ogb_data import no_network  # noqa: F401


def test_load_offline(shared_data, tmp_path):
    shutil.copytree(shared_data / 'TUDataset' / 'PTC_MR',
                    tmp_path / 'PTC_MR')
    ds = load_tu_dataset(str(tmp_path), 'PTC_MR')
    assert len(ds) == 344 and ds.num_features == 18 and ds.num_classes == 2


def test_missing_files_are_listed(shared_data, tmp_path):
    raw = tmp_path / 'MUTAG' / 'raw'
    raw.mkdir(parents=True)
    shutil.copy(shared_data / 'TUDataset' / 'MUTAG' / 'raw' / 'MUTAG_A.txt',
                raw)
    with pytest.raises(FileNotFoundError,
                       match='MUTAG_graph_indicator.txt, '
                       'MUTAG_graph_labels.txt'):
        load_tu_dataset(str(tmp_path), 'MUTAG')


def test_inconsistent_files_are_named(shared_data, tmp_path):
    # PyG's reader accepted these and failed later, on indexing a graph.
    for case in ('labels', 'edges'):
        root = tmp_path / case
        shutil.copytree(shared_data / 'TUDataset' / 'MUTAG', root / 'MUTAG')
        raw = root / 'MUTAG' / 'raw'
        if case == 'labels':
            lines = (raw / 'MUTAG_graph_labels.txt').read_text().split()
            (raw / 'MUTAG_graph_labels.txt').write_text('\n'.join(lines[:2]))
            match = r'MUTAG_graph_labels.txt has 2 labels for the 188 graphs'
        else:
            with open(raw / 'MUTAG_A.txt', 'a') as f:
                f.write('1, 99999\n')
            match = r'MUTAG_A.txt has node indices from 1 to 99999, ' \
                    r'expected 1 to 3371'
        with pytest.raises(ValueError, match=match):
            load_tu_dataset(str(root), 'MUTAG')


def test_cleaned_version_reads_raw_cleaned(shared_data, tmp_path,
                                           no_network):
    # PyG reads cleaned=True from raw_cleaned/; the check used to look in
    # raw/, so a missing raw_cleaned/ went to a download.
    shutil.copytree(shared_data / 'TUDataset' / 'MUTAG',
                    tmp_path / 'MUTAG')
    with pytest.raises(FileNotFoundError, match=r"missing raw files in "
                       r"'.*MUTAG/raw_cleaned': MUTAG_A.txt"):
        load_tu_dataset(str(tmp_path), 'MUTAG', cleaned=True)
    assert not (tmp_path / 'MUTAG' / 'raw_cleaned').exists()
    # (The MUTAG files stand in for the cleaned ones.)
    shutil.copytree(tmp_path / 'MUTAG' / 'raw',
                    tmp_path / 'MUTAG' / 'raw_cleaned')
    ds = load_tu_dataset(str(tmp_path), 'MUTAG', cleaned=True)
    assert len(ds) == 188
    assert (tmp_path / 'MUTAG' / 'processed_cleaned').is_dir()


def test_unreadable_processed_file_is_rebuilt(shared_data, tmp_path):
    # PyG writes it in place: a killed run left it cut short, and every
    # later load failed in torch.load naming no file.
    shutil.copytree(shared_data / 'TUDataset' / 'MUTAG', tmp_path / 'MUTAG')
    first = load_tu_dataset(str(tmp_path), 'MUTAG')
    data = tmp_path / 'MUTAG' / 'processed' / 'data.pt'
    data.write_bytes(data.read_bytes()[:500])
    with pytest.warns(UserWarning, match=r"TU dataset 'MUTAG': the processed "
                      r"files \['data\.pt'\] .* cannot be read"):
        again = load_tu_dataset(str(tmp_path), 'MUTAG')
    assert len(again) == len(first) == 188
    assert again._data.x.equal(first._data.x)


def _copy_mutag(shared_data, tmp_path):
    shutil.copytree(shared_data / 'TUDataset' / 'MUTAG', tmp_path / 'MUTAG')
    return tmp_path / 'MUTAG' / 'raw'


@pytest.mark.parametrize('appended,match', [
    # Node index 0 in the 1-based A.txt would wrap around to the last node.
    ('0, 1\n', 'node indices from 0 to'),
    # An odd number of indices (a cut-short file) must not be reshaped into
    # pairs.
    ('1\n', 'does not hold pairs'),
])
def test_tu_malformed_edge_file_is_refused(shared_data, tmp_path, appended,
                                           match):
    raw = _copy_mutag(shared_data, tmp_path)
    with open(raw / 'MUTAG_A.txt', 'a') as f:
        f.write(appended)
    with pytest.raises(ValueError, match=match):
        load_tu_dataset(str(tmp_path), 'MUTAG')


def test_force_reload_checks_the_raw_files_again(shared_data, tmp_path):
    # Guards against force_reload=True skipping the raw-file consistency
    # check because a processed folder already exists.
    raw = _copy_mutag(shared_data, tmp_path)
    load_tu_dataset(str(tmp_path), 'MUTAG')
    lines = (raw / 'MUTAG_graph_labels.txt').read_text().split()
    (raw / 'MUTAG_graph_labels.txt').write_text('\n'.join(lines[:2]))
    with pytest.raises(ValueError, match='has 2 labels for the 188 graphs'):
        load_tu_dataset(str(tmp_path), 'MUTAG', force_reload=True)
