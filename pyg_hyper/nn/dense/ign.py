r"""Dense invariant graph network (IGN) layers over second-order tensors.

The layers act on a batch of padded second-order tensors
:math:`\mathbf{X} \in \mathbb{R}^{B \times D \times m \times m}` (as built from
:func:`torch_geometric.utils.to_dense_adj` and
:func:`torch_geometric.utils.to_dense_batch`) together with the node mask
:math:`[B, m]` of :func:`~torch_geometric.utils.to_dense_batch`, the same
convention as PyG's dense layers in :mod:`torch_geometric.nn.dense`.

Every normalized basis operation divides by each graph's *own* number of
nodes :math:`n_b` (the official code's :obj:`normalization='inf'`, where
:math:`m` is the node count of a batch of equally sized graphs), so a graph's
output does not depend on how much padding it shares a batch with.
"""
import functools
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.nn import Parameter

from pyg_hyper.utils.checks import check_dense_input, check_positive_int

__all__ = [
    'NUM_BASIS_2_TO_2',
    'NUM_BASIS_2_TO_1',
    'NUM_BASIS_2_TO_0',
    'DenseReductions',
    'dense_reductions',
    'equivariant_basis_2_to_2',
    'coefficient_blocks',
    'coefficient_block_index',
    'coefficient_block_shapes',
    'apply_blocks',
    'apply_equivariant_2_to_2',
    'add_bias_and_mask',
    'mask_padding',
    'diag_offdiag_pool',
    'DenseLayer',
    'Equivariant2to2',
    'Equivariant2to1',
    'Invariant2to0',
]

NUM_BASIS_2_TO_2 = 15
NUM_BASIS_2_TO_1 = 5
NUM_BASIS_2_TO_0 = 2

# The 15 basis operations, numbered 0..14 as ops 1..15 of the official code
# (Haggaim/InvariantGraphNetworks, ``ops_2_to_2``). All of them but the
# identity and the transpose broadcast a diagonal, a row/column sum or a
# scalar, so the channel contraction is done on those reduced quantities
# (O(m) or O(1) per channel) and only X and X^T are contracted at full
# O(m^2) resolution. The index tables say which basis element connects which
# reduced input to which output placement.
#
# Vector inputs, in order: diagonal d, row sums r/n, column sums c/n.
# Vector placements: "row" (out_ij = v_i), "col" (out_ij = v_j), "diag".
_VEC_INDEX = ((11, 12, 0),   # d:   op12 (row), op13 (col), op1 (diag)
              (6, 8, 2),     # r/n: op7, op9, op3
              (5, 7, 3))     # c/n: op6, op8, op4
# Scalar inputs: trace / n, total sum / n^2. Placements: diagonal, all entries.
_SCALAR_INDEX = ((1, 13),    # tr/n:    op2 (diag), op14 (all)
                 (4, 14))    # sum/n^2: op5 (diag), op15 (all)
_FULL_INDEX = (9, 10)        # X (op10), X^T (op11)

# 2-to-1: op1 d, op2 tr/n, op3 r/n, op4 c/n, op5 sum/n^2.
_VEC_INDEX_2_TO_1 = (0, 2, 3)
_SCALAR_INDEX_2_TO_1 = (1, 4)


class DenseReductions(NamedTuple):
    r"""The reduced quantities every basis operation is built from.

    Attributes:
        full: :math:`[\mathbf{X}, \mathbf{X}^\top]` of shape
            :obj:`[B, 2D, m, m]`.
        vec: diagonal, row sums :math:`/n`, column sums :math:`/n`, shape
            :obj:`[B, 3D, m]`.
        scalar: trace :math:`/n`, total sum :math:`/n^2`, shape
            :obj:`[B, 2D]`.
        mask2d: valid entries :obj:`[B, 1, m, m]` (:obj:`None` if unpadded).
        num_nodes: node count :math:`n` of every graph, :obj:`[B]`.
    """
    full: Tensor
    vec: Tensor
    scalar: Tensor
    mask2d: Optional[Tensor]
    num_nodes: Tensor


def _node_counts(x: Tensor, mask: Optional[Tensor]) -> Tensor:
    if mask is None:
        return x.new_full((x.size(0), ), float(x.size(-1)))
    # An all-padding graph would divide by zero; its outputs are masked out.
    return mask.sum(dim=-1).clamp(min=1).to(x.dtype)


