import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.nn import HyperLinear, hyper_linear, materialize_hyper_weight


@settings(max_examples=40, deadline=None)
@given(
    num_rows=st.integers(1, 12),
    in_channels=st.integers(1, 7),
    out_channels=st.integers(1, 7),
    hyper_channels=st.integers(1, 5),
    bias=st.booleans(),
    chunk_size=st.one_of(st.none(), st.integers(1, 5)),
)
def test_factorized_equals_materialized(num_rows, in_channels, out_channels,
                                        hyper_channels, bias, chunk_size):
    lin = HyperLinear(in_channels, out_channels, hyper_channels, bias=bias,
                      chunk_size=chunk_size).double()
    x = torch.randn(num_rows, in_channels, dtype=torch.double)
    z = torch.randn(num_rows, hyper_channels, dtype=torch.double)
    fac = lin(x, z)
    ref = lin(x, z, materialize=True)
    assert fac.shape == (num_rows, out_channels)
    assert torch.allclose(fac, ref, atol=1e-12, rtol=1e-10)


def test_materialized_weight_is_affine_in_code():
    lin = HyperLinear(3, 2, 4).double()
    z = torch.randn(5, 4, dtype=torch.double)
    w, b = materialize_hyper_weight(z, lin.weight, 3)
    theta = lin.weight.view(2, 5, 4)
    # W(z) = sum_k z_k A_k + B, b(z) = sum_k z_k a_k + b
    expected_w = torch.einsum('nk,oki->noi', z, theta[:, :4, :3]) + \
        theta[:, 4, :3]
    expected_b = z @ theta[:, :4, 3].t() + theta[:, 4, 3]
    assert torch.allclose(w, expected_w)
    assert torch.allclose(b, expected_b)


@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('chunk_size', [None, 2])
def test_gradcheck(bias, chunk_size):
    lin = HyperLinear(3, 2, 2, bias=bias).double()
    x = torch.randn(5, 3, dtype=torch.double, requires_grad=True)
    z = torch.randn(5, 2, dtype=torch.double, requires_grad=True)

    def fn(x, z, w):
        return hyper_linear(x, z, w, bias, chunk_size)

    assert torch.autograd.gradcheck(fn, (x, z, lin.weight))
    assert torch.autograd.gradgradcheck(fn, (x, z, lin.weight))


