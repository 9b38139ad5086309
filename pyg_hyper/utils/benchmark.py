"""Measurement helpers for the scripts under ``benchmarks/``.

Peak memory is measured as the high-water mark of *live tensor bytes*, which
is comparable across CPU and CUDA and immune to allocator caching: on CPU a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every tensor an
operator creates (forward and backward) and a finalizer sees it die; on CUDA
:func:`torch.cuda.max_memory_allocated` gives the same quantity directly.
"""
import statistics
import time
import weakref
from typing import Any, Callable, Dict, List

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = [
    'LiveTensorBytes',
    'peak_memory',
    'time_fn',
    'time_round_robin',
    'matmul_flop_rate',
    'environment',
]


class LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of live tensor storages created inside the context,
    and their peak."""
    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: Dict[int, int] = {}

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or key in self._seen:
            return
        self._seen[key] = nbytes
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        self.live -= self._seen.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # Outputs that alias an input (views such as ``weight.t()``) own no
        # new memory.
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor)
        }
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if (isinstance(t, torch.Tensor) and t.device.type != 'meta'
                    and t.untyped_storage().data_ptr() not in inputs):
                self._track(t)
        return out


def peak_memory(fn: Callable[[], Any], device: torch.device) -> int:
    """Peak bytes of tensors allocated while running :obj:`fn`, above what
    was live before."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    with LiveTensorBytes() as tracker:
        fn()
    return tracker.peak


def time_fn(fn: Callable[[], Any], device: torch.device, repeat: int = 5,
            warmup: int = 2) -> float:
    """Median wall time of :obj:`fn` in seconds."""
    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    times: List[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_round_robin(fns: Dict[str, Callable[[], Any]], device: torch.device,
                     repeat: int = 5, warmup: int = 2) -> Dict[str, float]:
    """Median wall time of each function, timed one step of each in turn, so
    that load that comes and goes on a shared machine hits all of them
    alike and their ratios stay meaningful."""
    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def matmul_step(m: int, k: int, n: int, device: torch.device,
                dtype: torch.dtype = torch.float32) -> Callable[[], None]:
    """A plain ``[m, k] @ [k, n]`` product with its two backward products:
    6 m k n FLOPs, the yardstick for the hyper layers' GEMMs."""
    a = torch.randn(m, k, device=device, dtype=dtype, requires_grad=True)
    b = torch.randn(k, n, device=device, dtype=dtype, requires_grad=True)
    grad = torch.ones(m, n, device=device, dtype=dtype)

    def step():
        (a @ b).backward(grad)

    return step


def matmul_flop_rate(m: int, k: int, n: int, device: torch.device,
                     dtype: torch.dtype = torch.float32,
                     repeat: int = 5) -> float:
    """FLOP/s of :func:`matmul_step`."""
    step = matmul_step(m, k, n, device, dtype)
    return 6.0 * m * k * n / time_fn(step, device, repeat=repeat)


def environment(device: torch.device) -> Dict[str, Any]:
    """Command, versions and hardware, in the experiment runner's format."""
    from pyg_hyper.experiment.results import environment_record
    return environment_record(str(device))
