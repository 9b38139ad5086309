import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.nn.conv import HyperNMPEdgeConv, NMPEdgeConv

from tests.nn.conv.test_nmp_edge_conv import (
    _graph,
    assert_edge_order_invariant,
    assert_node_permutation_equivariant,
)
from tests.nn.hyper_linear_spy import (
    assert_every_map_took,
    generator_weights,
    spy_hyper_linear_paths,
)


@pytest.mark.parametrize('combine', ['concat', 'convex'])
@pytest.mark.parametrize('edge_hyper', [False, True])
def test_factorized_equals_materialized(combine, edge_hyper):
    torch.manual_seed(0)
    x, edge_index, edge_attr = _graph(6)
    first = torch.randn_like(x)
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=5,
                            combine=combine, edge_hyper=edge_hyper)
    out, e = conv(x, edge_index, edge_attr, first_state=first)
    conv.materialize = True
    ref, e_ref = conv(x, edge_index, edge_attr, first_state=first)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e, e_ref)


@pytest.mark.parametrize('edge_hyper', [False, True])
def test_materialize_flag_selects_the_materializing_path(monkeypatch,
                                                         edge_hyper):
    # The comparisons around this test also pass if 'materialize' never
    # reaches a generated map (both runs would be factorized), so the two
    # paths of the state update's maps, and with edge_hyper of the per-edge
    # message map, are spied on instead.
    calls = spy_hyper_linear_paths(monkeypatch)
    x, edge_index, edge_attr = _graph(5)
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=5,
                            edge_hyper=edge_hyper)
    # The state update's two maps, and the message map if generated.
    assert len(generator_weights(conv)) == (3 if edge_hyper else 2)
    conv(x, edge_index, edge_attr)
    assert_every_map_took(calls, conv, materialized=False)
    conv.materialize = True
    conv(x, edge_index, edge_attr)
    assert_every_map_took(calls, conv, materialized=True)


@pytest.mark.parametrize('edge_hyper', [False, True])
def test_chunked_factorized_gradients_equal_materialized(edge_hyper):
    # 30 edges in chunks of 7 (the default chunk of 8192 edges would leave
    # the chunked per-edge path untested here), node chunks of 4.
    torch.manual_seed(0)
    x, edge_index, edge_attr = (t.double() if t.is_floating_point() else t
                                for t in _graph(6))
    first = torch.randn_like(x)
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=5,
                            edge_hyper=edge_hyper, edge_chunk_size=7,
                            chunk_size=4).double()
    grads = []
    for materialize in (False, True):
        conv.materialize = materialize
        conv.zero_grad()
        inputs = [t.clone().requires_grad_() for t in (x, edge_attr, first)]
        out, e = conv(inputs[0], edge_index, inputs[1],
                      first_state=inputs[2])
        (out.pow(2).sum() + e.sin().sum()).backward()
        grads.append([out, e] + [t.grad for t in inputs] +
                     [p.grad.clone() for p in conv.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('edge_hyper', [False, True])
def test_edge_order_invariance(edge_hyper):
    torch.manual_seed(0)
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=5,
                            edge_hyper=edge_hyper, edge_chunk_size=7)
    first = torch.randn(6, 8, dtype=torch.float64)
    assert_edge_order_invariant(conv, first_state=first)


@pytest.mark.parametrize('combine,edge_hyper', [('concat', False),
                                               ('convex', True)])
@settings(max_examples=15, deadline=None)
@given(num_nodes=st.integers(2, 7), num_edges=st.integers(0, 14),
       seed=st.integers(0, 2**16))
def test_node_permutation_equivariance(combine, edge_hyper, num_nodes,
                                       num_edges, seed):
    # The generated per-atom state update (and per-edge message weight)
    # must follow its atom (edge): the first states are permuted with the
    # atoms.
    torch.manual_seed(seed)
    conv = HyperNMPEdgeConv(4, edge_dim=3, hyper_channels=3, combine=combine,
                            edge_hyper=edge_hyper)
    first = torch.randn(num_nodes, 4, dtype=torch.double)
    assert_node_permutation_equivariant(conv, num_nodes, num_edges, seed,
                                        first_state=first)


def test_chunked_equals_unchunked():
    torch.manual_seed(0)
    x, edge_index, edge_attr = _graph(6)
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=4,
                            edge_hyper=True, edge_chunk_size=None)
    out, _ = conv(x, edge_index, edge_attr)
    out.pow(2).sum().backward()
    grads = [p.grad.clone() for p in conv.parameters()]
    # 4 splits both the 30 edges and the 6 atoms into several chunks.
    for lin in [conv.lin_msg, *conv.update_nn.lins]:
        lin.chunk_size = 4
    conv.zero_grad()
    chunked, _ = conv(x, edge_index, edge_attr)
    torch.testing.assert_close(out, chunked, atol=1e-6, rtol=1e-5)
    chunked.pow(2).sum().backward()
    for g, p in zip(grads, conv.parameters()):
        torch.testing.assert_close(p.grad, g, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('edge_hyper', [False, True])
def test_generator_options_reach_every_generated_map(edge_hyper):
    torch.manual_seed(0)
    x, edge_index, edge_attr = _graph(6)
    first, other = torch.randn(6, 8), torch.randn(6, 8)
    zero = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=4,
                            edge_hyper=edge_hyper, generator_init='zero',
                            normalize_code=True)
    lins = list(zero.update_nn.lins) + ([zero.lin_msg] if edge_hyper else [])
    assert all(lin.generator_init == 'zero' and lin.normalize_code
               for lin in lins)
    # Zero-initialized generators: the codes do not reach the output yet.
    out, _ = zero(x, edge_index, edge_attr, first_state=first)
    torch.testing.assert_close(
        out, zero(x, edge_index, edge_attr, first_state=other)[0])
    uniform = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=4,
                               edge_hyper=edge_hyper)
    out, _ = uniform(x, edge_index, edge_attr, first_state=first)
    assert not torch.allclose(
        out, uniform(x, edge_index, edge_attr, first_state=other)[0])


