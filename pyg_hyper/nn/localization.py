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
features are sparse (bag-of-words inputs), so the cost is that of one sparse
product instead of :math:`|\mathcal{E}| \cdot d_{in} \cdot d_{out}`.

Why not :class:`~pyg_hyper.nn.HyperLinear`: :math:`\mathbf{W}_v` is affine in
:math:`(\boldsymbol{\gamma}_v, \boldsymbol{\beta}_v)` but its code has
:math:`2 d_{in}` entries; the generic outer-product form would cost
:math:`O(d_{in}^2)` per row, while the diagonal structure here costs
:math:`O(d_{in})`.
"""
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.nn.inits import glorot
from pyg_hyper.utils.checks import is_tracing

__all__ = [
    'FeatureNonzeros',
    'feature_nonzeros',
    'feature_matmul',
    'NodeLocalization',
    'EdgeLocalization',
    'localized_edge_transform',
    'sparse_edge_transform',
    'materialize_localized_weight',
    'localization_regularizer',
]

#: Inputs with at most this fraction of non-zeros use the sparse path of
#: :func:`localized_edge_transform` (Cora's features have 1.3%).
SPARSE_DENSITY = 0.1


def localization_regularizer(gamma: Tensor, beta: Tensor) -> Tensor:
    r""":math:`\mathrm{mean}((\boldsymbol{\gamma}-1)^2) +
    \mathrm{mean}(\boldsymbol{\beta}^2)`: pulls localized weights towards
    the shared ones (the paper adds it with weight :math:`\lambda`)."""
    return (gamma - 1).pow(2).mean() + beta.pow(2).mean()


class FeatureNonzeros(NamedTuple):
    """The non-zero entries of a feature matrix, sorted by row."""
    row: Tensor
    col: Tensor
    val: Tensor  # gathered from x, so x keeps its gradient at these entries
    num_rows: int


def feature_nonzeros(x: Tensor) -> FeatureNonzeros:
    """Lists the non-zeros of a dense or sparse COO feature matrix."""
    if x.is_sparse:
        x = x.coalesce()
        row, col = x.indices()
        return FeatureNonzeros(row, col, x.values(), x.size(0))
    row, col = x.detach().nonzero(as_tuple=True)
    return FeatureNonzeros(row, col, x[row, col], x.size(0))


Features = Union[Tensor, FeatureNonzeros]


def feature_matmul(x: Features, weight: Tensor) -> Tensor:
    """``x @ weight`` for dense features or their :class:`FeatureNonzeros`
    (cost proportional to the non-zeros)."""
    if isinstance(x, Tensor):
        return x @ weight
    out = weight.new_zeros(x.num_rows, weight.size(1))
    return out.index_add(0, x.row, x.val.unsqueeze(-1) * weight[x.col])


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
                             sparse: Optional[bool] = None) -> Tensor:
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

    Returns:
        torch.Tensor: :math:`(E, d_{out})`.
    """
    if isinstance(x, Tensor) and use_sparse_features(x, sparse):
        x = feature_nonzeros(x)
    if gamma is None and beta is None:
        # Plain linear map: transform once per node, then gather per edge.
        return feature_matmul(x, weight)[src]
    if isinstance(x, FeatureNonzeros):
        return sparse_edge_transform(x, _TensorScales(gamma, beta), weight,
                                     src, dst)
    h = x[src]
    out = (h * gamma[dst] if gamma is not None else h) @ weight
    if beta is not None:
        out = out + (h * beta[dst]).sum(-1, keepdim=True)
    return out


class _TensorScales:
    """Looks up given gamma / beta tensors at (node, feature) pairs."""
    def __init__(self, gamma: Optional[Tensor], beta: Optional[Tensor]):
        self.gamma, self.beta = gamma, beta

    def __call__(self, node: Tensor, feat: Tensor):
        return (None if self.gamma is None else self.gamma[node, feat],
                None if self.beta is None else self.beta[node, feat])


