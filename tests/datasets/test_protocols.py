import pytest
import torch

from pyg_hyper.datasets import gin_protocol, inner_split, inner_val_protocol
from pyg_hyper.datasets.protocols import (
    GIN_PROTOCOL,
    INNER_VAL_PROTOCOL,
    stratified_folds,
)


def test_gin_protocol_picks_best_average_epoch():
    # Fold 0 peaks at epoch 1, fold 1 at epoch 3; the average peaks at 2.
    curves = [[0.9, 0.8, 0.1], [0.1, 0.6, 0.95]]
    out = gin_protocol(curves)
    assert out['epoch'] == 2
    assert out['folds'] == [0.8, 0.6]
    assert out['mean'] == pytest.approx(0.7)
    assert out['std'] == pytest.approx(0.1 * 2**0.5)  # unbiased std
    assert out['protocol'] == GIN_PROTOCOL


def test_gin_protocol_takes_the_first_best_epoch_on_ties():
    # Epochs 2 and 3 tie on the average: the earliest is reported, as
    # inner_val_protocol does per fold (a later tie is not an improvement).
    out = gin_protocol([[0.5, 0.7, 0.7], [0.5, 0.7, 0.7]])
    assert out['epoch'] == 2
    out = gin_protocol([[0.9, 0.1, 0.6], [0.1, 0.9, 0.4]])  # 0.5 each
    assert out['epoch'] == 1 and out['folds'] == [0.9, 0.1]


def test_inner_val_protocol_picks_per_fold():
    val = [[0.5, 0.7, 0.7], [0.9, 0.2, 0.3]]
    test = [[0.1, 0.6, 0.9], [0.8, 1.0, 1.0]]
    out = inner_val_protocol(val, test)
    assert out['epochs'] == [2, 1]  # first best on ties
    assert out['folds'] == [0.6, 0.8]
    assert out['mean'] == pytest.approx(0.7)
    assert out['protocol'] == INNER_VAL_PROTOCOL
    with pytest.raises(ValueError, match='same shape'):
        inner_val_protocol(val, [[0.1, 0.2, 0.3]])


def test_bad_curves():
    with pytest.raises(ValueError, match='same length'):
        gin_protocol([[0.1, 0.2], [0.3]])
    with pytest.raises(ValueError, match='one non-empty curve per fold'):
        gin_protocol([])


def test_inner_split_is_stratified_and_reproducible():
    labels = torch.tensor([0] * 30 + [1] * 10)
    train_index = torch.arange(0, 40, 2).flip(0)  # 15 of class 0, 5 of 1
    tr, va = inner_split(train_index, labels, 0.2, seed=0)
    assert sorted(tr.tolist() + va.tolist()) == sorted(train_index.tolist())
    assert torch.bincount(labels[va]).tolist() == [3, 1]
    tr2, va2 = inner_split(train_index, labels, 0.2, seed=0)
    assert torch.equal(va, va2) and torch.equal(tr, tr2)
    _, va3 = inner_split(train_index, labels, 0.2, seed=1)
    assert not torch.equal(va, va3)
    with pytest.raises(ValueError, match=r"'val_fraction' must be in \(0, 1\)"):
        inner_split(train_index, labels, 1.0, seed=0)
    with pytest.raises(ValueError, match='empty training fold'):
        inner_split(train_index[:0], labels, 0.2, seed=0)
    with pytest.raises(ValueError, match=r'out of range for 10 labels '
                       r'\(largest 38\)'):
        inner_split(train_index, labels[:10], 0.2, seed=0)


def test_stratified_folds_partition():
    labels = torch.tensor([0] * 23 + [1] * 11)
    folds = stratified_folds(labels, 5, seed=0)
    tests = torch.cat([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(34))
    sizes = [t.numel() for _, t in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert train.numel() + test.numel() == 34
        assert 4 <= int((labels[test] == 0).sum()) <= 5
    assert torch.equal(stratified_folds(labels, 5, seed=0)[2][1], folds[2][1])
    with pytest.raises(ValueError, match="at least 2"):
        stratified_folds(labels, 1, seed=0)


def test_inner_split_rounds_and_keeps_each_class_on_both_sides():
    # Guards against flooring the per-class validation count, a class of two
    # getting no validation graph, and a class losing all training graphs:
    # per class round(0.5 * n), at least one (if it has two), never all.
    labels = torch.tensor([0] * 7 + [1] * 2 + [2] * 1 + [3] * 3)
    _, va = inner_split(torch.arange(13), labels, 0.5, seed=0)
    assert torch.bincount(labels[va], minlength=4).tolist() == [4, 1, 0, 2]
    _, va = inner_split(torch.arange(4), torch.tensor([0, 0, 1, 1]), 0.1, 0)
    assert va.numel() == 2


def test_inner_split_index_equal_to_label_count_is_out_of_range():
    # Guards against an off-by-one range check accepting index == len(labels).
    with pytest.raises(ValueError, match='out of range for 3 labels'):
        inner_split(torch.tensor([0, 3]), torch.tensor([0, 1, 1]), 0.5, 0)


def test_gin_protocol_refuses_empty_curves():
    # Guards against folds with empty curves passing the length check.
    with pytest.raises(ValueError, match='one non-empty curve per fold'):
        gin_protocol([[], []])