def test_generated_weights_differ_per_atom():
    # The state update really depends on the atom through z_v: swapping in
    # another atom's first state changes its output.
    torch.manual_seed(0)
    x, edge_index, edge_attr = _graph(5)
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=4)
    first = torch.randn_like(x)
    out, _ = conv(x, edge_index, edge_attr, first_state=first)
    out2, _ = conv(x, edge_index, edge_attr, first_state=first.flip(0))
    assert not torch.allclose(out, out2)
    # Without first_state the layer uses x itself.
    own, _ = conv(x, edge_index, edge_attr)
    same, _ = conv(x, edge_index, edge_attr, first_state=x)
    torch.testing.assert_close(own, same)


def test_shares_edge_update_and_message_with_nmp_edge():
    x, edge_index, edge_attr = _graph()
    hyper = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=4)
    plain = NMPEdgeConv(8, edge_dim=6)
    plain.load_state_dict({k: v for k, v in hyper.state_dict().items()
                           if k in plain.state_dict()}, strict=False)
    e_hyper = hyper.update_edges(x, edge_index, edge_attr)
    e_plain = plain.update_edges(x, edge_index, edge_attr)
    torch.testing.assert_close(e_hyper, e_plain)
    torch.testing.assert_close(
        hyper.aggregate_messages(x, edge_index, e_hyper),
        plain.aggregate_messages(x, edge_index, e_plain))


@pytest.mark.parametrize('edge_hyper', [False, True])
def test_gradcheck(edge_hyper):
    x, edge_index, edge_attr = _graph(4, channels=3, edge_dim=2)
    conv = HyperNMPEdgeConv(3, edge_dim=2, hyper_channels=2,
                            edge_hyper=edge_hyper).double()
    x = x.double().requires_grad_()
    first = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    edge_attr = edge_attr.double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b, c: conv(a, edge_index, b, first_state=c),
        (x, edge_attr, first))


@pytest.mark.parametrize('edge_hyper', [False, True])
def test_messages_pass_through_propagate(edge_hyper):
    # PyG's message hooks (explainers, debugging) see every message, the
    # per-edge generated ones included.
    x, edge_index, edge_attr = _graph()
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=4,
                            edge_hyper=edge_hyper)
    seen = []
    conv.register_message_forward_hook(
        lambda module, inputs, out: seen.append(out))
    out, _ = conv(x, edge_index, edge_attr)
    assert len(seen) == 1
    assert seen[0].shape == (edge_index.size(1), 8)
    # The hooked messages are the ones the atoms sum.
    message = torch.zeros_like(x).index_add_(0, edge_index[1], seen[0])
    z = conv.hyper(conv.combiner(x, x))
    torch.testing.assert_close(out, x + conv.update_nn(message, z))


@pytest.mark.parametrize('edge_hyper', [False, True])
def test_compiles_without_graph_breaks(edge_hyper):
    x, edge_index, edge_attr = _graph()
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=4,
                            edge_hyper=edge_hyper)
    explain = torch._dynamo.explain(conv)(x, edge_index, edge_attr)
    assert explain.graph_break_count == 0


def test_repr_and_bad_input():
    x, edge_index, edge_attr = _graph()
    conv = HyperNMPEdgeConv(8, edge_dim=6, hyper_channels=4,
                            combine='convex')
    assert str(conv) == ('HyperNMPEdgeConv(8, edge_dim=6, edge_channels=8, '
                         'update_edge=True, edge_hidden_channels=16, '
                         'hyper_channels=4, combine=convex, edge_hyper=False)')
    with pytest.raises(ValueError, match="'first_state' of shape"):
        conv(x, edge_index, edge_attr, first_state=x[:3])
    with pytest.raises(ValueError, match="'first_state' of its parameters' "
                       "dtype torch.float32"):
        conv(x, edge_index, edge_attr, first_state=x.double())
    with pytest.raises(ValueError, match="'edge_attr' of its parameters' "
                       "dtype torch.float32"):
        conv(x, edge_index, edge_attr.double())
    with pytest.raises(ValueError, match='Unknown combine mode'):
        HyperNMPEdgeConv(8, edge_dim=6, combine='sum')
    with pytest.raises(ValueError, match='Unknown activation'):
        HyperNMPEdgeConv(8, edge_dim=6, act='gelu')
