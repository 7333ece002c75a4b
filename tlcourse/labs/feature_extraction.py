"""New heads on a frozen backbone: trained on cached features, cut at any depth.

Fixed feature extraction (lesson 01) keeps the pretrained backbone frozen and
trains only a new, small classifier -- the *head* -- on its outputs. Because
the backbone never changes, its features are computed once
(:func:`tlcourse.features.hymenoptera_features`) and every epoch is a few
matrix products. This module trains three kinds of head on such features
(a linear layer, a small MLP, scikit-learn's logistic regression), measures
what the cache saves, extracts features at every cut depth in one pass, and
scores the backbone's own ImageNet head to show why preprocessing must match.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(80, 5, generator=g); y = (x[:, 0] > 0).long()
    >>> train, val = (x[:60], y[:60]), (x[60:], y[60:])
    >>> head, history = train_head("linear", train, val, epochs=20, lr=0.05)
    >>> history.val_acc[-1] > 0.8
    True
    >>> accuracy(fit_logreg(train), *val) > 0.8
    True
"""
from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import features, training
from ..probes import FeatureSet, accuracy, fit_logreg
from ..infra.device import seed_everything
from ..threads import limit_threads
from ..errors import InvalidSettingError, check_range

if TYPE_CHECKING:

    from ..backbones import BackboneSpec


#: The heads lesson 01 compares; "logreg" is scikit-learn's, the others are PyTorch modules.
HEAD_KINDS = ("linear", "mlp", "logreg")

#: ImageNet class ids of the hymenoptera classes (ants -> 310 'ant', bees -> 309 'bee').
IMAGENET_IDS = {"ants": 310, "bees": 309}


# --------------------------------------------------------------------------- heads
def make_head(kind: str, in_dim: int, num_classes: int, hidden: int = 1024,
              dropout: float = 0.5) -> nn.Module:
    """A new head: ``"linear"`` (one layer) or ``"mlp"`` (``hidden`` ReLU units + dropout).

    Both output logits; the softmax lives in the cross-entropy loss. Lesson 01 (section 3)
    writes both out: ``nn.Linear(features, 2)`` and the MLP as the same ``nn.Sequential``.

    >>> make_head("mlp", 1280, 2, hidden=8)
    Sequential(
      (0): Linear(in_features=1280, out_features=8, bias=True)
      (1): ReLU()
      (2): Dropout(p=0.5, inplace=False)
      (3): Linear(in_features=8, out_features=2, bias=True)
    )
    """
    if kind == "linear":
        return nn.Linear(in_dim, num_classes)
    if kind == "mlp":
        check_range("hidden units", hidden, 1, 100_000, kind=int)
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(hidden, num_classes))
    raise InvalidSettingError(f"head kind must be 'linear' or 'mlp' (for 'logreg' use fit_logreg), got {kind!r}")


def _check_features(train: FeatureSet, val: FeatureSet) -> None:
    if train[0].ndim != 2 or train[0].shape[1] != val[0].shape[1]:
        raise ValueError(f"train and val features must be (N, D) tables of the same width, got "
                         f"{tuple(train[0].shape)} and {tuple(val[0].shape)}: were they cut at the same depth?")


def train_head(kind: str, train: FeatureSet, val: FeatureSet, epochs: int = 30, lr: float = 1e-3,
               batch_size: int = 32, weight_decay: float = 1e-4, hidden: int = 1024,
               callbacks: Iterable[Callable] = (), seed: int = 0,
               progress: bool = False) -> tuple[nn.Module, training.History]:
    """Train a ``"linear"`` or ``"mlp"`` head on cached features with Adam; return it and its history.

    Generalises lesson 01's hand-written head-training loop (section 3, ``train_loop``):
    with ``seed=0`` the linear head and the MLP (an ``nn.Sequential``) it trains are the
    same, epoch for epoch (the lesson's check cell compares both: val accuracy within one
    image, weights within 1e-4).

    The head keeps its *last* epoch's weights (no picking the best epoch on val),
    so ``history.val_acc[-1]`` is less optimistic than the best epoch's; it is still not
    unbiased when ``epochs`` and ``lr`` were chosen on the same val set.
    """
    epochs = check_range("epochs", epochs, 1, 1000, kind=int)
    lr = check_range("learning rate", lr, 1e-6, 10.0)
    _check_features(train, val)
    seed_everything(seed)
    head = make_head(kind, train[0].shape[1], int(train[1].max()) + 1, hidden=hidden)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    with limit_threads(1):  # tiny matrix products: more threads only add overhead
        history = training.fit(head, features.feature_loader(*train, batch_size=batch_size),
                               features.feature_loader(*val, batch_size=256, shuffle=False), opt, epochs,
                               callbacks=callbacks, progress=progress, restore_best=False,
                               # a few thousand numbers: a GPU only adds transfers
                               device=torch.device("cpu"))
    return head, history


