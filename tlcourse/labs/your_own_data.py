"""Transfer learning on your own images: inspect a folder, measure the guide's two axes (07).

Lesson 08 applies the decision guide (:mod:`tlcourse.guide`) to any ``root/<class>/<images>``
folder. This module holds its scaffolding:

* :func:`inspect_folder` reads the folder with the course's one image-folder reader
  (:func:`tlcourse.images.scan_folder`: ``torchvision``'s ``find_classes``/``make_dataset``;
  :func:`tlcourse.images.read_image`: PIL's ``verify`` + the full decode) and keeps the decoded
  pixels in the course's cache. Bad files (empty, not an image, corrupt, unreadable, too many
  pixels, a broken-symlink class folder) are **listed with the reason and a warning, never fatal**.
* :func:`imbalance_warnings` says when classes are too small or too uneven.
* :func:`similarity` is the guide's second axis, measured by a proxy: how much better a linear
  probe (scikit-learn ``LogisticRegression``, cross-validated) separates the classes on the
  pretrained network's features than on the same network with random weights.
* :func:`demo_folder` builds the two folders CI runs the lesson on, from the data root, into
  the writable cache: ``"photos"`` (ants and bees, like ImageNet) and ``"digits"`` (MNIST-M,
  unlike it), each with planted bad files.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cats", "dogs"):
    ...     (root / name).mkdir()
    ...     for i in range(3):
    ...         Image.new("RGB", (40, 30), (60 * i, 90, 0)).save(root / name / f"{i}.png")
    >>> _ = (root / "dogs" / "broken.jpg").write_text("not a picture")
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # the warning names dogs/broken.jpg
    ...     report = inspect_folder(root, use_cache=False)
    >>> report.classes, report.counts
    (['cats', 'dogs'], {'cats': 3, 'dogs': 3})
    >>> [(name, why.split(":")[0]) for name, why in report.skipped]
    [('dogs/broken.jpg', 'not an image')]
"""
from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..infra import cache
from .. import config, features
from ..errors import CourseError
from ..images import ImageList, decode_folder, scan_folder, warn_skipped

VERSION = 1
"""Bump when :func:`inspect_folder` or :func:`demo_folder` change what they produce."""

#: A class with fewer images than this is too small to measure anything on.
MIN_PER_CLASS = 10
#: Warn when the largest class has this many times the images of the smallest.
IMBALANCE_RATIO = 3.0


# --------------------------------------------------------------------------- inspecting a folder
@dataclass
class FolderReport:
    """What :func:`inspect_folder` found: the usable images (decoded) and the skipped files."""

    root: Path
    classes: list[str]
    files: list[str]  # relative paths of the usable images
    targets: list[int]
    images: list[torch.Tensor]  # uint8 (3, H, W), short side at most ``short_side``
    sizes: list[tuple[int, int]]  # original (width, height)
    modes: list[str]  # PIL mode as stored (RGB, L, RGBA, P, I;16 ...)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why)

    @property
    def counts(self) -> dict[str, int]:
        """Usable images per class."""
        return {c: self.targets.count(i) for i, c in enumerate(self.classes)}

    def warnings(self) -> list[str]:
        """Class-size warnings (see :func:`imbalance_warnings`)."""
        return imbalance_warnings(self.counts)

    def summary(self) -> str:
        """Classes, counts, sizes, modes and skipped files, as text."""
        w, h = np.array(self.sizes).T if self.sizes else (np.zeros(1), np.zeros(1))
        modes = {m: self.modes.count(m) for m in sorted(set(self.modes))}
        lines = [f"{self.root}: {len(self.classes)} classes, {len(self.files)} usable images, "
                 f"{len(self.skipped)} skipped",
                 *(f"  {c:<20} {n:>6} images" for c, n in self.counts.items()),
                 f"  sizes: width {int(w.min())}..{int(w.max())}, height {int(h.min())}..{int(h.max())} "
                 f"(median {int(np.median(w))}x{int(np.median(h))}); modes: {modes}"]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped]
        lines += [f"  ⚠ {warning}" for warning in self.warnings()]
        return "\n".join(lines)

    def dataset(self, indices: Sequence[int] | None = None, transform: Callable | None = None) -> "ImageList":
        """The usable images (all, or ``indices``) as a Dataset of (transform(image), label)."""
        idx = range(len(self.images)) if indices is None else indices
        return ImageList([self.images[i] for i in idx], [self.targets[i] for i in idx], transform)


