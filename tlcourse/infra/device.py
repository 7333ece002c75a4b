"""One device, one precision, one seed: where and how every training in the course runs.

The fit loop (:mod:`tlcourse.training`), the text, DANN and augmentation trainings and the
feature extractors all take their device, mixed precision and seeding from here. This module
imports nothing else from the package, so any module may import it.

    >>> pick_device("cpu")
    device(type='cpu')
"""
from __future__ import annotations

import os
import random
import weakref
from collections import Counter
from contextlib import nullcontext
from typing import Iterable

import numpy as np
import torch
from torch import nn


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple's MPS, else the CPU (``TLCOURSE_DEVICE`` overrides)."""
    prefer = prefer or os.environ.get("TLCOURSE_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type for ``device``: ``torch.bfloat16``, ``torch.float16`` or None (float32).

    On CUDA: bfloat16 where the GPU computes it natively (compute capability 8.0+: A100, L4,
    RTX 30xx and newer; no loss scaling needed); float16 with a loss scaler on tensor-core
    GPUs without native bfloat16 (7.x: the T4 of Colab and Kaggle, V100), which only emulate
    bfloat16, slower than float32; float32 on older GPUs. Autocast keeps the ops float16 is
    unsafe for (softmax, norms, losses) in float32. CPU and MPS: float32.
    ``TLCOURSE_PRECISION=bf16|fp16|fp32`` overrides the choice on CUDA (fp32 everywhere).

    >>> amp_dtype(torch.device("cpu")) is None
    True
    """
    choice = os.environ.get("TLCOURSE_PRECISION", "auto").strip().lower() or "auto"
    if choice not in (*PRECISIONS, "auto"):
        raise ValueError(f"TLCOURSE_PRECISION={choice!r}: use auto, {', '.join(PRECISIONS)}.")
    if device.type != "cuda" or choice == "fp32":
        return None
    if choice != "auto":
        return PRECISIONS[choice]
    capability = torch.cuda.get_device_capability(device)
    if capability >= (8, 0):  # what torch.cuda.is_bf16_supported(including_emulation=False) checks
        return torch.bfloat16
    return torch.float16 if capability >= (7, 0) else None


#: How many of the package's forward passes (:func:`autocast`) and training steps
#: (:func:`optimizer_step`) ran on each device type, e.g. ``{"step:cuda": 120, "forward:cuda": 150}``.
#: ``make test-gpu`` reads it after each lesson: work counted under ``cpu`` on a GPU machine
#: means a model or batch was left on the CPU. Counting costs a dict update per batch.
usage: Counter[str] = Counter()


def autocast(device: torch.device):
    """Mixed precision where it pays (:func:`amp_dtype`), else nothing (a no-op context).

    >>> with autocast(torch.device("cpu")):
    ...     pass
    >>> usage["forward:cpu"] > 0
    True
    """
    usage[f"forward:{device.type}"] += 1
    dtype = amp_dtype(device)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


_SCALERS: "weakref.WeakKeyDictionary[torch.optim.Optimizer, torch.amp.GradScaler]" = weakref.WeakKeyDictionary()


def grad_scaler(optimizer: torch.optim.Optimizer, device: torch.device) -> torch.amp.GradScaler | None:
    """The loss scaler float16 training needs (one per optimizer, kept across epochs), else None."""
    if amp_dtype(device) != torch.float16:
        return None
    if optimizer not in _SCALERS:
        _SCALERS[optimizer] = torch.amp.GradScaler(device.type)
    return _SCALERS[optimizer]


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, device: torch.device,
                   clip_norm: float | None = None, parameters: Iterable[torch.Tensor] | None = None) -> None:
    """``loss.backward()`` then ``optimizer.step()``; scaled when ``device`` trains in float16.

    In float16, small gradients underflow to zero: the scaler multiplies the loss before
    ``backward``, divides the gradients before the step, and skips a step whose gradients
    overflowed. ``clip_norm`` clips the (unscaled) gradient norm first, over ``parameters``
    (default: the optimizer's; pass ``model.parameters()`` to sum the norm in the model's order,
    as a hand-written loop does). Zero the gradients before. Every training in the package
    steps through here: the fit loop, text fine-tuning, DANN, the MixUp/CutMix tails.
    """
    usage[f"step:{loss.device.type}"] += 1  # where the forward really ran: the model's and batch's device
    scaler = grad_scaler(optimizer, device)
    params = list(parameters) if parameters is not None else None
    if params is None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
    if scaler is None:
        loss.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(params, clip_norm)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if clip_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(params, clip_norm)
    scaler.step(optimizer)
    scaler.update()
