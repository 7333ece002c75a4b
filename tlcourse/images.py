"""Image-folder datasets that decode each image once, with the right pixels.

:class:`CachedImageFolder` reads a ``root/<class>/<image>`` folder the way
torchvision's ``ImageFolder`` does (same classes, same files, same order), but
decodes every image once, shrunk to ``short_side`` pixels, and keeps the
uint8 tensors in memory and in the course's disk cache (:mod:`tlcourse.infra.cache`).
Decoding a 2592x1944 JPEG costs more than a forward pass of a small CNN, so
this turns an epoch from "mostly JPEG decoding" into "mostly learning".

This module is the course's **one image-folder reader** (:func:`scan_folder` finds the files,
:func:`read_image` reads each one, :func:`decode_folder` reads them all); lesson 08's
``inspect_folder`` uses it too. It has one rule for bad files: files that are not an image type
(``imageNotFound.gif`` in hymenoptera) are skipped like ImageFolder skips them, and a file PIL
refuses for any reason (empty, not an image, truncated or corrupt, unreadable, too many pixels
for ``PIL.Image.MAX_IMAGE_PIXELS`` -- a possible decompression bomb --, a mode with no faithful
conversion ...) is **skipped with a warning naming the file and the reason**, and listed in
``dataset.skipped``. A class folder that is a broken symlink is reported the same way.

**Decoding** (:func:`decode_image`) gives 8-bit RGB with the right values for
every mode PIL opens, where ImageFolder's ``convert("RGB")`` can be silently
wrong:

* 16-bit grayscale (``I;16``, and ``I`` from 16-bit PNG/TIFF) is scaled to
  0-255 (value / 257, rounded), where ``convert("RGB")`` clips it to white;
  16-bit RGB(A) PNGs, which PIL reads as 8-bit (the high byte), are within one
  grey level of that.
* 32-bit float ``F`` images with values in [0, 1] are scaled by 255;
  32-bit integer or float images on any other scale are **refused**: their
  scale is unknown, so convert them to 8- or 16-bit first.
* Transparent pixels (``RGBA``, ``LA``, ``PA``, palette with transparency) are
  **composited on white**, as a browser shows them (ImageFolder keeps the
  colour stored under a transparent pixel, often black).
* CMYK is converted with the file's ICC profile when it has one (else with
  PIL's formula R = (255 - C)(255 - K)/255); 1-bit, palette, YCbCr and HSV
  images with PIL's conversions. Other modes (LAB ...) are refused.
* **EXIF orientation is applied** (``PIL.ImageOps.exif_transpose``): a phone
  photo stored sideways with an orientation tag comes out upright. This
  *differs from torchvision's ImageFolder*, which ignores the tag; for the
  course's datasets the two agree (no hymenoptera photo is rotated).

Anything else that cannot be decoded correctly raises :class:`BadImageError`
with the file name and what to do.

Example:
    >>> train = hymenoptera("train")                      # doctest: +SKIP
    >>> len(train), train.classes                          # doctest: +SKIP
    (244, ['ants', 'bees'])
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, has_file_allowed_extension, make_dataset
from torchvision.transforms.v2 import functional as F

from .infra import cache
from .errors import FETCH_COMMAND, CourseError
from .infra.registry import require

DECODER_VERSION = 2
"""Bump when :func:`decode_image` changes its output: cached image folders are then re-decoded."""


class BadImageError(CourseError, ValueError):
    """An image file cannot be decoded (correctly); ``reason`` says why, without the file name."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def _refuse(path, why: str) -> BadImageError:
    return BadImageError(f"Cannot decode image {path} correctly: {why}. Convert it to an 8-bit RGB or "
                         "grayscale PNG/JPEG (or 16-bit grayscale PNG), or remove it from the folder.",
                         f"unsupported: {why}")


def _reason(path, exc: BaseException) -> str:
    """Why PIL refused ``path`` (``exc``), in a few words: the text a skipped file is listed with."""
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return (f"too many pixels, refused as a possible decompression bomb ({exc}; the limit is "
                f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}: raise it only for a file you trust)")
    if isinstance(exc, PermissionError):
        return f"unreadable: {exc.strerror or exc}"
    if isinstance(exc, FileNotFoundError):
        return "missing: the file (or the file a symlink points to) does not exist"
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
    except OSError:
        pass
    if isinstance(exc, UnidentifiedImageError):
        return "not an image: its content is in no image format PIL reads"
    if isinstance(exc, (OSError, SyntaxError, ValueError)):
        return f"corrupt: {exc}"
    return f"corrupt: {type(exc).__name__}: {exc}"


