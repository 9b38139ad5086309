"""Time and memory of one IGN layer against one Hyper-IGN layer.

For every batch size and largest graph size m, one forward + backward pass of

* ``plain``:      pyg_hyper.nn.dense.Equivariant2to2
* ``hyper-fact``: HyperEquivariant2to2, factorized=True (no coefficient tensor)
* ``hyper-coef``: HyperEquivariant2to2, factorized=False, the default
  (per-graph coefficients generated once, then the plain contraction)

is timed (median of --reps after a warm-up) and its memory measured: the
peak allocation on CUDA, and on CPU the bytes of all tensors saved for the
backward pass plus the output (the activation memory a training step keeps;
CPU has no allocator peak counter). Ratios hyper / plain are printed side by
side and the whole record is written as JSON.

    python benchmarks/bench_ign.py                       # CPU, default grid
    python benchmarks/bench_ign.py --device cuda --sizes 16 32 64 128 256
"""
import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import torch

from pyg_hyper.nn.dense import Equivariant2to2, HyperEquivariant2to2


def saved_bytes(fn):
    """Runs fn() and returns (output, bytes of distinct tensors autograd
    saved for backward + output bytes)."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(storages.values()) + out.numel() * out.element_size()


def measure(layer, x, mask, reps, device):
    def step():
        layer.zero_grad(set_to_none=True)
        out = layer(x, mask)
        out.sum().backward()
        return out

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    step()  # warm-up
    times = []
    for _ in range(reps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        mem = torch.cuda.max_memory_allocated() - base
    else:
        layer.zero_grad(set_to_none=True)
        _, mem = saved_bytes(lambda: layer(x, mask))
    return statistics.median(times), mem


def atomic_write_json(path, obj):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cpu')
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
    args = p.parse_args()
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
            res = {k: measure(v, x, mask, args.reps, device)
                   for k, v in layers.items()}
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
        'torch': torch.__version__,
        'device': (torch.cuda.get_device_name(device)
                   if device.type == 'cuda' else platform.processor()
                   or platform.machine()),
        'memory_measure': ('cuda peak allocation' if device.type == 'cuda'
                           else 'bytes saved for backward + output'),
        'in_channels': D, 'out_channels': S, 'hyper_channels': r,
        'threads': args.threads, 'rows': rows,
    }
    out = args.out or os.path.join(os.path.dirname(__file__), 'results',
                                   f'bench_ign_{device.type}.json')
    atomic_write_json(out, record)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