def _mask_2d(mask: Optional[Tensor]) -> Optional[Tensor]:
    if mask is None:
        return None
    return (mask.unsqueeze(-1) & mask.unsqueeze(-2)).unsqueeze(1)


def dense_reductions(x: Tensor, mask: Optional[Tensor] = None,
                     with_full: bool = True) -> DenseReductions:
    r"""Computes the diagonal, normalized row/column sums, normalized trace
    and total sum of every channel of :obj:`x` :obj:`[B, D, m, m]`, using
    only the entries inside each graph's mask."""
    mask2d = _mask_2d(mask)
    if mask2d is not None:
        x = x * mask2d
    counts = _node_counts(x, mask)
    n = counts.view(-1, 1, 1)
    diag = x.diagonal(dim1=-2, dim2=-1)
    rows = x.sum(dim=-1) / n
    cols = x.sum(dim=-2) / n
    trace = diag.sum(dim=-1) / n[..., 0]
    total = rows.sum(dim=-1) / n[..., 0]
    full = torch.cat([x, x.transpose(-2, -1)], dim=1) if with_full else x
    return DenseReductions(full, torch.cat([diag, rows, cols], dim=1),
                           torch.cat([trace, total], dim=1), mask2d, counts)


def equivariant_basis_2_to_2(x: Tensor,
                             mask: Optional[Tensor] = None) -> Tensor:
    r"""Stacks the 15 normalized basis operations of the official code.

    This is the direct form of the layer (and what the reference paths
    contract against); the layers themselves never build it.

    Returns:
        torch.Tensor: Basis responses of shape :obj:`[B, D, 15, m, m]`,
        zero outside each graph's mask.
    """
    red = dense_reductions(x, mask)
    D, m = x.size(1), x.size(-1)
    d, r, c = red.vec.split(D, dim=1)
    tr, tot = red.scalar.split(D, dim=1)
    X, Xt = red.full.split(D, dim=1)
    eye = torch.eye(m, dtype=x.dtype, device=x.device)
    ones = torch.ones(m, m, dtype=x.dtype, device=x.device)

    def on_diag(v):
        return torch.diag_embed(v)

    def as_row(v):  # out_ij = v_i
        return v.unsqueeze(-1).expand(-1, -1, m, m)

    def as_col(v):  # out_ij = v_j
        return v.unsqueeze(-2).expand(-1, -1, m, m)

    def scalar(s, pattern):
        return s[..., None, None] * pattern

    ops = [
        on_diag(d), scalar(tr, eye), on_diag(r), on_diag(c), scalar(tot, eye),
        as_row(c), as_row(r), as_col(c), as_col(r), X, Xt, as_row(d),
        as_col(d), scalar(tr, ones), scalar(tot, ones)
    ]
    out = torch.stack(ops, dim=2)
    if red.mask2d is not None:
        out = out * red.mask2d.unsqueeze(2)
    return out


#: (basis table, input groups, output placements) of the three blocks of
#: :func:`coefficient_blocks`: full, vector, scalar.
_BLOCKS = ((_FULL_INDEX, 2, 1), (_VEC_INDEX, 3, 3), (_SCALAR_INDEX, 2, 2))


