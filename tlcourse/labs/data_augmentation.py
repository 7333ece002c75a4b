"""Data augmentation, measured: pipelines from torchvision ``transforms.v2``, previews, and a cheap experiment.

Every image operation here is torchvision's (``transforms.v2``: crops, flips, rotations,
colour jitter, RandAugment, TrivialAugmentWide, AutoAugment, MixUp, CutMix); this module
only chooses and combines them, draws them, and measures what they do to accuracy.

**How the measurement stays cheap.** Augmentation changes the *input* of the network, so
the features of a frozen backbone can no longer be computed once (lesson 01). But the frozen
part is still frozen: the features of one augmented *view* of an image never change. So we
draw ``views`` random views of every training image once, push them through the frozen part
once (a *view bank*), and train the trainable part with pass ``e`` over the data reading view
``e``. With as many views as epochs this is exactly on-the-fly augmentation, computed in
advance; every arm, subset size and seed of the experiment reuses the same bank.

Example:
    >>> from tlcourse.backbones import get_spec
    >>> spec = get_spec("efficientnet_lite0")
    >>> tf = strength_transform(spec, size=64, strength=0.3)
    >>> tf(torch.zeros(3, 80, 100, dtype=torch.uint8)).shape
    torch.Size([3, 64, 64])
    >>> strength_recipe(0.3)
    {'min_crop_area': 0.7, 'max_crop_area': 1.0, 'rotation': 54, 'ops': 2, 'magnitude': 9}
    >>> is_random(strength_transform(spec, 64, 0.0)), is_random(tf)
    (False, True)
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from torchvision.transforms import v2
from tqdm.auto import tqdm

from .. import backbones, config, features, images, training, transforms
from ..infra import cache
from ..infra.device import autocast, pick_device, seed_everything
from ..backbones import BackboneSpec
from ..plots import show_images

ARMS = ("none", "classic", "policy")
_BICUBIC = v2.InterpolationMode.BICUBIC
#: Transforms that do the same thing every time (everything else counts as random).
_DETERMINISTIC = (v2.Resize, v2.CenterCrop, v2.ToDtype, v2.Normalize, v2.Identity, v2.ToImage,
                  v2.ToPureTensor)


# --------------------------------------------------------------------------- pipelines
def classic_augmentations(size: int) -> dict[str, v2.Transform]:
    """One classic augmentation per entry, uint8 in and uint8 out, for preview grids.

    >>> list(classic_augmentations(64))[:3]
    ['horizontal flip', 'rotation ±25°', 'translation ±20 % (affine)']
    """
    return {
        "horizontal flip": v2.RandomHorizontalFlip(p=1.0),
        "rotation ±25°": v2.RandomRotation(25),
        "translation ±20 % (affine)": v2.RandomAffine(degrees=0, translate=(0.2, 0.2)),
        "scale + crop (RandomResizedCrop)": v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
        "colour jitter": v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
    }


def policy_augmentations() -> dict[str, v2.Transform]:
    """The three learned / randomised policies of ``transforms.v2``, with their default settings.

    >>> list(policy_augmentations())
    ['AutoAugment (ImageNet policy)', 'RandAugment (2 ops, magnitude 9)', 'TrivialAugmentWide']
    """
    return {
        "AutoAugment (ImageNet policy)": v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET),
        "RandAugment (2 ops, magnitude 9)": v2.RandAugment(num_ops=2, magnitude=9),
        "TrivialAugmentWide": v2.TrivialAugmentWide(),
    }


POLICIES = ("none", "RandAugment", "TrivialAugmentWide", "AutoAugment")


def compose(size: int, rotation: float = 0.0, flip: bool = False, translate: float = 0.0,
            min_area: float = 1.0, jitter: float = 0.0, policy: str = "none",
            magnitude: int = 9) -> v2.Compose:
    """A pipeline from knobs (the live composer): uint8 image in, uint8 ``size``-pixel square out.

    ``min_area`` < 1 adds a RandomResizedCrop keeping at least that share of the image;
    ``policy`` is one of :data:`POLICIES` (``magnitude`` is RandAugment's, 0..30).

    >>> compose(32, rotation=10, flip=True, policy="RandAugment")(torch.zeros(3, 40, 50, dtype=torch.uint8)).shape
    torch.Size([3, 32, 32])
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    steps: list[v2.Transform] = (
        [v2.RandomResizedCrop(size, scale=(min_area, 1.0), antialias=True)] if min_area < 1.0
        else [v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if rotation or translate:
        steps.append(v2.RandomAffine(degrees=rotation, translate=(translate, translate) if translate else None))
    if jitter:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=min(0.5, jitter / 4)))
    steps += {"none": [], "RandAugment": [v2.RandAugment(magnitude=int(magnitude))],
              "TrivialAugmentWide": [v2.TrivialAugmentWide()],
              "AutoAugment": [v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)]}[policy]
    return v2.Compose(steps)


