import pytest
import torch

from pyg_hyper.utils.checks import check_positions


def test_check_positions_accepts_coordinates():
    # Valid coordinates pass untouched (the check returns nothing and does
    # not convert them), with or without an atom count, in either float
    # precision, also when the model's dtype is given and matches.
    pos = torch.arange(12, dtype=torch.float64).view(4, 3) - 5.5
    before = pos.clone()
    assert check_positions('Layer', pos, 4) is None
    assert check_positions('Layer', pos) is None
    assert check_positions('Layer', pos, 4, dtype=torch.float64) is None
    assert check_positions('Layer', pos.float(), 4, dtype=torch.float32) \
        is None
    assert torch.equal(pos, before) and pos.dtype == torch.float64
    # The dtype check is live: the same coordinates against a float32
    # model are refused.
    with pytest.raises(ValueError, match='pos'):
        check_positions('Layer', pos, 4, dtype=torch.float32)


@pytest.mark.parametrize('pos, match', [
    (None, "needs atom coordinates 'pos'"),
    ([[0., 0., 0.]], 'to be a tensor'),
    (torch.zeros(4, 2), r"shape \[num_atoms, 3\] \(got \[4, 2\]\)"),
    (torch.zeros(3, 3), r"one 'pos' row per atom \(4\), got 3"),
    (torch.zeros(4, 3, dtype=torch.long), 'floating-point'),
    (torch.tensor([[0., 0., 0.]] * 3 + [[float('nan'), 0., 0.]]),
     "NaN or infinite values in 'pos'"),
])
def test_check_positions_rejects(pos, match):
    with pytest.raises(ValueError, match=match):
        check_positions('Layer', pos, 4)
