import pytest
import torch

from pyg_hyper.nn.models import LGNN
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.nn import FirstMessageCombiner, HyperMLP, HyperNetwork
from tests.nn.hyper_linear_spy import (
    assert_every_map_took,
    spy_hyper_linear_paths,
)


def test_concat_combiner():
    comb = FirstMessageCombiner(3, 2)
    m, m0 = torch.randn(4, 3), torch.randn(4, 2)
    out = comb(m, m0)
    assert comb.out_channels == 5
    assert torch.equal(out, torch.cat([m, m0], dim=-1))
    assert comb.c is None


def test_convex_combiner_is_a_learned_mix():
    comb = FirstMessageCombiner(3, 3, mode='convex')
    m, m0 = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.allclose(comb(m, m0), 0.5 * m + 0.5 * m0)
    with torch.no_grad():
        comb.logit.fill_(2.0)
    c = torch.sigmoid(torch.tensor(2.0))
    assert torch.allclose(comb(m, m0), c * m0 + (1 - c) * m)
    comb(m, m0).sum().backward()
    assert comb.logit.grad is not None and comb.logit.grad.abs() > 0


def test_convex_combiner_maps_a_first_message_of_another_width():
    comb = FirstMessageCombiner(3, 2, mode='convex')
    assert comb.out_channels == 3
    m, m0 = torch.randn(4, 3), torch.randn(4, 2)
    with torch.no_grad():
        comb.logit.fill_(1.0)
    c = torch.sigmoid(torch.tensor(1.0))
    projected = m0 @ comb.first_lin.weight.t()
    assert torch.allclose(comb(m, m0), c * projected + (1 - c) * m)
    comb(m, m0).sum().backward()
    assert comb.first_lin.weight.grad.abs().sum() > 0
    # Equal widths keep the paper's plain mix: no projection.
    assert FirstMessageCombiner(3, 3, mode='convex').first_lin is None


def test_combiner_bad_input():
    with pytest.raises(ValueError, match="'first_channels'"):
        FirstMessageCombiner(3, 0, mode='convex')
    with pytest.raises(ValueError, match="Unknown combine mode 'sum'"):
        FirstMessageCombiner(3, 3, mode='sum')


def test_hypernetwork_is_tanh_mlp():
    f = HyperNetwork(6, 4, num_layers=2)
    z = f(torch.randn(5, 6) * 100)
    assert z.shape == (5, 4)
    assert z.abs().max() <= 1.0  # tanh code
    assert sum(isinstance(m, torch.nn.Linear) for m in f) == 2
    with pytest.raises(ValueError, match="'HyperNetwork' needs a positive "
                       "integer 'num_layers' \\(got 0\\)"):
        HyperNetwork(6, 4, num_layers=0)


def test_hyper_mlp_matches_materialized_and_manual():
    g = HyperMLP([3, 5, 2], hyper_channels=4).double()
    x = torch.randn(6, 3, dtype=torch.double)
    z = torch.randn(6, 4, dtype=torch.double)
    out = g(x, z)
    assert torch.allclose(out, g(x, z, materialize=True), atol=1e-12)
    hidden = torch.tanh(g.lins[0](x, z))
    assert torch.allclose(out, g.lins[1](hidden, z))
    assert str(g) == 'HyperMLP([3, 5, 2], act=tanh)'


def test_hyper_mlp_materialize_reaches_every_layer(monkeypatch):
    # Factorized and materialized outputs agree, so comparing them cannot
    # show that 'materialize' reaches each layer: spy on the two paths.
    calls = spy_hyper_linear_paths(monkeypatch)
    g = HyperMLP([3, 5, 4, 2], hyper_channels=4)
    x, z = torch.randn(6, 3), torch.randn(6, 4)
    g(x, z)
    assert_every_map_took(calls, g, materialized=False)
    g(x, z, materialize=True)
    assert_every_map_took(calls, g, materialized=True)


@settings(max_examples=25, deadline=None)
@given(channels=st.lists(st.integers(1, 6), min_size=2, max_size=4),
       hyper_channels=st.integers(1, 5), rows=st.integers(1, 7),
       act=st.sampled_from(['tanh', 'relu', 'ssp']),
       chunk_size=st.sampled_from([None, 1, 3]), seed=st.integers(0, 999))
def test_hyper_mlp_factorized_equals_materialized_with_gradients(
        channels, hyper_channels, rows, act, chunk_size, seed):
    torch.manual_seed(seed)
    g = HyperMLP(channels, hyper_channels, act=act,
                 chunk_size=chunk_size).double()
    x = torch.randn(rows, channels[0], dtype=torch.double,
                    requires_grad=True)
    z = torch.randn(rows, hyper_channels, dtype=torch.double,
                    requires_grad=True)
    grads = []
    for materialize in (False, True):
        out = g(x, z, materialize=materialize)
        weights = torch.randn_like(out, generator=torch.Generator()
                                   .manual_seed(seed))
        grads.append((out, *torch.autograd.grad(
            (out * weights).sum(), [x, z, *g.parameters()])))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 6), channels=st.integers(1, 5),
       seed=st.integers(0, 999))
def test_convex_combination_lies_between_its_inputs(rows, channels, seed):
    torch.manual_seed(seed)
    combiner = FirstMessageCombiner(channels, channels, 'convex')
    with torch.no_grad():
        combiner.reset_parameters()
        for p in combiner.parameters():
            p.normal_()  # any learned mixing weight
    current, first = torch.randn(2, rows, channels).unbind(0)
    out = combiner(current, first)
    low, high = torch.minimum(current, first), torch.maximum(current, first)
    assert bool(((out >= low - 1e-6) & (out <= high + 1e-6)).all())
    assert out.shape == (rows, channels)


def test_hyper_mlp_bad_input():
    with pytest.raises(ValueError, match='at least an input and an output'):
        HyperMLP([3], 2)
    with pytest.raises(ValueError, match="Unknown activation 'gelu'"):
        HyperMLP([3, 2], 2, act='gelu')


@pytest.mark.parametrize('make,match', [
    (lambda: HyperNetwork(0, 4), "'HyperNetwork' needs a positive integer "
                                 "'in_channels' \\(got 0\\)"),
    (lambda: HyperMLP([4, 0, 2], 3), "'HyperMLP' needs a positive integer "
                                     "'channel_list\\[1\\]' \\(got 0\\)"),
    (lambda: HyperMLP([4, 2], 0), "'HyperMLP' needs a positive integer "
                                  "'hyper_channels' \\(got 0\\)"),
])
def test_zero_sizes_are_refused(make, match):
    # They used to build modules with empty weights that failed later.
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize('build', [
    lambda: HyperNetwork(4, 3),
    lambda: HyperMLP([4, 5, 2], 3),
    lambda: LGNN(5, 4, 3),
], ids=['HyperNetwork', 'HyperMLP', 'LGNN'])
def test_construction_ends_with_reset_parameters(build, monkeypatch):
    # PyG's convention: a subclass that overrides reset_parameters (e.g. a
    # custom init) is applied at construction.
    module_cls = type(build())
    calls = []
    monkeypatch.setattr(module_cls, 'reset_parameters',
                        lambda self: calls.append(self))
    module = build()
    assert calls and calls[-1] is module
