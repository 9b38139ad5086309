"""Input checks shared by the layers.

Every check raises :class:`ValueError` with a message that names the layer,
the offending argument, what was expected and what was given. Checks that
need tensor *values* (index ranges, NaNs) only run eagerly: under
:func:`torch.compile` they would force a graph break, and the shapes are
still checked there.
"""
import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_sparse, to_edge_index

__all__ = [
    'is_tracing',
    'check_channels',
    'check_edge_index',
    'sparse_adjacency_edges',
    'check_node_index',
    'check_edge_attr',
    'check_finite',
    'check_shape',
    'check_image',
    'check_kernel_size',
    'check_kernel_fits',
    'check_padding_mode',
    'check_edges_within_graphs',
    'check_dense_input',
    'dense_tensor_bytes',
    'check_dense_size',
    'check_positions',
    'check_batch',
    'check_positive_int',
    'check_non_negative_int',
    'check_dtype',
    'check_floating',
    'check_frame_channels',
    'parameter_dtype',
]

PADDING_MODES = ('zeros', 'reflect', 'replicate', 'circular')


def is_tracing() -> bool:
    """Whether we run under :func:`torch.compile` or TorchScript, where
    value-dependent checks must be skipped."""
    if torch.jit.is_scripting():
        return True
    return torch.compiler.is_compiling()


def check_channels(owner: str, name: str, t: Optional[Tensor],
                   channels: int,
                   dtype: Optional[torch.dtype] = None) -> None:
    """Checks that :obj:`t` is a 2-D tensor with :obj:`channels` columns
    and, if :obj:`dtype` is given (the layer's parameters'), of that
    floating-point dtype; under autocast any floating dtype passes, since
    the products cast it."""
    if t is None:
        return
    if t.dim() != 2 or t.size(-1) != channels:
        raise ValueError(f"'{owner}' expected '{name}' of shape "
                         f"[num_rows, {channels}] (got {list(t.shape)})")
    if dtype is not None:
        check_dtype(owner, name, t, dtype)


def check_dtype(owner: str, name: str, t: Tensor, dtype: torch.dtype,
                like: Optional[str] = None) -> None:
    """Checks that :obj:`t` has the layer's parameter dtype, or with
    :obj:`like` the dtype of that other input (e.g. generated filters and
    the image they filter, in a layer without parameters); under
    :func:`torch.autocast` any floating dtype passes, since the products
    cast it."""
    if t.dtype == dtype:
        return
    if not t.is_floating_point() or \
            not torch.is_autocast_enabled(t.device.type):
        if like is not None:
            raise ValueError(f"'{owner}' expected '{name}' of the dtype of "
                             f"'{like}', {dtype} (got {t.dtype}); convert "
                             f"one of them (e.g. '{name}.to({dtype})')")
        # A module can only take a floating dtype: for integer or boolean
        # input, converting the input is the one fix to suggest.
        module_fix = (f" or the module (e.g. '.to({t.dtype})')"
                      if t.is_floating_point() else '')
        raise ValueError(f"'{owner}' expected '{name}' of its parameters' "
                         f"dtype {dtype} (got {t.dtype}); convert the input "
                         f"(e.g. '{name}.to({dtype})'){module_fix}")


def check_floating(owner: str, name: str, t: Tensor) -> None:
    """Rejects an integer or boolean tensor that is to be filtered,
    convolved or multiplied."""
    if not t.is_floating_point():
        raise ValueError(f"'{owner}' expected a floating-point '{name}' "
                         f"(got {t.dtype})")


def sparse_adjacency_edges(adj_t) -> Tuple[Tensor, Tensor]:
    """The :obj:`[2, num_edges]` edge index (source, target) and the values
    of a transposed sparse adjacency (a :class:`SparseTensor` or a torch
    sparse tensor), which stores :obj:`[target, source]` as PyG's layers
    read it."""
    edge_index, value = to_edge_index(adj_t)
    return edge_index.flip(0), value


