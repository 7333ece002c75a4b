"""Grad-CAM: where in the image a CNN found the evidence for a class.

Grad-CAM (Selvaraju et al., 2017) looks at the last convolutional block,
whose channels still have a spatial layout (7x7 cells for a 224-pixel
ResNet input). It weighs every channel by how much the class score grows
when that channel grows (the gradient, averaged over the map), sums the
weighted channels and keeps the positive part: cells that push the score
*up*. The small map is then upsampled to the image and laid over it.

The last block comes from the backbone registry (``spec.blocks[-1]``:
``layer4`` for a ResNet, ``conv_head``/``bn2`` for an EfficientNet), so the
same call works for every backbone of the course, frozen or not.

Example:
    >>> import torch
    >>> from tlcourse import backbones
    >>> spec = backbones.get_spec("efficientnet_lite0")
    >>> model = backbones.replace_head(backbones.build(spec, pretrained=False), spec, 2)
    >>> heat, logits = grad_cam(model, spec, torch.randn(2, 3, 64, 64))
    >>> heat.shape, logits.shape
    (torch.Size([2, 64, 64]), torch.Size([2, 2]))
    >>> bool(heat.min() >= 0 and heat.max() <= 1)
    True
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from . import plots
from .backbones import BackboneSpec


def target_layer(model: nn.Module, spec: BackboneSpec) -> nn.Module:
    """The module whose output Grad-CAM explains: the last submodule of the last block.

    Looked up at call time, because freezing swaps BatchNorm modules for frozen copies.

    >>> from tlcourse import backbones
    >>> spec = backbones.get_spec("resnet18")
    >>> model = backbones.build(spec, pretrained=False)
    >>> target_layer(model, spec) is model.layer4
    True
    """
    return model.get_submodule(spec.blocks[-1][-1])


def grad_cam(model: nn.Module, spec: BackboneSpec, images: torch.Tensor,
             target: int | Sequence[int] | torch.Tensor | None = None,
             layer: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Heat maps (N, H, W) in [0, 1] at the images' size, and the logits (N, classes).

    Args:
        images: a normalised batch (N, 3, H, W), as the model's loaders give it.
        target: the class to explain per image (an int for all); default: the prediction.
        layer: the module to explain (default: :func:`target_layer`).

    The model runs in eval mode (its mode is restored afterwards) and its
    weights get no gradient, so this is safe between training runs.
    """
    layer = layer if layer is not None else target_layer(model, spec)
    device = next(model.parameters()).device
    saved: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        saved["act"] = output
        output.register_hook(lambda grad: saved.__setitem__("grad", grad))

    was_training = model.training
    handle = layer.register_forward_hook(keep)
    try:
        model.eval()
        with torch.enable_grad():
            # The input asks for a gradient, so the graph reaches the layer even when
            # every pretrained weight is frozen; the weights themselves are left alone.
            x = images.to(device).float().requires_grad_(True)
            logits = model(x)
            chosen = _targets(target, logits)
            score = logits.gather(1, chosen[:, None]).sum()
            score.backward(inputs=[x])
    finally:
        handle.remove()
        model.train(was_training)
    weights = saved["grad"].mean(dim=(2, 3), keepdim=True)  # one weight per channel
    cam = F.relu((weights * saved["act"]).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).cpu(), logits.detach().cpu()


def _targets(target, logits: torch.Tensor) -> torch.Tensor:
    """One class index per image: the prediction, an int for all, or a given sequence."""
    n, classes = logits.shape
    if target is None:
        return logits.argmax(1)
    chosen = torch.full((n,), target) if isinstance(target, int) else torch.as_tensor(target)
    chosen = chosen.to(logits.device).long()
    if chosen.shape != (n,) or chosen.min() < 0 or chosen.max() >= classes:
        raise ValueError(f"target must be one class in 0..{classes - 1} per image "
                         f"({n} images), got {target!r}")
    return chosen


def overlay(image: torch.Tensor, heat: torch.Tensor | None, ax=None, alpha: float = 0.45,
            title: str = "") -> Figure:
    """Draw ``heat`` (H, W) in [0, 1] over ``image`` (3, H, W; uint8 or float in [0, 1]).

    ``heat=None`` draws the image alone (:func:`tlcourse.plots.show_image` draws both).
    """
    return plots.show_image(image, ax, heat=heat, alpha=alpha, title=title)


def show_grad_cam(images: torch.Tensor, heats: torch.Tensor, titles: Sequence[str] | None = None,
                  ncols: int = 6, size: float = 2.2, title: str = "") -> Figure:
    """A grid of images, each shown plain (top) and with its heat map (bottom).

    Drawn by :func:`tlcourse.plots.show_images`: per row of ``ncols`` images, a row of the plain
    images (with their titles) and under it a row of the same images with their heat maps.

    >>> fig = show_grad_cam(torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8), ["a", "b"])
    >>> len(fig.axes), sum(len(ax.images) for ax in fig.axes)
    (4, 6)
    """
    n = len(images)
    ncols = min(n, ncols)
    cells: list[tuple[torch.Tensor | None, torch.Tensor | None, str]] = []
    for start in range(0, n, ncols):
        row = range(start, min(start + ncols, n))
        empty = [(None, None, "")] * (ncols - len(row))
        cells += [(images[i], None, titles[i] if titles is not None else "") for i in row] + empty
        cells += [(images[i], heats[i], "") for i in row] + empty
    shown, heat_maps, names = zip(*cells)
    return plots.show_images(shown, names, ncols=ncols, size=size, title=title, heats=heat_maps)
