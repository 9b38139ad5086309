import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.nn import GINConv
from torch_geometric.testing import assert_module
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor
from torch_geometric.utils import (
    to_torch_coo_tensor,
    to_torch_csc_tensor,
    to_torch_csr_tensor,
)

from pyg_hyper.nn.conv import HyperGINConv
from tests.nn.hyper_linear_spy import (
    assert_every_map_took,
    spy_hyper_linear_paths,
)

EDGE_INDEX = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])


def test_repr_and_shapes():
    conv = HyperGINConv(16, 32)
    assert str(conv) == ('HyperGINConv(16, 32, hidden_channels=32, '
                         'hyper_channels=64, combine=concat, edge_dim=None)')
    x = torch.randn(4, 16)
    out = assert_module(conv, x, EDGE_INDEX, expected_size=(4, 32))
    out2, message = conv(x, EDGE_INDEX, return_message=True)
    assert torch.allclose(out, out2)
    assert message.shape == (4, 16)
    # message = (1 + eps) x_i + sum_j x_j
    expected = x.clone()
    expected[0] += x[0] + x[1]
    expected[1] += x[2] + x[3]
    assert torch.allclose(message, expected, atol=1e-6)


@pytest.mark.parametrize('edge_dim', [None, 3])
def test_uncoalesced_coo_adjacency(edge_dim):
    # A COO adjacency built by hand is uncoalesced; PyG reads its edges with
    # .indices(), which refused it ("Cannot get indices on an uncoalesced
    # tensor") whenever the messages need per-edge features.
    conv = HyperGINConv(16, 8, edge_dim=edge_dim)
    x = torch.randn(4, 16)
    edge_attr = None if edge_dim is None else torch.randn(4, edge_dim)
    order = torch.tensor([3, 0, 2, 1])  # not the sorted order
    adj_t = torch.sparse_coo_tensor(
        EDGE_INDEX.flip(0)[:, order],
        torch.ones(4) if edge_attr is None else edge_attr[order], (4, 4) +
        (() if edge_dim is None else (edge_dim, )))
    assert not adj_t.is_coalesced()
    expected = conv(x, EDGE_INDEX, edge_attr)
    assert torch.allclose(conv(x, adj_t), expected, atol=1e-6)


def test_bipartite():
    conv = HyperGINConv(16, 8)
    x1, x2 = torch.randn(4, 16), torch.randn(2, 16)
    out = conv((x1, x2), EDGE_INDEX, size=(4, 2))
    assert out.shape == (2, 8)
    adj_t = to_torch_csc_tensor(EDGE_INDEX, size=(4, 2)).t()
    assert torch.allclose(conv((x1, x2), adj_t), out, atol=1e-6)


def test_edge_features_and_sparse_layouts():
    conv = HyperGINConv(16, 32, edge_dim=3)
    x, edge_attr = torch.randn(4, 16), torch.randn(4, 3)
    out = assert_module(conv, x, EDGE_INDEX, expected_size=(4, 32),
                        edge_attr=edge_attr, test_sparse_layouts=[])
    # Sparse adjacencies carry the edge features as their values.
    for to_sparse in (to_torch_coo_tensor, to_torch_csr_tensor):
        adj_t = to_sparse(EDGE_INDEX.flip(0), edge_attr, size=(4, 4))
        assert torch.allclose(conv(x, adj_t), out, atol=1e-6)
    if WITH_TORCH_SPARSE:
        adj_t = SparseTensor.from_edge_index(EDGE_INDEX, edge_attr,
                                             (4, 4)).t()
        assert torch.allclose(conv(x, adj_t), out, atol=1e-6)


@pytest.mark.parametrize('edge_dim', [None, 3])
@pytest.mark.parametrize('combine', ['concat', 'convex'])
def test_factorized_equals_materialized(edge_dim, combine):
    conv = HyperGINConv(8, 6, combine=combine, edge_dim=edge_dim).double()
    ref = HyperGINConv(8, 6, combine=combine, edge_dim=edge_dim,
                       materialize=True).double()
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(4, 8, dtype=torch.double)
    edge_attr = None if edge_dim is None else torch.randn(
        4, 3, dtype=torch.double)
    first = torch.randn(4, 8, dtype=torch.double)
    out = conv(x, EDGE_INDEX, edge_attr, first_message=first)
    assert torch.allclose(out, ref(x, EDGE_INDEX, edge_attr,
                                   first_message=first), atol=1e-12)