def check_edge_index(owner: str, edge_index, num_src: int,
                     num_dst: int) -> None:
    """Checks a dense :obj:`edge_index` for dtype, shape and index range.

    Sparse adjacencies (:class:`torch_sparse.SparseTensor` or
    :obj:`torch.sparse` layouts) are checked for their size only.
    """
    if isinstance(edge_index, SparseTensor) or is_sparse(edge_index):
        # Trailing dense dimensions hold edge features.
        size = tuple(edge_index.size())[:2]
        if size[0] != num_dst or size[1] != num_src:
            raise ValueError(f"'{owner}' expected a (transposed) sparse "
                             f"adjacency of size [{num_dst}, {num_src}] "
                             f"(got {list(size)})")
        return
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"'{owner}' expected 'edge_index' to be a tensor of "
                         f"shape [2, num_edges] or a sparse adjacency "
                         f"(got {type(edge_index).__name__})")
    if edge_index.dtype not in (torch.long, torch.int):
        raise ValueError(f"'{owner}' expected 'edge_index' of dtype "
                         f"torch.long (got {edge_index.dtype})")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'{owner}' expected 'edge_index' of shape "
                         f"[2, num_edges] (got {list(edge_index.shape)})")
    if is_tracing() or edge_index.numel() == 0:
        return
    src_min, dst_min = edge_index.min(dim=1).values.tolist()
    src_max, dst_max = edge_index.max(dim=1).values.tolist()
    if min(src_min, dst_min) < 0:
        raise ValueError(f"'{owner}' found negative node indices in "
                         f"'edge_index'")
    if src_max >= num_src or dst_max >= num_dst:
        raise ValueError(f"'{owner}' found node indices out of range in "
                         f"'edge_index' (largest source index {src_max} for "
                         f"{num_src} source nodes, largest target index "
                         f"{dst_max} for {num_dst} target nodes)")


def check_node_index(owner: str, name: str, index: Tensor,
                     num_nodes: int) -> None:
    """Checks a non-empty, sorted, duplicate-free 1-D tensor of node indices
    in :obj:`[0, num_nodes)` (a node subset, e.g. the training nodes)."""
    if not isinstance(index, Tensor) or index.dim() != 1 or \
            index.dtype not in (torch.long, torch.int):
        got = (f'{type(index).__name__}' if not isinstance(index, Tensor)
               else f'{index.dtype} of shape {list(index.shape)}')
        raise ValueError(f"'{owner}' expected '{name}' to be node indices "
                         f"of dtype torch.long and shape [num_indices] "
                         f"(got {got})")
    if index.numel() == 0:
        raise ValueError(f"'{owner}' expected '{name}' to hold at least one "
                         f"node index")
    if is_tracing():
        return
    if int(index.min()) < 0 or int(index.max()) >= num_nodes:
        raise ValueError(f"'{owner}' found indices out of range in "
                         f"'{name}' (smallest {int(index.min())}, largest "
                         f"{int(index.max())}, for {num_nodes} nodes)")
    if index.numel() > 1 and not bool((index[1:] > index[:-1]).all()):
        raise ValueError(f"'{owner}' expected '{name}' sorted and without "
                         f"duplicates (use torch.unique)")


def check_edge_attr(owner: str, edge_attr: Optional[Tensor],
                    edge_dim: Optional[int], num_edges: Optional[int],
                    dtype: Optional[torch.dtype] = None) -> None:
    """Checks that :obj:`edge_attr` is given exactly when :obj:`edge_dim`
    is, with one row per edge and :obj:`edge_dim` columns (and, if given,
    the layer's parameter :obj:`dtype`)."""
    if edge_dim is None:
        if edge_attr is not None:
            raise ValueError(f"'{owner}' got 'edge_attr' but was built "
                             f"without 'edge_dim'; pass 'edge_dim' to use "
                             f"edge features")
        return
    if edge_attr is None:
        raise ValueError(f"'{owner}' was built with 'edge_dim={edge_dim}' "
                         f"and needs 'edge_attr' of shape "
                         f"[num_edges, {edge_dim}], but none was given")
    if edge_attr.dim() != 2 or edge_attr.size(-1) != edge_dim:
        hint = (' (reshape a vector of edge weights with '
                "'edge_attr.view(-1, 1)')"
                if edge_attr.dim() == 1 and edge_dim == 1 else '')
        raise ValueError(f"'{owner}' expected 'edge_attr' of shape "
                         f"[num_edges, {edge_dim}] "
                         f"(got {list(edge_attr.shape)}){hint}")
    if num_edges is not None and edge_attr.size(0) != num_edges:
        raise ValueError(f"'{owner}' expected one 'edge_attr' row per edge "
                         f"({num_edges}), got {edge_attr.size(0)}")
    if dtype is not None:
        check_dtype(owner, 'edge_attr', edge_attr, dtype)


