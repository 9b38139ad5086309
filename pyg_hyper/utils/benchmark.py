"""Measurement helpers for the scripts under ``benchmarks/``.

Peak memory is measured as the high-water mark of *live tensor bytes* above
what was live before, immune to allocator caching. On CUDA,
:func:`torch.cuda.max_memory_allocated` gives it directly. On CPU a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every tensor an
operator creates (forward and backward) and a finalizer sees it die; tensors
that were live before and die inside (gradients dropped by
``zero_grad(set_to_none=True)``) are netted out as well, as the CUDA counter
nets them, so the two devices report the same quantity.
"""
import argparse
import gc
import statistics
import time
import warnings
import weakref
from typing import Any, Callable, Dict, Iterator, List

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = [
    'LiveTensorBytes',
    'peak_memory',
    'time_fn',
    'time_round_robin',
    'matmul_flop_rate',
    'count_flops',
    'benchmark_device',
    'environment',
]


def _live_storages(device_type: str) -> Iterator[torch.UntypedStorage]:
    # Parameter gradients written by autograd have no Python object until
    # someone reads ``.grad``, so the leaves' gradients are read explicitly.
    seen = set()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for obj in gc.get_objects():
            try:
                if not isinstance(obj, torch.Tensor):
                    continue
            except ReferenceError:  # a weakref.proxy whose target died
                continue
            tensors = [obj]
            if obj.is_leaf and obj.requires_grad and obj.grad is not None:
                tensors.append(obj.grad)
            for t in tensors:
                if t.device.type != device_type or t.is_sparse:
                    continue
                try:
                    storage = t.untyped_storage()
                    key, nbytes = storage.data_ptr(), storage.nbytes()
                except (RuntimeError, NotImplementedError):
                    # Tensors without memory of their own: torch.compile's
                    # FakeTensors left in the heap, functional wrappers.
                    continue
                if nbytes and key not in seen:
                    seen.add(key)
                    yield storage


class LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of live tensor storages created inside the context,
    and their peak. Storages of :obj:`device_type` that were live on entry
    and die inside count as freed (so :obj:`live` can go negative), as
    :func:`torch.cuda.max_memory_allocated` minus the entry allocation
    counts them."""
    def __init__(self, device_type: str = 'cpu'):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: Dict[int, int] = {}
        self._device_type = device_type
        self._active = False
        self._watches: List[weakref.finalize] = []

    def __enter__(self):
        self._active = True
        self._watches = [
            weakref.finalize(storage, self._release_existing,
                             storage.nbytes())
            for storage in _live_storages(self._device_type)]
        return super().__enter__()

    def __exit__(self, *args):
        self._active = False
        for watch in self._watches:  # long-lived storages keep no trackers
            watch.detach()
        self._watches = []
        return super().__exit__(*args)

    def _release_existing(self, nbytes: int) -> None:
        if self._active:
            self.live -= nbytes

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
        if key in self._seen:
            self.live -= self._seen.pop(key)

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
    """Peak bytes of live tensors while running :obj:`fn`, above what was
    live before (tensors freed inside lower it, as on CUDA)."""
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
        # autograd.grad, not backward(): backward() would add each step's
        # gradients into a.grad and b.grad, an [m, k] sum that the hyper
        # layers' backward passes do not do, and slow the yardstick down.
        torch.autograd.grad(a @ b, (a, b), grad)

    return step


def matmul_flop_rate(m: int, k: int, n: int, device: torch.device,
                     dtype: torch.dtype = torch.float32,
                     repeat: int = 5) -> float:
    """FLOP/s of :func:`matmul_step`."""
    step = matmul_step(m, k, n, device, dtype)
    return 6.0 * m * k * n / time_fn(step, device, repeat=repeat)


def _matmul_flops(a_shape, b_shape) -> int:
    return 2 * a_shape[-2] * a_shape[-1] * b_shape[-1] * (
        a_shape[0] if len(a_shape) == 3 else 1)


def _accumulating_product_flops(self_shape, a_shape, b_shape, *args,
                                out_shape=None, **kwargs) -> int:
    return _matmul_flops(a_shape, b_shape)


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of :obj:`fn` by :class:`torch.utils.flop_counter.FlopCounterMode`,
    which also counts the in-place ``addmm_`` and ``baddbmm_`` its registry
    omits (a chunked backward accumulates weight gradients with them)."""
    from torch.utils.flop_counter import FlopCounterMode
    aten = torch.ops.aten
    counter = FlopCounterMode(display=False, custom_mapping={
        aten.addmm_: _accumulating_product_flops,
        aten.baddbmm_: _accumulating_product_flops,
    })
    with counter:
        fn()
    return counter.get_total_flops()


def benchmark_device(value: str) -> str:
    """``--device`` of the benchmark scripts (an argparse ``type``): the
    name of a device this machine has (kept a string, so that the scripts'
    records stay JSON), else an error naming what it has."""
    error = argparse.ArgumentTypeError
    try:
        device = torch.device(value)
    except RuntimeError:
        raise error(f"unknown device '{value}' (expected cpu, cuda or "
                    f"cuda:<index>)") from None
    if device.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise error(f"'{value}' requested, but this torch "
                        f"({torch.__version__}) sees no CUDA device; use "
                        f"--device cpu")
        if device.index is not None and device.index >= count:
            raise error(f"'{value}' requested, but only {count} CUDA "
                        f"device(s) are visible")
    elif device.type != 'cpu':
        raise error(f"unsupported device '{value}' (expected cpu, cuda or "
                    f"cuda:<index>)")
    return value


def environment(device: torch.device) -> Dict[str, Any]:
    """Command, versions and hardware, in the experiment runner's format."""
    from pyg_hyper.experiment.results import environment_record
    return environment_record(str(device))