@pytest.mark.parametrize('edge_dim', [None, 3])
def test_materialize_flag_selects_the_materializing_path(monkeypatch,
                                                         edge_dim):
    # The comparison above also passes if 'materialize' never reaches the
    # node network (both calls would then run the factorized path), so the
    # two paths of every generated map are spied on instead.
    calls = spy_hyper_linear_paths(monkeypatch)
    x = torch.randn(4, 8)
    edge_attr = None if edge_dim is None else torch.randn(4, 3)
    conv = HyperGINConv(8, 6, edge_dim=edge_dim)
    conv(x, EDGE_INDEX, edge_attr)
    assert_every_map_took(calls, conv, materialized=False)
    ref = HyperGINConv(8, 6, edge_dim=edge_dim, materialize=True)
    ref(x, EDGE_INDEX, edge_attr)
    assert_every_map_took(calls, ref, materialized=True)


def test_edge_feature_message_is_relu_of_neighbour_plus_mapped_edge():
    # GINE's message, written out: m_i = (1 + eps) x_i +
    # sum_j ReLU(x_j + Theta_e e_ji + b_e).
    torch.manual_seed(0)
    conv = HyperGINConv(4, 3, hyper_channels=2, edge_dim=2, eps=0.5).double()
    x = torch.randn(4, 4, dtype=torch.double)
    edge_attr = torch.randn(4, 2, dtype=torch.double)
    src, dst = EDGE_INDEX
    pre = x[src] + edge_attr @ conv.lin_edge.weight.t() + conv.lin_edge.bias
    assert (pre < 0).any() and (pre > 0).any()  # the ReLU has work to do
    expected = (1.5 * x).index_add(0, dst, pre.relu())
    _, message = conv(x, EDGE_INDEX, edge_attr, return_message=True)
    assert torch.allclose(message, expected, atol=1e-12)
    # The same message from a sparse adjacency holding the edge features.
    adj_t = to_torch_coo_tensor(EDGE_INDEX.flip(0), edge_attr, size=(4, 4))
    _, message = conv(x, adj_t, return_message=True)
    assert torch.allclose(message, expected, atol=1e-12)


def test_first_message_changes_output():
    conv = HyperGINConv(8, 6)
    x = torch.randn(4, 8)
    first = torch.randn(4, 8)
    assert not torch.allclose(conv(x, EDGE_INDEX),
                              conv(x, EDGE_INDEX, first_message=first))


def test_reduces_to_gin_when_code_is_ignored():
    # With A_k = 0 the generated weights are the constant B, so the layer is a
    # plain GIN whose MLP has weights B.
    conv = HyperGINConv(5, 4, hidden_channels=3, hyper_channels=2).double()
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Tanh(),
                              torch.nn.Linear(3, 4)).double()
    gin = GINConv(mlp)  # resets the MLP, so copy B in afterwards
    with torch.no_grad():
        for lin, plain in zip(conv.nn.lins, (mlp[0], mlp[2])):
            theta = lin.weight.view(lin.out_channels, 3, lin.in_channels + 1)
            theta[:, :2] = 0.0
            plain.weight.copy_(theta[:, 2, :-1])
            plain.bias.copy_(theta[:, 2, -1])
    x = torch.randn(4, 5, dtype=torch.double)
    assert torch.allclose(conv(x, EDGE_INDEX), gin(x, EDGE_INDEX))