def check_finite(owner: str, name: str, t: Tensor) -> None:
    """Rejects NaN or infinite values (eagerly only)."""
    if is_tracing():
        return
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"'{owner}' found NaN or infinite values in "
                         f"'{name}'")


def check_shape(owner: str, name: str, t: Tensor,
                shape: Sequence[int]) -> None:
    """Checks an exact shape."""
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"'{owner}' expected '{name}' of shape "
                         f"{list(shape)} (got {list(t.shape)})")


def check_image(owner: str, name: str, x: Tensor,
                channels: Optional[int] = None,
                dtype: Optional[torch.dtype] = None) -> None:
    """Checks that :obj:`x` is a batch of images :obj:`[B, C, H, W]`, with
    :obj:`channels` channels and of the layer's parameter :obj:`dtype` if
    given."""
    expected = 'channels' if channels is None else channels
    if not isinstance(x, Tensor) or x.dim() != 4:
        got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"'{owner}' expected '{name}' of shape "
                         f"[batch_size, {expected}, height, width] "
                         f"(got {got})")
    if channels is not None and x.size(1) != channels:
        raise ValueError(f"'{owner}' expected '{name}' with {channels} "
                         f"channels, i.e. of shape [batch_size, {channels}, "
                         f"height, width] (got {x.size(1)} channels in "
                         f"shape {list(x.shape)})")
    if dtype is not None:
        check_dtype(owner, name, x, dtype)


def parameter_dtype(module: torch.nn.Module) -> Optional[torch.dtype]:
    """The dtype of :obj:`module`'s first parameter (:obj:`None` without
    parameters), what its inputs must match."""
    return next((p.dtype for p in module.parameters()), None)


def check_kernel_size(owner: str, kernel_size: Union[int, Sequence[int]],
                      name: str = 'kernel_size', odd: bool = False,
                      square: bool = False) -> Tuple[int, int]:
    """Normalizes :obj:`kernel_size` to a pair of positive integers, checking
    that it is odd (needed for a centred kernel with 'same' padding) and/or
    square where the layer requires it."""
    pair = ((kernel_size, kernel_size) if isinstance(kernel_size, int)
            else tuple(kernel_size))
    if len(pair) != 2 or not all(isinstance(k, int) and k >= 1
                                 for k in pair):
        raise ValueError(f"'{owner}' expected '{name}' to be a positive "
                         f"integer or a pair of them (got {kernel_size!r})")
    if square and pair[0] != pair[1]:
        raise ValueError(f"'{owner}' requires a square '{name}' "
                         f"(got {pair[0]}x{pair[1]})")
    if odd and (pair[0] % 2 == 0 or pair[1] % 2 == 0):
        raise ValueError(f"'{owner}' requires an odd '{name}' so that the "
                         f"kernel has a centre pixel (got "
                         f"{pair[0]}x{pair[1]})")
    return pair


def check_kernel_fits(owner: str, kernel_size: Sequence[int], height: int,
                      width: int, image: str = 'input image') -> None:
    """Rejects a kernel larger than the image it is applied to (e.g. the
    :obj:`image` ``'zero-padded input image'``)."""
    kh, kw = kernel_size
    if kh > height or kw > width:
        raise ValueError(f"'{owner}' has a {kh}x{kw} kernel, which is larger "
                         f"than the {height}x{width} {image}; use a "
                         f"smaller kernel or a larger image")