def _sixteen_bit_to_8(array: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(array.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def _bits_per_sample(img: Image.Image) -> int | None:
    """Bits per sample of an integer image, where the file says so (PNG: at most 16; TIFF: tag 258)."""
    if img.format == "PNG":
        return 16
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits = tags[258]
        return int(bits[0] if isinstance(bits, tuple) else bits)
    return None


def _on_white(img: Image.Image) -> Image.Image:
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")


def _to_rgb(img: Image.Image, path) -> Image.Image:
    """``img`` (any mode) as 8-bit RGB with the right values, or :class:`BadImageError`."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("L", "1", "RGBX", "YCbCr", "HSV"):
        return img.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa") or (mode == "P" and "transparency" in img.info):
        return _on_white(img)
    if mode == "P":
        return img.convert("RGB")
    if mode == "CMYK":
        icc = img.info.get("icc_profile")
        if icc:
            try:
                from PIL import ImageCms

                return ImageCms.profileToProfile(img, io.BytesIO(icc), ImageCms.createProfile("sRGB"),
                                                 outputMode="RGB")
            except Exception as exc:  # no littlecms, a broken profile ...
                warnings.warn(f"{path}: CMYK colour profile not applied ({exc}); using PIL's formula.",
                              stacklevel=4)
        return img.convert("RGB")
    if mode.startswith("I;16"):
        return Image.fromarray(_sixteen_bit_to_8(np.asarray(img))).convert("RGB")
    if mode == "I":
        array, bits = np.asarray(img), _bits_per_sample(img)
        if bits == 8:
            gray = np.clip(array, 0, 255).astype(np.uint8)
        elif bits == 16:
            gray = _sixteen_bit_to_8(array)
        else:
            raise _refuse(path, f"32-bit integer pixels (mode 'I', {bits or 'unknown'} bits per sample; "
                                f"values {array.min()}..{array.max()}) have no known 0-255 scale")
        if array.min() < 0 or array.max() > (255 if bits == 8 else 65535):
            raise _refuse(path, f"pixel values {array.min()}..{array.max()} do not fit {bits} bits")
        return Image.fromarray(gray).convert("RGB")
    if mode == "F":
        array = np.asarray(img)
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise _refuse(path, f"32-bit float pixels (mode 'F') outside [0, 1] (values "
                                f"{np.nanmin(array):.4g}..{np.nanmax(array):.4g}) have no known 0-255 scale")
        return Image.fromarray(np.rint(array * 255).astype(np.uint8)).convert("RGB")
    raise _refuse(path, f"PIL mode {mode!r} has no faithful conversion to RGB here")


def _upright(img: Image.Image, path) -> Image.Image:
    """Apply the EXIF orientation tag (warn, never fail, when the EXIF block is unreadable)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:
        warnings.warn(f"{path}: unreadable EXIF orientation ({type(exc).__name__}: {exc}); "
                      "the image is used as stored.", stacklevel=4)
        return img


def read_image(path: str | Path, short_side: int | None = 256
               ) -> tuple[torch.Tensor, tuple[int, int], str]:
    """(pixels, original (width, height), PIL mode as stored) of one image file, or :class:`BadImageError`.

    The one rule of the course's image reading: any file PIL refuses -- empty, not an image,
    a broken structure (PIL's ``verify``), truncated (the full decode), unreadable, more pixels than
    ``PIL.Image.MAX_IMAGE_PIXELS`` (``DecompressionBombError``, and ``DecompressionBombWarning``
    taken as a refusal too), a mode with no faithful conversion -- raises :class:`BadImageError`
    naming the file, with the short reason in ``.reason``. The pixels are :func:`decode_image`'s.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # the cheap check of the file's structure first
                img.verify()
            with Image.open(path) as img:
                size, mode = img.size, img.mode
                if short_side and img.format == "JPEG":
                    img.draft("RGB" if img.mode == "RGB" else None, (short_side, short_side))
                img.load()  # the full decode: a truncated file fails here
                img = _to_rgb(_upright(img, path), path)
    except BadImageError:
        raise
    except Exception as exc:  # anything PIL refuses, for any reason
        why = _reason(path, exc)
        raise BadImageError(f"Cannot read image {path}: {why}. Replace or delete this file "
                            f"(or re-fetch the dataset with {FETCH_COMMAND}).", why) from exc
    if short_side and min(img.size) > short_side:
        scale = short_side / min(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.BILINEAR, reducing_gap=2.0)
    return F.pil_to_tensor(img), tuple(size), mode


def decode_image(path: str | Path, short_side: int | None = 256) -> torch.Tensor:
    """Decode any image to a uint8 RGB tensor (3, H, W) with the right pixel values, upright.

    See the module docstring for how each PIL mode is converted (16-bit scaled,
    transparency on white, EXIF orientation applied) and what is refused
    (:class:`BadImageError`, see :func:`read_image`).
    The shorter side is shrunk to ``short_side`` (never enlarged); JPEGs are
    decoded at reduced scale directly (``Image.draft``), which is much faster.
    """
    return read_image(path, short_side)[0]


def scan_folder(root: Path, allow_empty: bool = False
                ) -> tuple[list[str], list[tuple[Path, int]], list[tuple[Path, str]]]:
    """Classes, (file, label) samples and (skipped path, why): torchvision's own ImageFolder discovery
    (``find_classes``, ``make_dataset``), so the order and the extension rule are ImageFolder's.

    Files without an image extension are skipped (ImageFolder skips them too), and a class folder
    that is a broken symlink is skipped and listed, never dropped silently. A class folder with no
    image is an error unless ``allow_empty``.
    """
    root = Path(root)
    if not root.is_dir():
        raise CourseError(f"Image folder {root} does not exist.")
    skipped: list[tuple[Path, str]] = [
        (root / entry.name, f"class folder is a broken symlink (to {os.readlink(entry.path)})")
        for entry in sorted(os.scandir(root), key=lambda e: e.name)
        if entry.is_symlink() and not os.path.exists(entry.path)]
    try:
        classes, class_to_idx = find_classes(root)
    except FileNotFoundError:
        broken = f" ({len(skipped)} broken symlink(s): {[str(p) for p, _ in skipped]})" if skipped else ""
        raise CourseError(f"No class folders in {root}{broken}: give a folder with one sub-folder per class "
                          f"({root}/<class name>/<images>).") from None

    def is_image(path: str) -> bool:
        if has_file_allowed_extension(path, IMG_EXTENSIONS):
            return True
        skipped.append((Path(path), f"not an image type (extension {Path(path).suffix or 'none'}): "
                                    "ImageFolder does not read it"))
        return False

    samples = [(Path(p), label) for p, label in
               make_dataset(root, class_to_idx, is_valid_file=is_image, allow_empty=True)]
    found = {label for _, label in samples}
    empty = [name for label, name in enumerate(classes) if label not in found]
    if empty and not allow_empty:
        raise CourseError(f"Class folder {root / empty[0]} holds no images: add some or remove it.")
    return classes, samples, skipped


def decode_folder(samples: list[tuple[Path, int]], short_side: int | None = 256, strict: bool = False,
                  root: Path | None = None) -> dict:
    """:func:`read_image` of every sample: ``images``, ``targets``, ``sizes``, ``modes`` of the readable
    ones, and ``bad``: (path, reason) of each file PIL refused (relative to ``root`` when given).

    ``strict`` raises the first :class:`BadImageError` instead of skipping the file.
    """
    out: dict = {"images": [], "targets": [], "sizes": [], "modes": [], "bad": []}
    for path, label in samples:
        try:
            pixels, size, mode = read_image(path, short_side)
        except BadImageError as exc:
            if strict:
                raise
            out["bad"].append((str(path.relative_to(root) if root else path), exc.reason or str(exc)))
            continue
        out["images"].append(pixels)
        out["targets"].append(label)
        out["sizes"].append(size)
        out["modes"].append(mode)
    return out


def warn_skipped(root: Path, skipped: list[str], stacklevel: int = 3) -> None:
    """One warning naming every skipped file of ``root`` and why (nothing when none was skipped)."""
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} file(s): " + "; ".join(skipped), stacklevel=stacklevel)


class ImageList(Dataset):
    """Decoded uint8 images and their labels; ``transform`` runs on every access."""

    def __init__(self, images: list[torch.Tensor], targets: list[int], transform: Callable | None = None) -> None:
        self.images, self.targets, self.transform = images, list(targets), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform else image), self.targets[index]


class CachedImageFolder(ImageList):
    """An ImageFolder whose images are decoded once and kept as uint8 tensors.

    Args:
        root: folder with one sub-folder per class.
        transform: applied to the uint8 tensor on every access (augmentation lives here).
        short_side: decode size; 256 suits 224-pixel crops.
        strict: raise on an undecodable image; otherwise skip it with a warning (:func:`read_image`).
        num_classes: if given, the number of class folders that must be there.
        disk_cache: keep decoded tensors in the course's disk cache (:mod:`tlcourse.infra.cache`),
            keyed by the folder's files (names, sizes, times) and the decoder's version.
    """

    def __init__(self, root: str | Path, transform: Callable | None = None,
                 short_side: int | None = 256, strict: bool = False,
                 num_classes: int | None = None, disk_cache: bool = True) -> None:
        self.root = Path(root)
        self.classes, samples, skipped = scan_folder(self.root)
        self.skipped = [f"{path} ({why})" for path, why in skipped]
        if num_classes is not None and num_classes != len(self.classes):
            raise CourseError(
                f"Expected {num_classes} classes but {self.root} has {len(self.classes)}: "
                f"{self.classes}. Fix the folder or the class count."
            )
        images, targets = self._load(samples, short_side, strict, disk_cache)
        super().__init__(images, targets, transform)
        self.samples = [(p, t) for p, t in samples if str(p) not in self._bad]
        warn_skipped(self.root, self.skipped)

    def _load(self, samples, short_side, strict, disk_cache):
        files = [(str(path.relative_to(self.root)), label) for path, label in samples]
        entry = cache.Entry("images", {"files": files, "short_side": short_side},
                            data=[self.root], version=DECODER_VERSION, name=self.root.name)
        build = lambda: decode_folder(samples, short_side, strict, root=self.root)  # noqa: E731
        data = entry.get_or_build(build) if disk_cache else build()
        if strict and data["bad"]:  # read from a cache built without strict
            rel, why = data["bad"][0]
            raise BadImageError(f"Cannot read image {self.root / rel}: {why}. Replace or delete this file.")
        self._bad = {str(self.root / rel) for rel, _ in data["bad"]}
        self.skipped += [f"{self.root / rel} (cannot be decoded: {why})" for rel, why in data["bad"]]
        return data["images"], data["targets"]


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
