import pytest
import torch

from torch_geometric.nn import GCNConv

from pyg_hyper.nn.conv import LGCNConv
from tests.nn.conv.lgnn_cases import (
    EDGE_INDEX,
    assert_factorized_matches_materialized,
    assert_levels_switch,
    assert_sparse_adjacency_matches,
    assert_sparse_features_match_dense,
    features,
)


def test_without_localization_equals_gcn():
    conv = LGCNConv(5, 3, node_level=False, edge_level=False)
    ref = GCNConv(5, 3)
    ref.lin.weight.data.copy_(conv.weight.data.t())
    ref.bias.data.copy_(torch.randn(3))
    conv.bias.data.copy_(ref.bias.data)
    x = features(5)
    assert torch.allclose(conv(x, EDGE_INDEX), ref(x, EDGE_INDEX), atol=1e-6)
    ew = torch.rand(EDGE_INDEX.size(1))
    assert torch.allclose(conv(x, EDGE_INDEX, ew), ref(x, EDGE_INDEX, ew),
                          atol=1e-6)


@pytest.mark.parametrize('node,edge', [(True, True), (True, False),
                                       (False, True)])
def test_factorized_matches_materialized(node, edge):
    assert_factorized_matches_materialized(
        lambda materialize: LGCNConv(5, 3, node_level=node, edge_level=edge,
                                     node_rank=2, materialize=materialize))


def test_levels_switch():
    assert_levels_switch(lambda **kw: LGCNConv(5, 3, **kw))


def test_sparse_adjacency():
    assert_sparse_adjacency_matches(LGCNConv(5, 3))


def test_isolated_node_keeps_own_message():
    conv = LGCNConv(5, 3)
    out = conv(features(5), EDGE_INDEX)
    assert torch.isfinite(out).all() and out.shape == (6, 3)


def test_compiles_without_graph_breaks():
    conv = LGCNConv(5, 3)
    explain = torch._dynamo.explain(conv)(features(5), EDGE_INDEX)
    assert explain.graph_break_count == 0


def test_bad_inputs():
    conv = LGCNConv(5, 3)
    with pytest.raises(ValueError, match=r"'LGCNConv' expected 'x' of shape "
                       r"\[num_rows, 5\] \(got \[6, 4\]\)"):
        conv(features(4), EDGE_INDEX)
    with pytest.raises(ValueError, match='out of range'):
        conv(features(5), EDGE_INDEX + 3)
    with pytest.raises(ValueError, match=r"'edge_weight' of shape \[10\]"):
        conv(features(5), EDGE_INDEX, torch.ones(3))
    with pytest.raises(ValueError, match='bipartite inputs are not supported'):
        conv((features(5), features(5)), EDGE_INDEX)
    with pytest.raises(ValueError, match='positive'):
        LGCNConv(0, 3)


@pytest.mark.parametrize('node,edge', [(True, True), (False, False)])
def test_sparse_features(node, edge):
    assert_sparse_features_match_dense(
        lambda: LGCNConv(5, 3, node_level=node, edge_level=edge))