def _scan(root: Path, short_side: int | None) -> dict:
    """The folder read by :mod:`tlcourse.images`' one reader, in :class:`FolderReport`'s fields."""
    classes, samples, skipped = scan_folder(root, allow_empty=True)
    found = decode_folder(samples, short_side, root=root)
    ok = [(path, label) for path, label in samples
          if str(path.relative_to(root)) not in {rel for rel, _ in found["bad"]}]
    return {"classes": classes, "files": [str(path.relative_to(root)) for path, _ in ok],
            "targets": found["targets"], "images": found["images"], "sizes": found["sizes"],
            "modes": found["modes"],
            "skipped": sorted([(str(path.relative_to(root)), why) for path, why in skipped] + found["bad"])}


def inspect_folder(root: str | Path, short_side: int | None = 256, use_cache: bool = True) -> FolderReport:
    """Every class, usable image and skipped file of ``root/<class>/<images>``.

    Classes are the sub-folders, in ``ImageFolder``'s order; a file that cannot be used is
    listed in ``skipped`` with the reason (and named in a warning), and the lesson goes on without
    it: the rule of :func:`tlcourse.images.read_image`. The decoded
    images (short side shrunk to ``short_side``) are kept in the course's cache, keyed by the
    folder's files (names, sizes, times), so a second call on an unchanged folder is instant.
    """
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise CourseError(f"{root} is not a folder: give a folder with one sub-folder per class.")
    entry = cache.Entry("own_images", {"short_side": short_side}, data=[root], version=VERSION,
                        name=root.name)
    found = entry.get_or_build(lambda: _scan(root, short_side), use_cache=use_cache)
    warn_skipped(root, [f"{name} ({why})" for name, why in found["skipped"]])
    return FolderReport(root=root, classes=list(found["classes"]), files=list(found["files"]),
                        targets=list(found["targets"]), images=list(found["images"]),
                        sizes=[tuple(s) for s in found["sizes"]], modes=list(found["modes"]),
                        skipped=[tuple(s) for s in found["skipped"]])


def imbalance_warnings(counts: dict[str, int], min_per_class: int = MIN_PER_CLASS,
                       ratio: float = IMBALANCE_RATIO) -> list[str]:
    """Warnings about classes that are too small, or much smaller than the largest one.

    >>> for line in imbalance_warnings({"a": 100, "b": 20, "c": 4}):
    ...     print(line[:60])
    c: only 4 images (fewer than 10): too few to train or to mea
    b: 20 images, 5.0x fewer than a (100): accuracy will favour 
    c: 4 images, 25.0x fewer than a (100): accuracy will favour
    """
    if not counts:
        return ["no usable images at all"]
    out = [f"{c}: only {n} images (fewer than {min_per_class}): too few to train or to measure on"
           for c, n in counts.items() if n < min_per_class]
    big = max(counts, key=counts.get)
    out += [f"{c}: {n} images, {counts[big] / max(n, 1):.1f}x fewer than {big} ({counts[big]}): accuracy will "
            "favour the large classes; report per-class results (confusion matrix)"
            for c, n in counts.items() if counts[big] >= ratio * max(n, 1)]
    return out


