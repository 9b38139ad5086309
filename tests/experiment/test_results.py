import json
import os
import stat

import pytest

from pyg_hyper.experiment import results
from pyg_hyper.experiment.results import atomic_write_json, format_mean_std


@pytest.mark.parametrize('stats,scale,expected', [
    # ROC-AUC over seeds: two significant digits of the std.
    ({'mean': 0.65374, 'std': 0.01423, 'n': 10}, 1.0, '0.654 ± 0.014'),
    # Accuracy in percent.
    ({'mean': 0.7854, 'std': 0.0187, 'n': 10}, 100.0, '78.5 ± 1.9'),
    # meV-sized errors never get fewer than one decimal.
    ({'mean': 343.07, 'std': 26.41, 'n': 3}, 1.0, '343.1 ± 26.4'),
    # One seed: the mean sets the precision.
    ({'mean': 0.633, 'std': 0.0, 'n': 1}, 1.0, '0.63 ± 0.00'),
])
def test_automatic_digits(stats, scale, expected):
    assert format_mean_std(stats, scale, digits=None) == expected


def test_fixed_digits_and_empty():
    stats = {'mean': 0.65374, 'std': 0.01423, 'n': 10}
    assert format_mean_std(stats, digits=4) == '0.6537 ± 0.0142'
    assert format_mean_std({'n': 0}) == '–'


@pytest.mark.skipif(not hasattr(os, 'fchmod'), reason='POSIX permissions')
def test_atomic_writes_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / 'results.json'
        atomic_write_json(str(path), {'a': 1})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write_json(str(path), {'a': 2})
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {'a': 2}


def test_atomic_write_replaces_whole_files_only(tmp_path, monkeypatch):
    path = tmp_path / 'sub' / 'r.json'
    atomic_write_json(str(path), {'a': 1})
    atomic_write_json(str(path), {'a': 2})
    assert json.loads(path.read_text()) == {'a': 2}
    assert [p.name for p in path.parent.iterdir()] == ['r.json']

    # Interrupted before the rename: the old file stays whole and the
    # temporary file is removed.
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, 'replace', interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(str(path), {'a': 3})
    assert json.loads(path.read_text()) == {'a': 2}
    assert [p.name for p in path.parent.iterdir()] == ['r.json']
