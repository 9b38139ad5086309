import importlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.nn.dense import HyperEquivariant2to2, equivariant_basis_2_to_2
from pyg_hyper.nn.dense.hyper_ign import graph_invariants
from pyg_hyper.nn.dense.ign import (
    coefficient_block_index,
    coefficient_blocks,
    dense_reductions,
    diag_offdiag_pool,
)


def padded_batch():
    torch.manual_seed(2)
    x = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0],
                         [1, 1, 0, 0, 0]], dtype=torch.bool)
    return x, mask


def make_layer(**kwargs):
    torch.manual_seed(3)
    layer = HyperEquivariant2to2(2, 3, hyper_channels=4, **kwargs).double()
    torch.nn.init.normal_(layer.all_bias)
    torch.nn.init.normal_(layer.diag_bias)
    return layer


def run(layer, *args, factorized=True, materialize=False, **kwargs):
    layer.factorized, layer.materialize = factorized, materialize
    return layer(*args, **kwargs)


@pytest.mark.parametrize('combine', ['concat', 'convex'])
def test_all_paths_agree(combine):
    x, mask = padded_batch()
    layer = make_layer(combine=combine)
    factorized = run(layer, x, mask)
    per_graph = run(layer, x, mask, factorized=False)
    reference = run(layer, x, mask, materialize=True)
    assert factorized.shape == (3, 3, 5, 5)
    assert torch.allclose(factorized, per_graph)
    assert torch.allclose(factorized, reference)


@pytest.mark.parametrize('factorized,materialize,path', [
    (False, False, 'blocks'), (True, False, 'factorized'),
    (False, True, 'materialize'), (True, True, 'materialize')])
def test_flags_select_their_path(monkeypatch, factorized, materialize, path):
    # The paths agree (above), so comparing outputs cannot show that a flag
    # selects its path; spy on the function only each path calls: the
    # stacked basis (materialize), the plain layer on code-weighted
    # reductions (factorized), the generated blocks (default).
    module = importlib.import_module('pyg_hyper.nn.dense.hyper_ign')
    calls = []
    for name, tag in (('equivariant_basis_2_to_2', 'materialize'),
                      ('apply_equivariant_2_to_2', 'factorized'),
                      ('apply_blocks', 'blocks')):
        def spy(*args, _real=getattr(module, name), _tag=tag, **kwargs):
            calls.append(_tag)
            return _real(*args, **kwargs)
        monkeypatch.setattr(module, name, spy)
    x, mask = padded_batch()
    layer = make_layer(factorized=factorized, materialize=materialize)
    layer(x, mask)
    assert calls == [path]


def test_reference_is_the_generated_direct_form():
    x, mask = padded_batch()
    layer = make_layer()
    z1, inv = layer.code(dense_reductions(x, mask))
    assert z1.shape == (3, 5) and torch.all(z1[:, -1] == 1)
    assert torch.allclose(inv, graph_invariants(x, mask))
    # Coefficients of graph 0, built by hand from theta.
    coeff0 = sum(z1[0, k] * layer.weight[k] for k in range(5))
    direct = torch.einsum('dsb,dbij->sij', coeff0,
                          equivariant_basis_2_to_2(x[:1])[0])
    direct = direct + layer.all_bias.view(-1, 1, 1)
    direct = direct + torch.eye(5).double() * layer.diag_bias.view(-1, 1, 1)
    assert torch.allclose(run(layer, x, mask)[0], direct)


def test_first_invariants_drive_the_code():
    x, mask = padded_batch()
    layer = make_layer()
    own = run(layer, x, mask)
    first = torch.randn(3, 4, dtype=torch.float64)
    other, inv = layer(x, mask, first=first, return_invariants=True)
    assert not torch.allclose(own, other)
    assert torch.allclose(inv, graph_invariants(x, mask))
    wider = HyperEquivariant2to2(2, 3, first_channels=5)
    with pytest.raises(ValueError, match=r"needs 'first' of shape \[3, 10\]"):
        wider(x.float(), mask)
    with pytest.raises(ValueError, match=r"'first' invariants of shape "
                       r"\[3, 4\] \(got \[3, 5\]\)"):
        layer(x, mask, first=torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="'first' of its parameters' dtype "
                       "torch.float64"):
        layer(x, mask, first=torch.randn(3, 4))


