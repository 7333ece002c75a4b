"""Beyond one machine: the unchanged fit loop under torchrun with 2 CPU processes (gloo).

The worker (``ddp_worker.py``) holds every collective to NCCL's rule: tensors on the process's
training device, never a host copy. With gloo on CPUs nothing else would notice a metric
copied to the host, which is how a two-GPU ``finetune_job`` came to fail (issue 29).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from tlcourse.infra import distributed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_end_with_identical_weights(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k, v in r0["weights"].items():
        assert torch.equal(v, r1["weights"][k]), k
    h0, h1 = ({k: v for k, v in r["history"].items() if k not in ("epoch_time", "train_time")} for r in (r0, r1))
    assert h0 == h1                                  # metrics averaged over both shards
    assert r0["history"]["best_val_acc"] > 0.85     # and it really learned
    assert (tmp_path / "ckpt" / "last.pt").exists()  # written once, by rank 0
    # one checked collective per phase (train, val) and epoch, each on the training device
    assert r0["collectives"] == [r0["device"]] * 8, r0["collectives"]


@pytest.mark.parametrize("backend, expected", [
    ("gloo", torch.device("cpu")), ("nccl", torch.device("cuda", 1)),
    ("cpu:gloo,cuda:nccl", torch.device("cuda", 1)), ("mpi", torch.device("cpu"))])
def test_each_backend_reduces_on_its_device(backend, expected):
    assert distributed.backend_device(backend, cuda_index=1) == expected


def test_all_sum_hands_the_collective_one_tensor_on_the_backend_device(monkeypatch):
    """Mixed devices and dtypes in, one float64 tensor on the collective device to the backend."""
    seen = []
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed, "collective_device", lambda: torch.device("cpu"))
    monkeypatch.setattr(dist, "all_reduce", lambda t: (seen.append((t.device, t.dtype, t.shape)), t.mul_(2)))
    loss, correct, n = distributed.all_sum(torch.tensor(1.5), torch.tensor(7), torch.tensor([3, 4]))
    assert seen == [(torch.device("cpu"), torch.float64, (4,))], "one collective for all the values"
    assert (float(loss), int(correct), n.tolist()) == (3.0, 14, [6.0, 8.0])
