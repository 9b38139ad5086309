"""Training throughput on ogbg-molhiv: GIN vs Hyper-GIN (full and cheap) at
the leaderboard configuration (5 layers, width 300, batch 32, Adam), in one
run on the same batches.

Reports, side by side:

* graphs per second and time per training step of each model;
* Hyper-GIN's step time against what its FLOP count (matrix products,
  counted by ``torch.utils.flop_counter`` on the very same batches) takes at
  the plain-matmul rate of its dominant product shape, timed right before
  each of its steps; the median over steps (target: within 1.5x, i.e. the
  generated weights cost no more than their FLOPs need). The models are
  timed one step of each in turn, so load that comes and goes on a shared
  machine hits all of them alike;
* the cheap Hyper-GIN's epoch time against GIN's (target: within 3x).

Writes a JSON record (default ``benchmarks/results/bench_ogb_throughput.json``).

    python benchmarks/bench_ogb_throughput.py                  # CPU, 1 thread
    python benchmarks/bench_ogb_throughput.py --device cuda --steps 50
    python benchmarks/bench_ogb_throughput.py --quick          # smoke run
"""
import argparse
import os.path as osp
import shutil
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch_geometric.loader import DataLoader
from tqdm import tqdm

from pyg_hyper.datasets import OGBGraphDataset
from pyg_hyper.nn.models import OGBMolGNN
from pyg_hyper.nn.models.ogb_mol import HYPER_GIN_CONFIGS
from pyg_hyper.experiment.results import atomic_write_json
from pyg_hyper.experiment.task import adam
from pyg_hyper.utils.benchmark import (
    benchmark_device,
    count_flops,
    environment,
    matmul_flop_rate,
)
from pyg_hyper.utils.malloc import (
    add_malloc_option,
    apply_malloc_option,
)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_batches(args, device):
    folder = 'ogbg_' + args.dataset.replace('ogbg-', '')
    if not osp.isdir(osp.join(args.root, folder)):
        if not osp.isdir(osp.join(args.source, folder)):
            raise SystemExit(
                f"bench_ogb_throughput: '{args.dataset}' is neither in "
                f"--root {args.root} nor in --source {args.source} (expected "
                f"the folder '{folder}' in OGB's raw layout in one of them)")
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


class _Trainee:
    """One model with its optimizer and a training step on a batch."""
    def __init__(self, kwargs, num_tasks, device):
        torch.manual_seed(0)
        self.kwargs = kwargs
        self.model = OGBMolGNN(num_tasks, **kwargs).to(device).train()
        self.optimizer = adam(self.model.parameters(), lr=1e-3)

    def step(self, batch):
        self.optimizer.zero_grad()
        out = self.model(batch.x, batch.edge_index, batch.edge_attr,
                         batch.batch, batch.num_graphs)
        F.binary_cross_entropy_with_logits(
            out, batch.y.to(out.dtype).view(out.shape)).backward()
        self.optimizer.step()


def measure(models, num_tasks, batches, args, device):
    """Times every model on the same batches, one step of each in turn, so
    that load coming and going on a shared machine hits all of them alike.
    Right before each Hyper-GIN step the plain-matmul yardstick of that
    batch's shape is timed, and the step is compared with its own FLOPs at
    that rate; the reported ratio is the median over steps."""
    trainees = {name: _Trainee(kw, num_tasks, device)
                for name, kw in models.items()}
    for trainee in trainees.values():
        for batch in batches[:args.warmup]:
            trainee.step(batch)
    timed = batches[args.warmup:]
    # FLOPs of every timed batch, counted in an untimed pass.
    flops = {name: [count_flops(lambda: t.step(b)) for b in timed]
             for name, t in trainees.items()}
    seconds = {name: [] for name in trainees}
    vs_flops = {name: [] for name in trainees}
    rates = {name: [] for name in trainees}
    for i, batch in enumerate(tqdm(timed, desc='timed steps')):
        for name, trainee in trainees.items():
            cfg = HYPER_GIN_CONFIGS.get(name.split('_')[-1])
            if cfg is not None:
                # The dominant product: rows = the batch's nodes,
                # (r + 1)(F_in + 1) -> F_out, forward and backward.
                k = (cfg['hyper_channels'] + 1) * (trainee.model.emb_dim +
                                                   1)
                rate = matmul_flop_rate(batch.num_nodes, k,
                                        cfg['hyper_hidden_channels'], device,
                                        repeat=3)
            sync(device)
            start = time.perf_counter()
            trainee.step(batch)
            sync(device)
            seconds[name].append(time.perf_counter() - start)
            if cfg is not None:
                rates[name].append(rate)
                vs_flops[name].append(seconds[name][-1] /
                                      (flops[name][i] / rate))
    records = {}
    for name, trainee in trainees.items():
        total = sum(seconds[name])
        graphs = sum(b.num_graphs for b in timed)
        rec = {
            'config': trainee.kwargs,
            'num_params': sum(p.numel() for p in trainee.model.parameters()),
            'steps': len(timed),
            'graphs': graphs,
            'seconds': total,
            'step_s': total / len(timed),
            'step_s_median': statistics.median(seconds[name]),
            'graphs_per_s': graphs / total,
            'matmul_flops_per_step': sum(flops[name]) / len(timed),
        }
        if vs_flops[name]:
            rec['matmul_rate_flops'] = statistics.median(rates[name])
            rec['step_vs_flop_time_per_step'] = vs_flops[name]
            rec['step_vs_flop_time'] = statistics.median(vs_flops[name])
        records[name] = rec
        print(f"{name:>16}: {rec['graphs_per_s']:9.1f} graphs/s, "
              f"{1e3 * rec['step_s']:9.1f} ms/step, "
              f"{rec['matmul_flops_per_step'] / 1e9:8.2f} GFLOP/step, "
              f"{rec['num_params']:>11,} params", flush=True)
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', default='ogbg-molhiv')
    parser.add_argument('--root', default=osp.join(REPO, 'data', 'OGB'),
                        help='writable OGB root (default: %(default)s)')
    parser.add_argument('--source',
                        default=osp.join(REPO, '..', 'shared', 'data', 'OGB'),
                        help='read-only OGB files copied to --root if absent')
    parser.add_argument('--device', type=benchmark_device, default='cpu')
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
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    apply_malloc_option(args)
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
    records = measure(models, num_tasks, batches, args, device)
    timed = batches[args.warmup:]  # fewer than --steps on a small set
    nodes = sum(b.num_nodes for b in timed) / len(timed)
    ratios = {f'{name}_step_vs_flop_time': records[name]['step_vs_flop_time']
              for name in ('hyper_gin_full', 'hyper_gin_cheap')}
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
        atomic_write_json(args.out, record)
        print(f'\nwrote {args.out}')
    return record


if __name__ == '__main__':
    main()
