r"""Scale-out with PyTorch's own distributed engine.

Launched by ``torchrun --nproc_per_node N``, every process runs the same
``pyg-hyper train`` command: the same seeds, epochs and model selection. A
task that supports it (e.g. the OGB task) trains each seed with
:class:`~torch.nn.parallel.DistributedDataParallel` over a
:class:`~torch.utils.data.DistributedSampler`, so the N processes share each
global batch; only the main process (rank 0) writes results. Without
torchrun's environment everything here is a no-op: one process, rank 0.
"""
import os
from typing import Tuple

import torch
import torch.distributed as dist

__all__ = [
    'init_from_env',
    'rank_and_world',
    'is_main_process',
    'wrap_ddp',
    'broadcast_buffers',
    'all_agree',
]


def init_from_env(device: torch.device) -> Tuple[int, int]:
    r"""Joins the process group that ``torchrun`` describes in the
    environment (:obj:`WORLD_SIZE > 1`), with the NCCL backend on CUDA and
    gloo on CPU, and pins a CUDA process to its :obj:`LOCAL_RANK` device.
    Returns :obj:`(rank, world_size)`."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world > 1 and not dist.is_initialized():
        if device.type == 'cuda':
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', '0')))
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return rank_and_world()


def rank_and_world() -> Tuple[int, int]:
    r"""This process's rank and the number of processes (:obj:`(0, 1)`
    when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    r"""Whether this process writes results: rank 0, judged by the process
    group or, before one is joined, by torchrun's :obj:`RANK`."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get('RANK', '0')) == 0


def wrap_ddp(model: torch.nn.Module) -> torch.nn.Module:
    r"""Wraps :obj:`model` (already on its device) in
    :class:`~torch.nn.parallel.DistributedDataParallel` when distributed;
    returns it unchanged otherwise. The wrapper shares the model's
    parameters, so the runner keeps saving the plain model."""
    if rank_and_world()[1] == 1:
        return model
    device = next(model.parameters()).device
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == 'cuda' else None)


def broadcast_buffers(model: torch.nn.Module) -> None:
    r"""Copies rank 0's buffers (e.g. BatchNorm running statistics, which
    each process updates from its own batches) to every process, so that all
    processes evaluate the same model."""
    if rank_and_world()[1] == 1:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def all_agree(flag: bool, device: torch.device) -> bool:
    r"""Whether :obj:`flag` holds on every process (a collective: all
    processes must call it). Used for decisions such as skipping a batch,
    which would deadlock DDP if only some processes took them."""
    if rank_and_world()[1] == 1:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())
