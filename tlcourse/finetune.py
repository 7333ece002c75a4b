"""Fine-tuning building blocks shared by lessons 02-03, 05 and 07 (through :mod:`tlcourse.unfreeze` too).

Example:
    >>> from tlcourse.backbones import get_spec, count_trainable
    >>> spec = get_spec("efficientnet_lite0")
    >>> model = make_classifier(spec, num_classes=2, pretrained=False, trainable_blocks=2)
    >>> groups = param_groups(model, spec, head_lr=1e-2, backbone_lr=1e-3)
    >>> [g["lr"] for g in groups]
    [0.01, 0.001]
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from . import backbones, images, transforms
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
    builds it (``unfreeze.fine_tune``, ``finetune_job``); lesson 02 writes it out itself.

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
