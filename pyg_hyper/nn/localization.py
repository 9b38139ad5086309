r"""Node- and edge-level localization of GNN weights (LGNN).

After Liu, Fang, Liu & Hoi, `"Node-wise Localization of Graph Neural
Networks" <https://arxiv.org/abs/2110.14322>`_ (IJCAI 2021). A shared weight
:math:`\mathbf{W} \in \mathbb{R}^{d_{in} \times d_{out}}` is localized per
target node :math:`v`,

.. math::
    \mathbf{W}_v = \mathbf{W} \odot (\boldsymbol{\gamma}_v \mathbf{1}^{\top})
    + \boldsymbol{\beta}_v \mathbf{1}^{\top},

and every message is modulated per edge. This module never builds
:math:`\mathbf{W}_v`: it uses

.. math::
    \mathbf{h}_u \mathbf{W}_v = (\mathbf{h}_u \odot \boldsymbol{\gamma}_v)
    \mathbf{W} + (\mathbf{h}_u \cdot \boldsymbol{\beta}_v) \mathbf{1}^{\top},

evaluated only at the non-zero entries of :math:`\mathbf{h}_u` when the
features are sparse (bag-of-words inputs): one CSR product over the (edge,
non-zero feature) pairs instead of :math:`|\mathcal{E}| \cdot d_{in} \cdot
d_{out}` work, with low-rank node-level scales evaluated only at the pairs
(:meth:`NodeLocalization.at`).

Why not :class:`~pyg_hyper.nn.HyperLinear`: :math:`\mathbf{W}_v` is affine in
:math:`(\boldsymbol{\gamma}_v, \boldsymbol{\beta}_v)` but its code has
:math:`2 d_{in}` entries; the generic outer-product form would cost
:math:`O(d_{in}^2)` per row, while the diagonal structure here costs
:math:`O(d_{in})`.
"""
import math
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.nn.inits import glorot
from pyg_hyper.utils.autocast import apply_autocast
from pyg_hyper.utils.checks import check_positive_int, is_tracing

__all__ = [
    'FeatureNonzeros',
    'feature_nonzeros',
    'feature_matmul',
    'NodeLocalization',
    'EdgeLocalization',
    'localized_edge_transform',
    'edge_block_size',
    'scale_block_rows',
    'EdgeFeaturePairs',
    'edge_feature_pairs',
    'sparse_edge_transform',
    'csr_matmul',
    'pairwise_edge_transform',
    'materialize_localized_weight',
    'localization_regularizer',
    'WeightDropout',
]

#: Inputs with at most this fraction of non-zeros use the sparse path of
#: :func:`localized_edge_transform` (Cora's features have 1.3%).
SPARSE_DENSITY = 0.1


#: Modulus of the counter-based hash behind :class:`WeightDropout` (the
#: Mersenne prime 2^31 - 1: products of two residues fit in 64 bits).
_HASH_PRIME = 2147483647


class WeightDropout(NamedTuple):
    r"""Dropout on the per-node weights :math:`\mathbf{W}_v`, as the
    official LGNN code applies it to the weights it builds, without building
    them: :meth:`~pyg_hyper.nn.WeightDropout.mask` returns the rows of every
    :math:`\mathbf{W}_v`'s mask that a computation touches.

    The mask entry of :math:`(v, k, j)` is a hash of the entry and
    :obj:`seed`, not a random draw, so every edge into :math:`v` sees the
    same mask of :math:`\mathbf{W}_v` (as when :math:`\mathbf{W}_v` is
    built once and dropped), only the needed rows are ever made, and the
    materialized reference reproduces it exactly. Draw a new :obj:`seed`
    from torch's generator for every forward pass
    (:meth:`~pyg_hyper.nn.WeightDropout.draw`); it is a
    0-dim tensor there, so that :func:`torch.compile` draws it inside the
    graph instead of breaking it to read a Python number.
    """
    p: float
    seed: Union[int, Tensor]

    @classmethod
    def draw(cls, p: float) -> 'WeightDropout':
        """Dropout of probability :obj:`p` with a new :obj:`seed` drawn
        from torch's generator, as a 0-dim tensor."""
        if not 0.0 <= p < 1.0:
            raise ValueError(f"'WeightDropout' expected a probability 'p' in "
                             f"[0, 1) (got {p})")
        return cls(p, torch.randint(0, _HASH_PRIME, ()))

    def mask(self, entry: Tensor, out_channels: int,
             dtype: torch.dtype = torch.float32) -> Tensor:
        """Rows :math:`M_v[k, :]` for flat entries :math:`v d_{in} + k`:
        :math:`(|entry|, d_{out})`, each 0 or :math:`1 / (1 - p)`."""
        channel = torch.arange(out_channels, device=entry.device)
        x = (entry.unsqueeze(-1) * out_channels + channel) % _HASH_PRIME
        x = (x + self.seed) % _HASH_PRIME
        # Three multiplicative rounds modulo the prime, each followed by an
        # xor-shift, decorrelate neighbouring entries.
        for a, b in ((48271, 12345), (69621, 2463534), (16807, 7)):
            x = (x * a + b) % _HASH_PRIME
            x = x ^ (x >> 15)
        keep = x.double() >= self.p * _HASH_PRIME
        return keep.to(dtype) / (1.0 - self.p)


