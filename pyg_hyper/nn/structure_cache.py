r"""A memo for index computations that depend on a graph's structure only.

PyG's :class:`~torch_geometric.nn.conv.GCNConv` offers :obj:`cached=True` for
transductive learning: the normalized adjacency is computed once and reused,
trusting the caller that the graph never changes. The LGNN layers recompute
more than that on every call (self loops and normalization, the training
field's edges, the sparse features' CSR pattern and its transpose, the
(edge, non-zero feature) pairs), all of it integer bookkeeping that is the
same in every epoch of a transductive run. :class:`StructureCache` keeps
those results, but unlike GCNConv's cache it checks its keys: an entry is
reused only if every key tensor has the same shape, dtype, device and
values as when it was stored (the keys are copied, so in-place edits of the
caller's tensors are seen). A changed graph is thus recomputed, never
silently reused; the check costs one comparison of the index tensors,
a small fraction of recomputing them.

Cached values must not carry autograd history: only structure (indices,
counts, constant weights) is stored; the callers gather the current values
through the cached indices.
"""
from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import Tensor

from pyg_hyper.utils.checks import is_tracing

__all__ = ['StructureCache']


def _copy_key(key: Any) -> Any:
    if isinstance(key, Tensor):
        return key.detach().clone()
    return key


def _same_key(stored: Any, key: Any) -> bool:
    if isinstance(stored, Tensor) or isinstance(key, Tensor):
        return (isinstance(stored, Tensor) and isinstance(key, Tensor)
                and stored.shape == key.shape and stored.dtype == key.dtype
                and stored.device == key.device
                and bool(torch.equal(stored, key)))
    return stored == key


class StructureCache:
    r"""Memoizes structure-only computations, keyed by tensor *contents*.

    :meth:`get` returns the stored value for a name if its keys equal the
    current ones and computes (and stores) it otherwise. Each name keeps
    the :obj:`slots` most recently used entries, so that alternating calls
    (a training step on the training field, then an evaluation on the whole
    graph) do not evict each other. Under :func:`torch.compile` nothing is
    cached (the lookup is value-dependent), nor when a key tensor requires
    a gradient (the value would depend on it through autograd). Under
    :func:`torch.inference_mode` stored entries are served but nothing new
    is stored (an inference tensor cannot be saved for a later backward).

    Args:
        slots (int, optional): Entries kept per name. (default: :obj:`4`)
    """
    def __init__(self, slots: int = 4):
        if slots < 1:
            raise ValueError(f"'StructureCache' needs 'slots' >= 1 (got "
                             f"{slots})")
        self.slots = slots
        self._entries: Dict[str, List[Tuple[Tuple[Any, ...], Any]]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, name: str, keys: Tuple[Any, ...],
            compute: Callable[[], Any]) -> Any:
        """The value of :obj:`compute()` for these :obj:`keys` (tensors are
        compared by value, other keys with ``==``)."""
        if is_tracing() or any(isinstance(k, Tensor) and k.requires_grad
                               for k in keys):
            # A key with autograd history (e.g. learned edge weights) means
            # the value would carry it too: never reuse it.
            return compute()
        entries = self._entries.setdefault(name, [])
        for i, (stored, value) in enumerate(entries):
            if len(stored) == len(keys) and all(
                    _same_key(s, k) for s, k in zip(stored, keys)):
                self.hits += 1
                entries.insert(0, entries.pop(i))  # most recent first
                return value
        self.misses += 1
        value = compute()
        if torch.is_inference_mode_enabled():
            # Inference tensors cannot be saved for backward: storing one
            # would break the next training step that hits this entry.
            return value
        entries.insert(0, (tuple(_copy_key(k) for k in keys), value))
        del entries[self.slots:]
        return value

    def clear(self) -> None:
        """Drops every entry (e.g. before moving to another graph)."""
        self._entries.clear()

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(entries={len(self)}, '
                f'hits={self.hits}, misses={self.misses})')
