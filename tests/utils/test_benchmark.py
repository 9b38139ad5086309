import argparse

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from pyg_hyper.nn import hyper_linear
from pyg_hyper.utils.benchmark import (
    LiveTensorBytes,
    benchmark_device,
    count_flops,
    matmul_flop_rate,
    matmul_step,
    peak_memory,
)


def test_peak_memory_counts_new_tensors_not_views():
    weight = torch.randn(256, 256)
    cpu = torch.device('cpu')

    def fn():
        a = torch.ones(1024, 256)  # 1 MiB
        b = a * 2  # another MiB, both alive
        del a
        c = b + 1  # a was freed: still 2 MiB live
        return weight.t(), c  # a view of an outside tensor costs nothing

    assert peak_memory(fn, cpu) == 2 * 1024 * 256 * 4


def test_live_bytes_drop_when_tensors_die():
    with LiveTensorBytes() as tracker:
        a = torch.zeros(1000)
        assert tracker.live == 4000
        del a
        assert tracker.live == 0
    assert tracker.peak == 4000


def test_matmul_flop_rate_is_positive():
    assert matmul_flop_rate(16, 16, 16, torch.device('cpu'), repeat=1) > 0


def _peak_of_replacing_a_live_mib() -> int:
    holder = [torch.zeros(1 << 18)]

    def fn():
        holder.pop()
        holder.append(torch.ones(1 << 18))

    return peak_memory(fn, torch.device('cpu'))


def test_peak_memory_nets_out_tensors_freed_inside():
    # As torch.cuda.max_memory_allocated minus the entry allocation: a live
    # MiB replaced by a new one adds nothing.
    assert _peak_of_replacing_a_live_mib() == 0


def test_peak_memory_nets_out_gradients_dropped_by_zero_grad():
    # Gradients autograd wrote have no Python object until read; dropping
    # them with set_to_none=True must still lower the live bytes.
    lin = torch.nn.Linear(512, 512, bias=False)  # 1 MiB of weight
    x = torch.randn(4, 512)

    def step():
        lin.zero_grad(set_to_none=True)
        lin(x).sum().backward()

    step()
    # The new gradient replaces the old one; only the tiny activations stay.
    assert peak_memory(step, torch.device('cpu')) < 2**20 // 4


def test_tracker_ignores_frees_after_it_exits():
    outside = torch.zeros(1000)
    with LiveTensorBytes() as tracker:
        pass
    del outside
    assert tracker.live == 0 and tracker.peak == 0


class _OpNames(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_matmul_yardstick_is_three_products_and_nothing_else():
    # backward() would add every step's gradients into a.grad and b.grad:
    # extra [m, k] sums that slow the yardstick the hyper steps are held to.
    step = matmul_step(32, 16, 8, torch.device('cpu'))
    step()
    with _OpNames() as ops:
        step()
    products = [n for n in ops.names if n in ('mm', 'addmm', 'matmul')]
    assert len(products) == 3
    assert not [n for n in ops.names if n.startswith('add')], ops.names


def test_count_flops_counts_chunked_accumulation():
    # hyper_linear's chunked backward accumulates the weight gradient with
    # the in-place addmm_, which torch's FLOP registry leaves out.
    num_rows, width, rank = 64, 8, 4
    x = torch.randn(num_rows, width, requires_grad=True)
    z = torch.randn(num_rows, rank, requires_grad=True)
    weight = torch.randn(width, (rank + 1) * (width + 1), requires_grad=True)
    k = (rank + 1) * (width + 1)

    def step(chunk_size):
        return lambda: hyper_linear(x, z, weight, chunk_size=chunk_size
                                    ).sum().backward()

    whole = count_flops(step(None))
    # Three products with the weight, the code and input gradients' two
    # batched matrix-vector products, and on the CPU the outer product as a
    # rank-1 batched product, once forward and once recomputed backward.
    assert whole == 6 * num_rows * k * width + 4 * num_rows * k + \
        4 * num_rows * k
    assert count_flops(step(16)) == whole


def test_count_flops_counts_baddbmm_():
    a, b = torch.randn(3, 4, 5), torch.randn(3, 5, 6)
    out = torch.zeros(3, 4, 6)
    assert count_flops(lambda: out.baddbmm_(a, b)) == 2 * 3 * 4 * 5 * 6


@pytest.mark.parametrize('value,message', [
    ('gpu', "unknown device 'gpu'"),
    ('meta', "unsupported device 'meta'"),
])
def test_benchmark_device_names_the_problem(value, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        benchmark_device(value)


@pytest.mark.skipif(torch.cuda.is_available(), reason='has a GPU')
def test_benchmark_device_refuses_missing_cuda():
    with pytest.raises(argparse.ArgumentTypeError, match='sees no CUDA'):
        benchmark_device('cuda')
    assert benchmark_device('cpu') == 'cpu'


def test_peak_memory_after_torch_compile():
    # torch.compile leaves FakeTensors (no data pointer) and dead weakref
    # proxies in the heap; the scan of what was live before must skip them.
    import weakref

    class Holder:
        pass

    target = Holder()
    proxy = weakref.proxy(target)  # noqa: F841 (dies below, stays in gc)
    del target
    lin = torch.nn.Linear(8, 8)
    torch.compile(lin, fullgraph=True)(torch.randn(4, 8)).sum().backward()
    assert _peak_of_replacing_a_live_mib() == 0


def test_peak_is_the_high_water_mark():
    # Guards against reporting the bytes live at the end instead of the
    # peak (a freed 4000-byte tensor must still count).
    with LiveTensorBytes() as tracker:
        a = torch.zeros(1000)
        del a
        b = torch.zeros(500)  # noqa: F841
    assert tracker.peak == 4000


def test_flop_rate_counts_forward_and_backward(monkeypatch):
    # Guards against counting only the forward product (2mkn) where the
    # step runs three (forward and two gradients: 6mkn).
    from pyg_hyper.utils import benchmark
    monkeypatch.setattr(benchmark, 'time_fn', lambda *a, **k: 0.5)
    assert matmul_flop_rate(2, 3, 4, torch.device('cpu')) == \
        6.0 * 2 * 3 * 4 / 0.5


def test_time_fn_reports_the_median(monkeypatch):
    # Guards against reporting the fastest run instead of the median.
    from pyg_hyper.utils import benchmark
    ticks = iter([0.0, 1.0, 1.0, 6.0, 6.0, 8.0])  # runs of 1, 5, 2 s
    monkeypatch.setattr(benchmark.time, 'perf_counter', lambda: next(ticks))
    assert benchmark.time_fn(lambda: None, torch.device('cpu'), repeat=3,
                             warmup=0) == 2.0


def test_tracker_leaves_no_finalizers_on_outside_tensors():
    # Each measurement watches every live storage; without detaching on
    # exit, a long-lived weight would collect one finalizer (and tracker)
    # per measurement.
    import weakref
    weight = torch.randn(64, 64)
    before = len(weakref.finalize._registry)
    for _ in range(3):
        peak_memory(lambda: weight * 2, torch.device('cpu'))
    assert len(weakref.finalize._registry) <= before + 1
