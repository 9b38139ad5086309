"""Times the pieces of one cpu-budget QM9 run (train steps at batch 32,
evaluation forwards at batch 128) for NMP-Edge and Hyper-NMP-Edge, and
prints how many epochs of a given training subset fit a time budget.

    taskset -c 0,1 python benchmarks/calibrate_qm9_cpu_budget.py \
        --batch-file .devdata/qm9_batch128.pt --threads 2 \
        --out benchmarks/results/qm9_cpu_budget_calibration.json

Used to size ``experiments/qm9/configs/cpu_budget_base.yaml``.
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch
from torch_geometric.data import Batch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from pyg_hyper.experiment.results import atomic_write_json  # noqa: E402
from pyg_hyper.nn.models import HyperNMPEdge, NMPEdge  # noqa: E402
from pyg_hyper.experiment.task import adam  # noqa: E402
from pyg_hyper.utils.malloc import (  # noqa: E402
    add_malloc_option,
    apply_malloc_option,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--batch-file', required=True)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--train-molecules', type=int, default=10000)
    parser.add_argument('--eval-molecules', type=int, default=6000,
                        help='val + test + train-eval molecules per eval')
    parser.add_argument('--eval-every', type=int, default=3)
    parser.add_argument('--budget-s', type=float, default=1200)
    parser.add_argument('--reps', type=int, default=6)
    parser.add_argument('--out', default=None)
    add_malloc_option(parser)
    args = parser.parse_args()
    apply_malloc_option(args)
    torch.set_num_threads(args.threads)

    big = torch.load(args.batch_file, weights_only=False)
    graphs = big.to_data_list()
    small = [Batch.from_data_list(graphs[i:i + 32]) for i in range(0, 128, 32)]
    record = {'threads': args.threads, 'python': platform.python_version(),
              'torch': torch.__version__, 'models': {}}
    for name, model in (('nmp_edge', NMPEdge(64)),
                        ('hyper_nmp_edge', HyperNMPEdge(64,
                                                        hyper_channels=32))):
        opt = adam(model.parameters(), lr=5e-4)
        times = []
        for rep in range(args.reps + 1):
            b = small[rep % len(small)]
            start = time.perf_counter()
            loss = (model(b.z, b.pos, b.batch).view(-1) - b.y[:, 12]).abs() \
                .mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if rep:  # the first step warms up
                times.append(time.perf_counter() - start)
        step_s = statistics.median(times)
        with torch.no_grad():
            fwd = []
            for _ in range(3):
                start = time.perf_counter()
                model(big.z, big.pos, big.batch)
                fwd.append(time.perf_counter() - start)
        fwd_per_mol = statistics.median(fwd) / 128
        epoch_s = step_s * args.train_molecules / 32
        eval_s = fwd_per_mol * args.eval_molecules
        per_epoch = epoch_s + eval_s / args.eval_every
        record['models'][name] = {
            'train_step_s_batch32': step_s,
            'eval_forward_s_per_molecule': fwd_per_mol,
            'epoch_s': epoch_s, 'eval_s': eval_s,
            'epochs_in_budget': int(args.budget_s // per_epoch),
        }
        print(f'{name}: {step_s * 1e3:.0f} ms/step (batch 32), epoch of '
              f'{args.train_molecules} molecules {epoch_s:.0f} s, eval '
              f'{eval_s:.0f} s -> {int(args.budget_s // per_epoch)} epochs '
              f'in {args.budget_s:.0f} s')
    if args.out:
        atomic_write_json(args.out, record)


if __name__ == '__main__':
    main()
