import pytest
import torch
from torch_geometric.data import Data

from pyg_hyper.datasets import make_split, random_class_split


def _data(n=3000, classes=7, seed=0):
    y = torch.randint(0, classes, (n, ), generator=torch.Generator()
                      .manual_seed(seed))
    return Data(x=torch.zeros(n, 1), y=y)


@pytest.mark.parametrize('split,num_val', [('lgnn', 500),
                                           ('lgnn-val100', 100)])
def test_lgnn_splits(split, num_val):
    data = _data()
    out = make_split(data, split, seed=3)
    train, val, test = out.train_mask, out.val_mask, out.test_mask
    assert int(train.sum()) == 140 and int(val.sum()) == num_val
    assert int(test.sum()) == 1000
    assert not (train & val).any() and not (train & test).any()
    assert not (val & test).any()
    assert torch.bincount(data.y[train]).tolist() == [20] * 7
    # Seeded: same seed, same split; other seed, other split.
    again = make_split(data, split, seed=3)
    assert torch.equal(again.val_mask, val)
    assert not torch.equal(make_split(data, split, seed=4).val_mask, val)


def test_lgnn_validation_and_test_nodes_are_drawn_at_random():
    # Validation and test nodes are a random draw from all non-training
    # nodes, not the lowest-numbered ones, and two seeds draw different
    # sets: of 2,860 candidates, two random draws of 500 share about 90.
    data = _data()
    a = make_split(data, 'lgnn', seed=3)
    b = make_split(data, 'lgnn', seed=4)
    for out in (a, b):
        for key in ('val_mask', 'test_mask'):
            nodes = out[key].nonzero().view(-1)
            assert int(nodes.max()) > 2500 and int(nodes.min()) < 500, key
    shared = a.val_mask & b.val_mask
    assert int(shared.sum()) < 200
    assert int((a.test_mask & b.test_mask).sum()) < 500


def test_random_split_ignores_global_rng():
    y = _data().y
    torch.manual_seed(0)
    a = random_class_split(y, seed=1)
    torch.manual_seed(99)
    b = random_class_split(y, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_public_split_and_geom_gcn_columns():
    data = _data(10, 2)
    # Three different masks, so that a swap of any two shows: in column 2,
    # node 0 trains, nodes 1-2 validate and nodes 3-5 test.
    masks = [torch.zeros(10, 3, dtype=torch.bool) for _ in range(3)]
    for mask, nodes in zip(masks, ([0], [1, 2], [3, 4, 5])):
        mask[nodes, 2] = True
        mask[9, :2] = True  # the other columns differ from column 2
    data.train_mask, data.val_mask, data.test_mask = masks
    out = make_split(data, 'public', split_index=2)
    assert out.train_mask.shape == (10, ) and bool(out.train_mask[0])
    for key, nodes in (('train_mask', [0]), ('val_mask', [1, 2]),
                       ('test_mask', [3, 4, 5])):
        assert out[key].nonzero().view(-1).tolist() == nodes, key
    with pytest.raises(ValueError, match=r'split_index must be in \[0, 2\]'):
        make_split(data, 'public', split_index=3)
    # One public split (Planetoid's): another index was silently ignored.
    data.train_mask = data.val_mask = data.test_mask = data.train_mask[:, 2]
    assert torch.equal(make_split(data, 'public').train_mask,
                       data.train_mask)
    with pytest.raises(ValueError, match=r'one public split; split_index '
                       r'must be 0 \(got 5\)'):
        make_split(data, 'public', split_index=5)


def test_cora_public_split_keeps_each_mask_in_its_place(tmp_path):
    # Planetoid's public split of Cora: 140 training, 500 validation and
    # 1000 test nodes, each mask where the dataset put it.
    from pyg_hyper.datasets import load_node_dataset
    data = load_node_dataset('Cora', str(tmp_path), download=False)[0]
    out = make_split(data, 'public')
    assert [int(out[k].sum()) for k in ('train_mask', 'val_mask',
                                        'test_mask')] == [140, 500, 1000]
    for key in ('train_mask', 'val_mask', 'test_mask'):
        assert torch.equal(out[key], data[key]), key
    # Planetoid's layout: nodes 140-639 validate, the last 1000 test.
    assert out.val_mask.nonzero().view(-1).tolist() == list(range(140, 640))
    assert out.test_mask.nonzero().view(-1).tolist() == list(
        range(1708, 2708))


def test_bad_split_requests():
    with pytest.raises(ValueError, match="unknown split 'random'; valid "
                       "splits: public, lgnn, lgnn-val100"):
        make_split(_data(), 'random')
    with pytest.raises(ValueError, match='no public split'):
        make_split(_data(), 'public')
    with pytest.raises(ValueError, match='fewer than num_train_per_class'):
        random_class_split(torch.tensor([0, 0, 1]), 2, 0, 0)
    with pytest.raises(ValueError, match='cannot take 500 validation'):
        random_class_split(_data(200, 2).y)
    # A negative count used to empty the test set silently.
    with pytest.raises(ValueError, match="non-negative integer 'num_val' "
                       r"\(got -1\)"):
        random_class_split(_data(200, 2).y, 20, -1, 10)
    with pytest.raises(ValueError, match="positive integer "
                       r"'num_train_per_class' \(got 0\)"):
        random_class_split(_data(200, 2).y, 0, 10, 10)


def test_random_class_split_accepts_exact_fits():
    # Guards against off-by-one capacity checks refusing a class with exactly
    # num_train_per_class nodes, or exactly num_val + num_test nodes left.
    y = torch.tensor([0] * 20 + [1] * 40)
    train, val, test = random_class_split(y, 20, 12, 8, seed=0)
    assert int(train.sum()) == 40 and bool(train[:20].all())
    assert (int(val.sum()), int(test.sum())) == (12, 8)
    assert bool((train | val | test).all())


def test_lgnn_split_of_a_seed_is_pinned():
    # Guards against the split of a recorded seed moving (e.g. test nodes
    # taken from the end of the permutation instead of right after val).
    masks = random_class_split(torch.arange(40) % 2, 2, 3, 3, seed=0)
    assert [m.nonzero().view(-1).tolist() for m in masks] == [
        [8, 10, 23, 27], [21, 30, 39], [6, 28, 32]]
