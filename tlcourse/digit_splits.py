"""Source / target splits for digit domain adaptation, with or without the train splits.

Domain adaptation needs four sets of images:

==============  ==========================  =========================================
part            domain                      used for
==============  ==========================  =========================================
``source``      source (MNIST), labelled    training the label classifier
``source_eval`` source, held out            checking the model still reads the source
``adapt``       target, labels hidden       the domain classifier (and the oracle)
``eval``        target, held out            the one number every method is judged on
==============  ==========================  =========================================

With the canonical splits in the data root (``canonical=True``) these are the
published train and test splits: MNIST train → ``source``, MNIST test →
``source_eval``, target train → ``adapt``, target test → ``eval``. A data
root with only the *test* splits (like ``../shared/course-data``) still works
(``canonical=False``): the available test images are cut into disjoint
parts. One subtlety: MNIST-M test image ``i`` **is** MNIST test image ``i``
blended over a photo, so the parts are cut from one shared index range and
no digit of ``eval`` is ever seen, in either domain, during training.

Example:
    >>> parts = split_indices(10, {"a": 3, "b": 5}, seed=0)
    >>> sorted(len(v) for v in parts.values())
    [3, 5]
    >>> set(parts["a"].tolist()) & set(parts["b"].tolist())
    set()
    >>> task = make_task("mnist_m", dict(source=600, source_eval=200, adapt=600, eval=300),
    ...                  canonical=False)                                        # doctest: +SKIP
    >>> print(task.describe())                                                   # doctest: +SKIP
    mnist → mnist_m: disjoint parts of the test splits (the quick profile's choice)
      source       mnist         600 images
      ...
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .digits import load_digits
from .errors import FETCH_COMMAND, CourseError
from .registry import DATASETS

PARTS = ("source", "source_eval", "adapt", "eval")
TARGETS = ("mnist_m", "usps")
#: the file whose presence means the canonical train split of a domain is in the data root
TRAIN_FILES = {"mnist": "train-images-idx3-ubyte.gz", "mnist_m": "mnist_m_train_labels.txt",
               "usps": "usps.bz2"}
FETCH_HINT = f"{FETCH_COMMAND} mnist mnist_m usps"

#: uint8 images (N, 3, H, W) and their labels (N,).
Data = tuple[torch.Tensor, torch.Tensor]


@dataclass
class AdaptationTask:
    """One adaptation problem: uint8 images (N, 3, size, size) and labels for each part.

    ``indices`` (cut from the test splits only) holds, for each part, the
    positions of its images in its domain's test split, so disjointness can be
    checked; ``note`` says where the parts come from and why.
    """

    source_name: str
    target_name: str
    parts: dict[str, Data]
    canonical: bool  # True: published train/test splits; False: cut from the test splits
    note: str = ""
    indices: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, part: str) -> Data:
        return self.parts[part]

    def describe(self) -> str:
        """One line per part (domain, size), after a line that says where they come from."""
        lines = [f"{self.source_name} → {self.target_name}: {self.note}"]
        for part in PARTS:
            domain = self.source_name if part.startswith("source") else self.target_name
            lines.append(f"  {part:<12} {domain:<8} {len(self.parts[part][1]):>7,} images")
        return "\n".join(lines)


def has_train_split(domain: str) -> bool:
    """Whether the data root holds the canonical train split of ``domain``.

    >>> has_train_split("usps") in (True, False)
    True
    """
    return (DATASETS[domain].path() / TRAIN_FILES[domain]).exists()


def missing_train_splits(*domains: str) -> list[str]:
    """The train-split files of ``domains`` that the data root lacks (``folder/file``).

    >>> isinstance(missing_train_splits("mnist", "mnist_m"), list)
    True
    """
    return [f"{DATASETS[d].folder}/{TRAIN_FILES[d]}" for d in domains if not has_train_split(d)]


def split_indices(n: int, sizes: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Disjoint random index sets of ``range(n)`` with the given sizes (each sorted).

    >>> split_indices(5, {"a": 4, "b": 2})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    CourseError: The parts need 6 images but only 5 are available ...
    """
    if any(size < 0 for size in sizes.values()):
        raise ValueError(f"sizes must not be negative: {sizes}")
    need = sum(sizes.values())
    if need > n:
        raise CourseError(f"The parts need {need} images but only {n} are available: {sizes}. "
                          "Make the profile's sizes smaller.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = order[start:start + size].sort().values
        start += size
    return out


def _take(data: Data, size: int, seed: int) -> Data:
    """A random subset of ``size`` items (all of them, in order, if ``size`` is as large)."""
    if size >= len(data[1]):
        return data
    idx = split_indices(len(data[1]), {"x": size}, seed)["x"]
    return data[0][idx], data[1][idx]


def _canonical(target: str, sizes: dict[str, int], seed: int, size: int) -> dict[str, Data]:
    return {"source": _take(load_digits("mnist", "train", size), sizes["source"], seed),
            "source_eval": _take(load_digits("mnist", "test", size), sizes["source_eval"], seed + 1),
            "adapt": _take(load_digits(target, "train", size), sizes["adapt"], seed + 2),
            "eval": _take(load_digits(target, "test", size), sizes["eval"], seed + 3)}


def indices_in_test_splits(target: str, n_source: int, n_target: int, sizes: dict[str, int],
                       seed: int = 0) -> dict[str, torch.Tensor]:
    """Where each part comes from when only the test splits exist: positions in the test splits.

    For MNIST-M (image ``i`` is MNIST image ``i`` on a photo) all four parts
    are cut from the shared range ``0 .. n_target - 1``, so no digit is in two
    parts; MNIST images past that range go to ``source_eval`` first. For USPS
    (unrelated images) source and target are cut independently.

    >>> idx = indices_in_test_splits("mnist_m", 12, 10, dict(source=4, source_eval=3, adapt=3, eval=2))
    >>> [len(idx[p]) for p in PARTS], idx["source_eval"][:2].tolist()
    ([4, 3, 3, 2], [10, 11])
    """
    if target == "mnist_m":
        extra = torch.arange(n_target, n_source)
        n_extra = min(len(extra), sizes["source_eval"])
        idx = split_indices(n_target, {"source": sizes["source"], "adapt": sizes["adapt"],
                                       "eval": sizes["eval"],
                                       "source_eval": sizes["source_eval"] - n_extra}, seed)
        idx["source_eval"] = torch.cat([extra[:n_extra], idx["source_eval"]])
        return {p: idx[p] for p in PARTS}
    s = split_indices(n_source, {"source": sizes["source"], "source_eval": sizes["source_eval"]}, seed)
    t = split_indices(n_target, {"adapt": sizes["adapt"], "eval": sizes["eval"]}, seed + 1)
    return {**s, **t}


def _from_test_splits(target: str, sizes: dict[str, int], seed: int, size: int
                      ) -> tuple[dict[str, Data], dict[str, torch.Tensor]]:
    sx, sy = load_digits("mnist", "test", size)
    tx, ty = load_digits(target, "test", size)
    if target == "mnist_m" and not torch.equal(sy[:len(ty)], ty):
        raise CourseError("MNIST-M test labels do not follow MNIST test: is the MNIST-M folder right?")
    idx = indices_in_test_splits(target, len(sy), len(ty), sizes, seed)
    parts = {p: (sx[i], sy[i]) if p.startswith("source") else (tx[i], ty[i]) for p, i in idx.items()}
    return parts, idx


def make_task(target: str, sizes: dict[str, int], seed: int = 0, canonical: bool | None = None,
              size: int = 32, test_sizes: dict[str, int] | None = None,
              source: AdaptationTask | None = None) -> AdaptationTask:
    """MNIST (labelled source) → ``target`` (``'mnist_m'`` or ``'usps'``), split into :data:`PARTS`.

    Args:
        sizes: the number of images of each part (with the canonical splits, at
            most the split's size is taken).
        canonical: ``True`` uses the published train/test splits (an error
            names what to fetch when they are missing); ``False`` cuts disjoint
            parts from the test splits; ``None`` uses the canonical splits when
            both train splits are in the data root, and otherwise falls back to
            the test splits and says so in :attr:`AdaptationTask.note`.
        size: image side in pixels (28 or 32 for these networks).
        test_sizes: the sizes to use when cutting from the test splits
            (default ``sizes``): the test splits hold fewer images.
        source: reuse this task's ``source`` and ``source_eval`` parts (to
            compare two targets on the very same source images).
    """
    if target not in TARGETS:
        raise KeyError(f"target must be one of {TARGETS}, got {target!r}")
    missing = [p for p in PARTS if p not in sizes]
    if missing:
        raise KeyError(f"sizes lacks {missing}; give a size for each of {PARTS}")
    absent = missing_train_splits("mnist", target)
    if canonical is None:
        canonical = not absent
        note = ("canonical train/test splits" if canonical else
                f"NOTE: the canonical train splits are not in the data root (missing {', '.join(absent)}), "
                f"so the parts are disjoint pieces of the test splits instead; fetch them with "
                f"`{FETCH_HINT}`")
    else:
        note = "canonical train/test splits" if canonical else "disjoint parts of the test splits"
    indices: dict[str, torch.Tensor] = {}
    if canonical:
        parts = _canonical(target, sizes, seed, size)
    else:
        parts, indices = _from_test_splits(target, test_sizes or sizes, seed, size)
    if source is not None:
        if source.source_name != "mnist" or source["source"][0].shape[-1] != size:
            raise ValueError(f"source= must be an MNIST task with {size}-pixel images, like this "
                             f"task (it has {source['source'][0].shape[-1]}-pixel {source.source_name} images)")
        parts.update(source=source["source"], source_eval=source["source_eval"])
        indices.pop("source", None), indices.pop("source_eval", None)
        note += f"; source parts shared with the mnist → {source.target_name} task"
    return AdaptationTask("mnist", target, parts, canonical, note, indices)
