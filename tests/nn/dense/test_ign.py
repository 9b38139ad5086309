import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.nn.dense import (
    Equivariant2to1,
    Equivariant2to2,
    Invariant2to0,
    diag_offdiag_pool,
    equivariant_basis_2_to_2,
)


def loop_basis(X):
    """The 15 operations of the official ``ops_2_to_2`` written entry by
    entry from their definitions, for one matrix X [n, n]."""
    n = X.size(0)
    diag = [X[i, i] for i in range(n)]
    row = [sum(X[i, k] for k in range(n)) for i in range(n)]
    col = [sum(X[k, i] for k in range(n)) for i in range(n)]
    tr = sum(diag)
    tot = sum(row)
    ops = torch.zeros(15, n, n, dtype=X.dtype)
    for i in range(n):
        for j in range(n):
            if i == j:
                ops[0, i, j] = diag[i]
                ops[1, i, j] = tr / n
                ops[2, i, j] = row[i] / n
                ops[3, i, j] = col[i] / n
                ops[4, i, j] = tot / n**2
            ops[5, i, j] = col[i] / n
            ops[6, i, j] = row[i] / n
            ops[7, i, j] = col[j] / n
            ops[8, i, j] = row[j] / n
            ops[9, i, j] = X[i, j]
            ops[10, i, j] = X[j, i]
            ops[11, i, j] = diag[i]
            ops[12, i, j] = diag[j]
            ops[13, i, j] = tr / n
            ops[14, i, j] = tot / n**2
    return ops


def padded_batch():
    torch.manual_seed(1)
    x = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0],
                         [1, 1, 0, 0, 0]], dtype=torch.bool)
    return x, mask


@pytest.mark.parametrize('b', range(15))
def test_each_basis_op_matches_loop(b):
    torch.manual_seed(0)
    X = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    ops = equivariant_basis_2_to_2(X)[0, 0]
    assert torch.allclose(ops[b], loop_basis(X[0, 0])[b])


def test_basis_uses_each_graphs_own_size():
    x, mask = padded_batch()
    ops = equivariant_basis_2_to_2(x, mask)
    for g, n in enumerate(mask.sum(1).tolist()):
        for d in range(2):
            expected = loop_basis(x[g, d, :n, :n])
            assert torch.allclose(ops[g, d, :, :n, :n], expected)
        assert ops[g, :, :, n:, :].abs().sum() == 0
        assert ops[g, :, :, :, n:].abs().sum() == 0


def random_layer(cls, *args):
    layer = cls(*args).double()
    for p in layer.parameters():  # non-zero biases, to test them too
        torch.nn.init.normal_(p)
    return layer


def test_2_to_2_matches_direct_form():
    x, mask = padded_batch()
    layer = random_layer(Equivariant2to2, 2, 3)
    out = layer(x, mask)
    direct = torch.einsum('dsb,ndbij->nsij', layer.weight,
                          equivariant_basis_2_to_2(x, mask))
    direct = direct + layer.all_bias.view(1, -1, 1, 1)
    direct = direct + torch.eye(5).double() * layer.diag_bias.view(1, -1, 1, 1)
    valid = (mask[:, None, :, None] & mask[:, None, None, :])
    assert torch.allclose(out, direct * valid)
    assert out.shape == (3, 3, 5, 5)
    assert str(layer) == 'Equivariant2to2(2, 3)'


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_2_to_2_permutation_equivariant(n, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, n, n, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n, generator=gen)
    layer = random_layer(Equivariant2to2, 3, 2)
    out = layer(x)
    out_perm = layer(x[:, :, perm][:, :, :, perm])
    assert torch.allclose(out[:, :, perm][:, :, :, perm], out_perm)


def test_2_to_1_and_2_to_0():
    x, mask = padded_batch()
    perm = torch.tensor([2, 0, 1, 3, 4])  # permutes the 3 nodes of graph 1
    l1 = random_layer(Equivariant2to1, 2, 3)
    l0 = random_layer(Invariant2to0, 2, 4)
    y1, y0 = l1(x, mask), l0(x, mask)
    assert y1.shape == (3, 3, 5) and y0.shape == (3, 4)
    xp = x[:, :, perm][:, :, :, perm]
    assert torch.allclose(l1(xp[1:2], mask[1:2]), y1[1:2, :, perm])
    assert torch.allclose(l0(xp[1:2], mask[1:2]), y0[1:2])
    # Padding does not matter.
    assert torch.allclose(l1(x[2:3, :, :2, :2]), y1[2:3, :, :2])
    assert torch.allclose(l0(x[2:3, :, :2, :2]), y0[2:3])
    assert y1[2, :, 2:].abs().sum() == 0
    # Against the direct form: diagonal, trace/n, rows/n, cols/n, sum/n^2.
    X = x[0, 0]
    n = 5
    basis = torch.stack([X.diagonal(), X.trace().expand(n) / n,
                         X.sum(1) / n, X.sum(0) / n, X.sum().expand(n) / n**2])
    only0 = Equivariant2to1(1, 1).double()
    assert torch.allclose(only0(x[:1, :1])[0, 0],
                          only0.weight[0, 0] @ basis + only0.bias)


