"""Choosing a pretrained backbone: accuracy, parameters, size on disk and speed, measured here.

Four numbers decide between backbones. Only the first needs the pretrained
weights; the other three depend on the architecture (and the machine) alone,
so a backbone whose weights are not on this machine is still sized and timed
with random weights, and its row says so instead of disappearing.

Example:
    >>> Variant("efficientnet_lite0", depth=6).label
    'efficientnet_lite0 cut after block 6/9'
    >>> net = feature_net(Variant("efficientnet_lite0", depth=3), pretrained=False)
    >>> round(backbones.count_params(net) / 1e3)  # thousands: the first blocks are tiny
    16
    >>> images_per_second(net, size=32, batch=2, repeats=1) > 0
    True
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import pandas as pd
import torch
from torch import nn

from . import backbones
from .device import pick_device
from .widgets import check_range

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .backbones import BackboneSpec

#: The note of a backbone whose pretrained weights are not on this machine.
NOT_AVAILABLE = ("not available here: no ImageNet weights on this machine "
                 "(params, size and speed measured with random weights; accuracy needs the weights)")
PRETRAINED = "ImageNet weights"


@dataclass(frozen=True)
class Variant:
    """A backbone, optionally cut after ``depth`` blocks or fed ``image_size`` pixels.

    >>> Variant("efficientnet_lite0", image_size=96).label
    'efficientnet_lite0 at 96 px'
    >>> Variant("resnet18", depth=5).label  # cutting after the last block cuts nothing
    'resnet18'
    """

    backbone: str
    depth: int | None = None
    image_size: int | None = None  # None: the size the comparison uses for every model

    @property
    def spec(self) -> "BackboneSpec":
        return backbones.get_spec(self.backbone)

    @property
    def full_depth(self) -> bool:
        return self.depth is None or self.depth == self.spec.num_blocks

    @property
    def label(self) -> str:
        label = self.backbone
        if not self.full_depth:
            label += f" cut after block {self.depth}/{self.spec.num_blocks}"
        return label + (f" at {self.image_size} px" if self.image_size else "")


def feature_net(variant: Variant, pretrained: bool = True) -> nn.Module:
    """The variant as a feature extractor: pooled features out, no ImageNet head."""
    spec = variant.spec
    model = backbones.build(spec, pretrained=pretrained)
    if variant.full_depth:
        return backbones.remove_head(model, spec)
    return backbones.truncate(model, spec, variant.depth)


def state_dict_bytes(model: nn.Module) -> int:
    """Size of the model's saved weights (``torch.save(state_dict)``), in bytes.

    >>> state_dict_bytes(nn.Linear(1000, 250)) > 1000 * 250 * 4
    True
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


@torch.inference_mode()
def images_per_second(model: nn.Module, size: int = 160, batch: int = 16, repeats: int = 3,
                      device: torch.device | None = None) -> float:
    """Forward-pass throughput on ``device``: ``repeats`` timed batches after two warm-up ones.

    ``torch.utils.benchmark.Timer`` does the timing: it warms up (first calls allocate
    memory and pick kernels), synchronises CUDA and uses as many threads as the notebook does.

    >>> images_per_second(nn.Conv2d(3, 4, 3), size=32, batch=2, repeats=1) > 0
    True
    """
    from torch.utils import benchmark

    check_range("repeats", repeats, 1, 100, kind=int)
    device = device or pick_device()
    model = model.to(device).eval()
    x = torch.randn(batch, 3, size, size, device=device)
    timer = benchmark.Timer("model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads())
    return batch / timer.timeit(repeats).mean


def fixed_feature_accuracy(variant: Variant, size: int = 160, C: float = 1.0) -> float:
    """Val accuracy on hymenoptera of logistic regression on the variant's frozen features.

    Reads the every-depth feature cache that lesson 01 fills (the same image size
    gives the same file), so at the lessons' size it costs well under a second.
    """
    from . import heads

    spec = variant.spec
    depth = spec.num_blocks if variant.full_depth else variant.depth
    train = heads.hymenoptera_by_depth(spec, "train", size, progress=False)
    val = heads.hymenoptera_by_depth(spec, "val", size, progress=False)
    model = heads.fit_logreg((train[0][depth], train[1]), C)
    return heads.accuracy(model, val[0][depth], val[1])


def compare_models(variants: Iterable[Variant], size: int = 160, batch: int = 16,
                   repeats: int = 3) -> pd.DataFrame:
    """One row per variant: weights, params, size on disk, images/s here, fixed-feature accuracy.

    Backbones whose pretrained weights are not on this machine are built with
    random weights for the size and speed columns (neither depends on the
    values of the weights); their accuracy is NaN and their note says why.

    >>> compare_models([Variant("resnet18")], size=32, batch=1, repeats=1).columns.tolist()  # doctest: +SKIP
    ['model', 'weights', 'params (M)', 'size on disk (MB)', 'images/s', 'val accuracy', 'image px']
    """
    rows = []
    for variant in variants:
        available = backbones.is_available_offline(variant.spec)
        net = feature_net(variant, pretrained=available)
        pixels = variant.image_size or size
        rows.append({
            "model": variant.label,
            "weights": PRETRAINED if available else NOT_AVAILABLE,
            "params (M)": backbones.count_params(net) / 1e6,
            "size on disk (MB)": state_dict_bytes(net) / 1e6,
            "images/s": images_per_second(net, pixels, batch, repeats),
            "val accuracy": fixed_feature_accuracy(variant, pixels) if available else float("nan"),
            "image px": pixels,
        })
        del net
    return pd.DataFrame(rows)


def plot_models(table: pd.DataFrame, ax=None) -> "Figure":
    """Accuracy vs images/s, marker area ~ parameters; rows without accuracy hollow, at the bottom."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.4))
    known = table.dropna(subset=["val accuracy"])
    floor = max(0.0, known["val accuracy"].min() - 0.1) if len(known) else 0.5
    for i, row in table.reset_index(drop=True).iterrows():
        missing = math.isnan(row["val accuracy"])
        y = floor if missing else row["val accuracy"]
        ax.scatter(row["images/s"], y, s=30 + 12 * row["params (M)"], color=f"C{i}",
                   facecolors="none" if missing else f"C{i}", linewidths=2)
        ax.annotate(row["model"] + ("\n(not available here: speed only)" if missing else ""),
                    (row["images/s"], y), textcoords="offset points", xytext=(8, 4), fontsize=8)
    if len(table) and table["val accuracy"].isna().any():
        ax.axhline(floor + 0.015, color="grey", lw=0.5, ls=":")
    ax.set(xscale="log", xlabel="images per second on this machine (log scale)",
           ylabel="val accuracy (fixed features)", ylim=(floor - 0.03, 1.0),
           title="choosing a backbone: accuracy vs speed (marker area ~ parameters)")
    ax.figure.tight_layout()
    return ax.figure
