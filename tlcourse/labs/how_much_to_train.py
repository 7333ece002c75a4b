"""Lesson 03's lab: how far fine-tuning moves each block, how big each block is, which blocks train.

The recipe itself (:func:`tlcourse.finetune.fine_tune`, gradual unfreezing as
:class:`tlcourse.finetune.GradualUnfreezing`) is core; this module measures and draws what it does.

Example:
    >>> from tlcourse import backbones
    >>> spec = backbones.get_spec("efficientnet_lite0")
    >>> net = backbones.build(spec, pretrained=False)
    >>> block_drift(net, net, spec)[:3]
    [0.0, 0.0, 0.0]
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import nn

from .. import backbones
from ..backbones import BackboneSpec


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
