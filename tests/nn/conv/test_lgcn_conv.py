import pytest
import torch

from torch_geometric.nn import GCNConv

from pyg_hyper.nn.conv import LGCNConv
from tests.nn.conv.lgnn_cases import EDGE_INDEX, LocalizedConvContract
from tests.nn.conv.lgnn_cases import EDGE_INDEX_WITH_LOOPS, features


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
    # With self loops of the graph's own too: GCNConv keeps one per node,
    # with the existing loop's weight.
    for edge_index in (EDGE_INDEX, EDGE_INDEX_WITH_LOOPS):
        assert torch.allclose(conv(x, edge_index), ref(x, edge_index),
                              atol=1e-6)
        ew = torch.rand(edge_index.size(1))
        assert torch.allclose(conv(x, edge_index, ew), ref(x, edge_index, ew),
                              atol=1e-6)


def test_sparse_adjacency_keeps_its_weights_as_its_values():
    # A separate 'edge_weight' was applied in the caller's edge order to the
    # adjacency's sorted edges (and PyG's GCNConv would ignore it).
    from torch_geometric.utils import to_torch_coo_tensor
    conv = LGCNConv(5, 3)
    x = features(5)
    ew = torch.rand(EDGE_INDEX.size(1)) + 0.5
    expected = conv(x, EDGE_INDEX, ew)
    adj_t = to_torch_coo_tensor(EDGE_INDEX.flip(0), ew, size=(6, 6))
    assert torch.allclose(conv(x, adj_t), expected, atol=1e-6)
    ones = to_torch_coo_tensor(EDGE_INDEX.flip(0), size=(6, 6))
    for adj in (adj_t, ones):
        with pytest.raises(ValueError, match="sparse adjacency and a "
                           "separate 'edge_weight'"):
            conv(x, adj, ew)


def test_isolated_node_gets_finite_output():
    out = LGCNConv(5, 3)(features(5), EDGE_INDEX)
    assert torch.isfinite(out).all() and out.shape == (6, 3)


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


def test_node_level_only_aggregates_dense_inputs_first():
    # Node-level only on dense features: sum_u A_vu h_u W_v = a_v W_v,
    # computed without a term per edge; it equals the per-edge messages
    # aggregated, with and without output_index.
    torch.manual_seed(0)
    conv = LGCNConv(5, 3, edge_level=False, node_rank=2).double()
    x = features(5, dtype=torch.float64)
    assert conv.aggregates_first(x)
    for nodes in (None, torch.tensor([1, 4])):
        out, reg = conv(x, EDGE_INDEX, return_regularizer=True,
                        output_index=nodes)
        edges, loc = conv.localize(x, EDGE_INDEX, output_index=nodes)
        per_edge = conv.propagate(edges.edge_index, msg=loc.msg,
                                  norm=edges.norm, size=(6, 6)) + conv.bias
        if nodes is not None:
            per_edge[[0, 2, 3, 5]] = conv.bias
        assert torch.allclose(out, per_edge)
        assert torch.allclose(reg, loc.regularizer)
    # Sparse features, or anything applied per edge after h_u W_v, take
    # the per-edge path.
    assert not conv.aggregates_first(features(5, sparse=True))
    assert not LGCNConv(5, 3).aggregates_first(x)
    assert not LGCNConv(5, 3, edge_level=False,
                        materialize=True).aggregates_first(x)
    dropping = LGCNConv(5, 3, edge_level=False, message_dropout=0.5)
    assert not dropping.aggregates_first(x)
    assert dropping.eval().aggregates_first(x)


def test_aggregated_path_input_gradient():
    # Hidden layers feed dense features that need gradients.
    torch.manual_seed(0)
    conv = LGCNConv(5, 3, edge_level=False, node_rank=2).double()
    x = features(5, dtype=torch.float64).requires_grad_()
    assert conv.aggregates_first(x)
    assert torch.autograd.gradcheck(
        lambda x: conv(x, EDGE_INDEX, return_regularizer=True), (x, ))


def test_cached_learned_edge_weights_keep_their_gradient():
    # A cached normalization would cut the graph to the second call's
    # weights: learned weights are never cached.
    conv = LGCNConv(5, 3, cached=True)
    x = features(5)
    # The same learned weights in two steps (e.g. gradient accumulation):
    # equal keys, but each call needs its own autograd graph.
    weight = torch.nn.Parameter(torch.rand(EDGE_INDEX.size(1)))
    grads = []
    for _ in range(2):
        conv(x, EDGE_INDEX, weight).sum().backward()
        grads.append(weight.grad.clone())
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[1], 2 * grads[0])
    # Fixed weights are cached, and a change of them is seen.
    fixed = torch.rand(EDGE_INDEX.size(1))
    ref = LGCNConv(5, 3)
    ref.load_state_dict(conv.state_dict())
    for w in (fixed, fixed * 2):
        assert torch.allclose(conv(x, EDGE_INDEX, w), ref(x, EDGE_INDEX, w))


def test_cached_aggregate_first_path_with_learned_edge_weights():
    # Node-level only on dense features aggregates first, through a cached
    # adjacency: learned weights must still get their gradient every call.
    conv = LGCNConv(5, 3, node_rank=2, edge_level=False, cached=True)
    ref = LGCNConv(5, 3, node_rank=2, edge_level=False)
    ref.load_state_dict(conv.state_dict())
    x = features(5)
    assert conv.aggregates_first(x)
    weights = [torch.nn.Parameter(torch.rand(EDGE_INDEX.size(1)))]
    weights.append(torch.nn.Parameter(weights[0].detach().clone()))
    for _ in range(2):  # the same weights twice: gradients accumulate
        out = conv(x, EDGE_INDEX, weights[0])
        assert torch.allclose(out, ref(x, EDGE_INDEX, weights[1]))
        out.pow(2).sum().backward()
        ref(x, EDGE_INDEX, weights[1]).pow(2).sum().backward()
        assert torch.allclose(weights[0].grad, weights[1].grad)


@pytest.mark.parametrize('levels', [
    {}, {'node_level': False, 'edge_level': False}, {'edge_level': False}])
def test_learned_edge_weights_get_finite_gradients_at_zero_degree(levels):
    # A self-loop of weight 0 on a node without other edges: its degree is
    # 0, and pow(-0.5)'s gradient there (0 * inf) was NaN.
    edge_index = torch.tensor([[0, 1, 3], [1, 0, 3]])
    weight = torch.tensor([1.0, 2.0, 0.0], requires_grad=True)
    LGCNConv(5, 3, **levels)(features(5)[:4], edge_index, weight).sum() \
        .backward()
    assert torch.isfinite(weight.grad).all()


def test_edge_weight_of_another_dtype_is_named():
    # It silently turned a float32 model's output into float64.
    with pytest.raises(ValueError, match=r"'LGCNConv' expected "
                       r"'edge_weight' of its parameters' dtype "
                       r"torch.float32 \(got torch.float64\)"):
        LGCNConv(5, 3, node_level=False, edge_level=False)(
            features(5), EDGE_INDEX,
            torch.ones(EDGE_INDEX.size(1), dtype=torch.float64))
