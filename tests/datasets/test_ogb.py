import builtins
import gzip
import os
import shutil
import urllib.error
import warnings
import zipfile

import pytest
import torch

from pyg_hyper.datasets import (
    OGBGraphDataset,
    ogb_graph_dataset_names,
    ogb_required_files,
    resolve_ogb_name,
)
from tests.ogb_data import copy_ogb, no_network  # noqa: F401


@pytest.fixture
def no_stdin(monkeypatch):
    """ogb 1.3.6 calls input() when RELEASE_v1.txt is absent; in CI that
    hangs. Make it fail loudly instead."""
    def refuse(*args, **kwargs):
        raise AssertionError('ogb asked a question on stdin')
    monkeypatch.setattr(builtins, 'input', refuse)


def test_offline_load_without_release_file(shared_data, tmp_path, no_network,
                                           no_stdin):
    root = copy_ogb(shared_data, 'ogbg-molesol', tmp_path)
    os.remove(root / 'ogbg_molesol' / 'RELEASE_v1.txt')
    dataset = OGBGraphDataset(root, 'molesol')
    assert dataset.name == 'ogbg-molesol'
    assert len(dataset) == 1128
    assert (root / 'ogbg_molesol' / 'RELEASE_v1.txt').exists()
    data = dataset[0]
    assert data.x.dtype == torch.long and data.x.size(1) == 9
    assert data.edge_attr.size(1) == 3
    assert data.y.shape == (1, 1) and data.y.dtype == torch.float
    split = dataset.get_idx_split()
    assert [split[k].numel() for k in ('train', 'valid', 'test')] == \
        [902, 113, 113]

    # The second load reads the processed file, the torch.load that fails
    # under torch>=2.6 without the allow-listed classes.
    again = OGBGraphDataset(root, 'ogbg-molesol')
    assert torch.equal(again[5].edge_index, dataset[5].edge_index)
    assert torch.equal(again._data.y, dataset._data.y)


def test_evaluator_gives_the_official_metric(shared_data, tmp_path, no_network,
                                            no_stdin):
    dataset = OGBGraphDataset(
        copy_ogb(shared_data, 'ogbg-molbace', tmp_path), 'molbace')
    evaluator = dataset.evaluator
    assert evaluator.eval_metric == 'rocauc'
    y_true = torch.tensor([[0], [1], [0], [1]])
    y_pred = torch.tensor([[0.1], [0.9], [0.8], [0.7]])
    assert evaluator.eval({'y_true': y_true,
                           'y_pred': y_pred})['rocauc'] == pytest.approx(0.75)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown OGB graph dataset "
                       r"'molfoo'.*ogbg-molhiv"):
        resolve_ogb_name('molfoo')
    with pytest.raises(ValueError, match='ogbg-molbace'):
        OGBGraphDataset('/nonexistent', 'ogbg-nope')
    assert 'ogbg-molpcba' in ogb_graph_dataset_names()
    assert resolve_ogb_name('ogbg_molhiv') == 'ogbg-molhiv'


def test_incomplete_root_lists_missing_files(shared_data, tmp_path, no_network):
    root = copy_ogb(shared_data, 'ogbg-molesol', tmp_path)
    os.remove(root / 'ogbg_molesol' / 'raw' / 'edge-feat.csv.gz')
    os.remove(root / 'ogbg_molesol' / 'split' / 'scaffold' / 'test.csv.gz')
    with pytest.raises(FileNotFoundError) as info:
        OGBGraphDataset(root, 'molesol')
    message = str(info.value)
    assert 'raw/edge-feat.csv.gz' in message
    assert 'split/scaffold/test.csv.gz' in message
    assert 'raw/edge.csv.gz' not in message
    # The user's incomplete folder is left alone (ogb's download would have
    # deleted it).
    assert (root / 'ogbg_molesol' / 'raw' / 'edge.csv.gz').exists()
    # Offline (download=False), "remove the folder to download it" needs
    # the condition under which that works.
    assert 'download=True, online' not in message
    with pytest.raises(FileNotFoundError, match=r'remove the folder to '
                       r'download it \(download=True, online\)'):
        OGBGraphDataset(root, 'molesol', download=False)


def test_absent_root_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match='raw/node-feat.csv.gz'):
        OGBGraphDataset(tmp_path, 'molbbbp', download=False)
    assert 'raw/edge.csv.gz' in ogb_required_files('ogbg-molhiv')


