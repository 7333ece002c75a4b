"""Checkpoints written under DistributedDataParallel load into a plain model, and back."""
from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import training
from tlcourse.errors import CourseError


def small_net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_a_module_prefixed_state_dict_loads_into_a_plain_model(tmp_path):
    torch.manual_seed(0)
    trained = small_net()
    ddp_style = {f"module.{k}": v for k, v in trained.state_dict().items()}  # what DDP's state_dict() gives
    torch.save(ddp_style, tmp_path / "ddp.pt")
    torch.save({"model": ddp_style}, tmp_path / "fit.pt")
    with pytest.raises(RuntimeError, match="Unexpected key"):  # plain PyTorch refuses it
        small_net().load_state_dict(ddp_style)
    for name in ("ddp.pt", "fit.pt"):
        plain = training.load_weights(small_net(), tmp_path / name)
        assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), trained.state_dict().values()))


def test_a_model_whose_own_keys_start_with_module_keeps_them():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(2, 2)

    state = Holder().state_dict()
    assert list(state) == ["module.weight", "module.bias"]
    training.load_state(Holder(), state)  # not stripped: these are the model's real names


def test_a_wrong_checkpoint_still_gives_the_clear_error(tmp_path):
    torch.save({"module.0.weight": torch.zeros(3, 3)}, tmp_path / "other.pt")
    with pytest.raises(CourseError, match="does not fit this model"):
        training.load_weights(small_net(), tmp_path / "other.pt")


@pytest.fixture
def one_process_group():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_fit_under_ddp_writes_checkpoints_a_plain_model_loads(tmp_path, one_process_group):
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    ddp = nn.parallel.DistributedDataParallel(small_net())
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    training.fit(ddp, loader, loader, opt, 2, checkpoint_dir=tmp_path, progress=False)
    for name in ("best.pt", "last.pt"):
        plain = training.load_weights(small_net(), tmp_path / name)
        assert plain(x).shape == (64, 2)
    best = training.load_weights(small_net(), tmp_path / "best.pt")
    assert all(torch.equal(a, b) for a, b in zip(best.state_dict().values(), ddp.module.state_dict().values()))
    # and a DDP run resumes from its own checkpoint
    again = nn.parallel.DistributedDataParallel(small_net())
    opt2 = torch.optim.SGD(again.parameters(), lr=0.1)
    h = training.fit(again, loader, loader, opt2, 3, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert h.epochs == 3


def test_save_checkpoint_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "run" / "last.pt"
    training.save_checkpoint(path, model=small_net().state_dict(), epoch=1)
    training.save_checkpoint(path, model=small_net().state_dict(), epoch=2)
    assert training.load_checkpoint(path)["epoch"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