def test_zero_generator_init_starts_as_gin_with_a_tanh_mlp():
    torch.manual_seed(0)
    conv = HyperGINConv(5, 4, hidden_channels=3, hyper_channels=2,
                        generator_init='zero').double()
    assert str(conv).endswith('edge_dim=None, generator_init=zero)')
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Tanh(),
                              torch.nn.Linear(3, 4)).double()
    gin = GINConv(mlp)
    with torch.no_grad():
        for lin, plain in zip(conv.nn.lins, (mlp[0], mlp[2])):
            theta = lin.weight.view(lin.out_channels, 3, lin.in_channels + 1)
            plain.weight.copy_(theta[:, 2, :-1])
            plain.bias.copy_(theta[:, 2, -1])
    x = torch.randn(4, 5, dtype=torch.double)
    assert torch.allclose(conv(x, EDGE_INDEX), gin(x, EDGE_INDEX))
    # The hypernetwork has no say yet, but gets a say once A_k moves.
    with torch.no_grad():
        for p in conv.hyper.parameters():
            p.add_(1.0)
    assert torch.allclose(conv(x, EDGE_INDEX), gin(x, EDGE_INDEX))
    with torch.no_grad():
        conv.nn.lins[0].weight.add_(0.1)
    assert not torch.allclose(conv(x, EDGE_INDEX), gin(x, EDGE_INDEX))
    with pytest.raises(ValueError, match="'HyperGINConv' got unknown "
                       "generator_init 'he'"):
        HyperGINConv(5, 4, generator_init='he')


def test_gradcheck():
    conv = HyperGINConv(3, 2, hyper_channels=2, edge_dim=2).double()
    x = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    edge_attr = torch.randn(4, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, e: conv(x, EDGE_INDEX, e), (x, edge_attr))


def test_compile_no_graph_breaks():
    conv = HyperGINConv(16, 32, edge_dim=3)
    x, edge_attr = torch.randn(4, 16), torch.randn(4, 3)
    explain = torch._dynamo.explain(conv)(x, EDGE_INDEX, edge_attr)
    assert explain.graph_break_count == 0
    compiled = torch.compile(conv, fullgraph=True)
    assert torch.allclose(compiled(x, EDGE_INDEX, edge_attr),
                          conv(x, EDGE_INDEX, edge_attr), atol=1e-5)


def _two_graphs():
    # Graph 0: a triangle plus an isolated node; graph 1: no edges at all.
    g0 = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
    return g0, 4, 3


def test_batch_equals_graphs_one_by_one():
    conv = HyperGINConv(6, 5, edge_dim=2).double()
    ei0, n0, n1 = _two_graphs()
    x0 = torch.randn(n0, 6, dtype=torch.double)
    x1 = torch.randn(n1, 6, dtype=torch.double)
    e0 = torch.randn(ei0.size(1), 2, dtype=torch.double)
    empty = torch.empty(2, 0, dtype=torch.long)
    out0 = conv(x0, ei0, e0)
    out1 = conv(x1, empty, torch.empty(0, 2, dtype=torch.double))
    batched = conv(torch.cat([x0, x1]), ei0, e0)
    assert torch.allclose(batched, torch.cat([out0, out1]), atol=1e-12)
    # Isolated nodes see only themselves: message = (1 + eps) x.
    _, message = conv(x1, empty, torch.empty(0, 2, dtype=torch.double),
                      return_message=True)
    assert torch.allclose(message, x1)


@settings(max_examples=15, deadline=None)
@given(num_nodes=st.integers(2, 8), seed=st.integers(0, 2**16))
def test_node_permutation_equivariance(num_nodes, seed):
    gen = torch.Generator().manual_seed(seed)
    conv = HyperGINConv(4, 3).double()
    x = torch.randn(num_nodes, 4, generator=gen, dtype=torch.double)
    edge_index = torch.randint(0, num_nodes, (2, 2 * num_nodes),
                               generator=gen)
    perm = torch.randperm(num_nodes, generator=gen)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(num_nodes)
    out = conv(x, edge_index)
    out_perm = conv(x[perm], inv[edge_index])
    assert torch.allclose(out_perm, out[perm], atol=1e-10)


