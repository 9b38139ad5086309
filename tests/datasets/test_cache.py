import pytest
import torch

from pyg_hyper.datasets.cache import discard_unreadable_cache


def test_only_damaged_archives_are_discarded(tmp_path):
    for name in ('good.pt', 'cut.pt', 'empty.pt', 'other.pt'):
        torch.save({'x': torch.arange(1000)}, tmp_path / name)
    cut = tmp_path / 'cut.pt'
    cut.write_bytes(cut.read_bytes()[:300])
    (tmp_path / 'empty.pt').write_bytes(b'')
    flipped = tmp_path / 'other.pt'  # whole size, damaged contents
    data = bytearray(flipped.read_bytes())
    start = data.index(b'data/0') + 200
    data[start:start + 64] = b'\x00' * 64
    flipped.write_bytes(bytes(data))
    (tmp_path / 'notes.txt').write_text('not a cache file')
    with pytest.warns(UserWarning, match=r"toy: the processed files "
                      r"\['cut\.pt', 'empty\.pt', 'other\.pt'\] in .* "
                      r"cannot be read"):
        removed = discard_unreadable_cache(str(tmp_path), 'toy')
    assert removed == ['cut.pt', 'empty.pt', 'other.pt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['good.pt',
                                                          'notes.txt']
    assert torch.load(tmp_path / 'good.pt')['x'].sum() == 499500


def test_names_limit_the_check_and_missing_folders_are_fine(tmp_path):
    (tmp_path / 'a.pt').write_bytes(b'')
    (tmp_path / 'b.pt').write_bytes(b'')
    with pytest.warns(UserWarning, match=r"\['b\.pt'\]"):
        assert discard_unreadable_cache(str(tmp_path), 'toy',
                                        ['b.pt', 'absent.pt']) == ['b.pt']
    assert (tmp_path / 'a.pt').exists()
    assert discard_unreadable_cache(str(tmp_path / 'none'), 'toy') == []


def test_a_healthy_cache_is_read_once_and_other_failures_stay(tmp_path):
    from pyg_hyper.datasets.cache import load_rebuilding_damaged_cache
    torch.save({'x': 1}, tmp_path / 'data.pt')
    calls = []
    assert load_rebuilding_damaged_cache(lambda: calls.append(1) or 'ok',
                                         str(tmp_path), 'toy') == 'ok'
    assert calls == [1]

    def fails():
        raise RuntimeError('not the cache')
    with pytest.raises(RuntimeError, match='not the cache'):
        load_rebuilding_damaged_cache(fails, str(tmp_path), 'toy')
    assert (tmp_path / 'data.pt').exists()


def test_a_damaged_cache_is_deleted_and_loaded_again(tmp_path):
    from pyg_hyper.datasets.cache import load_rebuilding_damaged_cache
    (tmp_path / 'data.pt').write_bytes(b'cut')

    def load():
        if not (tmp_path / 'data.pt').exists():
            torch.save({'x': 2}, tmp_path / 'data.pt')  # reprocessed
        return torch.load(tmp_path / 'data.pt')
    with pytest.warns(UserWarning, match=r"\['data\.pt'\]"):
        assert load_rebuilding_damaged_cache(load, str(tmp_path),
                                             'toy') == {'x': 2}


def test_failure_with_an_intact_cache_is_not_retried(tmp_path):
    # Guards against re-running the load when no cache file was discarded
    # (the retry would hide the real error behind a second attempt).
    from pyg_hyper.datasets.cache import load_rebuilding_damaged_cache
    torch.save({'x': 1}, tmp_path / 'data.pt')
    calls = []

    def fails():
        calls.append(1)
        raise RuntimeError('not the cache')
    with pytest.raises(RuntimeError, match='not the cache'):
        load_rebuilding_damaged_cache(fails, str(tmp_path), 'toy')
    assert calls == [1]
