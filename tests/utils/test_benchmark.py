import torch

from pyg_hyper.utils.benchmark import (
    LiveTensorBytes,
    matmul_flop_rate,
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
