import pytest
import torch
from torch.nn import Linear, ReLU, Sequential

from torch_geometric.nn import GINConv

from pyg_hyper.nn.conv import LGINConv
from tests.nn.conv.lgnn_cases import (
    EDGE_INDEX,
    assert_factorized_matches_materialized,
    assert_levels_switch,
    assert_sparse_adjacency_matches,
    assert_sparse_features_match_dense,
    features,
)


@pytest.mark.parametrize('eps', [0.0, 0.7])
def test_without_localization_equals_gin(eps):
    conv = LGINConv(5, 3, hidden_channels=4, eps=eps, node_level=False,
                    edge_level=False)
    conv.bias1.data.copy_(torch.randn(4))
    mlp = Sequential(Linear(5, 4), ReLU(), Linear(4, 3))
    ref = GINConv(mlp, eps=eps)
    mlp[0].weight.data.copy_(conv.weight.data.t())
    mlp[0].bias.data.copy_(conv.bias1.data)
    mlp[2].load_state_dict(conv.lin2.state_dict())
    x = features(5)
    assert torch.allclose(conv(x, EDGE_INDEX), ref(x, EDGE_INDEX), atol=1e-6)


@pytest.mark.parametrize('node,edge', [(True, True), (True, False),
                                       (False, True)])
def test_factorized_matches_materialized(node, edge):
    assert_factorized_matches_materialized(
        lambda materialize: LGINConv(5, 3, eps=0.3, node_level=node,
                                     edge_level=edge,
                                     materialize=materialize))


def test_levels_switch_and_train_eps():
    assert_levels_switch(lambda **kw: LGINConv(5, 3, **kw))
    conv = LGINConv(5, 3, train_eps=True)
    conv(features(5), EDGE_INDEX).sum().backward()
    assert conv.eps.grad is not None


def test_sparse_adjacency():
    assert_sparse_adjacency_matches(LGINConv(5, 3))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"'LGINConv' expected 'x' of shape "
                       r"\[num_rows, 5\]"):
        LGINConv(5, 3)(features(2), EDGE_INDEX)


@pytest.mark.parametrize('node,edge', [(True, True), (False, False)])
def test_sparse_features(node, edge):
    assert_sparse_features_match_dense(
        lambda: LGINConv(5, 3, node_level=node, edge_level=edge))
