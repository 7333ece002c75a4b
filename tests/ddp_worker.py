"""Run by test_distributed.py under torchrun: fit a small model with DDP (gloo, CPU)."""
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from tlcourse import distributed, training


def main() -> None:
    out = Path(sys.argv[1])
    device = distributed.join_process_group()
    training.seed_everything(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    data = TensorDataset(x, y)
    torch.manual_seed(distributed.rank())  # different start on purpose: DDP must synchronise it
    model = distributed.wrap(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)), device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    h = training.fit(model, distributed.loader(data, 16), distributed.loader(data, 64, shuffle=False),
                     opt, 4, checkpoint_dir=out / "ckpt", progress=False)
    torch.save({"weights": model.module.state_dict(), "history": h.to_dict()}, out / f"rank{distributed.rank()}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main()