@pytest.mark.parametrize('factorized', [True, False])
def test_permutation_equivariant_and_padding_free(factorized):
    x, mask = padded_batch()
    layer = make_layer()
    out = run(layer, x, mask, factorized=factorized)
    perm = torch.tensor([3, 1, 0, 2])
    g = x[1:2, :, :4, :4]
    alone = run(layer, g, factorized=factorized)
    assert torch.allclose(out[1:2, :, :4, :4], alone)
    permuted = run(layer, g[:, :, perm][:, :, :, perm], factorized=factorized)
    assert torch.allclose(alone[:, :, perm][:, :, :, perm], permuted)
    assert out[2, :, 2:].abs().sum() == 0


@pytest.mark.parametrize('path', ['blocks', 'factorized', 'materialize'])
@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       extra=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_permutation_equivariance_on_padded_batches(path, sizes, extra,
                                                    seed):
    # Relabelling each graph's nodes (its padding stays last) permutes its
    # output entries and leaves the invariants the hypernetwork reads
    # unchanged, on every evaluation path, whatever the padding holds.
    gen = torch.Generator().manual_seed(seed)
    m = max(sizes) + extra
    B = len(sizes)
    x = torch.randn(B, 2, m, m, generator=gen, dtype=torch.float64)
    mask = torch.arange(m).view(1, m) < torch.tensor(sizes).view(B, 1)
    index = torch.stack([torch.cat([torch.randperm(n, generator=gen),
                                    torch.arange(n, m)]) for n in sizes])

    def permute(t):  # t[b, :, index[b]][:, :, :, index[b]] for every b
        rows = index.view(B, 1, m, 1).expand(-1, t.size(1), -1, m)
        cols = index.view(B, 1, 1, m).expand(-1, t.size(1), m, -1)
        return t.gather(2, rows).gather(3, cols)

    layer = make_layer()
    layer.factorized = path == 'factorized'
    layer.materialize = path == 'materialize'
    out, inv = layer(x, mask, return_invariants=True)
    out_p, inv_p = layer(permute(x), mask, return_invariants=True)
    assert torch.allclose(out_p, permute(out), atol=1e-10)
    assert torch.allclose(inv_p, inv, atol=1e-10)
    valid = (mask[:, None, :, None] & mask[:, None, None, :]).expand_as(out)
    assert out[~valid].abs().sum() == 0


def test_gradcheck():
    x, mask = padded_batch()
    x = x[:, :, :4, :4].clone().requires_grad_()
    layer = make_layer()
    for factorized in (True, False):
        layer.factorized = factorized
        assert torch.autograd.gradcheck(lambda t: layer(t, mask[:, :4]),
                                        (x, ))


def test_parameter_gradients_agree():
    x, mask = padded_batch()
    layer = make_layer()
    grads = []
    for factorized in (True, False):
        layer.zero_grad()
        run(layer, x, mask, factorized=factorized).pow(2).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b)


def test_compile_without_graph_breaks():
    x, mask = padded_batch()
    layer = make_layer()
    explain = torch._dynamo.explain(layer)(x, mask)
    assert explain.graph_break_count == 0


def test_repr_and_bad_input():
    layer = HyperEquivariant2to2(2, 3)
    assert str(layer) == ('HyperEquivariant2to2(2, 3, hyper_channels=16, '
                          'combine=concat)')
    with pytest.raises(ValueError, match=r"expected 'x' of shape "
                       r"\[batch_size, 2, num_nodes, num_nodes\]"):
        layer(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="Unknown combine mode 'sum'"):
        HyperEquivariant2to2(2, 3, combine='sum')


def test_invariants_are_diag_and_offdiag_means():
    x, mask = padded_batch()
    inv = graph_invariants(x, mask)
    assert torch.allclose(inv, diag_offdiag_pool(x, mask, 'mean'))
    one = graph_invariants(x[:1, :, :1, :1])
    assert torch.allclose(one[:, 2:], torch.zeros(1, 2, dtype=x.dtype))


