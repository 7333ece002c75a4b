"""Digit datasets for domain adaptation: MNIST, USPS and MNIST-M.

All three come back in one format so that any can be source or target:
uint8 tensors of shape (N, 3, size, size) and int64 labels 0-9.
The files are read as they lie in the data root (torchvision's raw layout),
so a root that has only the test splits (like ``../shared/course-data``)
works for ``split="test"``.

Example:
    >>> x, y = load_digits("usps", split="test")            # doctest: +SKIP
    >>> x.shape, x.dtype, y[:5].tolist()                      # doctest: +SKIP
    (torch.Size([2007, 3, 32, 32]), torch.uint8, [9, 1, 2, 3, 0])
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as nnf

from .infra import cache
from . import config
from .errors import CourseError, DataMissingError
from .images import decode_image
from .infra.registry import DATASETS, require

DOMAINS = ("mnist", "usps", "mnist_m")
DIGITS_VERSION = 2  # bump when load_digits' output changes: cached tensors are then rebuilt
_MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise CourseError(f"{path} is truncated: expected {shape}, re-fetch it.")
    return array.reshape(shape)


def _need(name: str, folder: Path, filename: str) -> Path:
    path = folder / filename
    if not path.exists():
        raise DataMissingError(name, folder, f"{filename} is not there", config.data_root())
    return path


def _mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    folder = require("mnist")
    images, labels = (_need("mnist", folder, f) for f in _MNIST_FILES[split])
    return torch.from_numpy(read_idx(images).copy()).unsqueeze(1), torch.from_numpy(read_idx(labels).astype(np.int64))


def _usps(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import USPS

    folder = require("usps")
    _need("usps", folder, "usps.bz2" if split == "train" else "usps.t.bz2")
    ds = USPS(str(folder), train=split == "train", download=False)
    return torch.from_numpy(ds.data).unsqueeze(1), torch.as_tensor(ds.targets, dtype=torch.int64)


def _mnist_m(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    folder = DATASETS["mnist_m"].path()
    if split == "test":
        folder = require("mnist_m")
    images_dir = folder / f"mnist_m_{split}"
    labels_file = _need("mnist_m", folder, f"mnist_m_{split}_labels.txt")
    rows = [line.split() for line in labels_file.read_text().splitlines() if line.strip()]
    images = torch.stack([decode_image(images_dir / name, short_side=None) for name, _ in rows])
    return images, torch.tensor([int(label) for _, label in rows])


def load_digits(domain: str, split: str = "test", size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, size, size) uint8 and labels (N,) of one digit domain.

    Decoded once and cached through :mod:`tlcourse.infra.cache` (MNIST-M is
    9,001 PNG files; reading them takes seconds, the cache a fraction), keyed by
    the domain, split, size and the dataset folder's files.
    """
    if domain not in DOMAINS:
        raise KeyError(f"Unknown digit domain {domain!r}; choose one of {DOMAINS}")
    if split not in _MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")

    def build() -> dict[str, torch.Tensor]:
        x, y = {"mnist": _mnist, "usps": _usps, "mnist_m": _mnist_m}[domain](split)
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        if x.shape[-1] != size:
            x = nnf.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True)
            x = x.round().clamp(0, 255).to(torch.uint8)
        return {"x": x.contiguous(), "y": y}

    data = cache.cached("digits", dict(domain=domain, split=split, size=size), build,
                        data=[DATASETS[domain].path()], version=DIGITS_VERSION,
                        name=f"{domain}-{split}-{size}")
    return data["x"], data["y"]
