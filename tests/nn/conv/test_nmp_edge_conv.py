import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_geometric.testing import assert_module

from pyg_hyper.nn.conv import NMPEdgeConv


def _graph(num_nodes=5, channels=8, edge_dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, channels, generator=g)
    row, col = torch.meshgrid(torch.arange(num_nodes),
                              torch.arange(num_nodes), indexing='ij')
    mask = row != col
    edge_index = torch.stack([row[mask], col[mask]])
    edge_attr = torch.rand(edge_index.size(1), edge_dim, generator=g)
    return x, edge_index, edge_attr


def test_nmp_edge_conv_shapes_and_repr():
    x, edge_index, edge_attr = _graph()
    conv = NMPEdgeConv(8, edge_dim=6)
    assert str(conv) == ('NMPEdgeConv(8, edge_dim=6, edge_channels=8, '
                         'update_edge=True, edge_hidden_channels=16)')
    assert conv.edge_lin_out.weight.shape == (8, 16)  # hidden 2C, out C
    out, e = conv(x, edge_index, edge_attr)
    assert out.shape == (5, 8) and e.shape == (20, 8)

    plain = NMPEdgeConv(8, edge_dim=6, update_edge=False)
    assert str(plain) == ('NMPEdgeConv(8, edge_dim=6, edge_channels=6, '
                          'update_edge=False)')
    out, e = plain(x, edge_index, edge_attr)
    assert out.shape == (5, 8) and e is edge_attr


def test_nmp_edge_conv_matches_equations():
    torch.manual_seed(0)
    x, edge_index, edge_attr = _graph()
    x, edge_attr = x.double(), edge_attr.double()
    conv = NMPEdgeConv(8, edge_dim=6, edge_channels=3,
                       edge_hidden_channels=5).double()
    with torch.no_grad():
        for param in conv.parameters():  # non-zero biases too
            param.normal_()
    out, e = conv(x, edge_index, edge_attr)

    def ssp(t):
        return torch.nn.functional.softplus(t) - torch.log(
            torch.tensor(2., dtype=torch.double))

    src, dst = edge_index
    # e <- W_b ssp(W_a [h_w, h_v, e] + b_a) + b_b, with W_a split in three.
    w_a = torch.cat([conv.edge_lin_src.weight, conv.edge_lin_dst.weight,
                     conv.edge_lin_edge.weight], dim=1)
    hidden = torch.cat([x[src], x[dst], edge_attr], 1) @ w_a.t() + \
        conv.edge_lin_edge.bias
    e_ref = conv.edge_lin_out(ssp(hidden))
    torch.testing.assert_close(e, e_ref)
    # m_v = sum_w (W h_w) * ssp(W2 ssp(W1 e + b1) + b2)
    gate = ssp(conv.filter2(ssp(conv.filter1(e_ref))))
    msg = x.new_zeros(5, 8).index_add_(0, dst,
                                       conv.lin_msg(x[src]) * gate)
    # h <- h + W4 ssp(W3 m + b3) + b4
    ref = x + conv.update2(ssp(conv.update1(msg)))
    torch.testing.assert_close(out, ref)


def test_widths_and_parameter_count_match_msgnet():
    # msgnet at C = 64 on 150 Gaussians, read off its layer list: edge
    # update [2C + 150] -> 2C -> C (sizes from the concatenated atom pair),
    # gates C -> C -> C, bias-free W: C -> C, state update C -> C -> C.
    C, D = 64, 150
    expected = ((2 * C + D) * 2 * C + 2 * C + 2 * C * C + C +
                2 * (C * C + C) + C * C + 2 * (C * C + C))
    conv = NMPEdgeConv(C, edge_dim=D)
    assert sum(p.numel() for p in conv.parameters()) == expected == 64704
    assert conv.edge_channels == C and conv.edge_hidden_channels == 2 * C


def test_initialization_follows_msgnet():
    # Glorot-uniform weights (the bound of W_a is that of the whole
    # [2C + D] -> 2C matrix) and zero biases.
    torch.manual_seed(0)
    C, D = 64, 150
    conv = NMPEdgeConv(C, edge_dim=D)
    for name, param in conv.named_parameters():
        if name.endswith('bias'):
            assert (param == 0).all(), name
            continue
        fan_out, fan_in = param.shape
        if name.split('.')[0] in ('edge_lin_src', 'edge_lin_dst',
                                  'edge_lin_edge'):
            fan_in = 2 * C + D
        bound = (6.0 / (fan_in + fan_out))**0.5
        assert param.abs().max() <= bound, name
        # Uniform on [-b, b]: the largest entry is close to b.
        assert param.abs().max() > 0.95 * bound, name
    conv.reset_parameters()
    assert (conv.update1.bias == 0).all()


def test_bad_edge_widths():
    with pytest.raises(ValueError, match='edge_hidden_channels=4 with '
                       'update_edge=False'):
        NMPEdgeConv(8, edge_dim=6, update_edge=False, edge_hidden_channels=4)
    with pytest.raises(ValueError, match="'edge_hidden_channels'"):
        NMPEdgeConv(8, edge_dim=6, edge_hidden_channels=0)


