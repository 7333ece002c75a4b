"""Graders of lesson 02's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

Example:
    >>> import torch
    >>> def resume_from(path, model, optimizer, scheduler):
    ...     state = torch.load(path, map_location="cpu", weights_only=True)
    ...     model.load_state_dict(state["model"])
    ...     optimizer.load_state_dict(state["optimizer"])
    ...     scheduler.load_state_dict(state["scheduler"])
    >>> print(grade("02.3", resume_from))  # doctest: +ELLIPSIS
    ✔ Exercise 02.3: a tiny nn.Linear saved after 3 epochs of SGD (momentum 0.9) + StepLR (step 2, γ 0.1)...
"""
from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.optim import lr_scheduler

from .grading import Wrong, _crash, case, grade, grades  # noqa: F401  (grade: the doctest)

LR, MOMENTUM, STEP, GAMMA = 0.1, 0.9, 2, 0.1
EPOCHS_BEFORE, EPOCHS_AFTER = 3, 2  # StepLR (step 2) decays after epoch 2 (saved at 0.01) and after epoch 4
KEYS = ("model", "optimizer", "scheduler")


def _fresh(seed: int) -> tuple[nn.Linear, optim.SGD, lr_scheduler.StepLR]:
    """A small linear classifier, its SGD with momentum and its StepLR, as the lesson builds them."""
    torch.manual_seed(seed)
    model = nn.Linear(5, 3)
    optimizer = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return model, optimizer, lr_scheduler.StepLR(optimizer, step_size=STEP, gamma=GAMMA)


def _epoch(model: nn.Module, optimizer: optim.Optimizer, scheduler: Any, x: torch.Tensor, y: torch.Tensor) -> None:
    """One epoch of train_model's train phase: two batches, one SGD step each, then scheduler.step()."""
    model.train()
    for batch in (slice(0, 8), slice(8, 16)):
        optimizer.zero_grad()
        F.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    scheduler.step()


def _largest_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float() - b.detach().float()).abs().max().item()


def _same_weights(model: nn.Module, expected: dict[str, torch.Tensor], when: str, why: str) -> None:
    got = model.state_dict()
    for name, value in expected.items():
        if name not in got or got[name].shape != value.shape:
            raise Wrong(f"{when}, the model has no {name} of shape {tuple(value.shape)}")
        if not torch.allclose(got[name], value, atol=1e-6, rtol=0):
            raise Wrong(f"{when}, the model's {name} differs from the uninterrupted run's by up to "
                        f"{_largest_gap(got[name], value):.3g}{why}")


@grades("02.3", "resume_from")
def resume_from(answer: Callable[..., Any]) -> str:
    """``answer(path, model, optimizer, scheduler)`` loads a checkpoint saved as
    ``{"model": ..., "optimizer": ..., "scheduler": ...}`` (three state dicts) into fresh objects, so
    that training goes on exactly as the uninterrupted run: same weights, learning rate, momentum
    buffers and StepLR count when it resumes, and the same weights and rates over the next epochs."""
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    model, optimizer, scheduler = _fresh(seed=0)  # the uninterrupted run
    for _ in range(EPOCHS_BEFORE):
        _epoch(model, optimizer, scheduler, x, y)
    saved_weights = copy.deepcopy(model.state_dict())
    saved_lr = optimizer.param_groups[0]["lr"]
    saved_buffers = {name: optimizer.state[p]["momentum_buffer"].clone() for name, p in model.named_parameters()}
    later = []  # (learning rate, weights) after each further epoch of the uninterrupted run
    description = (f"a tiny nn.Linear saved after {EPOCHS_BEFORE} epochs of SGD (momentum {MOMENTUM}) + "
                   f"StepLR (step {STEP}, γ {GAMMA})")
    with tempfile.TemporaryDirectory() as tmp, case(f"on {description}"):
        path = Path(tmp) / "resume.pt"
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()}, path)
        for _ in range(EPOCHS_AFTER):
            _epoch(model, optimizer, scheduler, x, y)
            later.append((optimizer.param_groups[0]["lr"], copy.deepcopy(model.state_dict())))

        fresh, fresh_optimizer, fresh_scheduler = _fresh(seed=1)  # tomorrow, in a fresh kernel
        try:
            answer(path, fresh, fresh_optimizer, fresh_scheduler)
        except (NotImplementedError, Wrong):
            raise
        except KeyError as err:
            raise Wrong(f"{_crash(err)}; the file holds one dict with the keys "
                        f"{', '.join(repr(k) for k in KEYS)}") from None

        when = "after resuming"
        _same_weights(fresh, saved_weights, when,
                      ": the model's state was not restored (model.load_state_dict(state['model']))")
        optimizer_hint = (": the optimizer's state was not restored (optimizer.load_state_dict(state['optimizer']) "
                          "brings back its learning rate and momentum buffers)")
        for name, p in fresh.named_parameters():
            buffer = fresh_optimizer.state.get(p, {}).get("momentum_buffer")
            if buffer is None:
                raise Wrong(f"{when}, SGD has no momentum buffer for {name}, the uninterrupted run has one"
                            f"{optimizer_hint}")
            if not torch.allclose(buffer, saved_buffers[name], atol=1e-6, rtol=0):
                raise Wrong(f"{when}, SGD's momentum buffer of {name} differs from the uninterrupted run's by up "
                            f"to {_largest_gap(buffer, saved_buffers[name]):.3g}{optimizer_hint}")
        if fresh_scheduler.last_epoch != EPOCHS_BEFORE:
            raise Wrong(f"{when}, StepLR has counted {fresh_scheduler.last_epoch} epoch(s), the uninterrupted run "
                        f"{EPOCHS_BEFORE}: the scheduler's state was not restored "
                        "(scheduler.load_state_dict(state['scheduler']); and no scheduler.step() of your own)")
        lr = fresh_optimizer.param_groups[0]["lr"]
        if abs(lr - saved_lr) > 1e-12:
            raise Wrong(f"{when}, the learning rate is {lr:g} but the uninterrupted run is at {saved_lr:g}: the rate "
                        "is part of the optimizer's state; optimizer.load_state_dict(state['optimizer']) restores it, "
                        "do not set it by hand")

        for epoch, (expected_lr, expected_weights) in enumerate(later, start=1):
            _epoch(fresh, fresh_optimizer, fresh_scheduler, x, y)
            when = f"after {epoch} more epoch{'s' if epoch > 1 else ''} of training"
            _same_weights(fresh, expected_weights, when, "")
            lr = fresh_optimizer.param_groups[0]["lr"]
            if abs(lr - expected_lr) > 1e-12:
                raise Wrong(f"{when}, the learning rate is {lr:g} but the uninterrupted run is at {expected_lr:g}: "
                            "the scheduler's state was not restored as saved")
    return (f"{description}, resumed by your function into fresh objects: the weights, the learning rate "
            f"({saved_lr:g}), SGD's momentum buffers and StepLR's count ({EPOCHS_BEFORE} epochs) come back, and "
            f"{EPOCHS_AFTER} more epochs match the uninterrupted run (the rate drops to {later[-1][0]:g} on time)")