def test_chunking_matches_gradients():
    lin = HyperLinear(6, 4, 3)
    chunked = HyperLinear(6, 4, 3, chunk_size=3)
    chunked.load_state_dict(lin.state_dict())
    x = torch.randn(10, 6, requires_grad=True)
    z = torch.randn(10, 3, requires_grad=True)
    grads = []
    for module in (lin, chunked):
        x.grad = z.grad = None
        module.zero_grad()
        module(x, z).pow(2).sum().backward()
        grads.append((x.grad.clone(), z.grad.clone(),
                      module.weight.grad.clone()))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_float32_and_empty_input():
    lin = HyperLinear(4, 3, 2)
    out = lin(torch.randn(6, 4), torch.randn(6, 2))
    assert out.dtype == torch.float32 and out.shape == (6, 3)
    empty = lin(torch.randn(0, 4), torch.randn(0, 2))
    assert empty.shape == (0, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    lin = HyperLinear(4, 3, 2)
    x, z = torch.randn(6, 4), torch.randn(6, 2)
    out = lin.cuda()(x.cuda(), z.cuda()).cpu()
    assert torch.allclose(out, lin.cpu()(x, z), atol=1e-5)


def test_compile_no_graph_breaks():
    lin = HyperLinear(4, 3, 2)
    x, z = torch.randn(6, 4), torch.randn(6, 2)
    explain = torch._dynamo.explain(lin)(x, z)
    assert explain.graph_break_count == 0
    compiled = torch.compile(lin, fullgraph=True)
    assert torch.allclose(compiled(x, z), lin(x, z), atol=1e-6)


def test_repr():
    assert str(HyperLinear(4, 3, 2)) == \
        'HyperLinear(4, 3, hyper_channels=2, bias=True)'


def test_bad_input():
    lin = HyperLinear(4, 3, 2)
    with pytest.raises(ValueError, match=r'input of shape \[N, 4\]'):
        lin(torch.randn(5, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match=r'codes of shape \[N, 2\]'):
        lin(torch.randn(5, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match='same number of rows'):
        lin(torch.randn(5, 4), torch.randn(4, 2))
    with pytest.raises(ValueError, match="'HyperLinear' needs a positive integer "
                       "'hyper_channels' \\(got 0\\)"):
        HyperLinear(4, 3, 0)
    lin = HyperLinear(4, 3, 2)
    for name, args in (('x', (torch.randn(5, 4).double(), torch.randn(5, 2))),
                       ('z', (torch.randn(5, 4), torch.randn(5, 2).double()))):
        with pytest.raises(ValueError, match=rf"'HyperLinear' expected "
                           rf"'{name}' of its parameters' dtype "
                           rf"torch.float32 \(got torch.float64\)"):
            lin(*args)
    with pytest.raises(ValueError, match="'chunk_size' must be"):
        HyperLinear(4, 3, 2, chunk_size=0)


@pytest.mark.parametrize('bias', [True, False])
def test_zero_generator_init_starts_as_one_shared_linear_map(bias):
    torch.manual_seed(0)
    lin = HyperLinear(6, 4, 3, bias=bias, generator_init='zero').double()
    theta = lin.weight.view(4, 4, 6 + int(bias))
    assert torch.all(theta[:, :3] == 0)  # A_k (and a_k) start at zero
    shared = theta[:, 3]
    bound = 1.0 / 6**0.5  # torch.nn.Linear's default, weight and bias
    assert 0 < shared.abs().max() <= bound
    assert shared.abs().max() > 0.5 * bound  # not a narrower uniform init
    x = torch.randn(5, 6, dtype=torch.double)
    expected = x @ shared[:, :6].t()
    if bias:
        expected = expected + shared[:, 6]
    for z in (torch.randn(5, 3, dtype=torch.double),
              torch.zeros(5, 3, dtype=torch.double)):
        assert torch.allclose(lin(x, z), expected)
    # The generator still learns: its gradient is not zero at the start.
    z = torch.randn(5, 3, dtype=torch.double)
    lin(x, z).square().sum().backward()
    assert theta.grad is None and lin.weight.grad.view_as(theta)[:, :3].abs(
    ).sum() > 0
    assert 'generator_init=zero' in repr(lin)
    assert 'generator_init' not in repr(HyperLinear(6, 4, 3))


def test_bad_generator_init():
    with pytest.raises(ValueError, match="generator_init 'he'.*'uniform'"):
        HyperLinear(6, 4, 3, generator_init='he')


@pytest.mark.parametrize('materialize', [False, True])
def test_normalize_code_divides_the_code_by_its_width(materialize):
    torch.manual_seed(0)
    lin = HyperLinear(5, 3, 4).double()
    normalized = HyperLinear(5, 3, 4, normalize_code=True).double()
    normalized.load_state_dict(lin.state_dict())
    x = torch.randn(6, 5, dtype=torch.double)
    z = torch.randn(6, 4, dtype=torch.double)
    out = normalized(x, z, materialize=materialize)
    assert torch.allclose(out, lin(x, z / 4))
    assert not torch.allclose(out, lin(x, z))
    assert 'normalize_code=True' in repr(normalized)


@pytest.mark.parametrize('chunk_size', [0, 2.5, True])
def test_bad_chunk_size_is_refused_when_built(chunk_size):
    with pytest.raises(ValueError, match="'chunk_size' must be a positive "
                       "integer or None"):
        HyperLinear(3, 2, 4, chunk_size=chunk_size)