def test_online_downloads_as_ogb_does(shared_data, tmp_path, monkeypatch,
                                     no_stdin):
    import ogb.graphproppred.dataset_pyg as dataset_pyg

    # A server stand-in: OGB's zip holds the folder '<download_name>/'.
    archive = tmp_path / 'server' / 'freesolv.zip'
    archive.parent.mkdir()
    source = shared_data / 'OGB' / 'ogbg_molfreesolv'
    with zipfile.ZipFile(archive, 'w') as z:
        for path in source.rglob('*'):
            if path.is_file():
                z.write(path, 'freesolv/' + str(path.relative_to(source)))
    requested = []

    def fake_download_url(url, folder):
        requested.append(url)
        return shutil.copy(archive, folder)

    monkeypatch.setattr(dataset_pyg, 'decide_download', lambda url: True)
    monkeypatch.setattr(dataset_pyg, 'download_url', fake_download_url)
    root = tmp_path / 'data'
    dataset = OGBGraphDataset(root, 'molfreesolv')
    assert requested == ['http://snap.stanford.edu/ogb/data/graphproppred/'
                         'csv_mol_download/freesolv.zip']
    assert len(dataset) == 642
    assert dataset.get_idx_split()['test'].numel() == 65


def test_failed_download_is_explained(tmp_path, monkeypatch):
    import ogb.graphproppred.dataset_pyg as dataset_pyg

    def offline(url):
        raise urllib.error.URLError('no route to host')

    monkeypatch.setattr(dataset_pyg, 'decide_download', offline)
    with pytest.raises(RuntimeError, match=r"Could not download "
                       r"'ogbg-molesol'.*raw/edge.csv.gz"):
        OGBGraphDataset(tmp_path, 'molesol')
    # No empty folder is left to be mistaken for an incomplete dataset.
    assert not (tmp_path / 'ogbg_molesol').exists()


@pytest.mark.parametrize('keep', ['half', 7, 0])
def test_damaged_processed_file_is_rebuilt(shared_data, tmp_path, no_network,
                                           no_stdin, keep):
    # An interrupted save; ogb's bare torch.load used to fail with miniz's
    # 'failed reading zip archive' (or EOFError) naming no file.
    root = copy_ogb(shared_data, 'ogbg-molfreesolv', tmp_path)
    dataset = OGBGraphDataset(root, 'molfreesolv')
    path = dataset.processed_paths[0]
    size = os.path.getsize(path) // 2 if keep == 'half' else keep
    with open(path, 'r+b') as f:
        f.truncate(size)
    with pytest.warns(UserWarning, match=r"OGB processed file '.*ogbg_mol"
                      r"freesolv/processed/geometric_data_processed.pt' "
                      r"could not be read .* truncated or corrupt and is "
                      r"rebuilt"):
        again = OGBGraphDataset(root, 'molfreesolv')
    assert len(again) == 642
    assert torch.equal(again._data.y, dataset._data.y)
    assert os.path.getsize(path) > size


def test_required_files_follow_the_attribute_flags():
    # Guards against node-feat.csv.gz being required of datasets without
    # node attributes (ogbg-ppa has edge features only).
    assert 'raw/node-feat.csv.gz' not in ogb_required_files('ogbg-ppa')
    assert 'raw/edge-feat.csv.gz' in ogb_required_files('ogbg-ppa')


def test_pyg_suffixed_folder_gets_its_release_file(shared_data, tmp_path,
                                                    no_network, no_stdin):
    # Guards against ignoring ogb's '<name>_pyg' folder: its missing
    # RELEASE_v1.txt must be written there, or ogb asks on stdin.
    shutil.copytree(shared_data / 'OGB' / 'ogbg_molfreesolv',
                    tmp_path / 'ogbg_molfreesolv_pyg')
    os.remove(tmp_path / 'ogbg_molfreesolv_pyg' / 'RELEASE_v1.txt')
    assert len(OGBGraphDataset(tmp_path, 'molfreesolv')) == 642
    assert (tmp_path / 'ogbg_molfreesolv_pyg' / 'RELEASE_v1.txt').exists()


def test_bad_raw_file_without_cache_raises_as_it_is(shared_data, tmp_path,
                                                     no_network):
    # Guards against the damaged-cache rebuild path running (and warning)
    # when there was no processed cache: the raw file's error must surface.
    root = copy_ogb(shared_data, 'ogbg-molfreesolv', tmp_path)
    with gzip.open(root / 'ogbg_molfreesolv' / 'raw' / 'num-node-list.csv.gz',
                   'wt') as f:
        f.write('abc\nxyz\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with pytest.raises(ValueError, match="invalid literal"):
            OGBGraphDataset(root, 'molfreesolv')
    assert not [w for w in caught if 'could not be read' in str(w.message)]
