"""Run by ``torchrun`` from ``test_ogb_task.py`` (not a test module): trains
one epoch of a tiny OGB model in each of the processes, once through the
task's DistributedDataParallel path and once with gradient averaging
switched off, and writes how far the processes' parameters drift apart.

    python -m torch.distributed.run --standalone --nproc_per_node=2 \
        tests/experiment/ddp_worker.py CONFIG ROOT OUT.json [OVERRIDES...]
"""
import json
import sys

import torch
import torch.distributed as dist

from pyg_hyper.experiment import build_config, get_task
from pyg_hyper.experiment import ogb_task
from pyg_hyper.experiment.distributed import init_from_env


def replica_spread(task, cfg, data):
    """Largest difference between the processes' parameters after one
    epoch from the same initial weights."""
    torch.manual_seed(0)
    model = task.build_model(cfg, data)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg['optim']['lr'])
    task.train_epoch(model, data, optimizer, cfg)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def main():
    config, root, out, *overrides = sys.argv[1:]
    cfg = build_config(config, overrides + [f'data.root={root}',
                                            'data.source='])
    device = torch.device('cpu')
    torch.set_num_threads(1)
    init_from_env(device)
    task = get_task(cfg['task'])
    data = task.data_for_seed(task.load_data(cfg, device), cfg, 0)
    synced = replica_spread(task, cfg, data)
    # The control: each process steps on its own half of every batch.
    ogb_task.wrap_ddp = lambda model: model
    unsynced = replica_spread(task, cfg, data)
    if dist.get_rank() == 0:
        with open(out, 'w') as f:
            json.dump({'synced': synced, 'unsynced': unsynced}, f)
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
