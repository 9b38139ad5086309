r"""Builds the dense IGN input tensor from a PyG mini-batch."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric.utils import scatter, to_dense_adj, to_dense_batch

from pyg_hyper.utils.checks import (
    check_batch,
    check_dense_size,
    check_edge_index,
    check_edges_within_graphs,
    is_tracing,
)

__all__ = ['to_dense_ign_input']


def to_dense_ign_input(
    x: Optional[Tensor],
    edge_index: Tensor,
    batch: Optional[Tensor] = None,
    batch_size: Optional[int] = None,
    normalize: bool = False,
    max_dense_bytes: Optional[int] = None,
    max_channels: Optional[int] = None,
    on_exceed: str = 'raise',
    dtype: Optional[torch.dtype] = None,
    num_nodes: Optional[int] = None,
) -> Tuple[Tensor, Tensor]:
    r"""Turns node features and edges into the IGN input
    :math:`[B, 1 + C, m, m]`: channel 0 holds the adjacency (optionally
    :math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` as in the official
    IGN code), channels :math:`1..C` hold the node features on the diagonal.

    Args:
        x (torch.Tensor, optional): Node features :obj:`[N, C]` (e.g. one-hot
            labels); :obj:`None` for unlabeled graphs (:math:`C = 0`).
        edge_index (torch.Tensor): Edge indices :obj:`[2, E]`.
        batch (torch.Tensor, optional): Batch vector :obj:`[N]`.
        batch_size (int, optional): Number of graphs.
        normalize (bool, optional): Symmetrically normalize the adjacency,
            :math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` with the
            in-degrees (column sums) as :math:`\mathbf{D}`, as the official
            code. (default: :obj:`False`)
        max_dense_bytes (int, optional): Refuse (or warn about, see
            :obj:`on_exceed`) a batch whose widest dense activation
            :obj:`[B, max_channels, m, m]` would exceed this many bytes.
            Checked before anything is allocated. (default: :obj:`None`)
        max_channels (int, optional): Widest channel count the model will
            build from this input. (default: :obj:`1 + C`)
        on_exceed (str, optional): :obj:`"raise"` or :obj:`"warn"`.
            (default: :obj:`"raise"`)
        dtype (torch.dtype, optional): The input's dtype when :obj:`x` is
            :obj:`None` or integer labels (a model passes its parameters');
            floating features keep theirs. (default: the default dtype)
        num_nodes (int, optional): Number of nodes, needed when both
            :obj:`x` and :obj:`batch` are :obj:`None` (an unlabeled graph):
            the edges alone cannot tell isolated nodes after the last
            connected one. (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.BoolTensor): The tensor :obj:`[B, 1 + C, m, m]`
        and the node mask :obj:`[B, m]`.
    """
    owner = 'to_dense_ign_input'
    if x is not None and x.dim() == 1:
        x = x.unsqueeze(-1)
    if batch is None:
        if x is not None:
            num_nodes = x.size(0) if num_nodes is None else num_nodes
        elif num_nodes is None:
            # Counting nodes from the edges would drop trailing isolated
            # nodes and change every size-normalized invariant.
            raise ValueError(f"'{owner}' needs 'num_nodes' (or 'batch') when "
                             f"'x' is None: the edges alone cannot tell "
                             f"isolated nodes")
        batch = edge_index.new_zeros(num_nodes)
    elif num_nodes is not None and num_nodes != batch.numel():
        raise ValueError(f"'{owner}' got num_nodes={num_nodes} but 'batch' "
                         f"has {batch.numel()} entries")
    num_nodes = batch.numel()
    if x is not None and x.size(0) != num_nodes:
        raise ValueError(f"'{owner}' expected one row of 'x' per entry of "
                         f"'batch' ({num_nodes}), got {x.size(0)}")
    check_batch(owner, batch, num_nodes, batch_size)
    check_edge_index(owner, edge_index, num_nodes, num_nodes)
    if not is_tracing() and num_nodes > 1:
        # The dense blocks are one per graph: an unsorted batch or an edge
        # between graphs would land on the wrong nodes, silently.
        if not bool((batch[1:] >= batch[:-1]).all()):
            raise ValueError(f"'{owner}' expected 'batch' sorted by graph, "
                             f"as PyG's DataLoader builds it")
        check_edges_within_graphs(owner, edge_index, batch)
    if batch_size is None:
        batch_size = int(batch.max()) + 1 if num_nodes > 0 else 1
    counts = scatter(torch.ones_like(batch), batch, dim=0,
                     dim_size=batch_size, reduce='sum')
    m = max(int(counts.max()), 1)
    channels = 1 + (0 if x is None else x.size(-1))
    if x is not None and x.is_floating_point():
        dtype = x.dtype
    elif dtype is None:
        dtype = torch.get_default_dtype()
    check_dense_size(owner, batch_size, m, max_channels or channels,
                     max_dense_bytes,
                     itemsize=torch.empty((), dtype=dtype).element_size(),
                     action=on_exceed)

    adj = to_dense_adj(edge_index, batch, batch_size=batch_size,
                       max_num_nodes=m).to(dtype)
    if normalize:
        # Column sums on both sides, as the official noramlize_graph does
        # (the same as row sums on undirected graphs).
        deg = adj.sum(dim=-2)
        inv_sqrt = deg.pow(-0.5).masked_fill(deg == 0, 0.)
        adj = inv_sqrt.unsqueeze(-1) * adj * inv_sqrt.unsqueeze(-2)
    ones = torch.ones(num_nodes, 1, dtype=dtype, device=batch.device)
    _, mask = to_dense_batch(ones, batch, batch_size=batch_size,
                             max_num_nodes=m)
    parts = [adj.unsqueeze(1)]
    if x is not None:
        xd, _ = to_dense_batch(x.to(dtype), batch, batch_size=batch_size,
                               max_num_nodes=m)
        parts.append(torch.diag_embed(xd.transpose(1, 2)))
    return torch.cat(parts, dim=1), mask