def check_padding_mode(owner: str, padding_mode: str) -> None:
    """Checks a :func:`torch.nn.functional.pad`-style padding mode (or
    :obj:`"zeros"`)."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"'{owner}' got unknown padding_mode "
                         f"'{padding_mode}' (expected one of "
                         f"{list(PADDING_MODES)})")


def check_edges_within_graphs(owner: str, edge_index: Tensor,
                              batch: Tensor) -> None:
    """Refuses edges that join nodes of different graphs of :obj:`batch`
    (a per-graph model would mix those graphs in silence). Skipped while
    tracing: the check reads values."""
    if is_tracing() or edge_index.numel() == 0:
        return
    if bool((batch[edge_index[0]] != batch[edge_index[1]]).any()):
        raise ValueError(f"'{owner}' found edges in 'edge_index' that "
                         f"connect nodes of different graphs of 'batch'")


def check_dense_input(owner: str, x: Tensor, mask: Optional[Tensor],
                      channels: int,
                      dtype: Optional[torch.dtype] = None) -> None:
    """Checks a batch of second-order tensors :obj:`[B, channels, m, m]`
    (of the layer's parameter :obj:`dtype` if given) and its optional node
    mask :obj:`[B, m]` (as from
    :func:`~torch_geometric.utils.to_dense_batch`)."""
    if not isinstance(x, Tensor) or x.dim() != 4 \
            or x.size(1) != channels or x.size(2) != x.size(3):
        shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"'{owner}' expected 'x' of shape "
                         f"[batch_size, {channels}, num_nodes, num_nodes] "
                         f"(got {shape})")
    if not x.is_floating_point():
        raise ValueError(f"'{owner}' expected a floating-point 'x' "
                         f"(got {x.dtype})")
    if x.size(-1) == 0:
        # The readouts average over nodes: nothing to average is a NaN (or
        # an IndexError in a max), not a graph feature.
        raise ValueError(f"'{owner}' got graphs without nodes (x of shape "
                         f"{list(x.shape)}); drop empty graphs first")
    if dtype is not None:
        check_dtype(owner, 'x', x, dtype)
    if mask is None:
        return
    if mask.dtype != torch.bool or tuple(mask.shape) != (x.size(0),
                                                         x.size(-1)):
        raise ValueError(f"'{owner}' expected a boolean 'mask' of shape "
                         f"[{x.size(0)}, {x.size(-1)}] (got "
                         f"{list(mask.shape)} of {mask.dtype})")


def dense_tensor_bytes(batch_size: int, num_nodes: int, channels: int,
                       itemsize: int = 4) -> int:
    """Bytes of one dense activation :obj:`[B, channels, m, m]`."""
    return batch_size * channels * num_nodes * num_nodes * itemsize


def check_dense_size(owner: str, batch_size: int, num_nodes: int,
                     channels: int, max_bytes: Optional[int],
                     itemsize: int = 4, action: str = 'raise') -> None:
    """Guards against a dense batch whose widest activation
    :obj:`[B, channels, m, m]` would exceed :obj:`max_bytes`.

    Dense second-order layers cost :math:`\\mathcal{O}(B m^2)` memory, where
    :math:`m` is the *largest* graph in the batch, so one big graph can blow
    up a batch of small ones. Checked before anything is allocated.

    Args:
        action (str): :obj:`"raise"` (:class:`ValueError`) or :obj:`"warn"`.
    """
    if max_bytes is None:
        return
    need = dense_tensor_bytes(batch_size, num_nodes, channels, itemsize)
    if need <= max_bytes:
        return
    msg = (f"'{owner}' would build dense tensors of shape [{batch_size}, "
           f"{channels}, {num_nodes}, {num_nodes}] ({need / 2**20:.1f} MiB "
           f"each), more than the limit of {max_bytes / 2**20:.1f} MiB; the "
           f"largest graph in the batch has {num_nodes} nodes. Use a smaller "
           f"batch size, drop or split very large graphs, or raise "
           f"'max_dense_bytes'")
    if action == 'warn':
        warnings.warn(msg, ResourceWarning, stacklevel=3)
    elif action == 'raise':
        raise ValueError(msg)
    else:
        raise ValueError(f"Unknown action '{action}' in 'check_dense_size' "
                         f"(expected 'raise' or 'warn')")


def check_positions(owner: str, pos: Optional[Tensor],
                    num_nodes: Optional[int] = None,
                    dtype: Optional[torch.dtype] = None) -> None:
    """Checks atom coordinates: given, of shape [num_atoms, 3], floating
    point (of the model's parameter :obj:`dtype`, if given) and finite (the
    last eagerly only)."""
    if pos is None:
        raise ValueError(f"'{owner}' needs atom coordinates 'pos' of shape "
                         f"[num_atoms, 3], but none were given")
    if not isinstance(pos, Tensor):
        raise ValueError(f"'{owner}' expected 'pos' to be a tensor of shape "
                         f"[num_atoms, 3] (got {type(pos).__name__})")
    if pos.dim() != 2 or pos.size(-1) != 3:
        raise ValueError(f"'{owner}' expected 'pos' of shape [num_atoms, 3] "
                         f"(got {list(pos.shape)})")
    if num_nodes is not None and pos.size(0) != num_nodes:
        raise ValueError(f"'{owner}' expected one 'pos' row per atom "
                         f"({num_nodes}), got {pos.size(0)}")
    if not pos.is_floating_point():
        raise ValueError(f"'{owner}' expected floating-point 'pos' "
                         f"(got {pos.dtype})")
    if dtype is not None:
        check_dtype(owner, 'pos', pos, dtype)
    check_finite(owner, 'pos', pos)


def check_batch(owner: str, batch: Optional[Tensor], num_nodes: int,
                num_graphs: Optional[int] = None) -> None:
    """Checks a PyG :obj:`batch` vector: integer, one entry per node, and
    (eagerly, for CPU tensors) graph indices in :obj:`[0, num_graphs)` when
    that is given, otherwise non-negative. The value check is skipped on
    accelerators, where it would cost a device sync per forward pass (that
    passing :obj:`num_graphs` is meant to save)."""
    if batch is None:
        return
    if not isinstance(batch, Tensor) or batch.dim() != 1 or \
            batch.dtype not in (torch.long, torch.int):
        got = (type(batch).__name__ if not isinstance(batch, Tensor)
               else f'{batch.dtype} of shape {list(batch.shape)}')
        raise ValueError(f"'{owner}' expected 'batch' to be graph indices "
                         f"of dtype torch.long and shape [num_nodes] "
                         f"(got {got})")
    if batch.numel() != num_nodes:
        raise ValueError(f"'{owner}' expected one 'batch' entry per node "
                         f"({num_nodes}), got {batch.numel()}")
    if is_tracing() or batch.numel() == 0 or batch.device.type != 'cpu':
        return
    low, high = int(batch.min()), int(batch.max())
    if low < 0:
        raise ValueError(f"'{owner}' found negative graph indices in "
                         f"'batch'")
    if num_graphs is not None and high >= num_graphs:
        raise ValueError(f"'{owner}' found graph index {high} in 'batch' "
                         f"but was told there are {num_graphs} graphs")


def check_positive_int(owner: str, **values) -> None:
    """Checks that each keyword value is a positive integer (sizes and
    counts given to a constructor)."""
    _check_ints(owner, 1, 'a positive', values)


def check_non_negative_int(owner: str, **values) -> None:
    """Checks that each keyword value is an integer >= 0 (counts that may
    be zero, such as a validation set's size)."""
    _check_ints(owner, 0, 'a non-negative', values)


def _check_ints(owner: str, minimum: int, kind: str, values) -> None:
    for name, value in values.items():
        # bool is an int subclass; True is not a size.
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < minimum:
            raise ValueError(f"'{owner}' needs {kind} integer '{name}' "
                             f"(got {value!r})")


def check_frame_channels(owner: str, in_channels: int,
                         frame_channels: int) -> None:
    """Checks that :obj:`in_channels` stacks whole frames of
    :obj:`frame_channels` channels, :math:`T \\cdot C`, so that the last
    :obj:`frame_channels` channels are the last frame."""
    check_positive_int(owner, in_channels=in_channels,
                       frame_channels=frame_channels)
    if in_channels % frame_channels:
        raise ValueError(f"'{owner}' needs 'in_channels' to be a multiple of "
                         f"'frame_channels' (T frames of C channels each; got "
                         f"in_channels={in_channels}, "
                         f"frame_channels={frame_channels})")


def first_few(items: Sequence[str], total: int, limit: int = 5) -> str:
    """``"a, b, c and 7 more"``: the first :obj:`limit` of :obj:`total`
    offending entries, for error messages that name them."""
    more = f' and {total - limit} more' if total > limit else ''
    return ', '.join(list(items)[:limit]) + more