def coefficient_blocks(weight: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Rearranges coefficients :obj:`[*, D, S, 15]` into the matrices that
    act on :class:`DenseReductions`: full :obj:`[*, 2D, S]`, vector
    :obj:`[*, 3D, 3S]` (row | col | diag placements) and scalar
    :obj:`[*, 2D, 2S]` (diag | all placements)."""
    lead = weight.shape[:-3]
    D, S = weight.shape[-3], weight.shape[-2]
    flat = weight.flatten(-3)
    # One gather per block into its transposed (output-major) layout; the
    # contraction reads the transpose without a copy.
    full, vec, scalar = (
        flat.index_select(-1, index.to(weight.device)).view(
            lead + shape).transpose(-1, -2)
        for index, shape in zip(_cached_block_index(D, S),
                                coefficient_block_shapes(D, S)))
    return full, vec, scalar


def coefficient_block_shapes(in_channels: int, out_channels: int
                             ) -> List[Tuple[int, int]]:
    """The transposed shapes :obj:`(S', K)` of :func:`coefficient_blocks`'
    three matrices: full, vector and scalar."""
    return [(n_out * out_channels, n_in * in_channels)
            for _, n_in, n_out in _BLOCKS]


def coefficient_block_index(in_channels: int, out_channels: int
                            ) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Where the entries of :func:`coefficient_blocks`' three matrices sit
    in flattened coefficients :obj:`[D, S, 15]`, listed output-major (the
    transposed blocks :obj:`[S', K]`, as :func:`torch.bmm` consumes them):
    :obj:`coefficients.flatten(-3)[..., index].view(*, S', K)` is the
    transpose of a block. Lets per-graph coefficients be generated straight
    into that layout with one gather."""
    # Built outside inference mode: the lru cache below would otherwise keep
    # inference tensors, which every later training step refuses to save
    # for backward (e.g. after Lightning's sanity-check validation).
    with torch.inference_mode(False):
        return _block_index(in_channels, out_channels)


def _block_index(D: int, S: int) -> Tuple[Tensor, Tensor, Tensor]:
    d = torch.arange(D).view(1, 1, 1, D)
    s = torch.arange(S).view(1, S, 1, 1)
    indices = []
    for table, n_in, n_out in _BLOCKS:
        basis = torch.tensor(table).view(n_in, n_out).t().reshape(
            n_out, 1, n_in, 1)
        # Entry (o * S + s, i * D + d) is coefficient (d, s, basis[i][o]).
        indices.append(((d * S + s) * NUM_BASIS_2_TO_2 + basis).reshape(-1))
    return tuple(indices)


#: Every layer asks for the same few index sets on every call.
_cached_block_index = functools.lru_cache(maxsize=64)(coefficient_block_index)


def _contract(q: Tensor, w: Tensor) -> Tensor:
    # q: [B, K, ...], w: [K, S] (shared) or [B, K, S] (one per graph).
    q2 = q.flatten(2)
    # An explicit batched product: torch.matmul of a matrix with a batch
    # folds the batch into the rows, which copies q and the result
    # (transposed) and cost more than the product itself.
    w = w.t().expand(q.size(0), -1, -1) if w.dim() == 2 else w.transpose(1, 2)
    out = torch.bmm(w, q2)
    return out.view(q.shape[:1] + out.shape[1:2] + q.shape[2:])


def _add_to_diagonal(out: Tensor, values: Tensor) -> Tensor:
    # In place on the diagonal view: one pass over [B, S, m] instead of
    # building diag_embed's [B, S, m, m] and adding it (out must be a fresh
    # tensor whose producer does not need it for its backward pass).
    out.diagonal(dim1=-2, dim2=-1).add_(values)
    return out


def _place(full: Tensor, vec: Tensor, scalar: Tensor, S: int,
           all_bias: Optional[Tensor] = None,
           diag_bias: Optional[Tensor] = None) -> Tensor:
    # full [B, S, m, m], vec [B, 3S, m], scalar [B, 2S] -> [B, S, m, m].
    # Everything constant along a row, a column or the diagonal (biases
    # included) is summed at O(m) size first: two passes over the output.
    row, col, diag = vec.split(S, dim=1)
    on_diag, on_all = scalar.split(S, dim=1)
    col = col + on_all.unsqueeze(-1)
    diag = diag + on_diag.unsqueeze(-1)
    if all_bias is not None:
        col = col + all_bias.view(1, -1, 1)
    if diag_bias is not None:
        diag = diag + diag_bias.view(1, -1, 1)
    out = full + row.unsqueeze(-1)
    out += col.unsqueeze(-2)
    return _add_to_diagonal(out, diag)


def apply_blocks(red: DenseReductions, blocks: Sequence[Tensor],
                 out_channels: int, all_bias: Optional[Tensor] = None,
                 diag_bias: Optional[Tensor] = None) -> Tensor:
    r"""Contracts the reduced quantities with coefficient blocks as returned
    by :func:`coefficient_blocks`, shared (:obj:`[K, S']`) or one per graph
    (:obj:`[B, K, S']`), and adds the optional all-entries and diagonal
    biases :obj:`[S]`.

    Returns:
        torch.Tensor: :obj:`[B, S, m, m]`, not masked.
    """
    w_full, w_vec, w_scalar = blocks
    return _place(_contract(red.full, w_full), _contract(red.vec, w_vec),
                  _contract(red.scalar.unsqueeze(-1), w_scalar).squeeze(-1),
                  out_channels, all_bias, diag_bias)


def apply_equivariant_2_to_2(red: DenseReductions, weight: Tensor,
                             all_bias: Optional[Tensor] = None,
                             diag_bias: Optional[Tensor] = None) -> Tensor:
    r"""Contracts the basis with coefficients :obj:`[D, S, 15]` (shared) or
    :obj:`[B, D, S, 15]` (one set per graph), working on the reduced
    quantities: :math:`\mathcal{O}(m^2 D S)` for the identity and transpose
    terms and :math:`\mathcal{O}(m D S)` for the other 13, and adds the
    optional biases :obj:`[S]`.

    Returns:
        torch.Tensor: :obj:`[B, S, m, m]`, not masked.
    """
    return apply_blocks(red, coefficient_blocks(weight), weight.size(-2),
                        all_bias, diag_bias)


def mask_padding(out: Tensor, mask2d: Optional[Tensor]) -> Tensor:
    """Zeroes the padding of :obj:`out` :obj:`[B, S, m, m]`, so that the next
    layer's sums only see each graph's own entries."""
    return out if mask2d is None else out * mask2d


def add_bias_and_mask(out: Tensor, all_bias: Optional[Tensor],
                      diag_bias: Optional[Tensor],
                      mask2d: Optional[Tensor]) -> Tensor:
    r"""Adds the all-entries and diagonal biases :obj:`[S]` to :obj:`out`
    :obj:`[B, S, m, m]` and zeroes the padding (for outputs computed
    without :func:`apply_blocks`' biases, e.g. from the explicit basis)."""
    out = out + (0 if all_bias is None else all_bias.view(1, -1, 1, 1))
    if diag_bias is not None:
        out = _add_to_diagonal(out, diag_bias.view(1, -1, 1))
    return mask_padding(out, mask2d)


def diag_offdiag_pool(x: Tensor, mask: Optional[Tensor] = None,
                      reduce: str = 'max') -> Tensor:
    r"""Pools the diagonal and the off-diagonal entries of every channel
    separately (the official :obj:`diag_offdiag_maxpool`, plus sum/mean).

    Only entries inside each graph's mask take part; a graph with a single
    node has no off-diagonal entries and gets :obj:`0` there.

    Args:
        x (torch.Tensor): :obj:`[B, D, m, m]`.
        mask (torch.Tensor, optional): Node mask :obj:`[B, m]`.
        reduce (str, optional): :obj:`"max"`, :obj:`"sum"` or :obj:`"mean"`.
            (default: :obj:`"max"`)

    Returns:
        torch.Tensor: :obj:`[B, 2D]`, diagonal features first.
    """
    if reduce not in ('max', 'sum', 'mean'):
        raise ValueError(f"Unknown reduction '{reduce}' in "
                         f"'diag_offdiag_pool' (expected 'max', 'sum' or "
                         f"'mean')")
    B, _, m, _ = x.shape
    eye = torch.eye(m, dtype=torch.bool, device=x.device)
    valid = torch.ones(B, 1, m, m, dtype=torch.bool, device=x.device)
    if mask is not None:
        valid = _mask_2d(mask)
    on_diag = valid & eye
    off_diag = valid & ~eye
    if reduce == 'max':
        # max with indices, not amax: amax's backward spreads the gradient
        # over ties with several full-size passes (a comparison, two dtype
        # casts, a count), max's scatters it to one entry per channel. After
        # a ReLU the only common ties are zeros, whose gradient the ReLU
        # drops either way.
        low = torch.finfo(x.dtype).min
        diag = x.diagonal(dim1=-2, dim2=-1)
        d = diag.masked_fill(~on_diag.diagonal(dim1=-2, dim2=-1),
                             low).max(dim=-1).values
        o = x.masked_fill(~off_diag, low).flatten(-2).max(dim=-1).values
        # No entry of that kind (e.g. a single-node graph): report 0.
        d = torch.where(on_diag.any(dim=(-2, -1)), d, d.new_zeros(()))
        o = torch.where(off_diag.any(dim=(-2, -1)), o, o.new_zeros(()))
        return torch.cat([d, o], dim=1)
    d = (x * on_diag).sum(dim=(-2, -1))
    o = (x * off_diag).sum(dim=(-2, -1))
    if reduce == 'mean':
        d = d / on_diag.sum(dim=(-2, -1)).clamp(min=1)
        o = o / off_diag.sum(dim=(-2, -1)).clamp(min=1)
    return torch.cat([d, o], dim=1)


def init_coefficients(weight: Tensor, in_channels: int, out_channels: int,
                       fan: int = 1):
    # Official initialization N(0, 2 / (D + S)); `fan` spreads the variance
    # over the terms that are summed into one generated coefficient.
    std = math.sqrt(2.0 / (in_channels + out_channels) / fan)
    with torch.no_grad():
        weight.normal_(0.0, std)


class DenseLayer(torch.nn.Module):
    r"""What the dense layers share: channel sizes, optional zero-initialized
    bias vectors of size :obj:`out_channels` and a PyG-style
    :obj:`__repr__`."""
    def __init__(self, in_channels: int, out_channels: int,
                 bias_names: Sequence[str] = (), bias: bool = True):
        super().__init__()
        check_positive_int(self.__class__.__name__, in_channels=in_channels,
                           out_channels=out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self._bias_names = tuple(bias_names)
        for name in self._bias_names:
            self.register_parameter(
                name, Parameter(torch.empty(out_channels)) if bias else None)

    def reset_biases(self):
        for name in self._bias_names:
            if getattr(self, name) is not None:
                getattr(self, name).data.zero_()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels})')