def localization_regularizer(gamma: Tensor, beta: Tensor,
                             weight: Optional[Tensor] = None) -> Tensor:
    r""":math:`\mathrm{mean}((\boldsymbol{\gamma}-1)^2) +
    \mathrm{mean}(\boldsymbol{\beta}^2)`: pulls localized weights towards
    the shared ones (the paper adds it with weight :math:`\lambda`).

    Args:
        gamma (torch.Tensor): Scales, one row per node or edge.
        beta (torch.Tensor): Shifts of the same shape.
        weight (torch.Tensor, optional): Row mask: the means run over the
            rows where it is :obj:`True` only. (default: :obj:`None`)
    """
    if weight is None:
        return (gamma - 1).pow(2).mean() + beta.pow(2).mean()
    # A masked mean, not a row selection: its shape stays static.
    w = weight.to(gamma.dtype).view((-1, ) + (1, ) * (gamma.dim() - 1))
    count = w.sum() * gamma.shape[1:].numel()
    return ((gamma - 1).pow(2) * w).sum() / count + \
        (beta.pow(2) * w).sum() / count


class FeatureNonzeros(NamedTuple):
    """The non-zero entries of a feature matrix, sorted by row."""
    row: Tensor
    col: Tensor
    val: Tensor  # gathered from x, so x keeps its gradient at these entries
    num_rows: int
    ptr: Tensor  # (num_rows + 1,) CSR row pointer
    # The transpose in CSR form (column pointer, row of each entry, and the
    # entries' positions in column order): x^T @ grad in weight gradients.
    # None when built without autograd.
    transpose: Optional[Tuple[Tensor, Tensor, Tensor]]


def feature_nonzeros(x: Tensor) -> FeatureNonzeros:
    """Lists the non-zeros of a dense or sparse COO feature matrix."""
    if x.is_sparse:
        x = x.coalesce()
        (row, col), val = x.indices(), x.values()
    else:
        row, col = x.detach().nonzero(as_tuple=True)
        val = x[row, col]
    transpose = None
    if torch.is_grad_enabled():
        # Only weight gradients use the transpose: skip its sort in
        # evaluation.
        transpose = transposed_pattern(row, col, x.size(1))
    return FeatureNonzeros(row, col, val, x.size(0),
                           compressed_pointer(torch.bincount(
                               row, minlength=x.size(0))), transpose)


def transposed_pattern(row: Tensor, col: Tensor, num_cols: int
                       ) -> Tuple[Tensor, Tensor, Tensor]:
    """The transpose of a row-sorted sparse pattern in CSR form: column
    pointer, the row of each entry in column order, and the entries'
    positions in that order."""
    # A stable sort of 32-bit keys takes half the time of 64-bit ones on
    # CPU; column counts (features) always fit.
    perm = torch.argsort(col.int() if num_cols < 2**31 else col, stable=True)
    return (compressed_pointer(torch.bincount(col, minlength=num_cols)),
            row.index_select(0, perm), perm)


def compressed_pointer(count: Tensor) -> Tensor:
    """CSR pointer from the number of entries per row: entries of row ``i``
    are ``ptr[i]:ptr[i + 1]``."""
    return torch.cat([count.new_zeros(1), torch.cumsum(count, 0)])


Features = Union[Tensor, FeatureNonzeros]


def feature_matmul(x: Features, weight: Tensor) -> Tensor:
    """``x @ weight`` for dense features or their :class:`FeatureNonzeros`
    (cost proportional to the non-zeros)."""
    if isinstance(x, Tensor):
        return x @ weight
    return csr_matmul(x.ptr, x.col, x.row, x.val, weight, x.transpose)


def use_sparse_features(x: Tensor, sparse: Optional[bool]) -> bool:
    """Whether to take the sparse path for :obj:`x` (see
    :func:`localized_edge_transform`)."""
    if x.is_sparse:
        return True
    if sparse is not None:
        return sparse
    if is_tracing() or x.numel() == 0 or x.requires_grad:
        # Value-dependent choice: keep compiled graphs static. And the
        # sparse path gives x gradients only at its non-zeros.
        return False
    return bool(torch.count_nonzero(x) <= SPARSE_DENSITY * x.numel())