def split(targets: Sequence[int], test_size: float = 0.25, seed: int = 0) -> tuple[list[int], list[int]]:
    """Stratified (train, test) indices: every class keeps its share in both parts.

    >>> split([0] * 8 + [1] * 4, test_size=0.25)
    ([0, 1, 2, 3, 6, 7, 8, 10, 11], [4, 5, 9])
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(targets))
    train, test = train_test_split(idx, test_size=test_size, stratify=np.asarray(targets), random_state=seed)
    return sorted(train.tolist()), sorted(test.tolist())


# --------------------------------------------------------------------------- similarity to ImageNet
def probe_accuracy(features: torch.Tensor | np.ndarray, labels: Sequence[int], folds: int = 5,
                   seed: int = 0) -> float:
    """Cross-validated accuracy of a linear probe (standardised features + logistic regression).

    >>> x = np.r_[np.zeros((10, 3)), np.ones((10, 3))] + np.random.default_rng(0).normal(0, .1, (20, 3))
    >>> probe_accuracy(x, [0] * 10 + [1] * 10)
    1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..threads import limit_threads

    y = np.asarray(labels)
    folds = max(2, min(folds, np.bincount(y).min()))
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    with limit_threads(1):  # a few hundred rows: one thread is faster
        scores = cross_val_score(probe, np.asarray(features, dtype=np.float32), y,
                                 cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return float(scores.mean())


@dataclass
class Similarity:
    """The similarity proxy: linear-probe accuracy, pretrained vs random weights, at every depth."""

    pretrained: dict[int, float]  # cut depth -> cross-validated accuracy
    random: dict[int, float]
    chance: float  # accuracy of always answering the largest class

    @property
    def top(self) -> int:
        return max(self.pretrained)

    @property
    def score(self) -> float:
        """The share of the error left by random features that the pretrained top features remove.

        0: pretraining does not help at the top (nothing alike); 1: the top features separate
        the classes perfectly where random ones did not.
        """
        gained = self.pretrained[self.top] - self.random[self.top]
        return float(np.clip(gained / max(1e-9, 1 - self.random[self.top]), 0.0, 1.0))

    @property
    def best_depth(self) -> int:
        """The cut depth whose pretrained features gave the best probe (the deepest of ties)."""
        best = max(self.pretrained.values())
        return max(d for d, a in self.pretrained.items() if a >= best - 1e-9)

    def __str__(self) -> str:
        return (f"linear probe at the top: pretrained {self.pretrained[self.top]:.3f}, random weights "
                f"{self.random[self.top]:.3f}, chance {self.chance:.3f} -> similarity {self.score:.2f}; "
                f"best pretrained depth {self.best_depth} of {self.top} ({self.pretrained[self.best_depth]:.3f})")


def features_every_depth(report: FolderReport, indices: Sequence[int], spec, size: int,
                         pretrained: bool) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """Pooled features after every block of the backbone (random weights: seed 0), cached."""
    from .. import backbones, transforms

    def build() -> dict:
        if not pretrained:
            torch.manual_seed(0)
        model = backbones.build(spec, pretrained=pretrained)
        data = report.dataset(indices, transforms.eval_transform(spec, size))
        by_depth, labels = features.features_by_depth(model, spec, data, progress=False)
        return {"features": {str(d): f for d, f in by_depth.items()}, "labels": labels}

    settings = dict(backbone=spec.name, arch=spec.arch, pretrained=pretrained, size=size,
                    files=[report.files[i] for i in indices])
    data = cache.cached("own_images", settings, build,
                        data=[report.root, *features.weights_files(spec, pretrained)],
                        version=VERSION, name=f"{report.root.name}-features-{spec.name}")
    return {int(d): f for d, f in data["features"].items()}, data["labels"]


def similarity(report: FolderReport, indices: Sequence[int], spec, size: int, folds: int = 5) -> Similarity:
    """The :class:`Similarity` proxy on the images ``indices`` (the training part: never the test part)."""
    pre, y = features_every_depth(report, indices, spec, size, pretrained=True)
    rand, _ = features_every_depth(report, indices, spec, size, pretrained=False)
    chance = float(np.bincount(y.numpy()).max() / len(y))
    return Similarity({d: probe_accuracy(f, y, folds) for d, f in pre.items()},
                      {d: probe_accuracy(f, y, folds) for d, f in rand.items()}, chance)


def plot_similarity(sim: Similarity, ax=None, title: str = ""):
    """Probe accuracy by cut depth, pretrained vs random weights, with chance."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2))
    depths = sorted(sim.pretrained)
    ax.plot(depths, [sim.pretrained[d] for d in depths], "o-", label="pretrained (ImageNet)")
    ax.plot(depths, [sim.random[d] for d in depths], "s--", label="same network, random weights")
    ax.axhline(sim.chance, color="grey", ls=":", label="largest class (chance)")
    ax.set(xlabel="cut after block", ylabel="cross-validated accuracy", ylim=(0, 1.02),
           title=title or f"linear probe by depth: similarity {sim.score:.2f}")
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure


# --------------------------------------------------------------------------- the CI folders
def _plant_bad_files(folder: Path, jpeg: Path) -> None:
    """A truncated JPEG, a text file named .jpg, an empty file and a stray text file."""
    data = jpeg.read_bytes()
    (folder / "zz_truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "zz_notes.jpg").write_text("this is a text file with an image's name\n")
    (folder / "zz_empty.jpg").write_bytes(b"")
    (folder / "zz_readme.txt").write_text("not an image type at all\n")


#: The planted bad files of every demo folder, relative to the folder (see :func:`demo_folder`).
PLANTED = {"photos": ["ants/zz_empty.jpg", "ants/zz_notes.jpg", "ants/zz_readme.txt", "ants/zz_truncated.jpg"],
           "digits": ["0/zz_empty.jpg", "0/zz_notes.jpg", "0/zz_readme.txt", "0/zz_truncated.jpg"]}


def demo_folder(kind: str = "photos", per_class: int = 60, seed: int = 0) -> Path:
    """A ``root/<class>/<images>`` folder built from the data root into the cache (once).

    ``"photos"``: ``per_class`` ants and bees from hymenoptera (train and val), ImageNet-like.
    ``"digits"``: ``per_class`` MNIST-M digits per class (PNG, 32x32; digit 9 gets a third of
    that, to show the imbalance warning), unlike ImageNet. Both get the bad files in
    :data:`PLANTED`. The data root is only read; building again returns the folder as it is.
    """
    from ..infra.registry import require

    if kind not in PLANTED:
        raise ValueError(f"kind must be one of {sorted(PLANTED)}, got {kind!r}")
    target = config.cache_dir() / "own_images" / f"{kind}-{per_class}-s{seed}-v{VERSION}"
    if (target / ".complete").exists():
        return target
    rng = random.Random(seed)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if kind == "photos":
        source = require("hymenoptera")
        for name in ("ants", "bees"):
            files = sorted((source / "train" / name).glob("*.jpg")) + sorted((source / "val" / name).glob("*.jpg"))
            (tmp / name).mkdir(parents=True)
            for f in rng.sample(files, per_class):
                shutil.copyfile(f, tmp / name / f.name.replace(" ", "_"))
        jpeg = next((tmp / "ants").glob("*.jpg"))
    else:
        source = require("mnist_m")
        rows = [line.split() for line in (source / "mnist_m_test_labels.txt").read_text().splitlines() if line.strip()]
        by_digit: dict[str, list[str]] = {}
        for name, label in rows:
            by_digit.setdefault(label, []).append(name)
        for label, names in sorted(by_digit.items()):
            (tmp / label).mkdir(parents=True)
            for name in rng.sample(names, per_class if label != "9" else max(2, per_class // 3)):
                shutil.copyfile(source / "mnist_m_test" / name, tmp / label / name)
        jpeg = next(require("hymenoptera").glob("train/ants/*.jpg"))
    _plant_bad_files(tmp / ("ants" if kind == "photos" else "0"), jpeg)
    (tmp / ".complete").write_text("built by tlcourse.labs.your_own_data.demo_folder\n")
    try:
        os.replace(tmp, target)  # atomic; another process may have finished first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- the widget's run
def run_strategy(report: FolderReport, train_idx: Sequence[int], test_idx: Sequence[int], spec, size: int,
                 strategy: str, epochs: int, lr: float, depth: int | None = None,
                 callbacks: Sequence = (), seed: int = 0) -> tuple[nn.Module, "object", float]:
    """Train one of the guide's strategies on the training part; return (model, history, test accuracy).

    A quarter of the training part is the validation set the curves show (early stopping on it
    keeps the best epoch); the test part is used once, at the end. Feature strategies train a
    linear head on cached features (``"lower-layer features"`` cut after ``depth``); fine-tuning
    trains the last two blocks (``"fine-tune"``) or all of them (``"fine-tune all"``) with the
    lesson 02 recipe (:func:`tlcourse.finetune.fine_tune`).
    """
    from torch.utils.data import DataLoader

    from .. import finetune, training, transforms
    from ..guide import STRATEGIES

    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    fit_idx, val_idx = (np.asarray(train_idx)[part].tolist()
                        for part in split([report.targets[i] for i in train_idx], 0.25, seed))
    n_classes = len(report.classes)
    training.seed_everything(seed)
    if strategy in ("fixed features", "lower-layer features"):
        cut = spec.num_blocks if strategy == "fixed features" else (depth or spec.num_blocks // 2)
        parts = [features_every_depth(report, idx, spec, size, True) for idx in (fit_idx, val_idx, test_idx)]
        loaders = [features.feature_loader(f[cut], y, shuffle=i == 0) for i, (f, y) in enumerate(parts)]
        model = nn.Linear(parts[0][0][cut].shape[1], n_classes)
        history = training.fit(model, loaders[0], loaders[1], torch.optim.Adam(model.parameters(), lr=lr),
                               epochs, callbacks=callbacks, progress=False)
        test_loader = loaders[2]
    else:
        train_tf, eval_tf = transforms.train_transform(spec, size), transforms.eval_transform(spec, size)
        loader = lambda idx, tf, shuffle: DataLoader(report.dataset(idx, tf), batch_size=16, shuffle=shuffle)  # noqa: E731
        model, history = finetune.fine_tune(spec, loader(fit_idx, train_tf, True), loader(val_idx, eval_tf, False),
                                            epochs, lr=lr, head_lr=10 * lr, num_classes=n_classes,
                                            trainable_blocks=2 if strategy == "fine-tune" else None,
                                            callbacks=callbacks, progress=False)
        test_loader = loader(test_idx, eval_tf, False)
    logits, labels = training.predict(model, test_loader)
    return model, history, float((logits.argmax(1) == labels).float().mean())