class _BasisLayer(DenseLayer):
    # A dense layer with one coefficient per (input channel, output channel,
    # basis element), initialized as in the official code.
    def __init__(self, in_channels: int, out_channels: int, num_basis: int,
                 bias_names: Sequence[str], bias: bool):
        super().__init__(in_channels, out_channels, bias_names, bias)
        self.weight = Parameter(
            torch.empty(in_channels, out_channels, num_basis))
        self.reset_parameters()

    def reset_parameters(self):
        init_coefficients(self.weight, self.in_channels, self.out_channels)
        self.reset_biases()


class Equivariant2to2(_BasisLayer):
    r"""The permutation-equivariant linear layer from second-order to
    second-order tensors, from the `"Invariant and Equivariant Graph
    Networks" <https://arxiv.org/abs/1812.09902>`_ paper.

    .. math::
        \mathbf{Y}_{s} = \sum_{d=1}^{D} \sum_{b=1}^{15} w_{d,s,b}\,
        L_b(\mathbf{X}_{d}) + \beta_s \mathbf{1}\mathbf{1}^\top
        + \gamma_s \mathbf{I},

    where :math:`L_1, \dots, L_{15}` span all linear equivariant maps
    :math:`\mathbb{R}^{n \times n} \to \mathbb{R}^{n \times n}` (in the
    official code's order, with its normalization: sums over one index are
    divided by :math:`n`, sums over two by :math:`n^2`), :math:`\beta` is the
    all-entries bias and :math:`\gamma` the diagonal bias.

    The contraction is done on the diagonals, row/column sums and scalars
    the basis operations broadcast, so only the identity and transpose
    terms cost :math:`\mathcal{O}(n^2 D S)`; the 15 responses are never
    stacked.

    Args:
        in_channels (int): Number of input channels :math:`D`.
        out_channels (int): Number of output channels :math:`S`.
        bias (bool, optional): If set to :obj:`False`, no all-entries and
            diagonal biases. (default: :obj:`True`)

    Shapes:
        - **input:** tensors :math:`(B, D, m, m)`, node mask :math:`(B, m)`
          *(optional)*
        - **output:** tensors :math:`(B, S, m, m)`, zero outside the mask
    """
    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, NUM_BASIS_2_TO_2,
                         ('all_bias', 'diag_bias'), bias)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        r"""Applies the layer.

        Args:
            x (torch.Tensor): Second-order tensors :obj:`[B, D, m, m]`.
            mask (torch.BoolTensor, optional): Node mask :obj:`[B, m]` from
                :func:`~torch_geometric.utils.to_dense_batch`; entries outside
                it are ignored and set to zero in the output.
                (default: :obj:`None`)
        """
        check_dense_input(self.__class__.__name__, x, mask, self.in_channels,
                          next(self.parameters()).dtype)
        red = dense_reductions(x, mask)
        return mask_padding(
            apply_equivariant_2_to_2(red, self.weight, self.all_bias,
                                     self.diag_bias), red.mask2d)


