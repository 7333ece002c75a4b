"""Run by test_distributed.py under torchrun: fit a small model with DDP (gloo, CPU).

Every ``dist.all_reduce`` goes through :func:`require_collective_device`, which rejects what
NCCL (torchrun's backend on GPUs) rejects: a tensor that is not on the process's training
device. On a CPU that device is the host, so a tensor the package copied there with ``.cpu()``
(on a GPU: off the GPU) is tagged and counts as on the wrong device. That is the check that
would have caught the metrics reaching NCCL as CPU tensors (issue 29) on a machine with no GPU.

    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py OUT_DIR
"""
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import TensorDataset

from tlcourse.infra import distributed
from tlcourse import training


class HostCopy(torch.Tensor):
    """A tensor the package moved to the host with ``.cpu()``; ops on it stay tagged."""


def require_collective_device(device: torch.device) -> list[str]:
    """Make ``dist.all_reduce`` fail like NCCL on a tensor off ``device``; returns the checked devices.

    >>> checked = require_collective_device(torch.device("cpu"))  # doctest: +SKIP
    """
    real_cpu, real_all_reduce, checked = torch.Tensor.cpu, dist.all_reduce, []

    def cpu(self: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = real_cpu(self, *args, **kwargs)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        # a no-op on a CPU tensor, a device-to-host copy on a GPU: tag what the package copies
        return out.as_subclass(HostCopy) if caller.startswith("tlcourse") else out

    def all_reduce(tensor: torch.Tensor, *args, **kwargs):
        where = "the host (a .cpu() copy made by tlcourse)" if isinstance(tensor, HostCopy) else str(tensor.device)
        if isinstance(tensor, HostCopy) or tensor.device != device:
            raise RuntimeError(f"collective device check: all_reduce got a tensor on {where}; "
                               f"this process trains on {device} and its backend (like NCCL) reduces only there")
        checked.append(str(tensor.device))
        return real_all_reduce(tensor, *args, **kwargs)

    torch.Tensor.cpu, dist.all_reduce = cpu, all_reduce
    return checked


def main() -> None:
    out = Path(sys.argv[1])
    device = distributed.join_process_group()
    checked = require_collective_device(device)
    training.seed_everything(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    data = TensorDataset(x, y)
    torch.manual_seed(distributed.rank())  # different start on purpose: DDP must synchronise it
    model = distributed.wrap(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)), device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    h = training.fit(model, distributed.loader(data, 16), distributed.loader(data, 64, shuffle=False),
                     opt, 4, checkpoint_dir=out / "ckpt", progress=False, device=device)
    torch.save({"weights": {k: v.cpu() for k, v in model.module.state_dict().items()}, "history": h.to_dict(),
                "collectives": checked, "device": str(device)}, out / f"rank{distributed.rank()}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main()
