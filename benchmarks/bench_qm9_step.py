"""Time and peak memory of one training step on a QM9 batch of 128 molecules
(full graph): Hyper-NMP-Edge (factorized and materialized), NMP-Edge and PyG's
NNConv, at hidden widths 64 and 128.

    python benchmarks/bench_qm9_step.py --root /tmp/qm9_bench \
        --out benchmarks/results/qm9_step.json [--compile]

``--compile`` adds Hyper-NMP-Edge and NMP-Edge under
``torch.compile(fullgraph=True)`` (given the full graph's edges and the
molecule count, as a data pipeline would precompute them) beside the eager
rows, and their ratios to the same targets.

Targets (issue 4):

* Hyper-NMP-Edge factorized needs >= 10x less peak memory than materialized;
* its step time is within 1.5x of (its FLOP count / the plain-matmul rate
  measured in the same run).

How things are measured:

* **Step**: forward, L1 loss, backward and an Adam step, after one warm-up
  step (so gradients and optimizer state already exist). Time is the median
  of ``--reps`` steps, timed round-robin over the models (one step of each
  per repetition) so that load drifting on a shared machine hits them all.
* **Peak memory**: :func:`pyg_hyper.utils.benchmark.peak_memory` over one
  step after the warm-up, the high-water mark of live tensor bytes above
  what was live before the step (model, optimizer state, batch). On CPU a
  ``TorchDispatchMode`` sees every tensor an operator creates, forward and
  backward, and a finalizer sees it freed; on CUDA it is
  ``torch.cuda.max_memory_allocated``. Tensors only, no allocator caching or
  fragmentation, and no ``tracemalloc`` (which does not see torch's
  allocator).
* **FLOPs**: ``torch.utils.flop_counter.FlopCounterMode`` over one step
  (matrix products of forward and backward, including the custom backward of
  the factorized primitive).
* **Plain-matmul rate**: :func:`pyg_hyper.utils.benchmark.matmul_flop_rate`
  (a dense product and its two backward products) of the same shape as the
  hyper model's largest product, timed right before every timed step. The
  expected time is FLOPs / rate; ``time_vs_flops`` is the median over
  repetitions of measured / expected. ``hyper_extra_time_vs_flops`` applies
  the same to what Hyper-NMP-Edge adds over NMP-Edge (extra time / extra
  FLOPs at the matmul rate): the two share every other operation, so this
  isolates the generated-weight cost. ``expected_ms_at_matmul_rate`` is the
  median of the per-repetition expected times, so ``time_ms`` divided by it
  can differ from ``time_vs_flops`` (a median of ratios) by the noise
  between repetitions; a ratio that close to a target is within noise.
  The plain product's backward uses ``torch.autograd.grad`` (no gradient
  accumulation), and ``count_flops`` counts the in-place ``addmm_`` of the
  chunked backward too (earlier records lacked both, see the CHANGELOG).

Configurations whose materialized per-edge weights would not fit in
``--max-gb`` are skipped and recorded as such.
"""
import argparse
import os
import statistics
import sys

import torch

from torch_geometric.loader import DataLoader
from torch_geometric.nn import NNConv
from torch_geometric.utils import scatter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from pyg_hyper.datasets import QM9  # noqa: E402
from pyg_hyper.experiment.results import atomic_write_json  # noqa: E402
from pyg_hyper.experiment.task import adam  # noqa: E402
from pyg_hyper.utils.benchmark import (  # noqa: E402
    benchmark_device,
    count_flops,
    environment,
    matmul_flop_rate,
    peak_memory,
    time_fn,
)
from pyg_hyper.utils.malloc import (  # noqa: E402
    add_malloc_option,
    apply_malloc_option,
)
from pyg_hyper.nn.models import HyperNMPEdge, NMPEdge  # noqa: E402
from pyg_hyper.nn.radial import (  # noqa: E402
    GaussianExpansion,
    molecular_graph,
    shifted_softplus,
)


