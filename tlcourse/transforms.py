"""Preprocessing that matches each backbone's pretraining (torchvision ``transforms.v2``).

The transforms work on uint8 image tensors (C, H, W), which is what
:class:`tlcourse.images.CachedImageFolder` stores, so JPEG decoding happens
once per image rather than once per epoch.

Example:
    >>> from tlcourse.backbones import get_spec
    >>> tf = eval_transform(get_spec("efficientnet_lite0"), size=160)
    >>> tf(torch.zeros(3, 300, 400, dtype=torch.uint8)).shape
    torch.Size([3, 160, 160])
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

from .backbones import BackboneSpec

_INTERP = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC}


def normalize(spec: BackboneSpec) -> v2.Compose:
    """uint8 -> float in [0, 1] -> the backbone's mean/std."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(spec.mean, spec.std)])


def eval_transform(spec: BackboneSpec, size: int | None = None) -> v2.Compose:
    """Resize the short side, centre-crop ``size`` (default: the backbone's 224), normalise."""
    size = size or spec.input_size
    resize = round(size * spec.resize_size / spec.input_size)
    return v2.Compose([
        v2.Resize(resize, interpolation=_INTERP[spec.interpolation], antialias=True),
        v2.CenterCrop(size),
        normalize(spec),
    ])


def train_transform(spec: BackboneSpec, size: int | None = None,
                    augment: list[v2.Transform] | None = None) -> v2.Compose:
    """The classic training pipeline: random resized crop + horizontal flip (+ ``augment``)."""
    size = size or spec.input_size
    steps: list[v2.Transform] = [
        v2.RandomResizedCrop(size, interpolation=_INTERP[spec.interpolation], antialias=True),
        v2.RandomHorizontalFlip(),
    ]
    return v2.Compose(steps + list(augment or []) + [normalize(spec)])


def denormalize(x: torch.Tensor, spec: BackboneSpec) -> torch.Tensor:
    """Undo :func:`normalize` for display: float (…, 3, H, W) in [0, 1]."""
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1)
