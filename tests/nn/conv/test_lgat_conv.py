import pytest
import torch

from torch_geometric.nn import GATConv

from pyg_hyper.nn.conv import LGATConv
from tests.nn.conv.lgnn_cases import EDGE_INDEX, LocalizedConvContract
from tests.nn.conv.lgnn_cases import features


class TestLGATConv(LocalizedConvContract):
    def make(self, **kwargs):
        return LGATConv(5, 2, heads=3, **kwargs)


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


def test_repr():
    assert repr(LGATConv(5, 3, heads=2, concat=False, edge_level=False)) == (
        'LGATConv(5, 3, heads=2, concat=False, node_level=True, '
        'edge_level=False)')


def test_head_shapes():
    assert LGATConv(5, 3, heads=2)(features(5), EDGE_INDEX).shape == (6, 6)
    assert LGATConv(5, 3, heads=2, concat=False)(
        features(5), EDGE_INDEX).shape == (6, 3)
    with pytest.raises(ValueError, match="'LGATConv' needs a positive "
                       "integer 'heads' \\(got 0\\)"):
        LGATConv(5, 3, heads=0)
