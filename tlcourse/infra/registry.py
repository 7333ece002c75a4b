"""Registry of every dataset the course uses: where it lives, where it comes from.

Each entry names its folder inside the data root, the files that must be
present for the lessons to load it, the optional parts the lessons can do
without (train splits used only by the ``full`` profile), and its public
downloads with checksums (used by ``data_scripts/fetch_data.py``).

Which check protects which dataset
----------------------------------
=============  ==========================================  ===========================================
dataset        download check (before the file is kept)    data-root check (``fetch_data.py --verify``)
=============  ==========================================  ===========================================
hymenoptera    none published for the zip: every           per-file SHA-256 manifest (398 files)
               extracted file is checked against the
               manifest before the folder is put in place
sst2           zip MD5 published by torchtext              per-file SHA-256 manifest (2 files)
mnist          MD5 of each file, from torchvision          the same MD5s (size check by default)
usps           MD5 of each file, from torchvision          the same MD5s (size check by default)
mnist_m        tar.gz MD5 published by pytorch-adapt       per-file SHA-256 manifest (test split,
                                                           9,002 files)
=============  ==========================================  ===========================================

The manifests (``tlcourse/manifests/<name>.sha256.gz``, one ``sha256<TAB>size<TAB>path``
line per file) were generated from the prepared data root's ``SHA256SUMS``
(``fetch_data.py --make-manifests --from-folder DIR``); its README states the
files are byte for byte as published. A manifest lists only the files of that
copy, so it covers the required parts, not the optional train splits.

Example:
    >>> sorted(DATASETS)
    ['hymenoptera', 'mnist', 'mnist_m', 'sst2', 'usps']
    >>> DATASETS["usps"].folder
    'USPS'
    >>> DATASETS["mnist"].optional
    ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz')
    >>> len(DATASETS["hymenoptera"].manifest_entries())
    398
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

from .. import config
from ..errors import FETCH_COMMAND, CourseError, DataMissingError  # noqa: F401 (FETCH_COMMAND: fetch, download)

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"


@dataclass(frozen=True)
class Download:
    """One public file: its URL, its checksum, and how to unpack it.

    ``subdir`` names the folder inside an archive whose contents become the
    dataset folder (``SST-2.zip`` holds ``SST-2/train.tsv``, ...).
    ``checksum_source`` says where the checksum was published, so that a
    reader can check it without trusting this file.
    """

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    extract: bool = False  # unpack (zip / tar) into the dataset folder
    optional: bool = False  # the lessons can run without it (e.g. a train split)
    subdir: str = ""
    size: int | None = None  # bytes, where known: the quick check compares it
    checksum_source: str = ""


class ManifestEntry(NamedTuple):
    """One line of a per-file manifest."""

    sha256: str
    size: int


class FileCheck(NamedTuple):
    """What a file of a dataset should look like (any field may be unknown)."""

    size: int | None
    sha256: str | None
    md5: str | None
    optional: bool


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its folder in the data root and what must be in it."""

    name: str
    folder: str
    required: tuple[str, ...]
    description: str
    source: str
    downloads: tuple[Download, ...] = field(default_factory=tuple)
    optional: tuple[str, ...] = ()  # parts the quick profile runs without
    manifest: str | None = None  # file in tlcourse/manifests/, or an absolute path
    integrity: str = ""  # which check applies, in words (shown by fetch_data.py)

    def path(self, root: Path | None = None) -> Path:
        """Where this dataset lives under ``root`` (default: the data root)."""
        return (root or config.data_root()) / self.folder

    def missing(self, root: Path | None = None) -> list[str]:
        """The required files that are not there (empty list: ready)."""
        base = self.path(root)
        return [rel for rel in self.required if not (base / rel).exists()]

    def missing_optional(self, root: Path | None = None) -> list[str]:
        """The optional parts that are not there (information, never an error)."""
        base = self.path(root)
        return [rel for rel in self.optional if not (base / rel).exists()]

    @property
    def archive(self) -> Download | None:
        """The download that is unpacked into the folder, if the dataset comes as one."""
        return next((d for d in self.downloads if d.extract), None)

    def manifest_entries(self) -> dict[str, ManifestEntry]:
        """The per-file manifest, ``{relative path: (sha256, size)}`` (empty if none)."""
        if not self.manifest:
            return {}
        path = Path(self.manifest)
        return dict(load_manifest(path if path.is_absolute() else MANIFEST_DIR / path))

    def expected(self) -> dict[str, FileCheck]:
        """Every file whose size or checksum is known, manifest and single downloads merged.

        >>> DATASETS["usps"].expected()["usps.t.bz2"].md5
        '8ea070ee2aca1ac39742fdd1ef5ed118'
        """
        files = {rel: FileCheck(e.size, e.sha256, None, False) for rel, e in self.manifest_entries().items()}
        for d in self.downloads:
            if not d.extract:  # a single file lands in the folder as it was downloaded
                files[d.filename] = FileCheck(d.size, d.sha256, d.md5, d.optional)
        return files


@cache
def load_manifest(path: Path) -> tuple[tuple[str, ManifestEntry], ...]:
    """Read a ``sha256<TAB>size<TAB>relative path`` manifest (gzipped or not).

    Tabs, not spaces, separate the fields because file names may hold spaces
    (hymenoptera has ``train/ants/ant photos.jpg``). Lines starting with ``#``
    are comments.
    """
    if not path.is_file():  # e.g. a wheel built without the package data
        raise CourseError(f"The checksum manifest {path} is not installed; reinstall the course "
                          "from its checkout (pip install -e .) or fetch it from the repository.")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t", 2) for line in f if line.strip() and not line.startswith("#")]
    return tuple((rel, ManifestEntry(sha, int(size))) for sha, size, rel in rows)


_MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_TORCHVISION_MNIST = "torchvision/datasets/mnist.py (MNIST.resources)"
_USPS_MIRROR = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"
_TORCHVISION_USPS = "torchvision/datasets/usps.py (USPS.split_list)"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="hymenoptera",
            folder="hymenoptera_data",
            required=("train/ants", "train/bees", "val/ants", "val/bees"),
            description="Ants vs bees, ~120 training images per class (PyTorch tutorial).",
            source="https://download.pytorch.org/tutorial/hymenoptera_data.zip",
            downloads=(
                Download(
                    "https://download.pytorch.org/tutorial/hymenoptera_data.zip",
                    "hymenoptera_data.zip", extract=True, subdir="hymenoptera_data",
                    checksum_source="none published; the extracted files are checked against "
                    "manifests/hymenoptera.sha256.gz",
                ),
            ),
            manifest="hymenoptera.sha256.gz",
            integrity="per-file SHA-256 manifest (no checksum is published for the zip)",
        ),
        DatasetSpec(
            name="sst2",
            folder="SST-2",
            required=("train.tsv", "dev.tsv"),
            description="GLUE SST-2 movie-review sentiment (train 67,349, dev 872).",
            source="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
            downloads=(
                Download(
                    "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip", "SST-2.zip",
                    md5="9f81648d4199384278b86e315dac217c", extract=True, subdir="SST-2",
                    checksum_source="torchtext: pytorch/text torchtext/datasets/sst2.py (MD5)",
                ),
            ),
            manifest="sst2.sha256.gz",
            integrity="zip MD5 (torchtext) on download; per-file SHA-256 manifest",
        ),
        DatasetSpec(
            name="mnist",
            folder="MNIST/raw",
            required=("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
            description="MNIST handwritten digits (torchvision raw layout).",
            source=_MNIST_MIRROR,
            downloads=(
                Download(_MNIST_MIRROR + "t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                         md5="9fb629c4189551a2d022fa330f9573f3", size=1648877,
                         checksum_source=_TORCHVISION_MNIST),
                Download(_MNIST_MIRROR + "t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                         md5="ec29112dd5afa0611ce80d1b7f02629c", size=4542,
                         checksum_source=_TORCHVISION_MNIST),
                Download(_MNIST_MIRROR + "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz",
                         md5="f68b3c2dcbeaaa9fbdd348bbdeb94873", size=9912422, optional=True,
                         checksum_source=_TORCHVISION_MNIST),
                Download(_MNIST_MIRROR + "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz",
                         md5="d53e105ee54ea40749a09fcbcd1e9432", size=28881, optional=True,
                         checksum_source=_TORCHVISION_MNIST),
            ),
            optional=("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            integrity="MD5 of each file (torchvision)",
        ),
        DatasetSpec(
            name="usps",
            folder="USPS",
            required=("usps.t.bz2",),
            description="USPS handwritten digits, 16x16 (torchvision's files).",
            source=_USPS_MIRROR,
            downloads=(
                Download(_USPS_MIRROR + "usps.t.bz2", "usps.t.bz2",
                         md5="8ea070ee2aca1ac39742fdd1ef5ed118", size=1831726,
                         checksum_source=_TORCHVISION_USPS),
                Download(_USPS_MIRROR + "usps.bz2", "usps.bz2",
                         md5="ec16c51db3855ca6c91edd34d0e9b197", optional=True,
                         checksum_source=_TORCHVISION_USPS),
            ),
            optional=("usps.bz2",),
            integrity="MD5 of each file (torchvision)",
        ),
        DatasetSpec(
            name="mnist_m",
            folder="MNIST-M",
            required=("mnist_m_test", "mnist_m_test_labels.txt"),
            description="MNIST-M: MNIST digits blended over colour photo patches.",
            source="Ganin & Lempitsky (2015), mnist_m.tar.gz; mirror used by pytorch-adapt",
            downloads=(
                # The original link is a Google Drive page (no stable direct URL);
                # this is the direct mirror that pytorch-adapt downloads, with its MD5.
                Download(
                    "https://cornell.box.com/shared/static/jado7quprg6hzzdubvwzh9umr75damwi",
                    "mnist_m.tar.gz", md5="859df31c91afe82e80e5012ba928f279", extract=True,
                    subdir="mnist_m",
                    checksum_source="pytorch-adapt: KevinMusgrave/pytorch-adapt "
                    "src/pytorch_adapt/datasets/mnistm.py (MD5)",
                ),
            ),
            optional=("mnist_m_train", "mnist_m_train_labels.txt"),
            manifest="mnist_m.sha256.gz",
            integrity="tar.gz MD5 (pytorch-adapt) on download; per-file SHA-256 manifest (test split)",
        ),
    )
}


def get(name: str) -> DatasetSpec:
    """The spec of ``name``, or a KeyError that lists the known datasets."""
    if name not in DATASETS:
        raise KeyError(f"Unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def require(name: str, root: Path | None = None) -> Path:
    """Return the dataset's folder, or raise a clear error saying how to get it.

    >>> require("no-such-set")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    KeyError: "Unknown dataset 'no-such-set'; known: ..."
    """
    spec = get(name)
    root = root or config.data_root()
    if not root.is_dir():
        raise DataMissingError(name, spec.path(root), f"the data root {root} does not exist", root)
    missing = spec.missing(root)
    if missing:
        raise DataMissingError(name, spec.path(root), "missing: " + ", ".join(missing), root)
    return spec.path(root)
