import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.nn import (
    EdgeLocalization,
    NodeLocalization,
    localization_regularizer,
    localized_edge_transform,
    materialize_localized_weight,
)
from pyg_hyper.nn import localization
from pyg_hyper.nn.localization import (
    _BlockedEdgeTransform,
    _vectorized_edge_transform,
)


def _reference(x, gamma, beta, weight, src, dst):
    w_v = materialize_localized_weight(weight, gamma, beta)
    return torch.einsum('ei,eio->eo', x[src], w_v[dst])


def _sparse_x(n, d, density, gen):
    x = torch.rand(n, d, generator=gen, dtype=torch.float64)
    return x * (torch.rand(n, d, generator=gen, dtype=torch.float64) < density)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 7), d_in=st.integers(1, 6), d_out=st.integers(1, 5),
       num_edges=st.integers(0, 15), density=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**16))
def test_factorized_equals_materialized(n, d_in, d_out, num_edges, density,
                                        seed):
    gen = torch.Generator().manual_seed(seed)
    x = _sparse_x(n, d_in, density, gen)
    gamma = torch.rand(n, d_in, generator=gen, dtype=torch.float64) + 0.5
    beta = torch.randn(n, d_in, generator=gen, dtype=torch.float64)
    weight = torch.randn(d_in, d_out, generator=gen, dtype=torch.float64)
    src = torch.randint(0, n, (num_edges, ), generator=gen)
    dst = torch.randint(0, n, (num_edges, ), generator=gen)
    expected = _reference(x, gamma, beta, weight, src, dst)
    for sparse in (False, True, None):
        out = localized_edge_transform(x, gamma, beta, weight, src, dst,
                                       sparse=sparse)
        assert out.shape == (num_edges, d_out)
        assert torch.allclose(out, expected)


def test_without_localization_is_plain_linear():
    x, w = torch.randn(4, 3), torch.randn(3, 2)
    src, dst = torch.tensor([0, 3, 1]), torch.tensor([1, 1, 2])
    assert torch.allclose(localized_edge_transform(x, None, None, w, src, dst),
                          (x @ w)[src])


@pytest.mark.parametrize('sparse', [False, True])
def test_gradients_match_reference(sparse):
    gen = torch.Generator().manual_seed(0)
    x = _sparse_x(5, 4, 0.4, gen).requires_grad_()
    gamma = (torch.rand(5, 4, generator=gen, dtype=torch.float64) + 0.5
             ).requires_grad_()
    beta = torch.randn(5, 4, generator=gen,
                       dtype=torch.float64).requires_grad_()
    weight = torch.randn(4, 3, generator=gen,
                         dtype=torch.float64).requires_grad_()
    src, dst = torch.tensor([0, 1, 2, 3, 4, 0]), torch.tensor([1, 2, 3, 4, 0, 0])
    # gradcheck through the factorized path ...
    assert torch.autograd.gradcheck(
        lambda g, b, w: localized_edge_transform(x.detach(), g, b, w, src,
                                                 dst, sparse=sparse),
        (gamma, beta, weight))
    # ... and its gradients equal the materialized reference's.
    inputs = (x, gamma, beta, weight)
    out = localized_edge_transform(x, gamma, beta, weight, src, dst, sparse)
    ref = _reference(x, gamma, beta, weight, src, dst)
    probe = torch.randn_like(out)
    got = torch.autograd.grad((out * probe).sum(), inputs)
    want = torch.autograd.grad((ref * probe).sum(), inputs)
    for g, w in zip(got[1:], want[1:]):
        assert torch.allclose(g, w)
    # The sparse path only differentiates x at its non-zeros.
    mask = (x != 0) if sparse else torch.ones_like(x, dtype=torch.bool)
    assert torch.allclose(got[0][mask], want[0][mask])
    assert sparse or torch.allclose(got[0], want[0])


