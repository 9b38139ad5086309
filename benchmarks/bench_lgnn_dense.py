"""LGNN on dense features: the per-edge transform in edge blocks vs at once.

On dense inputs with node-level localization and per-edge work (edge-level
localization, LGAT, LGIN), every edge needs
:math:`(\\mathbf{h}_u \\odot \\boldsymbol{\\gamma}_v) \\mathbf{W} +
(\\mathbf{h}_u \\cdot \\boldsymbol{\\beta}_v)`. Computed over all edges at
once (the form ``torch.compile`` traces), the gathered rows and their
products are [E x d_in] tensors; the eager default walks edge blocks whose
temporaries stay in cache (``_BlockedEdgeTransform``). This script times a
forward + backward of both on one graph's first LGCN layer (the shapes of
a real training step: the graph's edges plus self loops, its feature width,
hidden 8), interleaved round by round, with the peak memory of each, and a
whole LGCN training epoch with the default path for scale. Writes a JSON
record.

    python benchmarks/bench_lgnn_dense.py [--dataset Photo] [--root data]
        [--rounds 3] [--threads 1]
        [--out benchmarks/results/bench_lgnn_dense.json]
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from torch_geometric.utils import add_self_loops  # noqa: E402

from pyg_hyper.datasets import load_node_dataset, make_split  # noqa: E402
from pyg_hyper.experiment.results import (  # noqa: E402
    atomic_write_json,
    environment_record,
)
from pyg_hyper.nn.localization import (  # noqa: E402
    _BlockedEdgeTransform,
    _vectorized_edge_transform,
    edge_block_size,
)
from pyg_hyper.nn.models import LGNN  # noqa: E402
from pyg_hyper.experiment.task import adam  # noqa: E402
from pyg_hyper.utils.benchmark import (  # noqa: E402
    peak_memory,
)
from pyg_hyper.utils.malloc import (  # noqa: E402
    add_malloc_option,
    apply_malloc_option,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='Photo')
    parser.add_argument('--root', default='data')
    parser.add_argument('--raw-source', default=None,
                        help='folder with raw copies (e.g. ../shared/data)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', default=os.path.join(
        os.path.dirname(__file__), 'results', 'bench_lgnn_dense.json'))
    add_malloc_option(parser)
    args = parser.parse_args()
    apply_malloc_option(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    data = load_node_dataset(args.dataset, args.root,
                             raw_source=args.raw_source)[0]
    x = data.x.to_dense() if data.x.is_sparse else data.x
    n, d_in = x.shape
    src, dst = add_self_loops(data.edge_index, num_nodes=n)[0]
    gamma = (torch.rand(n, d_in) + 0.5).requires_grad_()
    beta = (0.1 * torch.randn(n, d_in)).requires_grad_()
    weight = torch.randn(d_in, 8).requires_grad_()
    probe = torch.randn(src.numel(), 8)
    block = edge_block_size(d_in, x.device)

    def step(blocked):
        def run():
            if blocked:
                out = _BlockedEdgeTransform.apply(x, gamma, beta, weight,
                                                  src, dst, block)
            else:
                out = _vectorized_edge_transform(x, gamma, beta, weight, src,
                                                 dst)
            torch.autograd.grad((out * probe).sum(), (gamma, beta, weight))
        return run

    variants = {'at once (vectorized)': step(False),
                f'edge blocks ({block} edges)': step(True)}
    times = {k: [] for k in variants}
    for r in range(args.rounds + 1):  # round 0 warms up
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            if r > 0:
                times[name].append(time.perf_counter() - start)
    peaks = {k: peak_memory(fn, x.device) / 2**20
             for k, fn in variants.items()}
    seconds = {k: statistics.median(v) for k, v in times.items()}

    # A whole LGCN training epoch (default path) on the same graph.
    mask = make_split(data, 'lgnn-val100', seed=0).train_mask
    model = LGNN(d_in, 8, int(data.y.max()) + 1, backbone='gcn',
                 cached=True, sparse_input=False)
    opt = adam(model.parameters(), lr=0.005)

    def epoch():
        opt.zero_grad()
        out, reg = model(x, data.edge_index, return_regularizer=True)
        (F.cross_entropy(out[mask], data.y[mask]) + reg).backward()
        opt.step()

    epoch()
    epoch_times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        epoch()
        epoch_times.append(time.perf_counter() - start)

    names = list(variants)
    ratios = {
        'time at once / blocks': seconds[names[0]] / seconds[names[1]],
        'peak memory at once / blocks': peaks[names[0]] / peaks[names[1]],
    }
    print(f'{args.dataset}: {n} nodes, {src.numel()} edges with self loops, '
          f'{d_in} features; first-layer transform, forward + backward '
          f'(median of {args.rounds} rounds)')
    for k in names:
        print(f'{k:34s} {seconds[k]:8.3f} s {peaks[k]:10.1f} MB peak')
    for k, v in ratios.items():
        print(f'{k:34s} {v:8.2f}x')
    lgcn_epoch = statistics.median(epoch_times)
    print(f'LGCN training epoch (whole graph, default path): '
          f'{lgcn_epoch:.2f} s')
    atomic_write_json(args.out, {
        'benchmark': 'bench_lgnn_dense',
        'environment': environment_record('cpu'),
        'settings': vars(args),
        'graph': {'dataset': args.dataset, 'nodes': n,
                  'edges_with_self_loops': src.numel(),
                  'features': d_in},
        'seconds': seconds,
        'peak_mb': peaks,
        'ratios': ratios,
        'lgcn_epoch_s': lgcn_epoch,
        'raw_s': times,
    })
    print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
