import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.nn.radial import (
    GaussianExpansion,
    ShiftedSoftplus,
    molecular_graph,
    shifted_softplus,
)


def test_shifted_softplus():
    x = torch.tensor([-30., 0., 30.])
    out = shifted_softplus(x)
    assert out[1] == 0  # ssp(0) = 0
    assert out[0] == pytest.approx(-math.log(2), abs=1e-6)
    assert out[2] == pytest.approx(30 - math.log(2), abs=1e-5)
    assert torch.equal(ShiftedSoftplus()(x), out)


def test_gaussian_expansion_nmp_edge_defaults():
    rbf = GaussianExpansion()  # 0 to 15 A, step 0.1
    assert rbf.num_gaussians == 150
    assert rbf.offset[0] == 0 and rbf.offset[-1] == pytest.approx(14.9)
    out = rbf(torch.tensor([1.0, 1.05]))
    assert out.shape == (2, 150)
    # Peak 1 at the centre, exp(-1/2) one sigma (0.1 A) away.
    assert out[0, 10] == pytest.approx(1.0)
    assert out[0, 11] == pytest.approx(math.exp(-0.5), rel=1e-5)
    # Half-way between centres both Gaussians are equal.
    assert out[1, 10] == pytest.approx(out[1, 11].item(), rel=1e-5)
    assert 'num_gaussians=150' in repr(rbf)
    with pytest.raises(ValueError, match='step > 0'):
        GaussianExpansion(step=0)
    with pytest.raises(ValueError, match=r'got start=0.0, stop=15.0, step=nan'):
        GaussianExpansion(step=float('nan'))
    assert torch.equal(rbf(torch.tensor([[1.0], [1.05]])), out)
    # A [E, 3] tensor (e.g. displacement vectors) used to be flattened.
    with pytest.raises(ValueError, match=r"distances of shape \[num_edges\] "
                       r"or \[num_edges, 1\] \(got \[4, 3\]\)"):
        rbf(torch.rand(4, 3))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_gaussian_expansion_has_no_subnormals(dtype):
    # Distances whose far Gaussians fall below the smallest normal float:
    # those entries must be exact zeros (subnormals are slow on x86), and
    # every other entry must equal the plain formula.
    rbf = GaussianExpansion()
    dist = torch.linspace(0.0, 10.0, 2001, dtype=dtype)
    out = rbf(dist)
    assert out.dtype == dtype
    tiny = torch.finfo(dtype).tiny
    assert not ((out > 0) & (out < tiny)).any()
    # The unguarded formula, evaluated the same way.
    exact = torch.exp(rbf.coeff *
                      (dist.view(-1, 1) - rbf.offset.to(dtype)).pow(2))
    kept = out > 0
    assert kept.any() and (~kept).any()
    assert torch.equal(out[kept], exact[kept])
    assert exact[~kept].max() < math.e * tiny


def test_molecular_graph_full_and_cutoff():
    torch.manual_seed(0)
    counts = [3, 1, 5]
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    pos = torch.randn(9, 3) * 2
    full = molecular_graph(pos, batch)
    assert full.size(1) == sum(n * (n - 1) for n in counts)
    assert bool((full[0] != full[1]).all())
    assert bool((batch[full[0]] == batch[full[1]]).all())
    assert len({tuple(e) for e in full.t().tolist()}) == full.size(1)

    cut = molecular_graph(pos, batch, cutoff=2.0)
    dist = torch.cdist(pos, pos)
    expected = {(j, i) for i in range(9) for j in range(9)
                if i != j and batch[i] == batch[j] and dist[i, j] < 2.0}
    assert {tuple(e) for e in cut.t().tolist()} == expected
    # No batch vector: one molecule.
    assert molecular_graph(pos[:3]).size(1) == 6


def test_molecular_graph_unsorted_batch():
    batch = torch.tensor([1, 0, 1, 0, 0])
    pos = torch.randn(5, 3)
    edges = {tuple(e) for e in molecular_graph(pos, batch).t().tolist()}
    assert edges == {(j, i) for i in range(5) for j in range(5)
                     if i != j and batch[i] == batch[j]}


def test_molecular_graph_bad_input():
    pos = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"'molecular_graph' expected 'pos' "
                       r"of shape \[num_atoms, 3\] \(got \[4, 2\]\)"):
        molecular_graph(torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"one 'batch' entry per node \(4\), "
                       r"got 3"):
        molecular_graph(pos, torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match='dtype torch.long'):
        molecular_graph(pos, torch.tensor([0., 0., 1., 1.]))
    with pytest.raises(ValueError, match='negative graph indices'):
        molecular_graph(pos, torch.tensor([0, -1, 1, 1]))


@settings(max_examples=40, deadline=None)
@given(d=st.floats(0.0, 14.9), start=st.sampled_from([0.0, 0.5]),
       step=st.sampled_from([0.1, 0.25, 1.0]))
def test_gaussian_expansion_peaks_at_the_nearest_centre(d, start, step):
    exp = GaussianExpansion(start, 15.0, step)
    row = exp(torch.tensor([d], dtype=torch.float64))[0]
    centres = start + step * torch.arange(exp.num_gaussians,
                                          dtype=torch.float64)
    nearest = (centres - d).abs().min()
    # Every entry is exp(-(d - mu_k)^2 / (2 step^2)) <= 1, largest at the
    # nearest centre(s), and the expansion is that formula.
    assert bool((row <= 1).all()) and bool((row >= 0).all())
    assert (centres[row.argmax()] - d).abs() <= nearest + 1e-9
    ref = torch.exp(-(d - centres) ** 2 / (2 * step ** 2))
    # (The grid is a float32 buffer, and subnormal tails are flushed.)
    torch.testing.assert_close(row, ref, atol=1e-6, rtol=1e-5)


def test_molecular_graph_cutoff_is_strict():
    # Kept if ||r_i - r_j|| < cutoff: a pair exactly at the cutoff is not.
    pos = torch.tensor([[0., 0., 0.], [1.5, 0., 0.], [0., 0.5, 0.]])
    edges = molecular_graph(pos, cutoff=1.5)
    assert {tuple(e) for e in edges.t().tolist()} == {(0, 2), (2, 0)}
    edges = molecular_graph(pos, cutoff=1.5000001)
    assert {tuple(e) for e in edges.t().tolist()} == {(0, 1), (1, 0),
                                                     (0, 2), (2, 0)}
