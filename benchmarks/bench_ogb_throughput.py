"""Training throughput on ogbg-molhiv: GIN vs Hyper-GIN (full and cheap) at
the leaderboard configuration (5 layers, width 300, batch 32, Adam), in one
run on the same batches.

Reports, side by side:

* graphs per second and time per training step of each model;
* Hyper-GIN's step time against what its FLOP count (matrix products,
  counted by ``torch.utils.flop_counter`` over the very same steps) takes at
  the plain-matmul rate measured in this run for its dominant product shape
  (target: within 1.5x, i.e. the generated weights cost no more than their
  FLOPs need);
* the cheap Hyper-GIN's epoch time against GIN's (target: within 3x).

Writes a JSON record (default ``benchmarks/results/bench_ogb_throughput.json``).

    python benchmarks/bench_ogb_throughput.py                  # CPU, 1 thread
    python benchmarks/bench_ogb_throughput.py --device cuda --steps 50
    python benchmarks/bench_ogb_throughput.py --quick          # smoke run
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from torch_geometric.loader import DataLoader

from pyg_hyper.datasets import OGBGraphDataset
from pyg_hyper.nn.models import OGBMolGNN
from pyg_hyper.nn.models.ogb_mol import HYPER_GIN_CONFIGS
from pyg_hyper.utils.benchmark import (
    environment,
    matmul_flop_rate,
    write_json_atomic,
)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_batches(args, device):
    folder = 'ogbg_' + args.dataset.replace('ogbg-', '')
    if not osp.isdir(osp.join(args.root, folder)):
        shutil.copytree(osp.join(args.source, folder),
                        osp.join(args.root, folder))
    dataset = OGBGraphDataset(args.root, args.dataset, download=False)
    train = dataset[dataset.get_idx_split()['train']]
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    batches = []
    for batch in loader:
        if len(batches) == args.warmup + args.steps:
            break
        batches.append(batch.to(device))
    return dataset.num_tasks, batches


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(name, kwargs, num_tasks, batches, args, device):
    torch.manual_seed(0)
    model = OGBMolGNN(num_tasks, **kwargs).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch):
        optimizer.zero_grad()
        out = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch,
                    batch.num_graphs)
        F.binary_cross_entropy_with_logits(
            out, batch.y.to(out.dtype).view(out.shape)).backward()
        optimizer.step()

    for batch in batches[:args.warmup]:
        step(batch)
    timed = batches[args.warmup:]
    sync(device)
    start = time.perf_counter()
    for batch in timed:
        step(batch)
    sync(device)
    seconds = time.perf_counter() - start
    # FLOPs of the same steps, counted in a separate, untimed pass.
    counter = FlopCounterMode(display=False)
    with counter:
        for batch in timed:
            step(batch)
    graphs = sum(b.num_graphs for b in timed)
    record = {
        'config': kwargs,
        'num_params': sum(p.numel() for p in model.parameters()),
        'steps': len(timed),
        'graphs': graphs,
        'seconds': seconds,
        'step_s': seconds / len(timed),
        'graphs_per_s': graphs / seconds,
        'matmul_flops_per_step': counter.get_total_flops() / len(timed),
    }
    print(f"{name:>16}: {record['graphs_per_s']:9.1f} graphs/s, "
          f"{1e3 * record['step_s']:9.1f} ms/step, "
          f"{record['matmul_flops_per_step'] / 1e9:8.2f} GFLOP/step, "
          f"{record['num_params']:>11,} params", flush=True)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', default='ogbg-molhiv')
    parser.add_argument('--root', default=osp.join(REPO, 'data', 'OGB'),
                        help='writable OGB root (default: %(default)s)')
    parser.add_argument('--source',
                        default=osp.join(REPO, '..', 'shared', 'data', 'OGB'),
                        help='read-only OGB files copied to --root if absent')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=8)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--virtual-node', action='store_true',
                        help='benchmark the +virtual-node models instead')
    parser.add_argument('--quick', action='store_true',
                        help='molbace, 2 steps: a smoke run, not a result')
    parser.add_argument('--out', default=osp.join(
        REPO, 'benchmarks', 'results', 'bench_ogb_throughput.json'))
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.steps, args.warmup = 'ogbg-molbace', 2, 1
    device = torch.device(args.device)
    if device.type == 'cpu':
        torch.set_num_threads(args.threads)

    num_tasks, batches = load_batches(args, device)
    vn = dict(virtual_node=args.virtual_node)
    models = {
        'gin': dict(conv='gin', **vn),
        'hyper_gin_full': dict(conv='hyper_gin', **HYPER_GIN_CONFIGS['full'],
                               **vn),
        'hyper_gin_cheap': dict(conv='hyper_gin',
                                **HYPER_GIN_CONFIGS['cheap'], **vn),
    }
    records = {name: measure(name, kw, num_tasks, batches, args, device)
               for name, kw in models.items()}

    # The plain-matmul yardstick: Hyper-GIN's dominant product (rows = the
    # nodes of a batch, (r + 1)(F_in + 1) -> F_out), forward and backward.
    nodes = sum(b.num_nodes for b in batches[args.warmup:]) / args.steps
    ratios = {}
    for name in ('hyper_gin_full', 'hyper_gin_cheap'):
        cfg = HYPER_GIN_CONFIGS[name.split('_')[-1]]
        k = (cfg['hyper_channels'] + 1) * (300 + 1)
        rate = matmul_flop_rate(int(nodes), k, cfg['hyper_hidden_channels'],
                                device)
        rec = records[name]
        rec['matmul_rate_flops'] = rate
        rec['flop_time_s'] = rec['matmul_flops_per_step'] / rate
        ratios[f'{name}_step_vs_flop_time'] = rec['step_s'] / rec['flop_time_s']
    ratios['hyper_gin_cheap_epoch_vs_gin'] = (
        records['hyper_gin_cheap']['seconds'] / records['gin']['seconds'])
    ratios['hyper_gin_full_epoch_vs_gin'] = (
        records['hyper_gin_full']['seconds'] / records['gin']['seconds'])
    targets = {
        'hyper_gin_full_step_within_1.5x_flop_time':
        ratios['hyper_gin_full_step_vs_flop_time'] <= 1.5,
        'hyper_gin_cheap_epoch_within_3x_gin':
        ratios['hyper_gin_cheap_epoch_vs_gin'] <= 3.0,
    }
    print('\nratios (measured side by side in this run):')
    for key, value in ratios.items():
        print(f'  {key:>36}: {value:6.2f}x')
    for key, met in targets.items():
        print(f"  target {key}: {'met' if met else 'NOT met'}")

    record = {
        'benchmark': 'bench_ogb_throughput',
        'command': ' '.join([osp.basename(sys.executable)] + sys.argv),
        'dataset': args.dataset,
        'batch_size': args.batch_size,
        'virtual_node': args.virtual_node,
        'mean_nodes_per_batch': nodes,
        'environment': environment(device),
        'models': records,
        'ratios': ratios,
        'targets_met': targets,
    }
    if not args.quick:
        write_json_atomic(args.out, record)
        print(f'\nwrote {args.out}')
    return record


if __name__ == '__main__':
    main()
