"""``find_results`` and ``leaderboard`` given their paths in every form a
caller might pass them."""
from pathlib import Path

from pyg_hyper.experiment import build_config, leaderboard, train
from pyg_hyper.experiment.aggregate import find_results


def test_a_single_path_is_one_path(toy_config, tmp_path):
    # A lone string used to be iterated character by character: its first
    # "path" was '/', a recursive search of the whole file system.
    cfg = build_config(toy_config, ['seeds=1', 'epochs=3'])
    run = tmp_path / 'runs' / 'toy'
    train(cfg, str(run), progress=False, argv=['pyg-hyper', 'test'])
    expected = [str(run / 'results.json')]
    assert find_results(str(tmp_path / 'runs')) == expected
    assert find_results(tmp_path / 'runs') == expected  # a Path too
    assert find_results([Path(run)]) == expected
    assert len(leaderboard(str(run))['cells']) == 1
