import pytest
import torch

from pyg_hyper.nn.dense.ign_input import to_dense_ign_input


def test_layout_and_normalization():
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    x = torch.tensor([[1., 0.], [0., 1.], [1., 0.], [0., 1.], [0., 1.]])
    batch = torch.tensor([0, 0, 0, 1, 1])
    dense, mask = to_dense_ign_input(x, edge_index, batch)
    assert dense.shape == (2, 3, 3, 3)
    assert mask.tolist() == [[True] * 3, [True, True, False]]
    assert dense[0, 0].tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    assert torch.equal(dense[0, 1], torch.diag(torch.tensor([1., 0., 1.])))
    assert torch.equal(dense[1, 2], torch.diag(torch.tensor([1., 1., 0.])))
    norm, _ = to_dense_ign_input(x, edge_index, batch, normalize=True)
    deg = torch.tensor([1., 2., 1.])
    expected = dense[0, 0] / deg.sqrt().view(-1, 1) / deg.sqrt().view(1, -1)
    assert torch.allclose(norm[0, 0], expected)
    unlabeled, _ = to_dense_ign_input(None, edge_index, batch)
    assert unlabeled.shape == (2, 1, 3, 3)


def test_normalization_of_a_directed_graph_uses_column_sums():
    # The official noramlize_graph: D^-1/2 A D^-1/2 with D the column sums
    # (in-degrees of PyG's adj[source, target]) on both sides.
    edge_index = torch.tensor([[0, 0, 1], [1, 2, 2]])
    norm, _ = to_dense_ign_input(None, edge_index, normalize=True,
                                 num_nodes=3)
    adj = torch.tensor([[0., 1., 1.], [0., 0., 1.], [0., 0., 0.]])
    deg = adj.sum(0)
    inv = deg.pow(-0.5).masked_fill(deg == 0, 0.)
    assert torch.allclose(norm[0, 0], inv.view(-1, 1) * adj * inv.view(1, -1))


def test_bad_input():
    edge_index = torch.tensor([[0, 5], [1, 0]])
    with pytest.raises(ValueError, match='out of range'):
        to_dense_ign_input(torch.ones(3, 1), edge_index)
    with pytest.raises(ValueError, match="one row of 'x' per entry"):
        to_dense_ign_input(torch.ones(3, 1), edge_index[:, :1],
                           torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="Unknown action 'ignore'"):
        to_dense_ign_input(torch.ones(3, 1), edge_index[:, :1],
                           max_dense_bytes=1, on_exceed='ignore')


def test_batch_must_match_the_graphs():
    # Two graphs of three nodes; these inputs used to produce wrong dense
    # blocks (an edge between graphs landed inside one of them).
    x = torch.ones(6, 1)
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match='connect nodes of different graphs'):
        to_dense_ign_input(x, torch.tensor([[5], [0]]), batch)
    with pytest.raises(ValueError, match="'batch' sorted by graph"):
        to_dense_ign_input(x, torch.tensor([[0], [1]]),
                           torch.tensor([0, 1, 0, 1, 0, 1]))
    with pytest.raises(ValueError, match='graph index 1 in .batch. but was '
                       'told there are 1 graphs'):
        to_dense_ign_input(x, torch.tensor([[0], [1]]), batch, batch_size=1)
    with pytest.raises(ValueError, match="'batch' to be graph indices of "
                       "dtype torch.long"):
        to_dense_ign_input(x, torch.tensor([[0], [1]]), batch.float())
    dense, mask = to_dense_ign_input(x, torch.tensor([[0, 4], [1, 3]]), batch)
    assert dense[0, 0, 0, 1] == 1 and dense[1, 0, 1, 0] == 1
    assert dense[:, 0].sum() == 2 and mask.all()


def test_unlabeled_graph_needs_its_node_count():
    # Node 3 is isolated: counting nodes from the edges dropped it, which
    # changed every size-normalized invariant without a word.
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    with pytest.raises(ValueError, match="needs 'num_nodes' \\(or 'batch'\\)"):
        to_dense_ign_input(None, edge_index)
    dense, mask = to_dense_ign_input(None, edge_index, num_nodes=4)
    assert dense.shape == (1, 1, 4, 4) and mask.all()
    batched, _ = to_dense_ign_input(None, edge_index,
                                    torch.zeros(4, dtype=torch.long))
    assert torch.equal(dense, batched)
    with pytest.raises(ValueError, match="num_nodes=3 but 'batch' has 4"):
        to_dense_ign_input(None, edge_index, torch.zeros(4, dtype=torch.long),
                           num_nodes=3)