def _padded_permutation(sizes, extra, seed, channels=2):
    """A random padded batch, its node mask, and a random relabelling of
    each graph's nodes (index [B, m]; the padding stays last)."""
    gen = torch.Generator().manual_seed(seed)
    B, m = len(sizes), max(sizes) + extra
    x = torch.randn(B, channels, m, m, generator=gen, dtype=torch.float64)
    mask = torch.arange(m).view(1, m) < torch.tensor(sizes).view(B, 1)
    index = torch.stack([torch.cat([torch.randperm(n, generator=gen),
                                    torch.arange(n, m)]) for n in sizes])
    rows = index.view(B, 1, m, 1).expand(-1, channels, -1, m)
    cols = index.view(B, 1, 1, m).expand(-1, channels, m, -1)
    return x, mask, index, x.gather(2, rows).gather(3, cols)


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       extra=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_2_to_1_equivariant_and_2_to_0_invariant(sizes, extra, seed):
    # The defining properties, on padded batches whose padding holds
    # garbage: relabelling a graph's nodes relabels its node outputs and
    # leaves its graph outputs unchanged; every graph's outputs are those
    # of the graph alone, unpadded; padding nodes output zero.
    x, mask, index, x_perm = _padded_permutation(sizes, extra, seed)
    l1 = random_layer(Equivariant2to1, 2, 3)
    l0 = random_layer(Invariant2to0, 2, 4)
    y1, y0 = l1(x, mask), l0(x, mask)
    assert torch.allclose(l1(x_perm, mask),
                          y1.gather(2, index.unsqueeze(1).expand_as(y1)))
    assert torch.allclose(l0(x_perm, mask), y0)
    assert y1.masked_select(~mask.unsqueeze(1)).abs().sum() == 0
    for b, n in enumerate(sizes):
        alone = x[b:b + 1, :, :n, :n]
        assert torch.allclose(l1(alone), y1[b:b + 1, :, :n])
        assert torch.allclose(l0(alone), y0[b:b + 1])


def test_padding_does_not_change_outputs():
    x, mask = padded_batch()
    layer = random_layer(Equivariant2to2, 2, 3)
    out = layer(x, mask)
    for g, n in enumerate(mask.sum(1).tolist()):
        alone = layer(x[g:g + 1, :, :n, :n])
        assert torch.allclose(out[g:g + 1, :, :n, :n], alone)
        assert out[g, :, n:].abs().sum() == 0
    # Garbage in the padding is ignored.
    noisy = x.clone()
    noisy[~(mask[:, None, :, None] & mask[:, None, None, :]).expand_as(x)] = 7.
    assert torch.allclose(layer(noisy, mask), out)


def test_diag_offdiag_pool():
    x, mask = padded_batch()
    x[2, :, :2, :2] = torch.tensor([[1., 2.], [3., 4.]], dtype=x.dtype)
    out = diag_offdiag_pool(x, mask, 'max')
    assert out[2].tolist() == [4., 4., 3., 3.]
    assert diag_offdiag_pool(x, mask, 'sum')[2].tolist() == [5., 5., 5., 5.]
    assert diag_offdiag_pool(x, mask, 'mean')[2].tolist() == [
        2.5, 2.5, 2.5, 2.5]
    # Three nodes: 3 diagonal and 6 off-diagonal entries, with different
    # sums, so each mean must divide by its own count (two nodes have 2
    # of each and cannot tell them apart).
    block = torch.tensor([[1., 2., 0.], [4., 3., 6.], [1., 8., 2.]],
                         dtype=x.dtype)
    x[1, 0, :3, :3], x[1, 1, :3, :3] = block, -block
    assert diag_offdiag_pool(x, mask, 'max')[1].tolist() == [3., -1., 8., 0.]
    assert diag_offdiag_pool(x, mask, 'sum')[1].tolist() == [
        6., -6., 21., -21.]
    assert diag_offdiag_pool(x, mask, 'mean')[1].tolist() == [
        2., -2., 3.5, -3.5]
    single = torch.full((1, 1, 3, 3), -5.)
    one_node = torch.tensor([[True, False, False]])
    assert diag_offdiag_pool(single, one_node).tolist() == [[-5., 0.]]
    with pytest.raises(ValueError, match="Unknown reduction 'min'"):
        diag_offdiag_pool(x, mask, 'min')