class NNConvNet(torch.nn.Module):
    """PyG's NNConv (edge-conditioned weights, materialized per edge) in the
    same frame as NMP-Edge: embedding, Gaussian distance features, residual
    passes, sum readout of an atom MLP."""
    def __init__(self, hidden_channels, num_layers=3):
        super().__init__()
        self.embedding = torch.nn.Embedding(100, hidden_channels)
        self.expansion = GaussianExpansion()
        g = self.expansion.num_gaussians
        self.convs = torch.nn.ModuleList([
            NNConv(hidden_channels, hidden_channels, torch.nn.Sequential(
                torch.nn.Linear(g, hidden_channels), torch.nn.ReLU(),
                torch.nn.Linear(hidden_channels,
                                hidden_channels * hidden_channels)),
                   aggr='add') for _ in range(num_layers)
        ])
        self.readout1 = torch.nn.Linear(hidden_channels, hidden_channels // 2)
        self.readout2 = torch.nn.Linear(hidden_channels // 2, 1)

    def forward(self, z, pos, batch, edge_index=None, num_graphs=None):
        if edge_index is None:
            edge_index = molecular_graph(pos, batch)
        src, dst = edge_index
        e = self.expansion((pos[dst] - pos[src]).norm(dim=-1))
        h = self.embedding(z)
        for conv in self.convs:
            h = h + shifted_softplus(conv(h, edge_index, e))
        out = self.readout2(shifted_softplus(self.readout1(h)))
        return scatter(out, batch, dim=0, reduce='sum',
                       dim_size=num_graphs)


def _mb(v):
    return 'n/a' if v is None else f'{v:.1f} MB'


def _minus(a, b):
    return None if a is None or b is None else a - b


def make_models(hidden, hyper_channels):
    return {
        'hyper_factorized': lambda: HyperNMPEdge(
            hidden, hyper_channels=hyper_channels),
        'hyper_materialized': lambda: HyperNMPEdge(
            hidden, hyper_channels=hyper_channels, materialize=True),
        'hyper_edge_factorized': lambda: HyperNMPEdge(
            hidden, hyper_channels=hyper_channels, edge_hyper=True),
        'hyper_edge_materialized': lambda: HyperNMPEdge(
            hidden, hyper_channels=hyper_channels, edge_hyper=True,
            materialize=True),
        'nmp_edge': lambda: NMPEdge(hidden),
        'nnconv': lambda: NNConvNet(hidden),
    }


#: Models also timed under ``torch.compile`` with ``--compile``.
COMPILED = ('hyper_factorized', 'nmp_edge')
COMPILED_SUFFIX = '_compiled'


def estimated_gb(name, hidden, hyper_channels, num_nodes, num_edges):
    """Rough size of the per-row weights a materializing model keeps for
    backward (3 passes), to skip what cannot fit."""
    per_layer = 0
    if name in ('hyper_materialized', 'hyper_edge_materialized'):
        per_layer += 2 * num_nodes * hidden * (hidden + 1)
    if name in ('hyper_edge_materialized', 'nnconv'):
        per_layer += num_edges * hidden * hidden
    return 3 * 3 * per_layer * 4 / 2**30  # weights, their grads, temps


def prepare(model, batch, y, device, compiled=False):
    """Model, optimizer and a closure running one training step; measures
    peak memory and FLOPs of that step after a warm-up.

    Every model is given the full graph's edges and the molecule count
    (what a data pipeline precomputes), so eager and compiled rows time the
    same work. ``compiled``: the forward pass runs under
    ``torch.compile(fullgraph=True)``, where nothing may then have a
    value-dependent shape. Its FLOPs are counted on the same step run
    eagerly (the same math; inductor's kernels bypass the counter), and its
    peak memory is not measured (the dispatch-level tracker cannot see
    inside compiled kernels)."""
    model = model.to(device)
    opt = adam(model.parameters(), lr=1e-4)
    edge_index = molecular_graph(batch.pos, batch.batch)
    forward = torch.compile(model, fullgraph=True) if compiled else model

    def run(fwd):
        def step():
            out = fwd(batch.z, batch.pos, batch.batch, edge_index,
                      batch.num_graphs)
            loss = (out.view(-1) - y).abs().mean()
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
        return step

    eager, step = run(model), run(forward)
    step()  # warm-up: creates gradients and Adam state (and compiles)
    res = {'compiled': compiled,
           'peak_mb': None if compiled else peak_memory(step, device) / 2**20}
    res['gflops_per_step'] = count_flops(eager) / 1e9
    res['params'] = sum(p.numel() for p in model.parameters())
    return step, res


def load_batch(root, size, seed, max_molecules=None):
    # QM9 processes qm9pack into root on first use (about 3 minutes for all
    # molecules; max_molecules builds a smaller cache).
    ds = QM9(root, max_molecules=max_molecules, log=False)
    train = ds.get_idx_split()['train']
    g = torch.Generator().manual_seed(seed)
    pick = train[torch.randperm(train.numel(), generator=g)[:size]]
    return next(iter(DataLoader(ds[pick], batch_size=size))), len(ds)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--root', default='/tmp/qm9_bench')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--hidden', type=int, nargs='+', default=[64, 128])
    parser.add_argument('--hyper-channels', type=int, default=32)
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--max-gb', type=float, default=6.0)
    parser.add_argument('--device', type=benchmark_device, default='cpu')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-molecules', type=int, default=None,
                        help='build --root from the first N molecules only '
                        '(default: all, about 3 minutes once)')
    parser.add_argument('--batch-file', default=None,
                        help='a saved batch (torch.save) instead of --root')
    parser.add_argument('--save-batch', default=None,
                        help='also save the batch (to rerun elsewhere)')
    parser.add_argument('--only', nargs='*', default=None,
                        help='run only these model names')
    parser.add_argument('--compile', action='store_true',
                        help='also time ' + ', '.join(COMPILED) + ' under '
                        'torch.compile (about a minute of compilation each)')
    parser.add_argument('--out', default='benchmarks/results/qm9_step.json')
    add_malloc_option(parser)
    args = parser.parse_args()
    apply_malloc_option(args)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.batch_file:
        batch, num_molecules = torch.load(args.batch_file,
                                          weights_only=False), None
    else:
        batch, num_molecules = load_batch(args.root, args.batch_size,
                                          args.seed, args.max_molecules)
    if args.save_batch:
        torch.save(batch, args.save_batch)
    batch = batch.to(device)
    y = batch.y[:, 12].to(device)  # U0 atomization energy (eV)
    num_nodes = batch.num_nodes
    num_edges = int((torch.bincount(batch.batch)**2 -
                     torch.bincount(batch.batch)).sum())
    print(f'batch: {batch.num_graphs} molecules, {num_nodes} atoms, '
          f'{num_edges} directed pairs (full graph), device {device}')

    results = {}
    for hidden in args.hidden:
        # The hyper model's largest product: per-atom outer products
        # [N, (r+1)(C+1)] times the [(r+1)(C+1), C] output layer.
        mkn = (num_nodes, (args.hyper_channels + 1) * (hidden + 1), hidden)
        row, steps = {}, {}
        variants = [(name, make, False) for name, make in
                    make_models(hidden, args.hyper_channels).items()]
        if args.compile:
            variants += [(name + COMPILED_SUFFIX, make, True)
                         for name, make, _ in variants if name in COMPILED]
        for name, make, compiled in variants:
            if args.only and name.removesuffix(COMPILED_SUFFIX) \
                    not in args.only:
                continue
            gb = estimated_gb(name, hidden, args.hyper_channels, num_nodes,
                              num_edges)
            if device.type == 'cpu' and gb > args.max_gb:
                row[name] = {'skipped': f'estimated {gb:.1f} GB > '
                                        f'--max-gb {args.max_gb}'}
                print(f'  hidden {hidden} {name}: skipped ({gb:.1f} GB)')
                continue
            torch.manual_seed(args.seed)
            steps[name], row[name] = prepare(make(), batch, y, device,
                                             compiled)
        # Round-robin timing: every repetition times each model once, each
        # right after a plain matmul, so that load drifting on a shared
        # machine hits all models (and the matmul rate) alike.
        samples = {name: [] for name in steps}
        rates = []
        for _ in range(args.reps):
            for name, step in steps.items():
                rate = matmul_flop_rate(*mkn, device, repeat=3)
                t = time_fn(step, device, repeat=1, warmup=0)
                rates.append(rate)
                samples[name].append(
                    (t, t / (row[name]['gflops_per_step'] * 1e9 / rate)))
        rate = statistics.median(rates)
        row['matmul_gflops_per_s'] = rate / 1e9
        for name in steps:
            res = row[name]
            res['time_ms'] = 1e3 * statistics.median(t for t, _ in
                                                     samples[name])
            # The median of each repetition's expected time (its FLOPs at
            # the rate measured just before it), and the median of the
            # per-repetition ratios: a median of ratios need not equal the
            # ratio of the two medians.
            res['expected_ms_at_matmul_rate'] = 1e3 * statistics.median(
                t / r for t, r in samples[name])
            res['time_vs_flops'] = statistics.median(r for _, r in
                                                     samples[name])
            print(f"  hidden {hidden} {name}: {res['time_ms']:.1f} ms, "
                  f"peak {_mb(res['peak_mb'])}, "
                  f"{res['gflops_per_step']:.2f} GFLOP, "
                  f"time/FLOP-time {res['time_vs_flops']:.2f}")
        del steps
        results[hidden] = row

    print('\nratios (same run, same batch):')
    print(f"{'hidden':>6} {'mem mat/fact':>13} {'mem edge mat/fact':>18} "
          f"{'extra mem mat/fact':>19} {'time hyper/nmp':>15} "
          f"{'mem hyper/nmp':>14} {'hyper time/FLOP-time':>21} "
          f"{'extra time/FLOP-time':>21} {'time nnconv/nmp':>16}")
    summary = {}
    for hidden, row in results.items():
        def get(name, key):
            return row.get(name, {}).get(key)

        def ratio(a, b):
            return None if a is None or b is None or b == 0 else a / b

        s = {
            'mem_materialized_over_factorized': ratio(
                get('hyper_materialized', 'peak_mb'),
                get('hyper_factorized', 'peak_mb')),
            'mem_edge_materialized_over_factorized': ratio(
                get('hyper_edge_materialized', 'peak_mb'),
                get('hyper_edge_factorized', 'peak_mb')),
            'time_hyper_over_nmp_edge': ratio(
                get('hyper_factorized', 'time_ms'),
                get('nmp_edge', 'time_ms')),
            'mem_hyper_over_nmp_edge': ratio(
                get('hyper_factorized', 'peak_mb'),
                get('nmp_edge', 'peak_mb')),
            'hyper_time_vs_flops': get('hyper_factorized', 'time_vs_flops'),
            'time_nnconv_over_nmp_edge': ratio(get('nnconv', 'time_ms'),
                                               get('nmp_edge', 'time_ms')),
        }
        # What the generated weights add on top of the shared NMP-Edge work
        # (distance expansion, edge updates, messages): the hyper models
        # differ from NMP-Edge only in the state update, so the difference
        # isolates the cost of generating and applying weights. For memory
        # it is a difference of peaks, which may fall at different points of
        # the step: indicative only, and None when the peaks are equal.
        s['hyper_extra_mem_materialized_over_factorized'] = ratio(
            _minus(get('hyper_materialized', 'peak_mb'),
                   get('nmp_edge', 'peak_mb')),
            _minus(get('hyper_factorized', 'peak_mb'),
                   get('nmp_edge', 'peak_mb')))
        extra_flops = _minus(get('hyper_factorized', 'gflops_per_step'),
                             get('nmp_edge', 'gflops_per_step'))
        s['hyper_extra_time_vs_flops'] = ratio(
            _minus(get('hyper_factorized', 'time_ms'),
                   get('nmp_edge', 'time_ms')),
            None if extra_flops is None else
            1e3 * extra_flops * 1e9 / row['matmul_gflops_per_s'] / 1e9)
        s['target_mem_10x_met'] = (
            s['mem_materialized_over_factorized'] is not None
            and s['mem_materialized_over_factorized'] >= 10)
        s['target_time_within_1.5x_flops_met'] = (
            s['hyper_time_vs_flops'] is not None
            and s['hyper_time_vs_flops'] <= 1.5)
        # The same step under torch.compile (with --compile).
        hyper_c, nmp_c = 'hyper_factorized' + COMPILED_SUFFIX, \
            'nmp_edge' + COMPILED_SUFFIX
        s['compiled_hyper_time_vs_flops'] = get(hyper_c, 'time_vs_flops')
        s['compiled_nmp_edge_time_vs_flops'] = get(nmp_c, 'time_vs_flops')
        s['compiled_time_hyper_over_nmp_edge'] = ratio(
            get(hyper_c, 'time_ms'), get(nmp_c, 'time_ms'))
        s['compiled_speedup_hyper'] = ratio(
            get('hyper_factorized', 'time_ms'), get(hyper_c, 'time_ms'))
        s['compiled_hyper_extra_time_vs_flops'] = ratio(
            _minus(get(hyper_c, 'time_ms'), get(nmp_c, 'time_ms')),
            None if extra_flops is None else
            1e3 * extra_flops * 1e9 / row['matmul_gflops_per_s'] / 1e9)
        s['target_time_within_1.5x_flops_met_compiled'] = (
            s['compiled_hyper_time_vs_flops'] is not None
            and s['compiled_hyper_time_vs_flops'] <= 1.5)
        summary[hidden] = s

        def fmt(v):
            return f'{v:.2f}' if v is not None else 'n/a'
        print(f"{hidden:>6} "
              f"{fmt(s['mem_materialized_over_factorized']):>13} "
              f"{fmt(s['mem_edge_materialized_over_factorized']):>18} "
              f"{fmt(s['hyper_extra_mem_materialized_over_factorized']):>19} "
              f"{fmt(s['time_hyper_over_nmp_edge']):>15} "
              f"{fmt(s['mem_hyper_over_nmp_edge']):>14} "
              f"{fmt(s['hyper_time_vs_flops']):>21} "
              f"{fmt(s['hyper_extra_time_vs_flops']):>21} "
              f"{fmt(s['time_nnconv_over_nmp_edge']):>16}")
        if args.compile:
            print(f"{'':>6} compiled: hyper time/FLOP-time "
                  f"{fmt(s['compiled_hyper_time_vs_flops'])} (target <= 1.5: "
                  f"{'met' if s['target_time_within_1.5x_flops_met_compiled'] else 'NOT met'}), "
                  f"NMP-Edge {fmt(s['compiled_nmp_edge_time_vs_flops'])}, "
                  f"hyper/NMP-Edge {fmt(s['compiled_time_hyper_over_nmp_edge'])}, "
                  f"speed-up over eager {fmt(s['compiled_speedup_hyper'])}")

    record = {
        'benchmark': 'qm9_step',
        'command': ' '.join(sys.argv),
        'device': str(device),
        'environment': environment(device),
        'batch': {'molecules': batch.num_graphs, 'atoms': num_nodes,
                  'edges_full_graph': num_edges,
                  'from_dataset_of': num_molecules, 'seed': args.seed},
        'hyper_channels': args.hyper_channels,
        'reps': args.reps,
        'results': {str(k): v for k, v in results.items()},
        'summary': {str(k): v for k, v in summary.items()},
        'load_avg_1m': os.getloadavg()[0],
        'memory_method': 'pyg_hyper.utils.benchmark.peak_memory: peak of '
                         'live tensor bytes over one step after warm-up '
                         '(TorchDispatchMode on CPU, max_memory_allocated '
                         'on CUDA)',
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, record)


if __name__ == '__main__':
    main()
