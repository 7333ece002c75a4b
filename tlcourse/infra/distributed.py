"""Several processes, one training: the fit loop under ``torchrun`` / ``accelerate launch``.

``fit`` needs no change: these helpers start the process group, wrap the
model in DistributedDataParallel and give each process its shard of the
data. ``fit`` then averages the metrics over processes (so every process
takes the same early-stopping decision) and only rank 0 writes checkpoints.
Checkpoints hold the unwrapped model's keys (no ``module.`` prefix), so
``training.load_weights`` loads them into a plain model; older DDP checkpoints
with the prefix load too (``training.load_state`` strips it).

Example (2 CPU processes; on GPUs use ``--nproc_per_node=<number of GPUs>``)::

    torchrun --nproc_per_node=2 -m tlcourse.labs.fine_tuning --epochs 3

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


def world_size() -> int:
    """How many processes train together (1 when not distributed).

    >>> world_size()
    1
    """
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def backend() -> str:
    """The process group's backend (``"nccl"``, ``"gloo"``...), ``"none"`` when not distributed.

    >>> backend()
    'none'
    """
    return str(dist.get_backend()) if dist.is_available() and dist.is_initialized() else "none"


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


def backend_device(name: str, cuda_index: int = 0) -> torch.device:
    """The device a process-group backend reduces on: CUDA for NCCL, the CPU for gloo and MPI.

    ``name`` is what ``dist.get_backend()`` says: ``"nccl"``, ``"gloo"``, or a per-device
    list such as ``"cpu:gloo,cuda:nccl"`` (CUDA tensors then go through NCCL).

    >>> backend_device("gloo"), backend_device("nccl", 1), backend_device("cpu:gloo,cuda:nccl")
    (device(type='cpu'), device(type='cuda', index=1), device(type='cuda', index=0))
    """
    return torch.device("cuda", cuda_index) if "nccl" in name.lower() else torch.device("cpu")


def collective_device() -> torch.device:
    """The device this process's collectives need their tensors on (the CPU when not distributed).

    NCCL, the backend ``torchrun`` uses on GPUs, accepts only tensors on the process's own
    GPU; gloo only CPU tensors.

    >>> collective_device()      # a plain process
    device(type='cpu')
    """
    return backend_device(backend(), torch.cuda.current_device() if torch.cuda.is_available() else 0)


def all_sum(*values: torch.Tensor) -> list[torch.Tensor]:
    """Sum tensors over all processes in float64 (no-op in a single process).

    Whatever device the tensors are on, they travel in one float64 tensor on
    :func:`collective_device` (one collective, not one per value) and come back on their own
    devices (float64: counts stay exact and float32 sums lose nothing on the way).

    >>> all_sum(torch.tensor(2.5), torch.tensor(3))      # a plain process: unchanged
    [tensor(2.5000), tensor(3)]
    """
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    flat = torch.cat([v.detach().reshape(-1).to(collective_device(), torch.float64) for v in values])
    dist.all_reduce(flat)
    out, start = [], 0
    for v in values:
        out.append(flat[start:start + v.numel()].reshape(v.shape).to(v.device))
        start += v.numel()
    return out


def cleanup() -> None:
    """Leave the process group."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
