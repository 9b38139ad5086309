from typing import Optional, Sequence

import torch
from torch import Tensor

from torch_geometric.nn import MLP
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_sparse

from pyg_hyper.nn.dense.ign import Equivariant2to2, diag_offdiag_pool
from pyg_hyper.nn.dense.ign_input import to_dense_ign_input
from pyg_hyper.nn.inits import glorot_linear_
from pyg_hyper.utils.checks import (
    check_dense_input,
    is_tracing,
    parameter_dtype,
    sparse_adjacency_edges,
)

POOLS = ('max', 'sum', 'mean')


class IGN(torch.nn.Module):
    r"""The invariant graph network for graph classification from the
    `"Invariant and Equivariant Graph Networks"
    <https://arxiv.org/abs/1812.09902>`_ paper.

    The input is the tensor :math:`[B, 1 + C, m, m]` of
    :func:`~pyg_hyper.nn.dense.to_dense_ign_input` (adjacency plus
    node labels on the diagonal), followed by a stack of
    :class:`~pyg_hyper.nn.dense.Equivariant2to2` layers with ReLU, pooling of
    the diagonal and off-diagonal entries per channel
    (:func:`~pyg_hyper.nn.dense.diag_offdiag_pool`) and an MLP, as in the
    official :obj:`invariant_basic` model:

    .. math::
        \mathbf{X}^{(0)} &= \big[\hat{\mathbf{A}},
            \mathrm{diag}(\mathbf{x}_{:,1}), \dots,
            \mathrm{diag}(\mathbf{x}_{:,C})\big]

        \mathbf{X}^{(l)} &= \mathrm{ReLU}\big(L_l(\mathbf{X}^{(l-1)})\big),
            \qquad l = 1, \dots, L

        \hat{\mathbf{y}} &= \mathrm{MLP}\Big(\big[\mathrm{pool}_{i}\,
            X^{(L)}_{d,ii}\big]_{d} \,\Vert\,
            \big[\mathrm{pool}_{i \neq j}\, X^{(L)}_{d,ij}\big]_{d}\Big),

    with :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2}\mathbf{A}
    \mathbf{D}^{-1/2}` (or :math:`\mathbf{A}` with
    :obj:`normalize_adj=False`), :math:`L_l` the
    :class:`~pyg_hyper.nn.dense.Equivariant2to2` layers and
    :math:`\mathrm{pool}` the max (or sum, mean) over each graph's valid
    entries.

    Differences from the official code, and why:

    * The adjacency sits in channel 0 only; the official code adds the
      normalized adjacency to *every* channel, which the first linear layer
      can express anyway (it only re-parametrizes its coefficients).
    * Graphs of different sizes share a batch through padding and a node
      mask (the official code batches equally sized graphs only); the
      normalization uses each graph's own size, so the results are the same.

    Args:
        in_channels (int): Number of node label channels :math:`C`
            (:obj:`0` for unlabeled graphs).
        hidden_channels (List[int]): Widths of the equivariant layers.
            (official: :obj:`[16, 32, 256]`)
        out_channels (int): Number of outputs per graph.
        mlp_channels (List[int], optional): Hidden widths of the final MLP.
            (default: :obj:`[512, 256]`)
        pool (str, optional): :obj:`"max"` (official), :obj:`"sum"` or
            :obj:`"mean"`. (default: :obj:`"max"`)
        normalize_adj (bool, optional): Use
            :math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` as in the
            official code. (default: :obj:`True`)
        dropout (float, optional): Dropout in the MLP. (default: :obj:`0.`)
        max_dense_bytes (int, optional): Raise (or warn) before a batch
            whose widest dense activation exceeds this many bytes.
            (default: :obj:`2**30`)
        on_exceed (str, optional): :obj:`"raise"` or :obj:`"warn"`.
            (default: :obj:`"raise"`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, C)` *(or None)*,
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse (transposed)
          adjacency :math:`(|\mathcal{V}|, |\mathcal{V}|)`, batch vector
          :math:`(|\mathcal{V}|)` *(optional)*, :obj:`num_nodes`
          *(needed when both the features and the batch vector are None)*
        - **output:** graph outputs :math:`(|\mathcal{G}|, F_{out})`
    """
    def __init__(
        self,
        in_channels: int,
        hidden_channels: Sequence[int],
        out_channels: int,
        mlp_channels: Sequence[int] = (512, 256),
        pool: str = 'max',
        normalize_adj: bool = True,
        dropout: float = 0.,
        max_dense_bytes: Optional[int] = 2**30,
        on_exceed: str = 'raise',
    ):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"Unknown pooling '{pool}' (expected one of "
                             f"{list(POOLS)})")
        hidden_channels = list(hidden_channels)
        if len(hidden_channels) < 1:
            raise ValueError("'hidden_channels' needs at least one width")
        if on_exceed not in ('raise', 'warn'):
            raise ValueError(f"Unknown 'on_exceed' value '{on_exceed}' "
                             f"(expected 'raise' or 'warn')")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.pool = pool
        self.normalize_adj = normalize_adj
        self.max_dense_bytes = max_dense_bytes
        self.on_exceed = on_exceed
        widths = [in_channels + 1] + hidden_channels
        self.layers = torch.nn.ModuleList([
            self.make_layer(c_in, c_out)
            for c_in, c_out in zip(widths[:-1], widths[1:])
        ])
        self.mlp = MLP([2 * hidden_channels[-1]] + list(mlp_channels) +
                       [out_channels], act='relu', norm=None,
                       dropout=dropout)
        self.reset_parameters()

    def make_layer(self, in_channels: int, out_channels: int):
        return Equivariant2to2(in_channels, out_channels)

    def reset_parameters(self):
        for layer in self.layers:
            layer.reset_parameters()
        # The official head's fully_connected layers: Xavier weights, zero
        # biases.
        for lin in self.mlp.lins:
            glorot_linear_(lin)

    def embed_dense(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        r"""Runs the equivariant stack on :obj:`[B, 1 + C, m, m]`."""
        for layer in self.layers:
            x = layer(x, mask).relu()
        return x

    def forward_dense(self, x: Tensor,
                      mask: Optional[Tensor] = None) -> Tensor:
        r"""Runs the model on a dense input :obj:`[B, 1 + C, m, m]` with an
        optional node mask :obj:`[B, m]`."""
        check_dense_input(self.__class__.__name__, x, mask,
                          self.in_channels + 1)
        x = self.embed_dense(x, mask)
        return self.mlp(diag_offdiag_pool(x, mask, self.pool))

    def forward(self, x: Optional[Tensor], edge_index: Tensor,
                batch: Optional[Tensor] = None,
                batch_size: Optional[int] = None,
                num_nodes: Optional[int] = None) -> Tensor:
        if (x is None) != (self.in_channels == 0) or (
                x is not None and x.size(-1) != self.in_channels):
            got = None if x is None else list(x.shape)
            raise ValueError(f"'{self.__class__.__name__}' expected node "
                             f"features of shape [num_nodes, "
                             f"{self.in_channels}] (None if in_channels=0), "
                             f"got {got}")
        if isinstance(edge_index, SparseTensor) or is_sparse(edge_index):
            # The dense input is built from its pattern, as from an
            # edge_index.
            edge_index = sparse_adjacency_edges(edge_index)[0]
        dense, mask = to_dense_ign_input(
            x, edge_index, batch, batch_size, normalize=self.normalize_adj,
            max_dense_bytes=self.max_dense_bytes,
            max_channels=max([self.in_channels + 1] + self.hidden_channels),
            on_exceed=self.on_exceed, dtype=parameter_dtype(self),
            num_nodes=num_nodes)
        if not is_tracing() and bool(mask.all()):
            # Graphs of one size (e.g. the official code's batching): no
            # padding, so skip the masking passes over every tensor.
            mask = None
        return self.forward_dense(dense, mask)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.hidden_channels}, {self.out_channels}, '
                f'pool={self.pool})')