def arm_transform(arm: str, spec: BackboneSpec, size: int) -> v2.Compose:
    """The training pipeline of one arm of the experiment (normalised, ready for the backbone).

    - ``none``: resize + centre crop, the same picture every epoch (the val pipeline);
    - ``classic``: random resized crop + flip (``transforms.train_transform``) + colour jitter;
    - ``policy``: random resized crop + flip + RandAugment (2 ops, magnitude 9).

    >>> from tlcourse.backbones import get_spec
    >>> arm_transform("policy", get_spec("efficientnet_lite0"), 64).transforms[2]
    RandAugment(interpolation=nearest, num_ops=2, magnitude=9, num_magnitude_bins=31)
    """
    if arm == "none":
        return transforms.eval_transform(spec, size)
    if arm == "classic":
        return transforms.train_transform(spec, size, [v2.ColorJitter(0.3, 0.3, 0.3)])
    if arm == "policy":
        return transforms.train_transform(spec, size, [v2.RandAugment(num_ops=2, magnitude=9)])
    raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")


def strength_recipe(strength: float) -> dict[str, float | int]:
    """What one global ``strength`` in [0, 1] sets: crop area, rotation, RandAugment ops and magnitude.

    0 is no augmentation; 0.3 is RandAugment's default (2 ops, magnitude 9) with crops of at
    least 70 % of the picture; 1 is everything at its maximum: every crop is a patch of 1–4 % of
    the picture, turned by up to ±180°, with 4 RandAugment operations at magnitude 30. The crop
    covers between ``min_crop_area`` and ``max_crop_area`` (= 4 x the minimum, at most 1) of the
    picture, so at high strength *every* view is a small patch.

    >>> strength_recipe(1.0)
    {'min_crop_area': 0.01, 'max_crop_area': 0.04, 'rotation': 180, 'ops': 4, 'magnitude': 30}
    """
    s = float(strength)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    low = round(max(0.01, 1.0 - 0.99 * s), 2)
    return {"min_crop_area": low, "max_crop_area": round(min(1.0, 4 * low), 2), "rotation": round(180 * s),
            "ops": 1 + round(3 * s), "magnitude": round(30 * s)}


def strength_pipeline(size: int, strength: float) -> v2.Compose:
    """The pictures at one global ``strength`` (uint8 in, uint8 out: for previews); 0 = resize + centre crop.

    >>> [type(t).__name__ for t in strength_pipeline(32, 0.5).transforms]
    ['RandomResizedCrop', 'RandomHorizontalFlip', 'RandomRotation', 'RandAugment']
    """
    r = strength_recipe(strength)
    if strength == 0:
        return compose(size)
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(r["min_crop_area"], r["max_crop_area"]), interpolation=_BICUBIC,
                             antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomRotation(r["rotation"]),
        v2.RandAugment(num_ops=int(r["ops"]), magnitude=int(r["magnitude"])),
    ])


def strength_transform(spec: BackboneSpec, size: int, strength: float) -> v2.Compose:
    """The training pipeline at one global ``strength`` (see :func:`strength_recipe`); 0 = the val pipeline."""
    if strength == 0:
        strength_recipe(strength)
        return transforms.eval_transform(spec, size)
    return v2.Compose([*strength_pipeline(size, strength).transforms, transforms.normalize(spec)])


def is_random(transform: Callable) -> bool:
    """True if ``transform`` (or any step of a ``Compose``) draws random numbers.

    >>> is_random(v2.Compose([v2.Resize(8), v2.CenterCrop(8)])), is_random(v2.RandomHorizontalFlip())
    (False, True)
    """
    if isinstance(transform, v2.Compose):
        return any(is_random(t) for t in transform.transforms)
    return not isinstance(transform, _DETERMINISTIC)