@pytest.mark.parametrize('factorized', [True, False])
def test_zero_generator_init_starts_as_ign(factorized):
    from pyg_hyper.nn.dense import Equivariant2to2
    x, mask = padded_batch()
    layer = make_layer(generator_init='zero')
    assert 'generator_init=zero' in repr(layer)
    assert torch.all(layer.weight[:-1] == 0)
    std = layer.weight[-1].std().item()  # the official N(0, 2 / (D + S))
    assert 0.3 < std / (2 / 5)**0.5 < 1.7
    plain = Equivariant2to2(2, 3).double()
    with torch.no_grad():
        plain.weight.copy_(layer.weight[-1])
        plain.all_bias.copy_(layer.all_bias)
        plain.diag_bias.copy_(layer.diag_bias)
    expected = plain(x, mask)
    assert torch.allclose(run(layer, x, mask, factorized=factorized),
                          expected)
    with torch.no_grad():  # the code matters once its terms move
        layer.weight[0].add_(0.5)
    assert not torch.allclose(run(layer, x, mask), expected)
    with pytest.raises(ValueError, match="'HyperEquivariant2to2' got "
                       "unknown generator_init 'he'"):
        HyperEquivariant2to2(2, 3, generator_init='he')


@pytest.mark.parametrize('factorized', [True, False])
def test_normalize_code_divides_the_code_by_its_width(factorized):
    x, mask = padded_batch()
    layer = make_layer()
    normalized = make_layer(normalize_code=True)
    assert 'normalize_code=True' in repr(normalized)
    with torch.no_grad():  # the same function once A_k absorb the 1/r
        normalized.weight[:-1] *= 4
    assert torch.allclose(run(normalized, x, mask, factorized=factorized),
                          run(layer, x, mask, factorized=factorized))
    z1, _ = normalized.code(dense_reductions(x, mask))
    z1_plain, _ = layer.code(dense_reductions(x, mask))
    assert torch.allclose(z1[:, :-1], z1_plain[:, :-1] / 4)
    assert torch.all(z1[:, -1] == 1)


@pytest.mark.parametrize('num_graphs', [2, 9])  # fewer / more than r + 1
def test_generated_blocks_are_the_coefficient_blocks(num_graphs):
    # Generated straight into the contraction's layout (gathered from the
    # [B, 15DS] coefficients or from theta, whichever is smaller): the same
    # blocks, values and weight gradients, as rearranging the coefficients.
    layer = make_layer()
    torch.manual_seed(num_graphs)
    z1 = torch.cat([torch.randn(num_graphs, 4, dtype=torch.float64),
                    torch.ones(num_graphs, 1, dtype=torch.float64)], 1)
    got = layer.generated_blocks(z1)
    want = coefficient_blocks(layer.coefficients(z1))
    probes = [torch.randn_like(w) for w in want]
    for g, w in zip(got, want):
        assert g.shape == w.shape and torch.equal(g, w)
    grad_got, = torch.autograd.grad(
        sum((g * p).sum() for g, p in zip(got, probes)), layer.weight)
    grad_want, = torch.autograd.grad(
        sum((w * p).sum() for w, p in zip(want, probes)), layer.weight)
    assert torch.allclose(grad_got, grad_want)


def test_coefficient_blocks_place_every_coefficient():
    # Entry (i * D + d, o * S + s) of a block is coefficient (d, s, b) with
    # b the basis element linking reduced input group i to placement o,
    # built here entry by entry; the transposed index lists the same.
    from pyg_hyper.nn.dense.ign import (
        _FULL_INDEX,
        _SCALAR_INDEX,
        _VEC_INDEX,
    )
    weight = torch.randn(2, 3, 4, 15)  # [*, D, S, 15] with D != S
    D, S = 3, 4
    tables = ([[b] for b in _FULL_INDEX], _VEC_INDEX, _SCALAR_INDEX)
    blocks = coefficient_blocks(weight)
    for block, table, index in zip(blocks, tables,
                                   coefficient_block_index(D, S)):
        expected = torch.empty(2, len(table) * D, len(table[0]) * S)
        for i, row in enumerate(table):
            for o, b in enumerate(row):
                for d in range(D):
                    for s in range(S):
                        expected[:, i * D + d, o * S + s] = weight[:, d, s, b]
        assert torch.equal(block, expected)
        flat = weight.flatten(-3)[..., index]
        assert torch.equal(flat.view(2, block.size(-1), block.size(-2)),
                           expected.transpose(-1, -2))
