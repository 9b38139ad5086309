import pytest
import torch

from torch_geometric.nn import GATConv

from pyg_hyper.nn.conv import LGATConv
from tests.nn.conv.lgnn_cases import EDGE_INDEX, LocalizedConvContract
from tests.nn.conv.lgnn_cases import EDGE_INDEX_WITH_LOOPS, features


class TestLGATConv(LocalizedConvContract):
    def make(self, **kwargs):
        return LGATConv(5, 2, heads=3, **kwargs)


@pytest.mark.parametrize('concat', [True, False])
@pytest.mark.parametrize('negative_slope', [0.2, 0.7])
def test_without_localization_equals_gat(concat, negative_slope):
    # 'negative_slope' is the attention's slope, as in GATConv (the
    # localization's is 'localization_slope').
    conv = LGATConv(5, 3, heads=2, concat=concat, node_level=False,
                    edge_level=False, negative_slope=negative_slope,
                    localization_slope=0.01)
    ref = GATConv(5, 3, heads=2, concat=concat,
                  negative_slope=negative_slope)
    ref.lin.weight.data.copy_(conv.weight.data.t())
    ref.att_src.data.copy_(conv.att_src.data)
    ref.att_dst.data.copy_(conv.att_dst.data)
    conv.bias.data.copy_(torch.randn_like(conv.bias))
    ref.bias.data.copy_(conv.bias.data)
    x = features(5)
    # With self loops of the graph's own too: GATConv keeps one per node.
    for edge_index in (EDGE_INDEX, EDGE_INDEX_WITH_LOOPS):
        assert torch.allclose(conv(x, edge_index), ref(x, edge_index),
                              atol=1e-6)


def test_return_attention_weights_as_gatconv():
    conv = LGATConv(5, 3, heads=2, node_level=False, edge_level=False)
    ref = GATConv(5, 3, heads=2)
    ref.lin.weight.data.copy_(conv.weight.data.t())
    ref.att_src.data.copy_(conv.att_src.data)
    ref.att_dst.data.copy_(conv.att_dst.data)
    x = features(5)
    out, (edge_index, alpha) = conv(x, EDGE_INDEX,
                                    return_attention_weights=True)
    ref_out, (ref_index, ref_alpha) = ref(x, EDGE_INDEX,
                                          return_attention_weights=True)
    assert torch.allclose(out, ref_out, atol=1e-6)
    # The same (edge, weight) pairs, whatever the order of the self loops.
    ours = {tuple(e): a for e, a in zip(edge_index.t().tolist(),
                                        alpha.tolist())}
    theirs = {tuple(e): a for e, a in zip(ref_index.t().tolist(),
                                          ref_alpha.tolist())}
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6)
    # With the regularizer: ((out, attention), reg).
    loc = LGATConv(5, 3, heads=2)
    (out, (_, alpha)), reg = loc(x, EDGE_INDEX, return_regularizer=True,
                                 return_attention_weights=True)
    assert out.shape == (6, 6) and alpha.shape == (edge_index.size(1), 2)
    assert reg > 0


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
