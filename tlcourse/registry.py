"""Registry of every dataset the course uses: where it lives, where it comes from.

Each entry names its folder inside the data root, the files that must be
present for the lessons to load it, and its public downloads with checksums
(used by ``data_scripts/fetch_data.py``).

Example:
    >>> sorted(DATASETS)
    ['hymenoptera', 'mnist', 'mnist_m', 'sst2', 'usps']
    >>> DATASETS["usps"].folder
    'USPS'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .errors import DataMissingError


@dataclass(frozen=True)
class Download:
    """One public file: its URL, its checksum, and how to unpack it."""

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    extract: bool = False  # unpack (zip / tar) into the dataset folder
    optional: bool = False  # the lessons can run without it (e.g. a train split)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its folder in the data root and what must be in it."""

    name: str
    folder: str
    required: tuple[str, ...]
    description: str
    source: str
    downloads: tuple[Download, ...] = field(default_factory=tuple)

    def path(self, root: Path | None = None) -> Path:
        """Where this dataset lives under ``root`` (default: the data root)."""
        return (root or config.data_root()) / self.folder

    def missing(self, root: Path | None = None) -> list[str]:
        """The required files that are not there (empty list: ready)."""
        base = self.path(root)
        return [rel for rel in self.required if not (base / rel).exists()]


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="hymenoptera",
            folder="hymenoptera_data",
            required=("train/ants", "train/bees", "val/ants", "val/bees"),
            description="Ants vs bees, ~120 training images per class (PyTorch tutorial).",
            source="https://download.pytorch.org/tutorial/hymenoptera_data.zip",
        ),
        DatasetSpec(
            name="sst2",
            folder="SST-2",
            required=("train.tsv", "dev.tsv"),
            description="GLUE SST-2 movie-review sentiment (train 67,349, dev 872).",
            source="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
        ),
        DatasetSpec(
            name="mnist",
            folder="MNIST/raw",
            required=("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
            description="MNIST handwritten digits (torchvision raw layout).",
            source="https://ossci-datasets.s3.amazonaws.com/mnist/",
        ),
        DatasetSpec(
            name="usps",
            folder="USPS",
            required=("usps.t.bz2",),
            description="USPS handwritten digits, 16x16 (torchvision's files).",
            source="https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/",
        ),
        DatasetSpec(
            name="mnist_m",
            folder="MNIST-M",
            required=("mnist_m_test", "mnist_m_test_labels.txt"),
            description="MNIST-M: MNIST digits blended over colour photo patches.",
            source="Ganin & Lempitsky (2015); see fetch_data.py for the mirror",
        ),
    )
}


def require(name: str, root: Path | None = None) -> Path:
    """Return the dataset's folder, or raise a clear error saying how to get it.

    >>> require("no-such-set")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    KeyError: "Unknown dataset 'no-such-set'; known: ..."
    """
    if name not in DATASETS:
        raise KeyError(f"Unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    spec = DATASETS[name]
    root = root or config.data_root()
    if not root.is_dir():
        raise DataMissingError(name, spec.path(root), f"the data root {root} does not exist", root)
    missing = spec.missing(root)
    if missing:
        raise DataMissingError(name, spec.path(root), "missing: " + ", ".join(missing), root)
    return spec.path(root)
