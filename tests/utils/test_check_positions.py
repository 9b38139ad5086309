import pytest
import torch

from pyg_hyper.utils.checks import check_positions


def test_check_positions_accepts_coordinates():
    check_positions('Layer', torch.zeros(4, 3), 4)  # no error
    assert True


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