@pytest.mark.parametrize('levels', ['both', 'gamma', 'beta'])
@pytest.mark.parametrize('block', [1, 2, 3, 100])
def test_blocked_dense_transform_equals_vectorized(levels, block):
    # Edge blocks (here forced small) give the values and every gradient of
    # the all-edges-at-once form, x's included.
    gen = torch.Generator().manual_seed(block)
    n, d_in, d_out = 6, 5, 3
    x = torch.randn(n, d_in, generator=gen, dtype=torch.float64)
    gamma = torch.rand(n, d_in, generator=gen, dtype=torch.float64) + 0.5
    beta = torch.randn(n, d_in, generator=gen, dtype=torch.float64)
    gamma = None if levels == 'beta' else gamma
    beta = None if levels == 'gamma' else beta
    weight = torch.randn(d_in, d_out, generator=gen, dtype=torch.float64)
    src = torch.tensor([0, 1, 2, 3, 4, 5, 0, 2, 2])
    dst = torch.tensor([1, 2, 3, 4, 5, 0, 0, 2, 1])
    inputs = [t.requires_grad_() for t in (x, gamma, beta, weight)
              if t is not None]

    def blocked(*args):
        return _BlockedEdgeTransform.apply(*args, src, dst, block)

    def args_of(it):
        it = iter(it)
        return (next(it), None if gamma is None else next(it),
                None if beta is None else next(it), next(it))

    out = blocked(*args_of(inputs))
    want = _vectorized_edge_transform(*args_of(inputs), src, dst)
    assert torch.allclose(out, want)
    probe = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    got = torch.autograd.grad((out * probe).sum(), inputs)
    expected = torch.autograd.grad((want * probe).sum(), inputs)
    for g, e in zip(got, expected):
        assert torch.allclose(g, e)
    assert torch.autograd.gradcheck(lambda *t: blocked(*args_of(t)),
                                    tuple(inputs))


def test_dense_features_take_the_blocked_path_eagerly(monkeypatch):
    calls = []

    def tiny_blocks(in_channels, device):
        calls.append(in_channels)
        return 2

    monkeypatch.setattr(localization, 'edge_block_size', tiny_blocks)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    gamma = torch.rand(4, 3, generator=gen, dtype=torch.float64) + 0.5
    beta = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    weight = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    src, dst = torch.tensor([0, 1, 2, 3, 3]), torch.tensor([1, 2, 3, 0, 3])
    out = localized_edge_transform(x, gamma, beta, weight, src, dst,
                                   sparse=False)
    assert calls == [3]
    assert torch.allclose(out, _reference(x, gamma, beta, weight, src, dst))


def test_node_localization_shapes_and_identity_at_zero_context():
    loc = NodeLocalization(6, rank=2)
    assert loc.proj.shape == (6, 4) and loc.expand.shape == (2, 2, 6)
    gamma, beta = loc(torch.zeros(3, 4))
    assert torch.equal(gamma, torch.ones(3, 6))
    assert torch.equal(beta, torch.zeros(3, 6))
    full = NodeLocalization(5)
    assert full.expand is None and full(full.project(torch.randn(2, 5)))[0] \
        .shape == (2, 5)


@pytest.mark.parametrize('slope', [0.01, 1.0])
def test_node_localization_is_the_papers_formula(slope):
    # gamma_v = LeakyReLU(a_v M^gamma) + 1, beta_v = LeakyReLU(a_v M^beta)
    # with the layer's own slope, not the default 0.2; for a full M and a
    # low-rank M = M_1 M_2 (proj holds gamma's and beta's M_1 side by side).
    gen = torch.Generator().manual_seed(0)
    act = torch.nn.LeakyReLU(slope)
    context = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    full = NodeLocalization(4, negative_slope=slope).double()
    m_gamma, m_beta = full.proj.chunk(2, dim=1)
    low = NodeLocalization(4, rank=2, negative_slope=slope).double()
    p_gamma, p_beta = low.proj.chunk(2, dim=1)
    for loc, pre_gamma, pre_beta in (
            (full, context @ m_gamma, context @ m_beta),
            (low, context @ p_gamma @ low.expand[0],
             context @ p_beta @ low.expand[1])):
        # Negative pre-activations: the slope shows.
        assert (pre_gamma < 0).any() and (pre_beta < 0).any()
        gamma, beta = loc(loc.project(context))
        torch.testing.assert_close(gamma, act(pre_gamma) + 1)
        torch.testing.assert_close(beta, act(pre_beta))