def sparse_edge_transform(x: FeatureNonzeros, scales, weight: Tensor,
                          src: Tensor, dst: Tensor) -> Tensor:
    r"""The sparse path of :func:`localized_edge_transform`.

    :obj:`scales(node, feat)` returns :math:`(\gamma, \beta)` (or
    :obj:`None` for either) at the given (target node, feature) pairs, so
    the caller never needs the full :math:`(N, d_{in})` tensors (see
    :meth:`NodeLocalization.at`).
    """
    # Enumerate (edge, feature) pairs where x[src, feature] != 0: the source
    # rows' non-zeros, repeated once per edge leaving that source.
    num_edges = src.numel()
    device = weight.device
    count = torch.bincount(x.row, minlength=x.num_rows)
    rowptr = torch.cumsum(count, 0) - count
    per_edge = count[src]
    edge = torch.repeat_interleave(torch.arange(num_edges, device=device),
                                   per_edge)
    first = torch.cumsum(per_edge, 0) - per_edge
    offset = torch.arange(edge.numel(), device=device) - first[edge]
    pos = rowptr[src][edge] + offset
    feat = x.col[pos]
    val = x.val[pos]
    gamma, beta = scales(dst[edge], feat)
    scaled = val * gamma if gamma is not None else val
    out = weight.new_zeros(num_edges, weight.size(1))
    out = out.index_add(0, edge, scaled.unsqueeze(-1) * weight[feat])
    if beta is not None:
        shift = weight.new_zeros(num_edges).index_add(0, edge, val * beta)
        out = out + shift.unsqueeze(-1)
    return out


class _LowRankLeakyL2(torch.autograd.Function):
    """``mean(leaky_relu(c @ e) ** 2)`` in row chunks, never holding the
    full product (or its gradient) in memory: the product is recomputed
    chunk by chunk in the backward pass."""
    @staticmethod
    def forward(ctx, c, e, slope, chunk):
        total = c.new_zeros(())
        for start in range(0, c.size(0), chunk):
            z = c[start:start + chunk] @ e
            z = torch.where(z > 0, z, z * slope)
            total = total + (z * z).sum()
        ctx.save_for_backward(c, e)
        ctx.slope, ctx.chunk = slope, chunk
        return total / (c.size(0) * e.size(1))

    @staticmethod
    def backward(ctx, grad):
        c, e = ctx.saved_tensors
        scale = 2 * grad / (c.size(0) * e.size(1))
        grad_c = torch.empty_like(c)
        grad_e = torch.zeros_like(e)
        for start in range(0, c.size(0), ctx.chunk):
            cc = c[start:start + ctx.chunk]
            z = cc @ e
            # d/dz leaky(z)^2 = 2 z (1 if z > 0 else slope^2)
            dz = torch.where(z > 0, z, z * (ctx.slope**2)) * scale
            grad_c[start:start + ctx.chunk] = dz @ e.t()
            grad_e += cc.t() @ dz
        return grad_c, grad_e, None, None


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
    r"""Node-level localization parameters from a node's context,

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
    """
    def __init__(self, channels: int, rank: Optional[int] = None,
                 negative_slope: float = 0.2):
        super().__init__()
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
        glorot(self.proj)
        if self.expand is not None:
            glorot(self.expand)

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

    def at(self, projected_context: Tensor, node: Tensor,
           feat: Tensor) -> Tuple[Tensor, Tensor]:
        """:math:`(\\gamma_{v,k}, \\beta_{v,k})` at the given (node,
        feature) pairs only: with a low rank this costs :math:`O(r)` per pair
        instead of building the :math:`(N, d_{in})` tensors."""
        z = projected_context.view(-1, 2, projected_context.size(-1) // 2)
        if self.expand is None:
            z = z[node, :, feat]
        else:
            # z[v, k, f] = sum_r ctx[v, k, r] * expand[k, r, f]
            z = (z[node] * self.expand[:, :, feat].permute(2, 0, 1)).sum(-1)
        z = F.leaky_relu(z, self.negative_slope)
        return z[:, 0] + 1, z[:, 1]

    def regularizer(self, projected_context: Tensor,
                    chunk_size: int = 256) -> Tensor:
        """:func:`localization_regularizer` of :meth:`forward`'s output,
        computed in row chunks without the full tensors when a rank is set."""
        if self.expand is None:
            return localization_regularizer(*self(projected_context))
        z = projected_context.view(-1, 2, projected_context.size(-1) // 2)
        return sum(
            _LowRankLeakyL2.apply(z[:, k].contiguous(), self.expand[k],
                                  self.negative_slope, chunk_size)
            for k in range(2))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'rank={self.rank})')


class EdgeLocalization(torch.nn.Module):
    r"""Edge-level localization of messages,

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
    """
    def __init__(self, in_channels: int, out_channels: int,
                 negative_slope: float = 0.2):
        super().__init__()
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
        glorot(self.center)
        glorot(self.neighbor)

    def forward(self, x: Features, src: Tensor,
                dst: Tensor) -> Tuple[Tensor, Tensor]:
        """Returns :math:`(\\boldsymbol{\\gamma}, \\boldsymbol{\\beta})`,
        each :math:`(E, d_{out})`."""
        z = (feature_matmul(x, self.center)[dst] +
             feature_matmul(x, self.neighbor)[src])
        z = F.leaky_relu(z, self.negative_slope)
        gamma, beta = z.chunk(2, dim=-1)
        return gamma + 1, beta

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels})')
