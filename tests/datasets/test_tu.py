import shutil

import pytest

from pyg_hyper.datasets import load_tu_dataset


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