def test_edge_localization_uses_both_ends():
    loc = EdgeLocalization(3, 2)
    x = torch.randn(4, 3)
    g1, b1 = loc(x, torch.tensor([0]), torch.tensor([1]))
    g2, b2 = loc(x, torch.tensor([2]), torch.tensor([1]))
    assert g1.shape == b1.shape == (1, 2)
    assert not torch.allclose(g1, g2)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), d_in=st.integers(1, 5), d_out=st.integers(1, 4),
       num_edges=st.integers(0, 12), density=st.sampled_from([0.3, 1.0]),
       slope=st.sampled_from([0.01, 0.2, 1.0]), seed=st.integers(0, 999))
def test_edge_localization_is_the_papers_formula(n, d_in, d_out, num_edges,
                                                 density, slope, seed):
    # gamma_vu = LeakyReLU(h_v M_c + h_u M_n) + 1, beta_vu without the +1,
    # for the target v = dst and the source u = src of every edge, on dense
    # and sparse features alike.
    gen = torch.Generator().manual_seed(seed)
    loc = EdgeLocalization(d_in, d_out, negative_slope=slope).double()
    x = _sparse_x(n, d_in, density, gen)
    src, dst = torch.randint(0, n, (2, num_edges), generator=gen)
    mc_g, mc_b = loc.center.chunk(2, dim=1)
    mn_g, mn_b = loc.neighbor.chunk(2, dim=1)
    act = torch.nn.LeakyReLU(slope)
    gamma = act(x[dst] @ mc_g + x[src] @ mn_g) + 1
    beta = act(x[dst] @ mc_b + x[src] @ mn_b)
    for features in (x, x.to_sparse()):
        out_gamma, out_beta = loc(features, src, dst)
        torch.testing.assert_close(out_gamma, gamma)
        torch.testing.assert_close(out_beta, beta)


def test_regularizer_is_zero_at_identity_and_positive_otherwise():
    g, b = torch.ones(3, 2), torch.zeros(3, 2)
    assert localization_regularizer(g, b) == 0
    assert localization_regularizer(g * 2, b) == pytest.approx(1.0)
    assert localization_regularizer(g, b + 1) == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 9), d=st.integers(1, 6), rank=st.integers(1, 3),
       block_size=st.one_of(st.none(), st.integers(1, 4)),
       seed=st.integers(0, 2**16),
       scope=st.sampled_from(['all', 'subset', 'none']))
