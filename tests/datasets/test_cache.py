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