class Equivariant2to1(_BasisLayer):
    r"""The permutation-equivariant linear reduction from second-order
    tensors to node features, from the `"Invariant and Equivariant Graph
    Networks" <https://arxiv.org/abs/1812.09902>`_ paper.

    .. math::
        \mathbf{y}_{s} = \sum_{d, b} w_{d,s,b}\, L_b(\mathbf{X}_{d})
        + \beta_s \mathbf{1},

    over the 5 basis operations of the official code: the diagonal, the
    trace :math:`/n`, the row sums :math:`/n`, the column sums :math:`/n` and
    the total sum :math:`/n^2`.

    Args:
        in_channels (int): Number of input channels :math:`D`.
        out_channels (int): Number of output channels :math:`S`.
        bias (bool, optional): Learn the bias :math:`\beta`.
            (default: :obj:`True`)

    Shapes:
        - **input:** tensors :math:`(B, D, m, m)`, node mask :math:`(B, m)`
          *(optional)*
        - **output:** node features :math:`(B, S, m)`, zero outside the mask
    """
    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, NUM_BASIS_2_TO_1,
                         ('bias', ), bias)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        r"""Applies the layer.

        Args:
            x (torch.Tensor): Second-order tensors :obj:`[B, D, m, m]`.
            mask (torch.BoolTensor, optional): Node mask :obj:`[B, m]` from
                :func:`~torch_geometric.utils.to_dense_batch`; entries outside
                it are ignored and the output is set to zero at padding
                nodes. (default: :obj:`None`)

        Returns:
            torch.Tensor: Node features :obj:`[B, S, m]`.
        """
        check_dense_input(self.__class__.__name__, x, mask, self.in_channels,
                          next(self.parameters()).dtype)
        red = dense_reductions(x, mask, with_full=False)
        D, S = self.in_channels, self.out_channels
        w_vec = self.weight[..., list(_VEC_INDEX_2_TO_1)].permute(2, 0, 1)
        w_scalar = self.weight[..., list(_SCALAR_INDEX_2_TO_1)]
        w_scalar = w_scalar.permute(2, 0, 1)
        out = _contract(red.vec, w_vec.reshape(3 * D, S))
        out = out + (red.scalar @ w_scalar.reshape(2 * D, S)).unsqueeze(-1)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1)
        return out if mask is None else out * mask.unsqueeze(1)


class Invariant2to0(DenseLayer):
    r"""The permutation-invariant linear reduction from second-order tensors
    to graph features, from the `"Invariant and Equivariant Graph Networks"
    <https://arxiv.org/abs/1812.09902>`_ paper.

    .. math::
        \mathbf{y} = \mathbf{W}_1 \frac{\mathrm{tr}(\mathbf{X})}{n}
        + \mathbf{W}_2 \frac{\mathbf{1}^\top\mathbf{X}\mathbf{1}}{n^2}
        + \boldsymbol{\beta},

    the 2-element basis of invariant linear maps (trace and total sum,
    normalized as in the official code), taken per channel and mixed
    across channels by :math:`\mathbf{W}_1, \mathbf{W}_2 \in
    \mathbb{R}^{S \times D}`.

    Args:
        in_channels (int): Number of input channels :math:`D`.
        out_channels (int): Number of output channels :math:`S`.
        bias (bool, optional): Learn the bias :math:`\beta`.
            (default: :obj:`True`)

    Shapes:
        - **input:** tensors :math:`(B, D, m, m)`, node mask :math:`(B, m)`
          *(optional)*
        - **output:** graph features :math:`(B, S)`
    """
    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels)
        self.lin = torch.nn.Linear(NUM_BASIS_2_TO_0 * in_channels,
                                   out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self):
        # As its siblings: the official N(0, 2 / (D + S)) and a zero bias
        # (nn.Linear's default would be a Kaiming weight and a random bias).
        init_coefficients(self.lin.weight, self.in_channels,
                          self.out_channels)
        if self.lin.bias is not None:
            torch.nn.init.zeros_(self.lin.bias)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        r"""Applies the layer.

        Args:
            x (torch.Tensor): Second-order tensors :obj:`[B, D, m, m]`.
            mask (torch.BoolTensor, optional): Node mask :obj:`[B, m]` from
                :func:`~torch_geometric.utils.to_dense_batch`; entries outside
                it are ignored, and the trace and total sum are divided by
                each graph's own node count. (default: :obj:`None`)

        Returns:
            torch.Tensor: Graph features :obj:`[B, S]`.
        """
        check_dense_input(self.__class__.__name__, x, mask, self.in_channels,
                          next(self.parameters()).dtype)
        return self.lin(dense_reductions(x, mask, with_full=False).scalar)
