import pytest
import torch
from torch.nn import Linear, ReLU, Sequential

from torch_geometric.nn import GINConv

from pyg_hyper.nn.conv import LGINConv
from tests.nn.conv.lgnn_cases import EDGE_INDEX, LocalizedConvContract
from tests.nn.conv.lgnn_cases import EDGE_INDEX_WITH_LOOPS, features


class TestLGINConv(LocalizedConvContract):
    def make(self, **kwargs):
        return LGINConv(5, 3, eps=0.3, **kwargs)


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
    # With self loops of the graph's own too: GINConv sums them as
    # neighbours.
    for edge_index in (EDGE_INDEX, EDGE_INDEX_WITH_LOOPS):
        assert torch.allclose(conv(x, edge_index), ref(x, edge_index),
                              atol=1e-6)


def test_repr():
    assert repr(LGINConv(5, 3, hidden_channels=7, train_eps=True)) == (
        'LGINConv(5, 3, hidden_channels=7, train_eps=True, node_level=True, '
        'edge_level=True)')


def test_train_eps_gets_gradient():
    conv = LGINConv(5, 3, train_eps=True)
    conv(features(5), EDGE_INDEX).sum().backward()
    assert conv.eps.grad is not None and conv.eps.grad.abs() > 0