def test_bad_input():
    conv = HyperGINConv(16, 32, edge_dim=3)
    x, edge_attr = torch.randn(4, 16), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"'x' of shape \[num_rows, 16\]"):
        conv(torch.randn(4, 15), EDGE_INDEX, edge_attr)
    with pytest.raises(ValueError, match="needs 'edge_attr'"):
        conv(x, EDGE_INDEX)
    with pytest.raises(ValueError, match=r"'edge_attr' of shape \[num_edges, 3"):
        conv(x, EDGE_INDEX, torch.randn(4, 2))
    with pytest.raises(ValueError, match='one .edge_attr. row per edge'):
        conv(x, EDGE_INDEX, torch.randn(3, 3))
    with pytest.raises(ValueError, match=r"'edge_attr' of its parameters' "
                       r"dtype torch.float32 \(got torch.float64\)"):
        conv(x, EDGE_INDEX, edge_attr.double())
    with pytest.raises(ValueError, match='dtype torch.long'):
        conv(x, EDGE_INDEX.float(), edge_attr)
    with pytest.raises(ValueError, match=r'shape \[2, num_edges\]'):
        conv(x, EDGE_INDEX.view(4, 2), edge_attr)
    with pytest.raises(ValueError, match='out of range'):
        conv(x, torch.tensor([[0, 1, 2, 4], [0, 0, 1, 1]]), edge_attr)
    with pytest.raises(ValueError, match='negative node indices'):
        conv(x, torch.tensor([[0, 1, 2, -1], [0, 0, 1, 1]]), edge_attr)
    with pytest.raises(ValueError, match=r"'first_message' of shape \[4, 16\]"):
        conv(x, EDGE_INDEX, edge_attr, first_message=torch.randn(4, 8))
    # A float64 first message used to end in a bare matmul dtype error.
    with pytest.raises(ValueError, match="'first_message' of its "
                       "parameters' dtype torch.float32"):
        conv(x, EDGE_INDEX, edge_attr,
             first_message=torch.randn(4, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="built without 'edge_dim'"):
        HyperGINConv(16, 32)(x, EDGE_INDEX, edge_attr)
    with pytest.raises(ValueError, match="needs 'first_message'"):
        HyperGINConv(16, 32, first_channels=8)(x, EDGE_INDEX)
    for bad in (x.double(), x.long()):
        with pytest.raises(ValueError, match=r"'x' of its parameters' dtype "
                           rf"torch.float32 \(got {bad.dtype}\)"):
            conv(bad, EDGE_INDEX, edge_attr)


def test_sparse_adjacency_edge_features_are_its_values():
    # A plain adjacency with a separate 'edge_attr' used to run and drop
    # the features (the fused sparse product has no per-edge term).
    conv = HyperGINConv(16, 32, edge_dim=3)
    x, edge_attr = torch.randn(4, 16), torch.randn(4, 3)
    plain = to_torch_csc_tensor(EDGE_INDEX, size=(4, 4)).t()
    with pytest.raises(ValueError, match="got a sparse adjacency and a "
                       "separate 'edge_attr'; store the edge features as "
                       r"the adjacency's values \(\[num_edges, 3\]\)"):
        conv(x, plain, edge_attr)
    with pytest.raises(ValueError, match=r"needs the sparse adjacency's "
                       r"values to be edge features of shape \[num_edges, "
                       r"3\] \(got values of shape \[4\]\)"):
        conv(x, plain)
    with pytest.raises(ValueError, match="built without 'edge_dim'"):
        HyperGINConv(16, 32)(x, plain, edge_attr)


@pytest.mark.parametrize('kwargs,name', [
    (dict(in_channels=0, out_channels=4), 'in_channels'),
    (dict(in_channels=4.0, out_channels=4), 'in_channels'),
    (dict(in_channels=4, out_channels=-1), 'out_channels'),
    (dict(in_channels=4, out_channels=4, hyper_channels=-2),
     'hyper_channels'),
    (dict(in_channels=4, out_channels=4, hidden_channels=0),
     'hidden_channels'),
    (dict(in_channels=4, out_channels=4, first_channels=0),
     'first_channels'),
    (dict(in_channels=4, out_channels=4, edge_dim=0), 'edge_dim'),
])
def test_bad_sizes_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"'HyperGINConv' needs a positive "
                       f"integer '{name}'"):
        HyperGINConv(**kwargs)


