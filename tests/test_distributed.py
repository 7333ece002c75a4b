"""Beyond one machine: the unchanged fit loop under torchrun with 2 CPU processes (gloo)."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_end_with_identical_weights(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k, v in r0["weights"].items():
        assert torch.equal(v, r1["weights"][k]), k
    h0, h1 = ({k: v for k, v in r["history"].items() if k not in ("epoch_time", "train_time")} for r in (r0, r1))
    assert h0 == h1                                  # metrics averaged over both shards
    assert r0["history"]["best_val_acc"] > 0.85     # and it really learned
    assert (tmp_path / "ckpt" / "last.pt").exists()  # written once, by rank 0
