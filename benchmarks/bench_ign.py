"""Time and memory of one IGN layer against one Hyper-IGN layer.

For every batch size and largest graph size m, one forward + backward pass of

* ``plain``:      pyg_hyper.nn.dense.Equivariant2to2
* ``hyper-fact``: HyperEquivariant2to2, factorized=True (no coefficient tensor)
* ``hyper-coef``: HyperEquivariant2to2, factorized=False, the default
  (per-graph coefficients generated once, then the plain contraction)

is timed (median of --reps, the three timed round-robin after two warm-up
rounds) and its peak memory measured
(high-water mark of live tensor bytes, see pyg_hyper.utils.benchmark).
Ratios hyper / plain are printed side by side and the whole record is
written as JSON.

    python benchmarks/bench_ign.py                       # CPU, default grid
    python benchmarks/bench_ign.py --device cuda --sizes 16 32 64 128 256
"""
import argparse
import os
import statistics

import torch

from pyg_hyper.nn.dense import Equivariant2to2, HyperEquivariant2to2
from pyg_hyper.experiment.results import atomic_write_json
from pyg_hyper.utils.benchmark import (
    benchmark_device,
    environment,
    peak_memory,
    time_fn,
)
from pyg_hyper.utils.malloc import (
    add_malloc_option,
    apply_malloc_option,
)


def train_step(layer, x, mask):
    # Gradients are zeroed in place, not dropped: each step then starts from
    # the same live memory (weights, gradients) on CPU and CUDA alike, and
    # the peak is what the step itself adds.
    def step():
        layer.zero_grad(set_to_none=False)
        layer(x, mask).square().mean().backward()
    return step


def measure_all(layers, x, mask, reps, device):
    """Median step time and peak memory of every layer. The steps are
    timed round-robin (one step of each layer per repetition), so load that
    drifts on a shared machine hits all layers alike and the ratios stay
    comparable."""
    steps = {k: train_step(v, x, mask) for k, v in layers.items()}
    times = {k: [] for k in steps}
    for rep in range(reps + 2):  # two warm-up rounds
        for k, step in steps.items():
            t = time_fn(step, device, repeat=1, warmup=0)
            if rep >= 2:
                times[k].append(t)
    return {k: (statistics.median(times[k]), peak_memory(step, device))
            for k, step in steps.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', type=benchmark_device, default='cpu')
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[5, 32])
    p.add_argument('--sizes', type=int, nargs='+', default=[16, 32, 64])
    p.add_argument('--in-channels', type=int, default=32)
    p.add_argument('--out-channels', type=int, default=32)
    p.add_argument('--hyper-channels', type=int, default=16)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default=None,
                   help='JSON path (default benchmarks/results/'
                   'bench_ign_<device>.json)')
    add_malloc_option(p)
    args = p.parse_args()
    apply_malloc_option(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    D, S, r = args.in_channels, args.out_channels, args.hyper_channels
    layers = {
        'plain': Equivariant2to2(D, S),
        'hyper-fact': HyperEquivariant2to2(D, S, hyper_channels=r,
                                           factorized=True),
        'hyper-coef': HyperEquivariant2to2(D, S, hyper_channels=r,
                                           factorized=False),
    }
    layers = {k: v.to(device) for k, v in layers.items()}
    rows = []
    header = (f"{'B':>3} {'m':>4} | {'plain ms':>9} {'fact ms':>9} "
              f"{'coef ms':>9} | {'fact/pl':>7} {'coef/pl':>7} | "
              f"{'plain MiB':>9} {'fact MiB':>9} {'coef MiB':>9} | "
              f"{'fact/pl':>7} {'coef/pl':>7}")
    print(f'D={D} S={S} r={r} device={device} threads={args.threads}')
    print(header)
    print('-' * len(header))
    for B in args.batch_sizes:
        for m in args.sizes:
            x = torch.randn(B, D, m, m, device=device)
            # Padding as in a real batch: graph b has m - b % 3 nodes.
            n = torch.tensor([m - b % 3 for b in range(B)], device=device)
            mask = torch.arange(m, device=device) < n.view(-1, 1)
            res = measure_all(layers, x, mask, args.reps, device)
            t = {k: v[0] for k, v in res.items()}
            mem = {k: v[1] for k, v in res.items()}
            row = {'batch_size': B, 'num_nodes': m,
                   'time_s': t, 'memory_bytes': mem,
                   'time_ratio': {k: t[k] / t['plain']
                                  for k in ('hyper-fact', 'hyper-coef')},
                   'memory_ratio': {k: mem[k] / mem['plain']
                                    for k in ('hyper-fact', 'hyper-coef')}}
            rows.append(row)
            mib = {k: v / 2**20 for k, v in mem.items()}
            print(f"{B:>3} {m:>4} | {t['plain'] * 1e3:9.2f} "
                  f"{t['hyper-fact'] * 1e3:9.2f} {t['hyper-coef'] * 1e3:9.2f}"
                  f" | {row['time_ratio']['hyper-fact']:7.2f} "
                  f"{row['time_ratio']['hyper-coef']:7.2f} | "
                  f"{mib['plain']:9.2f} {mib['hyper-fact']:9.2f} "
                  f"{mib['hyper-coef']:9.2f} | "
                  f"{row['memory_ratio']['hyper-fact']:7.2f} "
                  f"{row['memory_ratio']['hyper-coef']:7.2f}", flush=True)
    target = 2.0
    for key in ('hyper-fact', 'hyper-coef'):
        worst_t = max(r['time_ratio'][key] for r in rows)
        worst_m = max(r['memory_ratio'][key] for r in rows)
        ok = worst_t <= target and worst_m <= target
        print(f'{key}: worst time ratio {worst_t:.2f}, worst memory ratio '
              f'{worst_m:.2f} -> target <= {target}x '
              f"{'met' if ok else 'NOT met'}")
    record = {
        'command': 'python benchmarks/bench_ign.py ' + ' '.join(
            f'--{k.replace("_", "-")} ' + (' '.join(map(str, v))
                                            if isinstance(v, list) else str(v))
            for k, v in vars(args).items() if k != 'out'),
        'environment': environment(device),
        'memory_measure': 'peak live tensor bytes of forward + backward',
        'in_channels': D, 'out_channels': S, 'hyper_channels': r,
        'threads': args.threads, 'rows': rows,
    }
    out = args.out or os.path.join(os.path.dirname(__file__), 'results',
                                   f'bench_ign_{device.type}.json')
    atomic_write_json(out, record)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
