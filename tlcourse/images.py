"""Image-folder datasets that decode each JPEG once.

:class:`CachedImageFolder` reads a ``root/<class>/<image>`` folder exactly
the way torchvision's ``ImageFolder`` does (same classes, same files, same
order), but decodes every image once, shrunk to ``short_side`` pixels, and
keeps the uint8 tensors in memory and in a disk cache. Decoding a 2592x1944
JPEG costs more than a forward pass of a small CNN, so this turns an epoch
from "mostly JPEG decoding" into "mostly learning".

Files that are not images (``imageNotFound.gif`` in hymenoptera) are skipped
like ImageFolder skips them, and listed in ``dataset.skipped``.

Example:
    >>> train = hymenoptera("train")                      # doctest: +SKIP
    >>> len(train), train.classes                          # doctest: +SKIP
    (244, ['ants', 'bees'])
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Callable

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms.v2 import functional as F

from . import config
from .errors import CourseError
from .registry import require


class BadImageError(CourseError, ValueError):
    """An image file cannot be decoded."""


def decode_image(path: str | Path, short_side: int | None = 256) -> torch.Tensor:
    """Decode any image (grayscale, CMYK, RGBA, palette ...) to a uint8 RGB tensor.

    The shorter side is shrunk to ``short_side`` (never enlarged); JPEGs are
    decoded at reduced scale directly (``Image.draft``), which is much faster.
    """
    try:
        with Image.open(path) as img:
            if short_side:
                img.draft("RGB", (short_side, short_side))
            img = img.convert("RGB")  # also forces the full decode: truncation shows here
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise BadImageError(
            f"Cannot read image {path}: {exc}. Replace or delete this file "
            "(or re-fetch the dataset with data_scripts/fetch_data.py)."
        ) from exc
    if short_side and min(img.size) > short_side:
        scale = short_side / min(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.BILINEAR, reducing_gap=2.0)
    return F.pil_to_tensor(img)


def scan_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]], list[str]]:
    """Classes, (file, label) samples and skipped files, in ImageFolder's order."""
    if not root.is_dir():
        raise CourseError(f"Image folder {root} does not exist.")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise CourseError(f"No class folders in {root}: expected {root}/<class name>/<images>.")
    samples, skipped = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.is_file())
        kept = [p for p in files if p.suffix.lower() in IMG_EXTENSIONS]
        skipped += [f"{p} (not an image type ImageFolder reads)" for p in files if p not in kept]
        if not kept:
            raise CourseError(f"Class folder {root / name} holds no images: add some or remove it.")
        samples += [(p, label) for p in kept]
    return classes, samples, skipped


def _cache_key(samples: list[tuple[Path, int]], short_side: int | None) -> str:
    h = hashlib.sha256(str(short_side).encode())
    for path, label in samples:
        st = path.stat()
        h.update(f"{path}|{label}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


class CachedImageFolder(Dataset):
    """An ImageFolder whose images are decoded once and kept as uint8 tensors.

    Args:
        root: folder with one sub-folder per class.
        transform: applied to the uint8 tensor on every access (augmentation lives here).
        short_side: decode size; 256 suits 224-pixel crops.
        strict: raise on an undecodable image; otherwise skip it with a warning.
        num_classes: if given, the number of class folders that must be there.
        disk_cache: keep decoded tensors in :func:`tlcourse.config.cache_dir`.
    """

    def __init__(self, root: str | Path, transform: Callable | None = None,
                 short_side: int | None = 256, strict: bool = False,
                 num_classes: int | None = None, disk_cache: bool = True) -> None:
        self.root, self.transform = Path(root), transform
        self.classes, samples, self.skipped = scan_folder(self.root)
        if num_classes is not None and num_classes != len(self.classes):
            raise CourseError(
                f"Expected {num_classes} classes but {self.root} has {len(self.classes)}: "
                f"{self.classes}. Fix the folder or the class count."
            )
        self.images, self.targets = self._load(samples, short_side, strict, disk_cache)
        self.samples = [(p, t) for p, t in samples if str(p) not in self._bad]
        if self.skipped:
            warnings.warn(f"{self.root}: skipped {len(self.skipped)} file(s): " + "; ".join(self.skipped),
                          stacklevel=2)

    def _load(self, samples, short_side, strict, disk_cache):
        self._bad: set[str] = set()
        cache = config.cache_dir() / "images" / f"{_cache_key(samples, short_side)}.pt"
        if disk_cache and cache.exists():
            data = torch.load(cache, weights_only=True)
            self._bad = set(data["bad"])
            self.skipped += data["skipped"]
            return data["images"], data["targets"]
        images, targets, bad_notes = [], [], []
        for path, label in samples:
            try:
                images.append(decode_image(path, short_side))
                targets.append(label)
            except BadImageError as exc:
                if strict:
                    raise
                self._bad.add(str(path))
                bad_notes.append(f"{path} (cannot be decoded: {exc.__cause__})")
        self.skipped += bad_notes
        if disk_cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            torch.save({"images": images, "targets": targets, "bad": sorted(self._bad),
                        "skipped": bad_notes}, tmp)
            tmp.replace(cache)  # atomic: an interrupted save never leaves a half cache
        return images, targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform else image), self.targets[index]


def hymenoptera(split: str, transform: Callable | None = None, **kwargs) -> CachedImageFolder:
    """The ants-vs-bees set from the data root: ``split`` is ``'train'`` or ``'val'``."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    ds = CachedImageFolder(require("hymenoptera") / split, transform, **kwargs)
    if ds.classes != ["ants", "bees"]:
        raise CourseError(f"hymenoptera/{split} should hold ants and bees, found {ds.classes}")
    return ds


def subset_per_class(targets: list[int], per_class: int, seed: int = 0) -> list[int]:
    """Indices of ``per_class`` random examples of every class (all if fewer).

    >>> subset_per_class([0, 0, 0, 1, 1, 1], per_class=2, seed=0)
    [0, 2, 4, 5]
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(targets)
    chosen: list[int] = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        chosen += idx[torch.randperm(len(idx), generator=g)[:per_class]].tolist()
    return sorted(chosen)