def localized_edge_transform(x: Features, gamma: Optional[Tensor],
                             beta: Optional[Tensor], weight: Tensor,
                             src: Tensor, dst: Tensor,
                             sparse: Optional[bool] = None,
                             weight_dropout: Optional[WeightDropout] = None
                             ) -> Tensor:
    r"""Computes :math:`\mathbf{h}_u \mathbf{W}_v` for every edge
    :math:`u \to v` without materializing :math:`\mathbf{W}_v`.

    Args:
        x (torch.Tensor or FeatureNonzeros): Source features
            :math:`(N, d_{in})`: dense, sparse COO, or their non-zeros.
        gamma (torch.Tensor, optional): Row scales :math:`(N, d_{in})`, or
            :obj:`None` for all ones.
        beta (torch.Tensor, optional): Row shifts :math:`(N, d_{in})`, or
            :obj:`None` for zeros.
        weight (torch.Tensor): Shared weight :math:`(d_{in}, d_{out})`.
        src (torch.Tensor): Source node of each edge :math:`(E,)`.
        dst (torch.Tensor): Target node of each edge :math:`(E,)`.
        sparse (bool, optional): Use the sparse path (touch only non-zero
            features). :obj:`None` picks it when at most 10% of :obj:`x` is
            non-zero and :obj:`x` needs no gradient (input features), eagerly
            only; under :func:`torch.compile` the dense path is used. Sparse
            inputs always take it. Both paths give the same output and the
            same gradients for :obj:`gamma`, :obj:`beta` and :obj:`weight`;
            the sparse path gives :obj:`x` gradients only at its non-zeros.
        weight_dropout (WeightDropout, optional): Dropout on every
            :math:`\mathbf{W}_v`. It costs :math:`O(P d_{out})` on the sparse
            path (:math:`P` (edge, non-zero feature) pairs) and
            :math:`O(|\mathcal{E}| d_{in} d_{out})` on the dense one.
            (default: :obj:`None`)

    Returns:
        torch.Tensor: :math:`(E, d_{out})`.
    """
    if isinstance(x, Tensor) and use_sparse_features(x, sparse):
        x = feature_nonzeros(x)
    if gamma is None and beta is None and weight_dropout is None:
        # Plain linear map: transform once per node, then gather per edge.
        return feature_matmul(x, weight).index_select(0, src)
    if isinstance(x, FeatureNonzeros):
        return sparse_edge_transform(x, gamma, beta, weight, src, dst,
                                     weight_dropout)
    if weight_dropout is None and not is_tracing():
        # Full precision under autocast: its blocks accumulate in place.
        return apply_autocast(_BlockedEdgeTransform, x, gamma, beta, weight,
                              src, dst, edge_block_size(x.size(1), x.device),
                              dtype=torch.float32)
    return _vectorized_edge_transform(x, gamma, beta, weight, src, dst,
                                      weight_dropout)


def _vectorized_edge_transform(x: Tensor, gamma: Optional[Tensor],
                               beta: Optional[Tensor], weight: Tensor,
                               src: Tensor, dst: Tensor,
                               weight_dropout: Optional[WeightDropout] = None
                               ) -> Tensor:
    """:func:`localized_edge_transform` on dense features over all edges at
    once: under :func:`torch.compile`, whose fused loops do what the blocks
    of :class:`_BlockedEdgeTransform` do eagerly, and with weight dropout
    (whose mask is per edge anyway)."""
    h = x[src]
    scaled = h * gamma[dst] if gamma is not None else h
    if weight_dropout is not None:
        d_in, d_out = weight.shape
        entry = (dst.unsqueeze(-1) * d_in +
                 torch.arange(d_in, device=dst.device))
        mask = weight_dropout.mask(entry, d_out, weight.dtype)
        out = torch.einsum('ek,ekj->ej', scaled, weight * mask)
        if beta is not None:
            out = out + torch.einsum('ek,ekj->ej', h * beta[dst], mask)
        return out
    out = scaled @ weight
    if beta is not None:
        out = out + (h * beta[dst]).sum(-1, keepdim=True)
    return out


#: Entries per block on accelerators, where every block costs a kernel
#: launch per operation and memory bandwidth is ample: a block is as large
#: as a few hundred MB of temporaries allow (one block for most graphs).
ACCELERATOR_BLOCK_ENTRIES = 2**26


