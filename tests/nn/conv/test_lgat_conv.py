import pytest
import torch
import torch.nn.functional as F

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


def _lgat_reference(conv, x, edge_index):
    """The docstring's LGAT written out pair by pair, from the materialized
    W_v, gamma_vu and beta_vu: m_vu = gamma_vu * (x_u W_v + b) + beta_vu,
    z_v = x_v W_v, alpha_vu = softmax_u LeakyReLU(a_s m_vu + a_t z_v) over
    N(v) and v itself, x'_v = sum_u alpha_vu m_vu + b'. Returns the output
    and the attention as a dense [target, source, head] array."""
    n = x.size(0)
    heads, out = conv.heads, conv.out_channels
    # A + I with one loop per node (a graph's own loops merge into it).
    adj = torch.zeros(n, n, dtype=x.dtype)
    adj[edge_index[1], edge_index[0]] = 1.0
    adj.fill_diagonal_(1.0)
    inv_sqrt = adj.sum(1).pow(-0.5)
    context = (inv_sqrt[:, None] * adj * inv_sqrt[None, :]) @ x
    node_act = torch.nn.LeakyReLU(conv.node_loc.negative_slope)
    m_gamma, m_beta = conv.node_loc.proj.chunk(2, dim=1)
    gamma_v = node_act(context @ m_gamma) + 1
    beta_v = node_act(context @ m_beta)
    # W_v[v, i, o] = W[i, o] * gamma_v[v, i] + beta_v[v, i].
    w_v = conv.weight[None] * gamma_v[:, :, None] + beta_v[:, :, None]
    edge_act = torch.nn.LeakyReLU(conv.edge_loc.negative_slope)
    c_gamma, c_beta = conv.edge_loc.center.chunk(2, dim=1)
    n_gamma, n_beta = conv.edge_loc.neighbor.chunk(2, dim=1)
    a_s, a_t = conv.att_src[0], conv.att_dst[0]  # [heads, out]
    result = torch.zeros(n, heads * out, dtype=x.dtype)
    alpha = torch.zeros(n, n, heads, dtype=x.dtype)
    for v in range(n):
        z_v = (x[v] @ w_v[v]).view(heads, out)
        sources = adj[v].nonzero().view(-1).tolist()
        messages, scores = [], []
        for u in sources:
            gamma_vu = edge_act(x[v] @ c_gamma + x[u] @ n_gamma) + 1
            beta_vu = edge_act(x[v] @ c_beta + x[u] @ n_beta)
            m_vu = (gamma_vu * (x[u] @ w_v[v] + conv.msg_bias) +
                    beta_vu).view(heads, out)
            messages.append(m_vu)
            scores.append(F.leaky_relu((a_s * m_vu).sum(-1) +
                                       (a_t * z_v).sum(-1),
                                       conv.negative_slope))
        weights = torch.softmax(torch.stack(scores), dim=0)  # [deg, heads]
        alpha[v, sources] = weights
        result[v] = (weights[:, :, None] *
                     torch.stack(messages)).sum(0).view(-1) + conv.bias
    return result, alpha


@pytest.mark.parametrize('edge_index', [EDGE_INDEX, EDGE_INDEX_WITH_LOOPS])
def test_both_levels_match_the_written_out_attention(edge_index):
    # The scores must read the edge-localized messages m_vu and the target
    # term z_v = x_v W_v before edge-level localization (the docstring's
    # math), which no comparison of the layer with itself would notice.
    torch.manual_seed(0)
    conv = LGATConv(5, 3, heads=2).double()
    with torch.no_grad():
        conv.msg_bias.normal_()
        conv.bias.normal_()
    x = features(5, dtype=torch.float64)
    out, (index, alpha) = conv(x, edge_index, return_attention_weights=True)
    ref_out, ref_alpha = _lgat_reference(conv, x, edge_index)
    got = torch.zeros_like(ref_alpha).index_put_(
        (index[1], index[0]), alpha, accumulate=True)
    torch.testing.assert_close(got, ref_alpha)
    torch.testing.assert_close(out, ref_out)