def assert_node_permutation_equivariant(conv, num_nodes, num_edges, seed,
                                        **kwargs):
    """Relabelling the atoms of a random directed graph (repeated edges,
    self loops and isolated atoms included) relabels the new atom states
    and leaves every edge state unchanged (the edges keep their order).
    Per-atom tensors in :obj:`kwargs` are permuted with the atoms."""
    gen = torch.Generator().manual_seed(seed)
    conv = conv.double()
    x = torch.randn(num_nodes, conv.channels, generator=gen,
                    dtype=torch.double)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    edge_attr = torch.rand(num_edges, conv.edge_dim, generator=gen,
                           dtype=torch.double)
    perm = torch.randperm(num_nodes, generator=gen)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(num_nodes)
    out, e = conv(x, edge_index, edge_attr, **kwargs)
    out_p, e_p = conv(x[perm], inv[edge_index], edge_attr,
                      **{key: value[perm] for key, value in kwargs.items()})
    torch.testing.assert_close(out_p, out[perm], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(e_p, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('update_edge', [True, False])
@settings(max_examples=15, deadline=None)
@given(num_nodes=st.integers(2, 7), num_edges=st.integers(0, 14),
       seed=st.integers(0, 2**16))
def test_node_permutation_equivariance_on_random_graphs(
        update_edge, num_nodes, num_edges, seed):
    torch.manual_seed(seed)
    assert_node_permutation_equivariant(
        NMPEdgeConv(4, edge_dim=3, update_edge=update_edge), num_nodes,
        num_edges, seed)


def test_nmp_edge_conv_node_permutation_equivariance():
    x, edge_index, edge_attr = _graph(6)
    conv = NMPEdgeConv(8, edge_dim=6)
    out, e = conv(x, edge_index, edge_attr)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(6)
    out_p, e_p = conv(x[perm], inv[edge_index], edge_attr)
    torch.testing.assert_close(out_p, out[perm])
    torch.testing.assert_close(e_p, e)


class AtomStates(torch.nn.Module):
    """The atom-state output of a pass, the form PyG's ``assert_module``
    checks (a pass also returns its edge states)."""
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x, edge_index, edge_attr, **kwargs):
        return self.conv(x, edge_index, edge_attr, **kwargs)[0]


def assert_edge_order_invariant(conv, **kwargs):
    """PyG's check that permuting the edges (with their ``edge_attr``)
    leaves the output unchanged; sparse layouts are left out because the
    layer needs per-edge states."""
    x, edge_index, edge_attr = _graph(6)
    assert_module(AtomStates(conv.double()), x.double(), edge_index,
                  edge_attr=edge_attr.double(), expected_size=(6, 8),
                  test_sparse_layouts=[], **kwargs)


@pytest.mark.parametrize('update_edge', [True, False])
def test_nmp_edge_conv_edge_order_invariance(update_edge):
    torch.manual_seed(0)
    assert_edge_order_invariant(
        NMPEdgeConv(8, edge_dim=6, update_edge=update_edge))


def test_nmp_edge_conv_gradcheck():
    x, edge_index, edge_attr = _graph(4, channels=3, edge_dim=2)
    conv = NMPEdgeConv(3, edge_dim=2).double()
    x = x.double().requires_grad_()
    edge_attr = edge_attr.double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: conv(a, edge_index, b), (x, edge_attr))


def test_nmp_edge_conv_compiles_without_graph_breaks():
    x, edge_index, edge_attr = _graph()
    conv = NMPEdgeConv(8, edge_dim=6)
    explain = torch._dynamo.explain(conv)(x, edge_index, edge_attr)
    assert explain.graph_break_count == 0


def test_nmp_edge_conv_bad_input():
    x, edge_index, edge_attr = _graph()
    conv = NMPEdgeConv(8, edge_dim=6)
    with pytest.raises(ValueError, match=r"'x' of shape \[num_rows, 8\]"):
        conv(x[:, :5], edge_index, edge_attr)
    with pytest.raises(ValueError, match=r"'edge_attr' of shape"):
        conv(x, edge_index, edge_attr[:, :2])
    with pytest.raises(ValueError, match="needs 'edge_attr'"):
        conv(x, edge_index, None)
    with pytest.raises(ValueError, match='out of range'):
        conv(x, edge_index + 10, edge_attr)
    with pytest.raises(ValueError, match='per edge'):
        adj = torch.sparse_coo_tensor(edge_index, torch.ones(20), (5, 5),
                                      check_invariants=True)
        conv(x, adj, edge_attr)
    # CSR and CSC used to slip past (Tensor.is_sparse is COO only) into a
    # misleading edge_attr row count.
    from torch_geometric.utils import to_torch_csc_tensor, to_torch_csr_tensor
    for to_adj in (to_torch_csr_tensor, to_torch_csc_tensor):
        with pytest.raises(ValueError, match="needs 'edge_index' as a "
                           r"\[2, num_edges\] tensor"):
            conv(x, to_adj(edge_index, size=(5, 5)), edge_attr)
    with pytest.raises(ValueError, match="positive integer 'channels'"):
        NMPEdgeConv(0, edge_dim=6)
    # A width for edge states that are never updated used to be ignored.
    with pytest.raises(ValueError, match="edge_channels=3 with "
                       "update_edge=False"):
        NMPEdgeConv(8, edge_dim=6, edge_channels=3, update_edge=False)
    assert NMPEdgeConv(8, edge_dim=6, edge_channels=6,
                       update_edge=False).edge_channels == 6
    with pytest.raises(ValueError, match=r"'x' of its parameters' dtype "
                       r"torch.float32 \(got torch.float64\)"):
        conv(x.double(), edge_index, edge_attr)
    with pytest.raises(ValueError, match="positive integer 'edge_channels' "
                       r"\(got -1\)"):
        NMPEdgeConv(8, edge_dim=6, edge_channels=-1)
    # A vector of edge features, even of length one, is not broadcast.
    with pytest.raises(ValueError, match=r"'edge_attr' of shape \[num_edges, "
                       r"1\] \(got \[1\]\)"):
        NMPEdgeConv(8, edge_dim=1, update_edge=False)(
            x, edge_index, torch.tensor([0.7]))
