"""Fine-tuning a pretrained CNN: the classifier, parameter groups, loaders, and the recipe that runs them.

:func:`fine_tune` is lesson 02's recipe (SGD + StepLR, the last blocks or all of them, gradually
unfrozen if asked); lessons 03, 05, 07 and 08 and their labs call it.

*Gradual unfreezing* (Howard & Ruder, ULMFiT, 2018) first trains only the
new head, then thaws one more block of the backbone at a time, from the
output end down. The random head has already settled when the pretrained
layers start to move, so its large early gradients never reach (and
scramble) the features that make transfer work. :class:`GradualUnfreezing` is a
:func:`tlcourse.training.fit` callback that does this with :func:`tlcourse.backbones.freeze`.
Lesson 03 (section 4) writes gradual unfreezing out as a plain loop and checks
that :func:`fine_tune` gives the same history.

Example:
    >>> from tlcourse.backbones import get_spec, count_trainable
    >>> spec = get_spec("efficientnet_lite0")
    >>> model = make_classifier(spec, num_classes=2, pretrained=False, trainable_blocks=2)
    >>> groups = param_groups(model, spec, head_lr=1e-2, backbone_lr=1e-3)
    >>> [g["lr"] for g in groups]
    [0.01, 0.001]
    >>> unfreeze_schedule(epochs=6, start=0, every=2, max_blocks=9)
    [0, 0, 1, 1, 2, 2]
    >>> lr_schedule(1e-3, epochs=9, step_size=7, gamma=0.1)[6:]
    [0.001, 0.0001, 0.0001]
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from . import backbones, images, training, transforms
from .backbones import BackboneSpec


def make_classifier(spec: BackboneSpec, num_classes: int, pretrained: bool = True,
                    trainable_blocks: int | None = None) -> nn.Module:
    """The backbone with a new ``num_classes`` head; the last ``trainable_blocks`` blocks train.

    Generalises lesson 02's ``new_model`` (section 2: ImageNet weights, the head replaced by
    assignment) with freezing by blocks (``backbones.freeze``: ``requires_grad_(False)`` and
    frozen BatchNorm statistics).
    ``trainable_blocks=None`` trains everything (full fine-tuning / from scratch);
    ``0`` trains only the head (fixed features, but with augmentation possible).
    """
    model = backbones.build(spec, pretrained=pretrained)
    backbones.replace_head(model, spec, num_classes)
    backbones.freeze(model, spec, spec.num_blocks if trainable_blocks is None else trainable_blocks)
    return model


def sgd_step_lr(params: Iterable[Any], lr: float, momentum: float = 0.9, step_size: int = 7,
                gamma: float = 0.1) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.StepLR]:
    """Lesson 02's classic recipe: SGD with momentum, the rate times ``gamma`` every ``step_size`` epochs.

    ``params``: parameters or parameter groups (:func:`param_groups`). The one place the package
    builds it (``fine_tune``, ``finetune_job``); lesson 02 writes it out itself.

    >>> opt, sched = sgd_step_lr(nn.Linear(2, 2).parameters(), lr=0.1)
    >>> opt.defaults["momentum"], sched.step_size, sched.gamma
    (0.9, 7, 0.1)
    """
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


def param_groups(model: nn.Module, spec: BackboneSpec, head_lr: float,
                 backbone_lr: float | None = None) -> list[dict]:
    """Optimizer groups: the new head at ``head_lr``, trainable pretrained layers at ``backbone_lr``.

    A smaller rate for pretrained layers moves them gently, so what they learned
    on ImageNet is adjusted rather than overwritten. Lesson 03 writes the same list of
    dicts out by hand (section 3, "Learning rates: larger for what is new").
    """
    head = getattr(model, spec.head)
    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": list(head.parameters()), "lr": head_lr}]
    if body:
        groups.append({"params": body, "lr": head_lr if backbone_lr is None else backbone_lr})
    return groups


def hymenoptera_loaders(spec: BackboneSpec, size: int | None = None, batch_size: int = 32,
                        train_transform: Callable | None = None, per_class: int | None = None,
                        seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """Train and val loaders for ants vs bees with the backbone's preprocessing.

    Lesson 02's ``data_transforms`` and loaders (section 1) in one call: random resized crop +
    flip for train, resize + centre crop for val, the photos decoded once (``images.hymenoptera``);
    lesson 03 loads its data with it. ``per_class`` keeps a random subset of that many training
    images per class.
    """
    train = images.hymenoptera("train", train_transform or transforms.train_transform(spec, size))
    val = images.hymenoptera("val", transforms.eval_transform(spec, size))
    if per_class is not None:
        train = Subset(train, images.subset_per_class(train.targets, per_class, seed))
    # Shuffling draws on torch's global RNG (seed_everything), which fit's checkpoints save,
    # so a resumed run sees the same batches as an uninterrupted one.
    # Val batches stay small: a 64-image eval batch at 160 px alone took ~700 MB on CPU, which the
    # course's allocator settings keep for the process (Binder's limit is 2 GB); speed is the same.
    return (DataLoader(train, batch_size=batch_size, shuffle=True),
            DataLoader(val, batch_size=min(64, 2 * batch_size)))


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
    >>> model = make_classifier(spec, 2, pretrained=False)
    >>> thaw = GradualUnfreezing(model, spec, schedule=[0, 2], backbone_lr=1e-4, verbose=False)
    >>> opt = torch.optim.SGD(param_groups(model, spec, head_lr=1e-3), lr=1e-3)
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
    model = make_classifier(spec, num_classes, pretrained, trainable_blocks)
    thaw = GradualUnfreezing(model, spec, schedule, backbone_lr=lr) if schedule else None
    optimizer, scheduler = sgd_step_lr(param_groups(model, spec, head_lr or lr, lr),
                                                head_lr or lr, momentum, step_size, gamma)
    hooks = [thaw.attach(optimizer)] if thaw else []
    history = training.fit(model, train_loader, val_loader, optimizer, epochs, scheduler=scheduler,
                           callbacks=hooks + list(callbacks), **fit_kwargs)
    return model, history