def draw(transform: Callable, image: torch.Tensor, n: int, seed: int = 0) -> list[torch.Tensor]:
    """``n`` random results of ``transform`` on one image, repeatable, global RNG untouched.

    >>> a = draw(v2.RandomRotation(30), torch.ones(3, 8, 8, dtype=torch.uint8), 2, seed=1)
    >>> b = draw(v2.RandomRotation(30), torch.ones(3, 8, 8, dtype=torch.uint8), 2, seed=1)
    >>> all(torch.equal(x, y) for x, y in zip(a, b))
    True
    """
    with cache.rng_neutral(seed):
        return [transform(image) for _ in range(n)]


# --------------------------------------------------------------------------- pictures
def preview_grid(originals: Sequence[torch.Tensor], augs: Mapping[str, Callable], draws: int = 1,
                 seed: int = 0, size: float = 1.6, title: str = "") -> Figure:
    """One row per augmentation (plus the originals on top), ``draws`` columns per image.

    ``originals`` are uint8 (3, H, W) squares; each augmentation maps uint8 to uint8.
    """
    rows = {"original": [im for im in originals for _ in range(draws)]}
    for name, tf in augs.items():
        rows[name] = [out for k, im in enumerate(originals) for out in draw(tf, im, draws, seed + k)]
    return show_images([im for imgs in rows.values() for im in imgs], ncols=len(originals) * draws, size=size,
                       title=title, row_labels=list(rows))