def test_diag_offdiag_max_pool_gradient_reaches_the_maxima_only():
    x, mask = padded_batch()
    # Larger values in the padding and on the other part must be ignored.
    x = x.clone()
    x[~(mask[:, None, :, None] & mask[:, None, None, :]).expand_as(x)] = 9.
    x = x.requires_grad_()
    out = diag_offdiag_pool(x, mask, 'max')
    grad, = torch.autograd.grad(out.sum(), x)
    valid = mask[:, None, :, None] & mask[:, None, None, :]
    eye = torch.eye(5, dtype=torch.bool)
    for g in range(3):
        for c in range(2):
            for part, sel in ((0, valid[g, 0] & eye), (1, valid[g, 0] & ~eye)):
                if not sel.any():
                    continue
                best = x[g, c].detach().masked_fill(~sel, -1e9)
                expected = (best == best.max()).double()
                assert torch.equal(grad[g, c] * sel, expected)
    assert grad[~valid.expand_as(x)].abs().sum() == 0
    assert torch.autograd.gradcheck(
        lambda t: diag_offdiag_pool(t, mask, 'max'),
        (torch.randn(3, 2, 5, 5, dtype=torch.float64, requires_grad=True), ))


def test_gradcheck():
    x, mask = padded_batch()
    x = x[:, :, :4, :4].clone().requires_grad_()
    mask = mask[:, :4]
    layer = random_layer(Equivariant2to2, 2, 2)
    assert torch.autograd.gradcheck(lambda t: layer(t, mask), (x, ))
    l1 = random_layer(Equivariant2to1, 2, 2)
    assert torch.autograd.gradcheck(lambda t: l1(t, mask), (x, ))


def test_compile_without_graph_breaks():
    x, mask = padded_batch()
    layer = Equivariant2to2(2, 3).double()
    explain = torch._dynamo.explain(layer)(x, mask)
    assert explain.graph_break_count == 0


@pytest.mark.parametrize('cls', [Equivariant2to1, Invariant2to0])
def test_reductions_compile_without_graph_breaks(cls):
    x, mask = padded_batch()
    layer = cls(2, 3).double()
    explain = torch._dynamo.explain(layer)(x, mask)
    assert explain.graph_break_count == 0


@pytest.mark.parametrize('cls', [Equivariant2to2, Equivariant2to1,
                                 Invariant2to0])
def test_bad_input(cls):
    layer = cls(2, 3)
    with pytest.raises(ValueError, match=r"expected 'x' of shape "
                       r"\[batch_size, 2, num_nodes, num_nodes\]"):
        layer(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match='expected .* shape'):
        layer(torch.randn(1, 2, 4, 5))
    with pytest.raises(ValueError, match="boolean 'mask' of shape \\[1, 4\\]"):
        layer(torch.randn(1, 2, 4, 4), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match='floating-point'):
        layer(torch.ones(1, 2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"'x' of its parameters' dtype "
                       r"torch.float32 \(got torch.float64\)"):
        layer(torch.ones(1, 2, 4, 4, dtype=torch.float64))
    # Graphs without nodes: Invariant2to0 returned NaN, the model's max
    # pooling an IndexError.
    with pytest.raises(ValueError, match=r"graphs without nodes \(x of shape "
                       r"\[3, 2, 0, 0\]\)"):
        layer(torch.randn(3, 2, 0, 0))


def test_bad_channels():
    with pytest.raises(ValueError, match="'Equivariant2to2' needs a positive "
                       "integer 'out_channels' \\(got 0\\)"):
        Equivariant2to2(3, 0)
    layer = Equivariant2to2(2, 3, bias=False)
    assert layer.all_bias is None and layer.diag_bias is None
    assert Equivariant2to1(2, 3, bias=False).bias is None


@pytest.mark.parametrize('cls', [Equivariant2to2, Equivariant2to1,
                                 Invariant2to0])
def test_official_initialization(cls):
    # N(0, 2 / (D + S)) and zero biases for every dense layer (Invariant2to0
    # used nn.Linear's Kaiming weight and random bias).
    torch.manual_seed(0)
    layer = cls(40, 60)
    weights = [p for n, p in layer.named_parameters() if 'bias' not in n]
    biases = [p for n, p in layer.named_parameters() if 'bias' in n]
    std = torch.cat([w.flatten() for w in weights]).std().item()
    assert std == pytest.approx((2 / (40 + 60)) ** 0.5, rel=0.05)
    assert biases and all((b == 0).all() for b in biases)