def edge_block_size(in_channels: int, device: torch.device) -> int:
    """Edges per block of the blocked (eager, dense-feature) path of
    :func:`~pyg_hyper.nn.localized_edge_transform`: about 2^20
    (edge, feature) entries on CPU, so that a block's few temporaries stay
    in the last-level cache;
    :data:`~pyg_hyper.nn.localization.ACCELERATOR_BLOCK_ENTRIES`
    elsewhere."""
    entries = 2**20 if device.type == 'cpu' else ACCELERATOR_BLOCK_ENTRIES
    return max(1, entries // max(in_channels, 1))


def scale_block_rows(in_channels: int, device: torch.device) -> int:
    """Rows per block of the low-rank node-level scales
    (:meth:`NodeLocalization.at`): 128 on CPU, where a block's two
    :math:`(128, d_{in})` products stay in cache;
    :data:`~pyg_hyper.nn.localization.ACCELERATOR_BLOCK_ENTRIES` entries
    elsewhere. With
    CPU-sized blocks, Cora's 2,708 rows make 22 blocks of about a dozen
    kernels each way; on an H200, LGCN-node's epoch then took 10x PyG's
    GCN and LGCN-edge's 2.5x."""
    if device.type == 'cpu':
        return 128
    return max(1, ACCELERATOR_BLOCK_ENTRIES // max(in_channels, 1))


class _BlockedEdgeTransform(torch.autograd.Function):
    r""":math:`(\mathbf{h}_u \odot \boldsymbol{\gamma}_v) \mathbf{W} +
    (\mathbf{h}_u \cdot \boldsymbol{\beta}_v) \mathbf{1}^{\top}` for every
    edge :math:`u \to v` of dense features, block by block of edges.

    Why: done at once, the gathered :math:`\mathbf{h}_u`,
    :math:`\boldsymbol{\gamma}_v`, :math:`\boldsymbol{\beta}_v` and their
    products are :math:`|\mathcal{E}| \times d_{in}` tensors each (700 MB
    apiece on Amazon Photo), written to and read back from main memory
    several times, and autograd keeps several of them for the backward
    pass. Here every block's temporaries stay in cache and the backward pass
    gathers them again: nothing of size :math:`|\mathcal{E}| d_{in}` is
    held. On Amazon Photo's first LGCN layer this is 3.3x faster and peaks
    at 75 MB instead of 2.8 GB (``benchmarks/bench_lgnn_dense.py``).
    :obj:`gamma` and :obj:`beta` may be :obj:`None` (ones, zeros).
    """
    @staticmethod
    def forward(ctx, x, gamma, beta, weight, src, dst, block):
        out = x.new_empty(src.numel(), weight.size(1))
        for lo in range(0, src.numel(), block):
            source, target = src[lo:lo + block], dst[lo:lo + block]
            h = x.index_select(0, source)
            scaled = h if gamma is None else h * gamma.index_select(0, target)
            rows = out[lo:lo + block]
            torch.mm(scaled, weight, out=rows)
            if beta is not None:
                rows += h.mul_(beta.index_select(0, target)).sum(
                    -1, keepdim=True)
        ctx.save_for_backward(x, gamma, beta, weight, src, dst)
        ctx.block = block
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, gamma, beta, weight, src, dst = ctx.saved_tensors
        need_x, need_gamma, need_beta, need_weight = ctx.needs_input_grad[:4]
        grad_x = torch.zeros_like(x) if need_x else None
        grad_gamma = torch.zeros_like(gamma) if need_gamma else None
        grad_beta = torch.zeros_like(beta) if need_beta else None
        grad_weight = torch.zeros_like(weight) if need_weight else None
        grad_out = grad_out.contiguous()
        block = ctx.block
        for lo in range(0, src.numel(), block):
            source, target = src[lo:lo + block], dst[lo:lo + block]
            grad = grad_out[lo:lo + block]
            h = x.index_select(0, source)
            row_gamma = (None if gamma is None else
                         gamma.index_select(0, target))
            if need_weight:
                grad_weight.addmm_(
                    (h if row_gamma is None else h * row_gamma).t(), grad)
            # d out / d (h * gamma_v), and d out / d (h . beta_v).
            grad_scaled = grad @ weight.t()
            grad_dot = (grad.sum(-1, keepdim=True) if beta is not None
                        else None)
            if need_x:
                grad_h = (grad_scaled.clone() if row_gamma is None
                          else grad_scaled * row_gamma)
                if grad_dot is not None:
                    grad_h.addcmul_(beta.index_select(0, target), grad_dot)
                grad_x.index_add_(0, source, grad_h)
            if need_gamma:
                grad_gamma.index_add_(0, target, grad_scaled.mul_(h))
            if need_beta:
                grad_beta.index_add_(0, target, h.mul_(grad_dot))
        return (grad_x, grad_gamma, grad_beta, grad_weight, None, None,
                None)


class EdgeFeaturePairs(NamedTuple):
    r"""The (edge, feature) pairs with :math:`x_{u,k} \neq 0` for the
    edge's source :math:`u`: the only terms of :math:`\mathbf{h}_u
    \mathbf{W}_v` that are not zero."""
    edge: Tensor  # (P,) edge of each pair, sorted
    feat: Tensor  # (P,) feature k
    val: Tensor  # (P,) x[u, k]
    target_feat: Tensor  # (P,) flat index dst[edge] * d_in + k
    edge_ptr: Tensor  # (E + 1,) pairs of edge e: edge_ptr[e]:edge_ptr[e+1]
    # (P,) position of each pair's x[u, k] among the non-zeros: refills
    # `val` from new values with the same pattern (a cached structure).
    source_entry: Tensor
    # The pattern transposed, as FeatureNonzeros.transpose (None: not
    # built): the weight gradient is then a CSR product, not a sort.
    transpose: Optional[Tuple[Tensor, Tensor, Tensor]] = None


def edge_feature_pairs(x: FeatureNonzeros, src: Tensor, dst: Tensor,
                       num_features: int, transpose: bool = False
                       ) -> EdgeFeaturePairs:
    """Enumerates :class:`EdgeFeaturePairs`: each source row's non-zeros,
    repeated once per edge leaving that source; with :obj:`transpose`, also
    their pattern transposed (worth it when it is reused: one sort)."""
    rowptr = x.ptr[:-1]
    per_edge = (x.ptr[1:] - rowptr).index_select(0, src)
    edge = torch.repeat_interleave(
        torch.arange(src.numel(), device=src.device), per_edge)
    first = torch.cumsum(per_edge, 0) - per_edge
    pos = (rowptr.index_select(0, src) - first).index_select(0, edge)
    pos = pos + torch.arange(edge.numel(), device=src.device)
    feat = x.col.index_select(0, pos)
    by_feature = (transposed_pattern(edge, feat, num_features)
                  if transpose else None)
    return EdgeFeaturePairs(edge, feat, x.val.index_select(0, pos),
                            dst.index_select(0, edge) * num_features + feat,
                            compressed_pointer(per_edge), pos, by_feature)


def sparse_edge_transform(x: FeatureNonzeros, gamma: Optional[Tensor],
                          beta: Optional[Tensor], weight: Tensor,
                          src: Tensor, dst: Tensor,
                          weight_dropout: Optional[WeightDropout] = None
                          ) -> Tensor:
    r"""The sparse path of :func:`localized_edge_transform`: one term per
    :class:`EdgeFeaturePairs` entry, so the cost is proportional to the
    non-zeros reaching each edge rather than to :math:`|\mathcal{E}|
    \cdot d_{in}`."""
    pairs = edge_feature_pairs(x, src, dst, weight.size(0))
    # Flat index_select (not 2-D advanced indexing): its backward is a fast
    # index_add instead of a sorting index_put.
    at = pairs.target_feat
    return pairwise_edge_transform(
        pairs, None if gamma is None else gamma.reshape(-1).index_select(
            0, at),
        None if beta is None else beta.reshape(-1).index_select(0, at),
        weight, src.numel(), weight_dropout)


def pairwise_edge_transform(pairs: EdgeFeaturePairs,
                            gamma: Optional[Tensor], beta: Optional[Tensor],
                            weight: Tensor, num_edges: int,
                            weight_dropout: Optional[WeightDropout] = None
                            ) -> Tensor:
    r""":math:`\mathbf{h}_u \mathbf{W}_v` per edge from the scales at the
    pairs only: :obj:`gamma` and :obj:`beta` are :math:`(P,)`
    (:math:`\gamma_{v,k}` and :math:`\beta_{v,k}` at each pair), or
    :obj:`None`. With :obj:`weight_dropout`, each pair's term gets its row
    of the mask of :math:`\mathbf{W}_v` (:math:`P \times d_{out}` work)."""
    scaled = pairs.val if gamma is None else pairs.val * gamma
    if weight_dropout is not None:
        mask = weight_dropout.mask(pairs.target_feat, weight.size(1),
                                   weight.dtype)
        term = scaled.unsqueeze(-1) * weight.index_select(0, pairs.feat)
        if beta is not None:
            term = term + (pairs.val * beta).unsqueeze(-1)
        return term.new_zeros(num_edges, weight.size(1)).index_add_(
            0, pairs.edge, term * mask)
    out = csr_matmul(pairs.edge_ptr, pairs.feat, pairs.edge, scaled, weight,
                     pairs.transpose)
    if beta is not None:
        # (h_u . beta_v) per edge: a sum of each edge's pair terms, whose
        # backward is a gather (a product with a ones column would cost a
        # sampled product).
        shift = beta.new_zeros(num_edges).index_add_(0, pairs.edge,
                                                     pairs.val * beta)
        out = out + shift.unsqueeze(-1)
    return out


def csr_matmul(ptr: Tensor, col: Tensor, row: Tensor, values: Tensor,
               weight: Tensor,
               transpose: Optional[Tuple[Tensor, Tensor, Tensor]] = None
               ) -> Tensor:
    r""":math:`\mathbf{S} \mathbf{W}` for the sparse matrix
    :math:`\mathbf{S}` given in CSR form (:obj:`row` repeats each entry's
    row index, for the backward pass), differentiable in :obj:`values` and
    :obj:`weight`. Column indices must be sorted within each row.
    :obj:`transpose` (see :class:`FeatureNonzeros`), if given, makes the
    weight gradient a CSR product instead of a scatter."""
    return apply_autocast(_CsrMatmul, ptr, col, row, values, weight,
                          transpose, dtype=torch.float32)


class _CsrMatmul(torch.autograd.Function):
    """Why a custom function: a CSR product is several times faster than
    gathering rows of the weight per entry, but autograd through sparse
    tensors is slow; the two gradients are a sampled product (values) and
    a product with the transposed pattern (weight)."""
    @staticmethod
    def forward(ctx, ptr, col, row, values, weight, transpose):
        matrix = torch.sparse_csr_tensor(ptr, col, values,
                                         (ptr.numel() - 1, weight.size(0)),
                                         check_invariants=False)
        ctx.save_for_backward(ptr, col, row, values, weight)
        ctx.transpose = transpose
        return matrix @ weight

    @staticmethod
    def backward(ctx, grad_out):
        ptr, col, row, values, weight = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_values = grad_weight = None
        if ctx.needs_input_grad[3]:
            pattern = torch.sparse_csr_tensor(
                ptr, col, torch.zeros_like(values),
                (grad_out.size(0), weight.size(0)), check_invariants=False)
            grad_values = torch.sparse.sampled_addmm(
                pattern, grad_out, weight.t(), beta=0.0).values()
        if ctx.needs_input_grad[4] and ctx.transpose is not None:
            t_ptr, t_col, perm = ctx.transpose
            grad_weight = torch.sparse_csr_tensor(
                t_ptr, t_col, values.index_select(0, perm),
                (weight.size(0), grad_out.size(0)),
                check_invariants=False) @ grad_out
        elif ctx.needs_input_grad[4]:
            # S^T grad as a COO product: torch sorts the transposed pattern
            # once, which is several times faster (4-9x for Cora's pairs)
            # than gathering a row of grad per entry and scattering it.
            pattern = torch.sparse_coo_tensor(
                torch.stack([col, row]), values,
                (weight.size(0), grad_out.size(0)), check_invariants=False)
            grad_weight = torch.sparse.mm(pattern, grad_out)
        return None, None, None, grad_values, grad_weight, None


class _LowRankScales(torch.autograd.Function):
    r"""For :math:`\mathbf{Z}_k = \mathbf{C}_k \mathbf{E}_k` (:math:`k` =
    gamma, beta; :math:`(N, d)` each, rank :math:`r`), returns
    :math:`\mathrm{LeakyReLU}(\mathbf{Z})` at the given entries and
    :math:`\sum_k \mathrm{mean}(\mathrm{LeakyReLU}(\mathbf{Z}_k)^2)` over
    the rows in :obj:`reg_rows` (a mask; :obj:`None` for all rows, and zero
    if it selects none).

    Why a custom function: the regularizer needs every entry of
    :math:`\mathbf{Z}`, but holding :math:`\mathbf{Z}` (and autograd's
    copies of it) costs several passes over :math:`2 N d` floats through
    main memory. Here :math:`\mathbf{Z}` is built in row blocks that stay in
    cache, used at once, and rebuilt in the backward pass; nothing of size
    :math:`N d` is stored. The entries must be sorted by row. (Gathering
    only the entries' rows and columns instead is slower, even without the
    regularizer: a rank-8 dot product per entry does not vectorize.)
    """
    @staticmethod
    def forward(ctx, context, expand, flat, slope, block, reg_rows):
        num_rows, dim = context.size(0), expand.size(-1)
        bounds = torch.searchsorted(
            flat, torch.arange(0, num_rows + block, block,
                               device=flat.device) * dim).tolist()
        count = num_rows if reg_rows is None else int(reg_rows.sum())
        values = context.new_empty(flat.numel(), 2)
        total = context.new_zeros(())
        for i, start in enumerate(range(0, num_rows, block)):
            lo, hi = bounds[i], bounds[i + 1]
            local = flat[lo:hi] - start * dim
            mask = _block_mask(reg_rows, start, block, count)
            for k in range(2):
                z = context[start:start + block, k] @ expand[k]
                z = F.leaky_relu_(z, slope)
                if mask is None:
                    total += torch.dot(z.view(-1), z.view(-1))
                elif mask is not False:
                    total += z[mask].pow(2).sum()
                values[lo:hi, k] = z.view(-1).index_select(0, local)
        ctx.save_for_backward(context, expand, flat, reg_rows)
        ctx.slope, ctx.block, ctx.bounds = slope, block, bounds
        ctx.count = count
        return values, total / max(count * dim, 1)

    @staticmethod
    def backward(ctx, grad_values, grad_total):
        context, expand, flat, reg_rows = ctx.saved_tensors
        num_rows, dim = context.size(0), expand.size(-1)
        scale = 2 * grad_total / max(ctx.count * dim, 1)
        grad_context = torch.empty_like(context)
        grad_expand = torch.zeros_like(expand)
        for i, start in enumerate(range(0, num_rows, ctx.block)):
            lo, hi = ctx.bounds[i], ctx.bounds[i + 1]
            local = flat[lo:hi] - start * dim
            mask = _block_mask(reg_rows, start, ctx.block, ctx.count)
            for k in range(2):
                block = context[start:start + ctx.block, k]
                z = block @ expand[k]
                at = z.view(-1).index_select(0, local)
                at_grad = grad_values[lo:hi, k] * torch.where(at > 0, 1.0,
                                                              ctx.slope)
                # d LeakyReLU(z)^2 / dz = 2 LeakyReLU(z, slope^2): one
                # elementwise pass, in place over the block (z is not
                # needed after `at`), no mask tensor.
                grad = F.leaky_relu_(z, ctx.slope**2).mul_(scale)
                if mask is False:
                    grad.zero_()
                elif mask is not None:
                    grad.mul_(mask.unsqueeze(-1))
                grad.view(-1).index_add_(0, local, at_grad)
                grad_context[start:start + ctx.block, k] = grad @ expand[k].t()
                grad_expand[k].addmm_(block.t(), grad)
        return grad_context, grad_expand, None, None, None, None


def _block_mask(reg_rows: Optional[Tensor], start: int, block: int,
                count: int):
    """The regularizer's rows within one block: :obj:`None` (all rows),
    :obj:`False` (none) or a boolean mask."""
    if reg_rows is None:
        return None
    if count == 0:
        return False
    return reg_rows[start:start + block]


#: Initializations of the localization parameters.
LOC_INITS = ('glorot', 'he')


def _check_init(owner: str, init: str) -> str:
    if init not in LOC_INITS:
        raise ValueError(f"'{owner}' got unknown init '{init}'; valid: "
                         f"{', '.join(LOC_INITS)}")
    return init


def init_localization(weight: Tensor, init: str, fan_in: int) -> None:
    """Glorot uniform, or He: a normal of standard deviation
    :math:`\\sqrt{2/\\text{fan-in}}` truncated at two deviations (what the
    official LGNN code's TensorFlow variance-scaling initializer draws)."""
    if init == 'glorot':
        glorot(weight)
        return
    std = math.sqrt(2.0 / fan_in)
    torch.nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def materialize_localized_weight(weight: Tensor, gamma: Tensor,
                                 beta: Tensor) -> Tensor:
    r"""Builds :math:`\mathbf{W}_v = \mathbf{W} \odot
    (\boldsymbol{\gamma}_v \mathbf{1}^{\top}) + \boldsymbol{\beta}_v
    \mathbf{1}^{\top}` for every node, :math:`(N, d_{in}, d_{out})`.

    This is the memory-hungry formulation of the official code, kept as the
    reference that the factorized path is tested against.
    """
    return weight.unsqueeze(0) * gamma.unsqueeze(-1) + beta.unsqueeze(-1)


class NodeLocalization(torch.nn.Module):
    r"""Node-level localization parameters from a node's context, from the
    `"Node-wise Localization of Graph Neural Networks"
    <https://arxiv.org/abs/2110.14322>`_ paper,

    .. math::
        \boldsymbol{\gamma}_v = \mathrm{LeakyReLU}(\mathbf{a}_v
        \mathbf{M}^{\gamma}) + 1, \qquad
        \boldsymbol{\beta}_v = \mathrm{LeakyReLU}(\mathbf{a}_v
        \mathbf{M}^{\beta}),

    where :math:`\mathbf{a}_v = \sum_u \hat{A}_{vu} \mathbf{h}_u` is computed
    by the caller. Because :math:`\mathbf{M}` is linear, the caller may
    aggregate :meth:`project` of the features instead of the features (much
    cheaper for wide inputs): :math:`\mathbf{a}_v \mathbf{M} =
    \sum_u \hat{A}_{vu} (\mathbf{h}_u \mathbf{M})`.

    Args:
        channels (int): Input width :math:`d_{in}` (size of
            :math:`\boldsymbol{\gamma}_v` and :math:`\boldsymbol{\beta}_v`).
        rank (int, optional): If set, :math:`\mathbf{M} = \mathbf{M}_1
            \mathbf{M}_2` with inner width :obj:`rank` (the paper's first
            layer uses :math:`d_{in} \to d_1 \to d_{in}`). (default:
            :obj:`None`, a full :math:`d_{in} \times d_{in}` matrix)
        negative_slope (float, optional): LeakyReLU slope.
            (default: :obj:`0.2`)
        init (str, optional): Initialization of :math:`\mathbf{M}`,
            :obj:`"glorot"` or :obj:`"he"` (truncated normal with standard
            deviation :math:`\sqrt{2 / \text{fan-in}}`, the official
            code's variance scaling; :math:`\mathbf{M}_2` then starts with
            standard deviation :math:`\sqrt{2/\text{rank}}`).
            (default: :obj:`"glorot"`)

    Shapes:
        - **input:** node features :math:`(N, d_{in})` to :meth:`project`
          (dense, sparse COO or :class:`FeatureNonzeros`); aggregated
          projections :math:`(N, 2 d_{in})`, or :math:`(N, 2\,\text{rank})`
          if :obj:`rank` is set, to :meth:`forward`
        - **output:** :meth:`project`: :math:`(N, 2 d_{in})` or
          :math:`(N, 2\,\text{rank})`; :meth:`forward`:
          :math:`\boldsymbol{\gamma}` and :math:`\boldsymbol{\beta}`,
          each :math:`(N, d_{in})`
    """
    def __init__(self, channels: int, rank: Optional[int] = None,
                 negative_slope: float = 0.2, init: str = 'glorot'):
        super().__init__()
        self.init = _check_init(self.__class__.__name__, init)
        check_positive_int(self.__class__.__name__, channels=channels)
        if rank is not None:
            check_positive_int(self.__class__.__name__, rank=rank)
        self.channels = channels
        self.rank = rank
        self.negative_slope = negative_slope
        inner = channels if rank is None else rank
        # gamma's and beta's projections stacked: one product, not two.
        self.proj = torch.nn.Parameter(torch.empty(channels, 2 * inner))
        if rank is None:
            self.register_parameter('expand', None)
        else:
            self.expand = torch.nn.Parameter(torch.empty(2, rank, channels))
        self.reset_parameters()

    def reset_parameters(self):
        init_localization(self.proj, self.init, self.proj.size(0))
        if self.expand is not None:
            init_localization(self.expand, self.init, self.expand.size(1))

    def project(self, x: Features) -> Tensor:
        """The linear part applied before aggregation,
        :math:`(N, 2 \\cdot \\text{inner})`."""
        return feature_matmul(x, self.proj)

    def forward(self, projected_context: Tensor) -> Tuple[Tensor, Tensor]:
        """Maps the aggregated :meth:`project` output to
        :math:`(\\boldsymbol{\\gamma}, \\boldsymbol{\\beta})`, each
        :math:`(N, d_{in})`."""
        z = projected_context.view(-1, 2, projected_context.size(-1) // 2)
        if self.expand is not None:
            # [N, 2, r] x [2, r, d] -> [N, 2, d]: gamma's and beta's
            # expansions in one batched product.
            z = torch.einsum('nkr,krd->nkd', z, self.expand)
        z = F.leaky_relu(z, self.negative_slope)
        return z[:, 0] + 1, z[:, 1]

    def at(self, projected_context: Tensor, flat_index: Tensor,
           block_size: Optional[int] = None,
           reg_index: Optional[Tensor] = None,
           regularize: bool = True) -> Tuple[Tensor, Tensor]:
        r"""The scales at given entries only, with the regularizer.

        Args:
            projected_context (torch.Tensor): Aggregated :meth:`project`
                output.
            flat_index (torch.Tensor): Entries :math:`v \cdot d_{in} + k`,
                sorted.
            block_size (int, optional): Rows per block of the low-rank
                product. (default: :obj:`None`, :func:`scale_block_rows`
                for the device: cache-sized on CPU, one large block on
                accelerators)
            reg_index (torch.Tensor, optional): The nodes whose scales the
                regularizer averages. (default: :obj:`None`, all nodes)
            regularize (bool, optional): If :obj:`False`, the regularizer
                is not computed (returned as zero). (default: :obj:`True`)

        Returns:
            (torch.Tensor, torch.Tensor): :math:`(\gamma_{v,k} - 1,
            \beta_{v,k})` stacked as :math:`(P, 2)`, and
            :func:`localization_regularizer` over the :math:`(|S|, d_{in})`
            scales of the nodes :math:`S` in :obj:`reg_index`.
        """
        z = projected_context.view(-1, 2, projected_context.size(-1) // 2)
        slope = self.negative_slope
        if self.expand is None:
            z = F.leaky_relu(z, slope)
            reg = z.new_zeros(())
            if regularize:
                scoped = (z if reg_index is None else
                          z.index_select(0, reg_index))
                reg = scoped.pow(2).mean(dim=(0, 2)).sum()
            return z.transpose(0, 1).reshape(2, -1)[:, flat_index].t(), reg
        reg_rows = None
        if not regularize or reg_index is not None:
            reg_rows = torch.zeros(z.size(0), dtype=torch.bool,
                                   device=z.device)
            if regularize:
                reg_rows[reg_index] = True
        if block_size is None:
            block_size = scale_block_rows(self.expand.size(-1), z.device)
        return apply_autocast(_LowRankScales, z.contiguous(), self.expand,
                              flat_index, slope, block_size, reg_rows,
                              dtype=torch.float32)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'rank={self.rank})')


class EdgeLocalization(torch.nn.Module):
    r"""Edge-level localization of messages, from the `"Node-wise
    Localization of Graph Neural Networks"
    <https://arxiv.org/abs/2110.14322>`_ paper,

    .. math::
        \boldsymbol{\gamma}_{vu} = \mathrm{LeakyReLU}(\mathbf{h}_v
        \mathbf{M}_c^{\gamma} + \mathbf{h}_u \mathbf{M}_n^{\gamma}) + 1,
        \qquad
        \boldsymbol{\beta}_{vu} = \mathrm{LeakyReLU}(\mathbf{h}_v
        \mathbf{M}_c^{\beta} + \mathbf{h}_u \mathbf{M}_n^{\beta}),

    for the edge :math:`u \to v`, each of size :math:`d_{out}`. The products
    are formed per node and gathered per edge.

    Args:
        in_channels (int): Node feature width :math:`d_{in}`.
        out_channels (int): Message width :math:`d_{out}`.
        negative_slope (float, optional): LeakyReLU slope.
            (default: :obj:`0.2`)
        init (str, optional): Initialization of :math:`\mathbf{M}_c,
            \mathbf{M}_n`, :obj:`"glorot"` or :obj:`"he"` (see
            :class:`NodeLocalization`). (default: :obj:`"glorot"`)

    Shapes:
        - **input:** node features :math:`(N, d_{in})` (dense, sparse COO or
          :class:`FeatureNonzeros`), source and target node of every edge
          :math:`(|\mathcal{E}|)` each
        - **output:** :math:`\boldsymbol{\gamma}` and
          :math:`\boldsymbol{\beta}`, each :math:`(|\mathcal{E}|, d_{out})`
    """
    def __init__(self, in_channels: int, out_channels: int,
                 negative_slope: float = 0.2, init: str = 'glorot'):
        super().__init__()
        self.init = _check_init(self.__class__.__name__, init)
        check_positive_int(self.__class__.__name__, in_channels=in_channels,
                           out_channels=out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.negative_slope = negative_slope
        # Columns: [gamma | beta] for the centre (c) and neighbour (n) sides.
        self.center = torch.nn.Parameter(torch.empty(in_channels,
                                                     2 * out_channels))
        self.neighbor = torch.nn.Parameter(torch.empty(in_channels,
                                                       2 * out_channels))
        self.reset_parameters()

    def reset_parameters(self):
        for weight in (self.center, self.neighbor):
            init_localization(weight, self.init, self.in_channels)

    def forward(self, x: Features, src: Tensor,
                dst: Tensor) -> Tuple[Tensor, Tensor]:
        r"""Returns :math:`(\boldsymbol{\gamma}, \boldsymbol{\beta})`,
        each :math:`(E, d_{out})`.

        Args:
            x (torch.Tensor or FeatureNonzeros): Node features
                :math:`(N, d_{in})`: dense, sparse COO, or their non-zeros.
            src (torch.Tensor): Source node :math:`u` of each edge
                :math:`(E,)`.
            dst (torch.Tensor): Target node :math:`v` of each edge
                :math:`(E,)`.
        """
        # One product for both sides: half the (sparse) products, forward
        # and backward.
        both = feature_matmul(x, torch.cat([self.center, self.neighbor], 1))
        center, neighbor = both.split(self.center.size(1), dim=-1)
        z = center.index_select(0, dst) + neighbor.index_select(0, src)
        z = F.leaky_relu(z, self.negative_slope)
        gamma, beta = z.chunk(2, dim=-1)
        return gamma + 1, beta

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels})')
