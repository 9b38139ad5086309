import pytest
import torch

from torch_geometric.nn import GCNConv

from pyg_hyper.nn.conv import LGCNConv
from tests.nn.conv.lgnn_cases import EDGE_INDEX, LocalizedConvContract
from tests.nn.conv.lgnn_cases import features


class TestLGCNConv(LocalizedConvContract):
    def make(self, **kwargs):
        return LGCNConv(5, 3, **kwargs)


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


def test_isolated_node_gets_finite_output():
    out = LGCNConv(5, 3)(features(5), EDGE_INDEX)
    assert torch.isfinite(out).all() and out.shape == (6, 3)


def test_compiles_without_graph_breaks():
    conv = LGCNConv(5, 3)
    explain = torch._dynamo.explain(conv)(features(5), EDGE_INDEX)
    assert explain.graph_break_count == 0


def test_bad_inputs():
    conv = LGCNConv(5, 3)
    with pytest.raises(ValueError, match='out of range'):
        conv(features(5), EDGE_INDEX + 3)
    with pytest.raises(ValueError, match=r"'edge_weight' of shape \[10\]"):
        conv(features(5), EDGE_INDEX, torch.ones(3))
    with pytest.raises(ValueError, match='bipartite inputs are not supported'):
        conv((features(5), features(5)), EDGE_INDEX)
    with pytest.raises(ValueError, match='positive'):
        LGCNConv(0, 3)