@pytest.mark.parametrize('layout', ['csr', 'coo', 'csc'])
def test_torch_sparse_adjacency_in_float64_and_with_values(layout):
    # GIN sums its neighbours unweighted: a weighted adjacency gives what
    # its edge_index gives (as a value-less SparseTensor does), and the
    # float32 ones of to_torch_*_tensor fit a float64 model.
    from torch_geometric.utils import (
        to_torch_coo_tensor,
        to_torch_csc_tensor,
        to_torch_csr_tensor,
    )
    build = {'csr': to_torch_csr_tensor, 'coo': to_torch_coo_tensor,
             'csc': to_torch_csc_tensor}[layout]
    torch.manual_seed(0)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 3],
                               [1, 2, 3, 4, 5, 0, 0, 0]])
    x = torch.randn(6, 5, dtype=torch.float64)
    for aggr in ('add', 'mean', 'max'):
        conv = HyperGINConv(5, 3, hyper_channels=4, aggr=aggr).double()
        expected = conv(x, edge_index)
        assert torch.allclose(conv(x, build(edge_index.flip(0),
                                            size=(6, 6))), expected)
        weighted = build(edge_index.flip(0), torch.rand(8) * 3, size=(6, 6))
        assert torch.allclose(conv(x, weighted), expected)


def test_bipartite_without_targets_takes_their_count_from_the_adjacency():
    # (x_src, None) with a [num_dst, num_src] adjacency, as GINConv allows.
    from torch_geometric.utils import to_torch_csr_tensor
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [0, 1, 1, 0, 1]])
    x = torch.randn(5, 3)
    conv = HyperGINConv(3, 4, hyper_channels=4)
    expected = conv((x, None), edge_index, size=(5, 2))
    adj_t = to_torch_csr_tensor(edge_index.flip(0), size=(2, 5))
    assert expected.shape == (2, 4)
    assert torch.allclose(conv((x, None), adj_t), expected)


def test_train_eps_makes_eps_a_learned_parameter():
    # GIN's epsilon: a trainable parameter with train_eps=True (it gets a
    # gradient, d out / d eps = d out / d m * x_i), a fixed buffer otherwise.
    torch.manual_seed(0)
    x = torch.randn(4, 5, dtype=torch.double)
    learned = HyperGINConv(5, 3, hyper_channels=2, eps=0.25,
                           train_eps=True).double()
    names = dict(learned.named_parameters())
    assert 'eps' in names and names['eps'].requires_grad
    assert float(learned.eps) == 0.25
    learned(x, EDGE_INDEX).sum().backward()
    assert learned.eps.grad is not None and learned.eps.grad.abs() > 0
    # The gradient is that of the message's self term (1 + eps) x_i.
    _, message = learned(x, EDGE_INDEX, return_message=True)
    src, dst = EDGE_INDEX
    expected = (1.25 * x).index_add(0, dst, x[src])
    assert torch.allclose(message, expected, atol=1e-12)

    fixed = HyperGINConv(5, 3, hyper_channels=2, eps=0.25).double()
    assert 'eps' not in dict(fixed.named_parameters())
    assert 'eps' in dict(fixed.named_buffers())
    assert float(fixed.eps) == 0.25


def test_bipartite_message_is_gin_sum_over_sources_plus_target_self_term():
    # m_i = (1 + eps) x_dst[i] + sum_{j -> i} x_src[j], the target's own
    # features as self term (GINConv's bipartite convention).
    torch.manual_seed(0)
    conv = HyperGINConv(3, 4, hyper_channels=2, eps=0.5).double()
    x_src = torch.randn(4, 3, dtype=torch.double)
    x_dst = torch.randn(2, 3, dtype=torch.double)
    _, message = conv((x_src, x_dst), EDGE_INDEX, size=(4, 2),
                      return_message=True)
    expected = torch.stack([1.5 * x_dst[0] + x_src[0] + x_src[1],
                            1.5 * x_dst[1] + x_src[2] + x_src[3]])
    assert torch.allclose(message, expected, atol=1e-12)
    # Without target features there is no self term.
    _, message = conv((x_src, None), EDGE_INDEX, size=(4, 2),
                      return_message=True)
    expected = torch.stack([x_src[0] + x_src[1], x_src[2] + x_src[3]])
    assert torch.allclose(message, expected, atol=1e-12)
