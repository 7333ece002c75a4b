"""Fine-tuning runs that unfreeze a pretrained backbone: all of it, its last blocks, or gradually.

*Gradual unfreezing* (Howard & Ruder, ULMFiT, 2018) first trains only the
new head, then thaws one more block of the backbone at a time, from the
output end down. The random head has already settled when the pretrained
layers start to move, so its large early gradients never reach (and
scramble) the features that make transfer work.

:class:`GradualUnfreezing` is a :func:`tlcourse.training.fit` callback that
does this with :func:`tlcourse.backbones.freeze`; :func:`fine_tune` is lesson
02's recipe (SGD with momentum, StepLR) in one call, with lesson 03's options.
Lesson 03 (section 4) writes gradual unfreezing out as a plain loop and checks
that :func:`fine_tune` gives the same history.

Example:
    >>> unfreeze_schedule(epochs=6, start=0, every=2, max_blocks=9)
    [0, 0, 1, 1, 2, 2]
    >>> lr_schedule(1e-3, epochs=9, step_size=7, gamma=0.1)[6:]
    [0.001, 0.0001, 0.0001]
"""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from . import backbones, finetune, training
from .backbones import BackboneSpec


def unfreeze_schedule(epochs: int, start: int = 0, every: int = 1, step: int = 1,
                      max_blocks: int | None = None) -> list[int]:
    """Trainable blocks per epoch: ``start``, then ``step`` more every ``every`` epochs.

    >>> unfreeze_schedule(epochs=4, start=0, every=1, max_blocks=2)
    [0, 1, 2, 2]
    """
    if epochs < 1 or every < 1 or step < 0 or start < 0:
        raise ValueError(f"need epochs >= 1, every >= 1, step >= 0, start >= 0; got "
                         f"epochs={epochs}, every={every}, step={step}, start={start}")
    counts = [start + step * (e // every) for e in range(epochs)]
    return [min(c, max_blocks) for c in counts] if max_blocks is not None else counts


def lr_schedule(lr: float, epochs: int, step_size: int = 7, gamma: float = 0.1) -> list[float]:
    """The learning rate of each epoch under ``StepLR`` (computed by torch's own scheduler)."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)
    rates = []
    for _ in range(epochs):
        rates.append(round(opt.param_groups[0]["lr"], 12))
        opt.step()
        sched.step()
    return rates


class GradualUnfreezing:
    """A ``fit`` callback: before epoch ``e`` the last ``schedule[e]`` blocks are trainable.

    Thawed parameters join the optimizer as a new group at ``backbone_lr``
    (scaled like the head's rate, so a StepLR decay applies to them too).
    Generalises lesson 03's plain loop (section 4: ``requires_grad_(True)`` on the next
    block and ``optimizer.add_param_group`` between epochs, frozen blocks kept in
    ``eval()``); here :func:`tlcourse.backbones.freeze` freezes, which swaps a frozen
    block's BatchNorm for a ``FrozenBatchNorm2d`` (the same normalisation, rounded
    differently in float32: the lesson's check allows 1e-3 on the losses and one photo).
    Build the optimizer *after* creating this callback, which applies
    ``schedule[0]``. Not meant for ``fit(..., resume=True)``.

    >>> from tlcourse import backbones
    >>> spec = backbones.get_spec("efficientnet_lite0")
    >>> model = finetune.make_classifier(spec, 2, pretrained=False)
    >>> thaw = GradualUnfreezing(model, spec, schedule=[0, 2], backbone_lr=1e-4, verbose=False)
    >>> opt = torch.optim.SGD(finetune.param_groups(model, spec, head_lr=1e-3), lr=1e-3)
    >>> _ = thaw.attach(opt)
    >>> thaw(training.History(train_loss=[1.0]))   # after epoch 1: two blocks thaw
    >>> thaw.trainable_blocks, len(opt.param_groups), backbones.count_trainable(model) > 2562
    (2, 2, True)
    """

    def __init__(self, model: nn.Module, spec: BackboneSpec, schedule: Sequence[int],
                 backbone_lr: float, verbose: bool = True) -> None:
        if not schedule:
            raise ValueError("schedule needs at least one entry (trainable blocks of epoch 1)")
        if list(schedule) != sorted(schedule):
            raise ValueError(f"schedule must never decrease (this callback only thaws): {list(schedule)}")
        self.model, self.spec, self.schedule = model, spec, list(schedule)
        self.backbone_lr, self.verbose = backbone_lr, verbose
        self.optimizer: torch.optim.Optimizer | None = None
        self.trainable_blocks = self.schedule[0]
        backbones.freeze(model, spec, self.trainable_blocks)

    def attach(self, optimizer: torch.optim.Optimizer) -> "GradualUnfreezing":
        """The optimizer that thawed parameters are added to (the one given to ``fit``)."""
        self.optimizer = optimizer
        return self

    def __call__(self, history: training.History) -> None:
        if self.optimizer is None:
            raise RuntimeError("call .attach(optimizer) before fit: thawed weights need an optimizer")
        wanted = self.schedule[min(history.epochs, len(self.schedule) - 1)]
        if wanted == self.trainable_blocks:
            return
        backbones.freeze(self.model, self.spec, wanted)
        self.trainable_blocks = wanted
        known = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        new = [p for p in self.model.parameters() if p.requires_grad and id(p) not in known]
        if new:
            head = self.optimizer.param_groups[0]
            decay = head["lr"] / head.get("initial_lr", head["lr"])  # StepLR's progress so far
            self.optimizer.add_param_group({"params": new, "lr": self.backbone_lr * decay,
                                            "initial_lr": self.backbone_lr})
        if self.verbose:
            print(f"epoch {history.epochs + 1}: last {wanted} of {self.spec.num_blocks} blocks trainable "
                  f"({backbones.count_trainable(self.model):,} parameters)")


def fine_tune(spec: BackboneSpec, train_loader: Iterable, val_loader: Iterable, epochs: int, *,
              lr: float = 1e-3, head_lr: float | None = None,
              trainable_blocks: int | None = None, schedule: Sequence[int] | None = None,
              pretrained: bool = True, momentum: float = 0.9, step_size: int = 7,
              gamma: float = 0.1, num_classes: int = 2, callbacks: Sequence = (),
              **fit_kwargs) -> tuple[nn.Module, training.History]:
    """The classic recipe in one call: new head, SGD with momentum, StepLR, ``fit``.

    Lesson 02 writes this recipe out in section 2 (``new_model``, ``optim.SGD``,
    ``lr_scheduler.StepLR``, ``train_model``); this adds what lesson 03 writes out: freezing
    by blocks (section 1), a separate head rate (parameter groups, section 3) and gradual
    unfreezing (section 4). Lesson 03 runs every fine-tune of its comparison through it.

    Args:
        lr: rate of the trainable pretrained layers (and of the head unless ``head_lr``).
        head_lr: a separate, usually larger, rate for the new head.
        trainable_blocks: last blocks that train (None: all; 0: only the head).
        schedule: gradual unfreezing, trainable blocks per epoch (overrides ``trainable_blocks``).
        pretrained: False trains the same network from random weights.
        fit_kwargs: passed to :func:`tlcourse.training.fit` (patience, checkpoint_dir, ...).

    >>> model, history = fine_tune(spec, train, val, epochs=3, trainable_blocks=2)  # doctest: +SKIP
    """
    model = finetune.make_classifier(spec, num_classes, pretrained, trainable_blocks)
    thaw = GradualUnfreezing(model, spec, schedule, backbone_lr=lr) if schedule else None
    optimizer, scheduler = finetune.sgd_step_lr(finetune.param_groups(model, spec, head_lr or lr, lr),
                                                head_lr or lr, momentum, step_size, gamma)
    hooks = [thaw.attach(optimizer)] if thaw else []
    history = training.fit(model, train_loader, val_loader, optimizer, epochs, scheduler=scheduler,
                           callbacks=hooks + list(callbacks), **fit_kwargs)
    return model, history


def block_drift(model: nn.Module, reference: nn.Module, spec: BackboneSpec) -> list[float]:
    """How far each block's weights moved from ``reference``: ‖w − w₀‖ / ‖w₀‖, input first.

    Small numbers: the pretrained features were adjusted. Numbers near or above 1:
    they were overwritten.

    >>> from tlcourse import backbones
    >>> spec = backbones.get_spec("resnet18")
    >>> a = backbones.build(spec, pretrained=False)
    >>> block_drift(a, a, spec)
    [0.0, 0.0, 0.0, 0.0, 0.0]
    """
    now, before = model.state_dict(), reference.state_dict()
    drift = []
    for names in spec.blocks:
        keys = [k for k in before if k.endswith("weight") and k in now
                and any(k.startswith(n + ".") for n in names)]
        moved = sum(float((now[k].float() - before[k].float()).pow(2).sum()) for k in keys)
        size = sum(float(before[k].float().pow(2).sum()) for k in keys)
        drift.append((moved / size) ** 0.5 if size else 0.0)
    return drift


def block_sizes(model: nn.Module, spec: BackboneSpec) -> list[int]:
    """Parameters in each block, input first (the head not included).

    >>> from tlcourse import backbones
    >>> spec = backbones.get_spec("resnet18")
    >>> sizes = block_sizes(backbones.build(spec, pretrained=False), spec)
    >>> len(sizes), sizes[-1]
    (5, 8393728)
    """
    return [backbones.count_params(b) for b in backbones.blocks(model, spec)]


def plot_trainable(sizes: Sequence[int], spec: BackboneSpec, trainable_blocks: int,
                   head_size: int = 0, ax=None) -> Figure:
    """Bars of parameters per block, trainable ones coloured, frozen ones grey.

    >>> from tlcourse import backbones
    >>> fig = plot_trainable([10, 20, 30, 40, 50], backbones.get_spec("resnet18"), 2, head_size=5)
    >>> fig.axes[0].get_title()
    'last 2 of 5 blocks + head train: 95 of 155 parameters (61%)'
    """
    if not 0 <= trainable_blocks <= len(sizes):
        raise ValueError(f"trainable_blocks must be in 0..{len(sizes)}, got {trainable_blocks}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.8))
    names = ["+".join(b) for b in spec.blocks] + ["head (new)"]
    values = list(sizes) + [head_size]
    cut = len(sizes) - trainable_blocks
    colours = ["lightgrey"] * cut + ["C1"] * trainable_blocks + ["C2"]
    ax.bar(range(len(values)), values, color=colours)
    ax.set_xticks(range(len(values)), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("parameters")
    train = sum(sizes[cut:]) + head_size
    total = sum(sizes) + head_size
    ax.set_title(f"last {trainable_blocks} of {len(sizes)} blocks + head train: "
                 f"{train:,} of {total:,} parameters ({train / total:.0%})")
    ax.figure.tight_layout()
    return ax.figure