# --------------------------------------------------------------------------- cache vs recompute
class FrozenFeatures(nn.Module):
    """A backbone that stays frozen and in eval mode even inside a training loop.

    Lesson 01 (section 4) measures what happens without it: BatchNorm's running
    statistics drift in train mode, although no parameter requires gradients.

    ``fit`` calls ``model.train()``; without this wrapper that would switch the
    backbone's BatchNorm layers to batch statistics, and its features would
    no longer be the cached ones.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "FrozenFeatures":
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # no graph through millions of frozen weights
            return self.backbone(x).flatten(1)


def compare_epoch_cost(backbone: nn.Module, head: nn.Module, images: tuple[Dataset, Dataset],
                       cached: tuple[FeatureSet, FeatureSet], epochs: int = 1, lr: float = 1e-3,
                       batch_size: int = 8, seed: int = 0) -> dict[str, training.History]:
    """Train two copies of ``head`` the same way: on the feature cache, and recomputing the backbone.

    ``images`` are the (train, val) image datasets with the same preprocessing
    that produced ``cached``. Both runs start from the same weights and see the
    batches in the same order, so they should reach the same accuracy; only the
    time per epoch (``history.epoch_time``: train + val phase) differs.

    >>> from torch.utils.data import TensorDataset
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 6))
    >>> x = torch.randn(40, 3, 2, 2); y = torch.arange(40) % 2
    >>> feats = features.extract_features(net, TensorDataset(x, y), progress=False)
    >>> runs = compare_epoch_cost(net, nn.Linear(6, 2), (TensorDataset(x, y),) * 2, (feats, feats))
    >>> abs(runs["cached"].val_acc[0] - runs["recomputed"].val_acc[0]) < 1e-6
    True
    """
    epochs = check_range("epochs", epochs, 1, 100, kind=int)
    device = torch.device("cpu")  # the comparison a laptop learner makes
    frozen = FrozenFeatures(backbone)
    runs: dict[str, training.History] = {}
    for way in ("cached", "recomputed"):
        model = copy.deepcopy(head)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        seed_everything(seed)  # the same shuffles for both ways
        if way == "cached":
            loaders = (features.feature_loader(*cached[0], batch_size=batch_size),
                       features.feature_loader(*cached[1], batch_size=batch_size, shuffle=False))
        else:
            model = nn.Sequential(frozen, model)
            loaders = (DataLoader(images[0], batch_size=batch_size, shuffle=True),
                       DataLoader(images[1], batch_size=batch_size))
        # each way at its best: one thread for the tiny cached products, all of them for the backbone
        with limit_threads(1) if way == "cached" else nullcontext():
            runs[way] = training.fit(model, *loaders, opt, epochs, device=device, progress=False,
                                     restore_best=False)
    return runs


# --------------------------------------------------------------------------- cut depth


def accuracy_by_depth(train: tuple[dict[int, torch.Tensor], torch.Tensor],
                      val: tuple[dict[int, torch.Tensor], torch.Tensor], C: float = 1.0) -> dict[int, float]:
    """Val accuracy of a logistic-regression head at every cut depth."""
    return {d: accuracy(fit_logreg((train[0][d], train[1]), C), val[0][d], val[1]) for d in sorted(train[0])}


# --------------------------------------------------------------------------- the original head
def preprocessing_mistakes(spec: "BackboneSpec", size: int | None = None) -> dict[str, Callable]:
    """The backbone's own preprocessing and three common ways to get it wrong.

    >>> from tlcourse.backbones import get_spec
    >>> list(preprocessing_mistakes(get_spec("efficientnet_lite0"), 160))
    ['matching', 'another mean/std', 'pixels 0-255', 'too small (64 px)']
    """
    from dataclasses import replace

    from torchvision.transforms import v2

    from .. import transforms
    from ..backbones import BACKBONES

    size = size or spec.input_size
    other = next(s for s in BACKBONES.values() if s.mean != spec.mean)  # another backbone's statistics
    right = transforms.eval_transform(spec, size)
    return {
        "matching": right,
        "another mean/std": transforms.eval_transform(replace(spec, mean=other.mean, std=other.std), size),
        # forgetting ToDtype(scale=True): pixel values 0..255 instead of 0..1
        "pixels 0-255": v2.Compose([*right.transforms[:2], v2.ToDtype(torch.float32, scale=False),
                                    v2.Normalize(spec.mean, spec.std)]),
        "too small (64 px)": transforms.eval_transform(spec, 64),
    }


@torch.inference_mode()
def imagenet_accuracy(model: nn.Module, images: Sequence[torch.Tensor], labels: Sequence[int],
                      transform: Callable, class_ids: Sequence[int], batch_size: int = 8) -> float:
    """How often the backbone's own ImageNet head names the right class (top-1 of 1000).

    ``class_ids[c]`` is the ImageNet id of target class ``c``. Only a network
    that really learned ImageNet scores well, and only with its own preprocessing.
    Images go through in batches of ``batch_size`` (little memory), on the model's device.
    """
    want = torch.as_tensor(class_ids)[torch.as_tensor(list(labels))]
    batches = ((torch.stack([transform(img) for img in images[start:start + batch_size]]),
                want[start:start + batch_size]) for start in range(0, len(images), batch_size))
    logits, want = training.predict(model, batches, mixed_precision=False)  # float32, as the network was scored
    return int((logits.argmax(1) == want).sum()) / len(images)  # an exact share (k of n)


def as_table(rows: dict[str, dict[str, float]], first: str = "head", digits: int = 3) -> str:
    """A small text table of named rows of numbers (what a lesson prints).

    >>> print(as_table({"linear": {"val acc": 0.9312}}))
    head      val acc
    linear      0.931
    """
    cols = {c: max(7, len(c)) for c in next(iter(rows.values()))}
    width = max(len(k) for k in [*rows, first]) + 2
    lines = [first.ljust(width) + "  ".join(f"{c:>{w}}" for c, w in cols.items())]
    lines += [name.ljust(width) + "  ".join(f"{row[c]:>{w}.{digits}f}" for c, w in cols.items())
              for name, row in rows.items()]
    return "\n".join(lines)
