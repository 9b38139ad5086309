import pytest
import torch

from pyg_hyper.nn import FirstMessageCombiner, HyperMLP, HyperNetwork


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


def test_combiner_bad_input():
    with pytest.raises(ValueError, match='same width'):
        FirstMessageCombiner(3, 2, mode='convex')
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
