import pytest
import torch

from torch_geometric.nn import GATConv

from pyg_hyper.nn.conv import LGATConv
from tests.nn.conv.lgnn_cases import (
    EDGE_INDEX,
    assert_factorized_matches_materialized,
    assert_levels_switch,
    assert_sparse_adjacency_matches,
    assert_sparse_features_match_dense,
    features,
)


@pytest.mark.parametrize('concat', [True, False])
def test_without_localization_equals_gat(concat):
    conv = LGATConv(5, 3, heads=2, concat=concat, node_level=False,
                    edge_level=False)
    ref = GATConv(5, 3, heads=2, concat=concat)
    ref.lin.weight.data.copy_(conv.weight.data.t())
    ref.att_src.data.copy_(conv.att_src.data)
    ref.att_dst.data.copy_(conv.att_dst.data)
    conv.bias.data.copy_(torch.randn_like(conv.bias))
    ref.bias.data.copy_(conv.bias.data)
    x = features(5)
    assert torch.allclose(conv(x, EDGE_INDEX), ref(x, EDGE_INDEX), atol=1e-6)


@pytest.mark.parametrize('node,edge', [(True, True), (True, False),
                                       (False, True)])
def test_factorized_matches_materialized(node, edge):
    assert_factorized_matches_materialized(
        lambda materialize: LGATConv(5, 2, heads=3, node_level=node,
                                     edge_level=edge,
                                     materialize=materialize))


def test_levels_switch():
    assert_levels_switch(lambda **kw: LGATConv(5, 3, heads=2, **kw))


def test_sparse_adjacency_and_shapes():
    assert_sparse_adjacency_matches(LGATConv(5, 3, heads=2))
    assert LGATConv(5, 3, heads=2)(features(5), EDGE_INDEX).shape == (6, 6)
    assert LGATConv(5, 3, heads=2, concat=False)(
        features(5), EDGE_INDEX).shape == (6, 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="'heads' >= 1"):
        LGATConv(5, 3, heads=0)
    with pytest.raises(ValueError, match=r"'LGATConv' expected 'x' of shape "
                       r"\[num_rows, 5\]"):
        LGATConv(5, 3)(features(7), EDGE_INDEX)


@pytest.mark.parametrize('node,edge', [(True, True), (False, False)])
def test_sparse_features(node, edge):
    assert_sparse_features_match_dense(
        lambda: LGATConv(5, 2, heads=2, node_level=node, edge_level=edge))