def test_scales_at_pairs_match_dense_scales(n, d, rank, block_size, seed,
                                            scope):
    """The blocked low-rank evaluation equals the dense gamma / beta and
    regularizer (over all nodes, a subset, or none), for any block size
    (blocks that split the entries)."""
    gen = torch.Generator().manual_seed(seed)
    loc = NodeLocalization(d, rank=rank).double()
    context = torch.randn(n, 2 * rank, generator=gen, dtype=torch.float64,
                          requires_grad=True)
    flat = torch.unique(torch.randint(0, n * d, (2 * n, ), generator=gen))
    index = None
    if scope == 'subset':
        index = torch.unique(torch.randint(0, n, (max(n // 2, 1), ),
                                           generator=gen))
    offsets, reg = loc.at(context, flat, block_size=block_size,
                          reg_index=index, regularize=scope != 'none')
    gamma, beta = loc(context)

    def reference_reg():
        if scope == 'none':
            return gamma.new_zeros(())
        if index is None:
            return localization_regularizer(gamma, beta)
        return localization_regularizer(gamma[index], beta[index])

    assert torch.allclose(offsets[:, 0], (gamma - 1).reshape(-1)[flat])
    assert torch.allclose(offsets[:, 1], beta.reshape(-1)[flat])
    assert torch.allclose(reg, reference_reg())
    weights = torch.randn(offsets.shape, generator=gen, dtype=torch.float64)
    for params in ((context, ), (context, loc.expand)):
        fast = torch.autograd.grad((offsets * weights).sum() + 3 * reg,
                                   params, retain_graph=True)
        ref = torch.autograd.grad(
            ((gamma - 1).reshape(-1)[flat] * weights[:, 0]).sum() +
            (beta.reshape(-1)[flat] * weights[:, 1]).sum() +
            3 * reference_reg(), params, retain_graph=True)
        for a, b in zip(fast, ref):
            assert torch.allclose(a, b)


def test_block_sizes_follow_the_device():
    # Cache-sized blocks on CPU; on an accelerator one block covers a
    # Cora-sized layer (2,708 x 1,433), since there every block costs a
    # dozen kernel launches each way.
    from pyg_hyper.nn.localization import (
        ACCELERATOR_BLOCK_ENTRIES,
        edge_block_size,
        scale_block_rows,
    )
    cpu, gpu = torch.device('cpu'), torch.device('cuda')
    assert scale_block_rows(1433, cpu) == 128
    rows = scale_block_rows(1433, gpu)
    assert 2708 < rows and rows * 1433 <= ACCELERATOR_BLOCK_ENTRIES
    assert scale_block_rows(10**9, gpu) == 1
    assert edge_block_size(745, cpu) * 745 <= 2**20
    assert edge_block_size(745, gpu) * 745 <= ACCELERATOR_BLOCK_ENTRIES
    assert edge_block_size(745, gpu) > 64 * edge_block_size(745, cpu)


def test_scales_at_pairs_gradcheck():
    from pyg_hyper.nn.localization import _LowRankScales
    torch.manual_seed(0)  # values away from LeakyReLU's kink
    context = torch.randn(5, 2, 2, dtype=torch.float64, requires_grad=True)
    expand = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    flat = torch.tensor([0, 3, 5, 6, 11, 19])
    rows = torch.tensor([True, False, False, True, True])
    for reg_rows in (None, rows):
        assert torch.autograd.gradcheck(
            lambda c, e: _LowRankScales.apply(c, e, flat, 0.2, 2, reg_rows),
            (context, expand))


@pytest.mark.parametrize('with_transpose', [False, True])
def test_csr_matmul_gradcheck(with_transpose):
    from pyg_hyper.nn.localization import csr_matmul, feature_nonzeros
    torch.manual_seed(0)
    x = torch.tensor([[0., 2., 0., 1.], [0., 0., 0., 0.], [3., 0., 4., 0.]],
                     dtype=torch.float64)
    nz = feature_nonzeros(x)
    weight = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    values = nz.val.clone().requires_grad_()
    transpose = nz.transpose if with_transpose else None

    def fn(values, weight):
        return csr_matmul(nz.ptr, nz.col, nz.row, values, weight, transpose)

    assert torch.allclose(fn(values, weight), x @ weight)
    assert torch.autograd.gradcheck(fn, (values, weight))


@pytest.mark.parametrize('transpose', [False, True])
def test_pairwise_transform_with_and_without_transposed_pattern(transpose):
    # The transposed pattern (kept by cached layers) turns the weight
    # gradient into a CSR product; both forms equal the dense reference.
    from pyg_hyper.nn.localization import (
        edge_feature_pairs,
        feature_nonzeros,
        pairwise_edge_transform,
    )
    gen = torch.Generator().manual_seed(3)
    x = _sparse_x(5, 7, 0.4, gen)
    src = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
    dst = torch.tensor([1, 0, 3, 2, 0, 4, 4, 2])
    pairs = edge_feature_pairs(feature_nonzeros(x), src, dst, 7,
                               transpose=transpose)
    assert (pairs.transpose is not None) == transpose
    assert torch.equal(pairs.val, feature_nonzeros(x).val[
        pairs.source_entry])
    weight = torch.randn(7, 3, dtype=torch.float64, generator=gen,
                         requires_grad=True)
    gamma = 1 + torch.rand(5, 7, dtype=torch.float64, generator=gen)
    beta = torch.rand(5, 7, dtype=torch.float64, generator=gen)
    at = pairs.target_feat
    out = pairwise_edge_transform(pairs, gamma.view(-1)[at],
                                  beta.view(-1)[at], weight, src.numel())
    ref = _reference(x, gamma, beta, weight.detach(), src, dst)
    assert torch.allclose(out, ref)
    (grad, ) = torch.autograd.grad(out.pow(2).sum(), weight)
    ref_weight = weight.detach().clone().requires_grad_()
    (ref_grad, ) = torch.autograd.grad(
        _reference(x, gamma, beta, ref_weight, src, dst).pow(2).sum(),
        ref_weight)
    assert torch.allclose(grad, ref_grad)


def test_he_initialization_scales_with_fan_in():
    from pyg_hyper.nn import EdgeLocalization
    torch.manual_seed(0)
    node = NodeLocalization(400, rank=8, init='he')
    # M_2 (rank -> d_in) has fan-in 8: std sqrt(2/8) = 0.5 before the
    # truncation at two deviations (which leaves 0.88 of it).
    assert 0.40 < node.expand.std() < 0.48
    assert node.expand.abs().max() <= 1.0
    assert 0.055 < node.proj.std() < 0.07  # fan-in 400: 0.0707 * 0.88
    glorot = NodeLocalization(400, rank=8)
    assert glorot.expand.std() < 0.1
    edge = EdgeLocalization(50, 4, init='he')
    assert 0.15 < edge.center.std() < 0.2  # sqrt(2/50) * 0.88 = 0.176
    with pytest.raises(ValueError, match="unknown init 'kaiming'; valid: "
                       "glorot, he"):
        NodeLocalization(4, init='kaiming')


def test_weight_dropout_mask_is_a_fair_deterministic_hash():
    from pyg_hyper.nn.localization import WeightDropout
    entries = torch.arange(100_000)
    drop = WeightDropout(0.4, 123)
    mask = drop.mask(entries, 8)
    assert mask.shape == (100_000, 8)
    assert mask.unique().tolist() == pytest.approx([0.0, 1 / 0.6])
    assert abs(float((mask > 0).float().mean()) - 0.6) < 0.01
    # The same entry gets the same row whatever else is asked for ...
    assert torch.equal(drop.mask(entries[[7, 3, 7]], 8), mask[[7, 3, 7]])
    # ... and neighbouring entries and channels are uncorrelated.
    keep = (mask > 0).float()
    assert abs(float(torch.corrcoef(torch.stack([keep[:-1, 0],
                                                 keep[1:, 0]]))[0, 1])) < 0.02
    assert abs(float(torch.corrcoef(keep[:, :2].t())[0, 1])) < 0.02
    # Another seed gives another mask (agreeing at chance, 0.6^2 + 0.4^2).
    other = WeightDropout(0.4, 124).mask(entries, 8) > 0
    assert abs(float(((mask > 0) == other).float().mean()) - 0.52) < 0.01
    torch.manual_seed(0)
    assert WeightDropout.draw(0.4) != WeightDropout.draw(0.4)
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=rf"probability 'p' in \[0, 1\) "
                           rf"\(got {p}\)"):
            WeightDropout.draw(p)


def test_zero_sizes_are_refused():
    from pyg_hyper.nn import EdgeLocalization, NodeLocalization
    with pytest.raises(ValueError, match="'NodeLocalization' needs a "
                       "positive integer 'rank' \\(got 0\\)"):
        NodeLocalization(5, rank=0)
    with pytest.raises(ValueError, match="'NodeLocalization' needs a "
                       "positive integer 'channels' \\(got 0\\)"):
        NodeLocalization(0)
    with pytest.raises(ValueError, match="'EdgeLocalization' needs a "
                       "positive integer 'in_channels' \\(got 0\\)"):
        EdgeLocalization(0, 3)


def test_regularizer_row_mask_equals_row_selection():
    torch.manual_seed(0)
    gamma, beta = torch.randn(5, 3, 2), torch.randn(5, 3, 2)
    keep = torch.tensor([True, False, True, True, False])
    torch.testing.assert_close(
        localization_regularizer(gamma, beta, weight=keep),
        localization_regularizer(gamma[keep], beta[keep]))
    # No rows: NaN, as the unweighted mean of nothing (not an IndexError).
    empty = torch.empty(0, 3, 2)
    assert localization_regularizer(empty, empty,
                                    weight=torch.empty(0, dtype=torch.bool)
                                    ).isnan()