def mix_batch(batch: torch.Tensor, labels: torch.Tensor, kind: str = "mixup", alpha: float = 1.0,
              num_classes: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """MixUp or CutMix (``transforms.v2``) on a batch: float images in [0, 1] and soft labels.

    >>> x = torch.zeros(4, 3, 8, 8, dtype=torch.uint8); y = torch.tensor([0, 1, 0, 1])
    >>> mixed, soft = mix_batch(x, y, "cutmix")
    >>> soft.shape, bool(torch.allclose(soft.sum(1), torch.ones(4)))
    (torch.Size([4, 2]), True)
    """
    op = {"mixup": v2.MixUp, "cutmix": v2.CutMix}.get(kind)
    if op is None:
        raise ValueError(f"kind must be 'mixup' or 'cutmix', got {kind!r}")
    x = batch.float() / 255 if batch.dtype == torch.uint8 else batch.float()
    with cache.rng_neutral(seed):
        return op(alpha=alpha, num_classes=num_classes)(x, labels)


def show_mixed(batch: torch.Tensor, soft: torch.Tensor, classes: Sequence[str], ncols: int = 4,
               title: str = "") -> Figure:
    """A grid of mixed images, each titled with its soft label (e.g. ``ants 0.63 · bees 0.37``)."""
    names = [" · ".join(f"{c} {p:.2f}" for c, p in zip(classes, row.tolist()) if p > 0.005) for row in soft]
    return show_images(batch, names, ncols=ncols, size=2.4, title=title)


# --------------------------------------------------------------------------- frozen part + trainable tail
def frozen_part(model: nn.Module, spec: BackboneSpec, trainable_blocks: int = 0) -> nn.Sequential:
    """The blocks that stay frozen (eval mode, no gradients); pooled features if none train.

    Lesson 05, section 7 writes this split out (its ``split``, and for ResNet-18 by name:
    ``layer4`` trains); :func:`trainable_tail` is the other half.

    >>> spec = backbones.get_spec("efficientnet_lite0")
    >>> net = frozen_part(backbones.build(spec, pretrained=False), spec, trainable_blocks=0)
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 1280])
    """
    if not 0 <= trainable_blocks < spec.num_blocks:
        raise ValueError(f"trainable_blocks must be in 0..{spec.num_blocks - 1}, got {trainable_blocks}")
    if trainable_blocks == 0:
        net = backbones.truncate(model, spec, spec.num_blocks)
    else:
        net = nn.Sequential(*backbones.blocks(model, spec)[:spec.num_blocks - trainable_blocks])
    net = copy.deepcopy(net).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def trainable_tail(model: nn.Module, spec: BackboneSpec, trainable_blocks: int = 0,
                   num_classes: int = 2) -> nn.Module:
    """What trains: a copy of the last ``trainable_blocks`` pretrained blocks, pooling, a new linear head."""
    head = nn.Linear(spec.feature_dim, num_classes)
    if trainable_blocks == 0:
        return head
    tail = nn.Sequential(*copy.deepcopy(backbones.blocks(model, spec)[spec.num_blocks - trainable_blocks:]),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    for p in tail.parameters():
        p.requires_grad_(True)
    return tail


@torch.inference_mode()
def view_bank(frozen: nn.Module, pictures: Sequence[torch.Tensor], transform: Callable, views: int,
              seed: int = 0, batch_size: int = 16, device: torch.device | None = None,
              progress: bool = True, desc: str = "view bank") -> torch.Tensor:
    """Frozen-part outputs of ``views`` random views of every picture: (views, n, ...), on the CPU.

    Repeatable for a given ``seed``; the global random state is left as it was.

    >>> net = nn.Flatten()
    >>> bank = view_bank(net, [torch.ones(3, 4, 4, dtype=torch.uint8)] * 5, v2.RandomHorizontalFlip(), 3,
    ...                  progress=False)
    >>> bank.shape
    torch.Size([3, 5, 48])
    """
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    device = device or pick_device()
    if isinstance(frozen, nn.Module):
        frozen.to(device).eval()
    out = []
    with cache.rng_neutral(seed):
        bar = tqdm(total=views * len(pictures), desc=desc, leave=False, disable=not progress)
        for _ in range(views):
            chunks = []
            for i in range(0, len(pictures), batch_size):
                x = torch.stack([transform(p) for p in pictures[i:i + batch_size]]).to(device)
                with autocast(device):
                    chunks.append(frozen(x).float().cpu())
                bar.update(len(x))
            out.append(torch.cat(chunks))
        bar.close()
    return torch.stack(out)


class ViewLoader:
    """Batches from a view bank: pass ``e`` over the data reads view ``e % views``, shuffled.

    Works with :func:`tlcourse.training.fit` like a DataLoader (shuffling uses the global RNG).

    >>> loader = ViewLoader(torch.arange(6.).view(2, 3, 1), torch.tensor([0, 1, 0]), batch_size=2)
    >>> len(loader), sorted(x.item() for x, _ in loader for x in x), sorted(x.item() for x, _ in loader for x in x)
    (2, [0.0, 1.0, 2.0], [3.0, 4.0, 5.0])
    """

    def __init__(self, bank: torch.Tensor, labels: torch.Tensor, batch_size: int = 16) -> None:
        if bank.shape[1] != len(labels):
            raise ValueError(f"bank holds {bank.shape[1]} samples but there are {len(labels)} labels")
        self.bank, self.labels, self.batch_size, self.passes = bank, torch.as_tensor(labels), batch_size, 0

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x = self.bank[self.passes % len(self.bank)]
        self.passes += 1
        order = torch.randperm(len(self.labels))
        for i in range(0, len(order), self.batch_size):
            pick = order[i:i + self.batch_size]
            yield x[pick], self.labels[pick]


# --------------------------------------------------------------------------- the experiment
class AugmentLab:
    """What every run of the experiment shares: the data, the frozen part and the val features.

    Args:
        spec: the pretrained backbone.
        size: image size (pixels) of training and val pictures.
        trainable_blocks: pretrained blocks that train with the new head (0: the head only).

    >>> lab = AugmentLab(backbones.get_spec(), size=128)            # doctest: +SKIP
    >>> df = lab.run({"none": ..., "policy": ...}, sizes=[4, 8], seeds=[0, 1], views=8, epochs=24)  # doctest: +SKIP
    """

    def __init__(self, spec: BackboneSpec, size: int, trainable_blocks: int = 0,
                 device: torch.device | None = None, progress: bool = True) -> None:
        self.spec, self.size, self.trainable_blocks, self.progress = spec, size, trainable_blocks, progress
        self.device = device or pick_device()
        self.train_set, self.val_set = images.hymenoptera("train"), images.hymenoptera("val")
        self.classes = self.train_set.classes
        self.targets = torch.tensor(self.train_set.targets)
        self.model = backbones.build(spec, pretrained=True)
        self.frozen = frozen_part(self.model, spec, trainable_blocks)
        self.clean = transforms.eval_transform(spec, size)
        self._train_clean: torch.Tensor | None = None
        if trainable_blocks == 0:  # pooled features: the course-wide cache (lessons 00-02, 07)
            self.val_x, self.val_y = features.hymenoptera_features(spec, "val", size, progress=progress)
        else:
            self.val_x = self.bank(self.clean, range(len(self.val_set)), 1, pictures=self.val_set.images)[0]
            self.val_y = torch.tensor(self.val_set.targets)

    def subset(self, per_class: int | None, seed: int = 0) -> list[int]:
        """Training indices: ``per_class`` random images of each class (None: all of them)."""
        return images.subset_per_class(self.train_set.targets, per_class or len(self.targets), seed)

    def bank(self, transform: Callable, indices: Sequence[int], views: int, seed: int = 0,
             pictures: Sequence[torch.Tensor] | None = None, desc: str = "view bank") -> torch.Tensor:
        """Frozen-part outputs of ``views`` views of the training images ``indices`` (1 view if not random)."""
        indices = list(indices)
        pictures = pictures if pictures is not None else self.train_set.images
        if not is_random(transform):
            views = 1
            if self.trainable_blocks == 0 and repr(transform) == repr(self.clean) and pictures is self.train_set.images:
                if self._train_clean is None:
                    self._train_clean = features.hymenoptera_features(self.spec, "train", self.size,
                                                                      progress=self.progress)[0]
                return self._train_clean[indices].unsqueeze(0)
        return view_bank(self.frozen, [pictures[i] for i in indices], transform, views, seed,
                         device=self.device, progress=self.progress, desc=desc)

    def train(self, bank: torch.Tensor, labels: torch.Tensor, epochs: int, lr: float = 0.01,
              batch_size: int = 16, seed: int = 0, callbacks: Sequence = (),
              val_every_epoch: bool = True) -> training.History:
        """Train a fresh tail on a view bank with :func:`tlcourse.training.fit` (SGD, momentum 0.9).

        ``val_every_epoch=False`` measures the val set only after the last epoch (the experiment
        reports nothing else, and with trainable blocks the val pass costs more than training on
        a few pictures). The two are not the same run: every pass over the val DataLoader draws
        a seed from the global RNG, which moves the next epoch's shuffle, so the last val
        accuracy differs between them (same seed, each repeatable). With ``callbacks`` the val
        set is measured after every epoch (live curves need it).
        """
        seed_everything(seed)
        tail = trainable_tail(self.model, self.spec, self.trainable_blocks, len(self.classes))
        optimizer = torch.optim.SGD([p for p in tail.parameters() if p.requires_grad], lr=lr, momentum=0.9)
        val = features.feature_loader(self.val_x, self.val_y, batch_size=256, shuffle=False)
        loader = ViewLoader(bank, labels, batch_size)
        return training.fit(tail, loader, val, optimizer, epochs, device=self.device, progress=False,
                            restore_best=False, callbacks=callbacks,
                            val_every_epoch=val_every_epoch or bool(callbacks))

    def settings_key(self, arms: Mapping[str, Callable], **settings) -> str:
        """A short hash of everything that decides the results (pipelines included, via their repr)."""
        blob = json.dumps({"backbone": self.spec.name, "size": self.size, "blocks": self.trainable_blocks,
                           "data": str(config.data_root()), "arms": {k: repr(v) for k, v in arms.items()},
                           "version": 2, **settings}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def run(self, arms: Mapping[str, Callable], sizes: Sequence[int | None], seeds: Sequence[int],
            views: int, epochs: int, lr: float = 0.01, batch_size: int = 16, name: str = "experiment",
            use_cache: bool = True) -> pd.DataFrame:
        """Every arm x subset size x seed; one row per run. Results are cached as JSON.

        Each seed draws its own subset (the same one for every arm, so arms are compared on the
        same pictures) and its own head initialisation. ``val_acc`` is the *last* epoch's val
        accuracy: picking the best epoch on the val set would tune on the data we report.
        """
        settings = dict(sizes=list(sizes), seeds=list(seeds), views=views, epochs=epochs, lr=lr,
                        batch_size=batch_size)
        # one cache module: keyed by settings + image folders, atomic, locked, RNG-neutral
        entry = cache.Entry("augment", {"settings": self.settings_key(arms, **settings)}, suffix=".json",
                            data=[self.train_set.root, self.val_set.root], version=2, name=name)
        return pd.DataFrame(entry.get_or_build(lambda: self._experiment(arms, sizes, seeds, views, epochs, lr,
                                                                        batch_size, name, settings),
                                               use_cache=use_cache)["rows"])

    def _experiment(self, arms, sizes, seeds, views, epochs, lr, batch_size, name, settings) -> dict:
        """The runs behind :meth:`run` (uncached): ``{"settings", "arms", "rows"}``."""
        subsets = {(pc, s): self.subset(pc, s) for pc in sizes for s in seeds}
        used = sorted({i for idx in subsets.values() for i in idx})
        where = {i: k for k, i in enumerate(used)}
        rows = []
        for arm, transform in arms.items():
            bank = self.bank(transform, used, views, desc=f"{name}: views for '{arm}'")
            for (pc, s), idx in subsets.items():
                pos = torch.tensor([where[i] for i in idx])
                h = self.train(bank[:, pos], self.targets[idx], epochs, lr, batch_size, seed=s,
                               val_every_epoch=False)
                rows.append(dict(arm=arm, per_class=pc, seed=s, n_train=len(idx), val_acc=h.val_acc[-1],
                                 train_acc=h.train_acc[-1], views=int(bank.shape[0])))
        return {"settings": settings, "arms": {k: repr(v) for k, v in arms.items()}, "rows": rows}


# --------------------------------------------------------------------------- MixUp / CutMix in a training step
class MixedBatches:
    """Lesson 05's training batches, one pass per ``iter()``: a shuffle, fresh views, an optional mix.

    Every pass shuffles with the global RNG (``torch.randperm``), then for each batch draws a
    new random view of each picture (``transform``), lets ``mix`` (e.g. ``v2.MixUp`` /
    ``v2.CutMix``) mix the batch and turn the labels into class probabilities, and runs the
    ``frozen`` blocks forward only (eval mode, no gradients). It yields
    ``(frozen outputs, labels)``: a train loader for :func:`tlcourse.training.fit`.

    >>> pics = [torch.full((3, 2, 2), i, dtype=torch.uint8) for i in range(3)]
    >>> batches = MixedBatches(nn.Flatten(), pics, torch.tensor([0, 1, 0]), v2.ToDtype(torch.float32), 2)
    >>> len(batches), [tuple(h.shape) for h, _ in batches]
    (2, [(2, 12), (1, 12)])
    """

    def __init__(self, frozen: nn.Module, pictures: Sequence[torch.Tensor], labels: torch.Tensor,
                 transform: Callable, batch_size: int = 16, mix: Callable | None = None) -> None:
        self.frozen, self.pictures, self.labels = frozen, pictures, labels
        self.transform, self.batch_size, self.mix = transform, batch_size, mix

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.frozen.eval()
        for batch in torch.randperm(len(self.labels)).split(self.batch_size):
            x = torch.stack([self.transform(self.pictures[i]) for i in batch])
            y = self.labels[batch]
            if self.mix is not None:
                x, y = self.mix(x, y)
            with torch.no_grad():
                h = self.frozen(x)
            yield h, y


def train_mixed(frozen: nn.Module, tail: nn.Module, pictures: Sequence[torch.Tensor], labels: torch.Tensor,
                transform: Callable, epochs: int, lr: float = 0.01, mix: Callable | None = None,
                batch_size: int = 16, seed: int = 0) -> nn.Module:
    """Train a fresh copy of ``tail`` on augmented (and, with ``mix``, mixed) batches; return it.

    Lesson 05 writes this loop out in its "MixUp and CutMix in a training step" cell; here the
    same steps run through :func:`tlcourse.training.fit` (train phase only, no val set), so
    the same seed gives the same network (a check cell shows it): every epoch draws a new
    random view of each picture (``transform``), ``mix`` (e.g. ``v2.MixUp`` / ``v2.CutMix``)
    mixes the batch and turns the labels into class probabilities (:class:`MixedBatches`),
    the ``frozen`` blocks run forward only, and only the tail (its last block(s) and a new
    head, re-initialised from ``seed``) learns, with cross-entropy on the soft targets. It
    runs where the tail's weights are (the CPU in the lesson), in float32 there.

    >>> frozen, tail = nn.Flatten(), nn.Linear(48, 2)
    >>> pics = [torch.randint(0, 255, (3, 4, 4), dtype=torch.uint8) for _ in range(4)]
    >>> tf = v2.ToDtype(torch.float32, scale=True)
    >>> net = train_mixed(frozen, tail, pics, torch.tensor([0, 1, 0, 1]), tf, epochs=2,
    ...                   mix=v2.MixUp(num_classes=2), batch_size=2)
    >>> net is not tail, torch.equal(net.weight, tail.weight)
    (True, False)
    """
    torch.manual_seed(seed)
    net = copy.deepcopy(tail)
    head = net[-1] if isinstance(net, nn.Sequential) else net
    head.reset_parameters()  # a new random head for every run
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    device = next(net.parameters()).device
    # nn.CrossEntropyLoss (fit's default) accepts class indices or class probabilities as targets
    training.fit(net, MixedBatches(frozen, pictures, labels, transform, batch_size, mix), None, optimizer,
                 epochs, device=device, progress=False, restore_best=False)
    return net


def head_accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Accuracy of a tail on stored frozen-part outputs ``x`` (eval mode, float32, like lesson 05's cell).

    :func:`tlcourse.training.accuracy` on batches of ``batch_size``.

    >>> head_accuracy(nn.Identity(), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    0.5
    """
    batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return training.accuracy(net, batches, mixed_precision=False)


def mixing_runs(frozen: nn.Module, tail: nn.Module, pictures: Sequence[torch.Tensor], targets: Sequence[int],
                val_x: torch.Tensor, val_y: torch.Tensor, arms: Mapping[str, tuple[Callable, Callable | None]],
                per_class: int, seeds: Sequence[int], epochs: int, lr: float = 0.01, batch_size: int = 16,
                name: str = "mixing", key: str = "", use_cache: bool = True,
                progress: bool = True, data: Sequence[str | Path] | None = None) -> pd.DataFrame:
    """:func:`train_mixed` for every arm ``{name: (transform, mix or None)}`` and seed; one row per run.

    Each seed draws its own subset of ``per_class`` pictures per class (the same one for every
    arm) and its own head; ``val_acc`` is measured on the stored frozen-part outputs ``val_x``.
    Results are cached as JSON under a hash of ``key`` (say which backbone and image size),
    the arms' ``repr``, the settings and the fingerprint of the ``data`` the pictures and
    ``val_x`` come from (default: hymenoptera's train and val folders in the data root), like
    every cache of the course: a changed data file is noticed. The columns match
    :meth:`AugmentLab.run`, so :func:`summarize` and :func:`paired_gains` read them.
    """
    settings = dict(per_class=per_class, seeds=list(seeds), epochs=epochs, lr=lr, batch_size=batch_size,
                    n=len(pictures), val=len(val_y), key=key, version=1,
                    arms={k: repr(v) for k, v in arms.items()})
    from ..infra.registry import DATASETS

    if data is None:
        data = [DATASETS["hymenoptera"].path() / split for split in ("train", "val")]
    entry = cache.Entry("augment", settings, suffix=".json", data=data, version=3, name=name)
    return pd.DataFrame(entry.get_or_build(
        lambda: _mixing_runs(frozen, tail, pictures, targets, val_x, val_y, arms, per_class, seeds, epochs,
                             lr, batch_size, name, progress, settings), use_cache=use_cache)["rows"])


def _mixing_runs(frozen, tail, pictures, targets, val_x, val_y, arms, per_class, seeds, epochs, lr, batch_size,
                 name, progress, settings) -> dict:
    """The runs behind :func:`mixing_runs` (uncached): ``{"settings", "rows"}``."""
    targets = list(targets)
    rows = []
    bar = tqdm(total=len(arms) * len(seeds), desc=name, leave=False, disable=not progress)
    for arm, (transform, mix) in arms.items():
        for s in seeds:
            idx = images.subset_per_class(targets, per_class, s)
            labels = torch.tensor([targets[i] for i in idx])
            net = train_mixed(frozen, tail, [pictures[i] for i in idx], labels, transform, epochs, lr, mix,
                              batch_size, seed=s)
            rows.append(dict(arm=arm, per_class=per_class, seed=s, n_train=len(idx),
                             val_acc=head_accuracy(net, val_x, val_y)))
            bar.update()
    bar.close()
    return {"settings": settings, "rows": rows}


# --------------------------------------------------------------------------- reading the results
def summarize(df: pd.DataFrame, by: str = "n_train") -> pd.DataFrame:
    """Mean, standard deviation and number of seeds of val accuracy per arm and ``by``.

    >>> df = pd.DataFrame(dict(arm=["a", "a"], n_train=[8, 8], val_acc=[0.8, 0.9]))
    >>> summarize(df).round(3).to_dict("records")
    [{'arm': 'a', 'n_train': 8, 'mean': 0.85, 'std': 0.071, 'seeds': 2}]
    """
    g = df.groupby(["arm", by], sort=False)["val_acc"]
    return g.agg(mean="mean", std="std", seeds="count").reset_index()


def paired_gains(df: pd.DataFrame, baseline: str = "none", by: str = "n_train") -> pd.DataFrame:
    """Gain of every arm over ``baseline``, seed by seed (same subset), with a verdict.

    The verdict is "helps" / "hurts" when the mean gain is more than two standard errors
    away from zero, else "within noise".

    >>> df = pd.DataFrame(dict(arm=["none"] * 3 + ["x"] * 3, n_train=[8] * 6, seed=[0, 1, 2] * 2,
    ...                        val_acc=[0.80, 0.82, 0.84, 0.90, 0.91, 0.95]))
    >>> paired_gains(df)[["arm", "gain", "verdict"]].round(3).to_dict("records")
    [{'arm': 'x', 'gain': 0.1, 'verdict': 'helps'}]
    """
    base = df[df.arm == baseline].set_index([by, "seed"])["val_acc"]
    out = []
    for (arm, key), grp in df[df.arm != baseline].groupby(["arm", by], sort=False):
        diff = grp.set_index([by, "seed"])["val_acc"] - base.loc[grp.set_index([by, "seed"]).index]
        mean = float(diff.mean())
        se = float(diff.std()) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        if len(diff) < 2:
            verdict = "one seed: no verdict"
        elif abs(mean) > 1e-9 and abs(mean) > 2 * se:
            verdict = "helps" if mean > 0 else "hurts"
        else:
            verdict = "within noise"
        out.append({"arm": arm, by: key, "gain": mean, "se": se, "verdict": verdict})
    return pd.DataFrame(out)


def plot_by_size(df: pd.DataFrame, ax=None, title: str = "") -> Figure:
    """Val accuracy against training-set size, one line per arm, error bars = std over seeds."""
    s = summarize(df)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    sizes = sorted(s.n_train.unique())
    for i, (arm, grp) in enumerate(s.groupby("arm", sort=False)):
        grp = grp.sort_values("n_train")
        shift = 1 + 0.04 * (i - 1)  # a small sideways shift so the error bars do not hide each other
        ax.errorbar(grp.n_train * shift, grp["mean"], yerr=grp["std"].fillna(0), marker="o", capsize=3,
                    label=arm, color=f"C{i}")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set(xlabel="training images (both classes)", ylabel="val accuracy (last epoch)",
           title=title or "augmentation vs training-set size (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure


def plot_strength(df: pd.DataFrame, ax=None, title: str = "") -> Figure:
    """Val accuracy against augmentation strength (arms named by their strength), mean ± std."""
    s = summarize(df)
    s = s.assign(strength=s.arm.astype(float)).sort_values("strength")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(s.strength, s["mean"], yerr=s["std"].fillna(0), marker="o", capsize=3)
    best = s.loc[s["mean"].idxmax()]
    ax.axvline(best.strength, color="C2", ls=":", label=f"best: strength {best.strength:g}")
    ax.set(xlabel="augmentation strength (0 = none, 1 = extreme)", ylabel="val accuracy (last epoch)",
           title=title or "too little, just right, too much (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure
