"""Several processes, one training: the fit loop under ``torchrun`` / ``accelerate launch``.

``fit`` needs no change: these helpers start the process group, wrap the
model in DistributedDataParallel and give each process its shard of the
data. ``fit`` then averages the metrics over processes (so every process
takes the same early-stopping decision) and only rank 0 writes checkpoints.
Checkpoints hold the unwrapped model's keys (no ``module.`` prefix), so
``training.load_weights`` loads them into a plain model; older DDP checkpoints
with the prefix load too (``training.load_state`` strips it).

Example (2 CPU processes; on GPUs use ``--nproc_per_node=<number of GPUs>``)::

    torchrun --nproc_per_node=2 -m tlcourse.finetune_job --epochs 3

    >>> is_distributed()          # a plain process
    False
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .device import pick_device


def is_distributed() -> bool:
    """True inside a process started by torchrun / accelerate with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join_process_group() -> torch.device:
    """Join the process group (NCCL on GPUs, gloo on CPUs) and return this process's device."""
    if not is_distributed():
        return pick_device()
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Only the main process prints summaries and writes files."""
    return rank() == 0


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` when distributed, else the model itself."""
    model = model.to(device)
    if not (dist.is_available() and dist.is_initialized()):
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def loader(dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A DataLoader that reads only this process's shard (``fit`` sets the epoch)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def all_sum(*values: torch.Tensor) -> list[torch.Tensor]:
    """Sum tensors over all processes (no-op in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    out = []
    for v in values:
        v = v.clone().double()
        dist.all_reduce(v)
        out.append(v)
    return out


def cleanup() -> None:
    """Leave the process group."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
