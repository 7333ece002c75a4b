"""Digit adaptation tasks: disjoint parts from the test splits, canonical splits when present."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tlcourse.labs import domain_adaptation as lab
from tlcourse.labs.domain_adaptation import PARTS, indices_in_test_splits, make_task, split_indices
from tlcourse.errors import CourseError, DataMissingError

SIZES = dict(source=300, source_eval=120, adapt=300, eval=200)


# --------------------------------------------------------------------------- pure index logic
def test_split_indices_are_disjoint_sized_and_repeatable():
    a = split_indices(100, {"x": 30, "y": 50, "z": 20}, seed=3)
    assert [len(v) for v in a.values()] == [30, 50, 20]
    union = torch.cat(list(a.values()))
    assert len(set(union.tolist())) == 100  # disjoint and covering
    b = split_indices(100, {"x": 30, "y": 50, "z": 20}, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = split_indices(100, {"x": 30, "y": 50, "z": 20}, seed=4)
    assert not torch.equal(a["x"], c["x"])


def test_split_indices_refuses_too_many_and_negative():
    with pytest.raises(CourseError, match="need 11 images but only 10"):
        split_indices(10, {"a": 6, "b": 5})
    with pytest.raises(ValueError, match="negative"):
        split_indices(10, {"a": -1})


def test_mnist_m_parts_share_no_digit():
    # MNIST-M test i is MNIST test i: every part comes from one index range, so they are disjoint
    idx = indices_in_test_splits("mnist_m", 10_000, 9_001, dict(source=4000, source_eval=1500,
                                                                 adapt=2500, eval=1000))
    sets = {p: set(idx[p].tolist()) for p in PARTS}
    for i, p in enumerate(PARTS):
        assert len(sets[p]) == len(idx[p])
        for q in PARTS[i + 1:]:
            assert not sets[p] & sets[q], (p, q)
    # the 999 MNIST digits without an MNIST-M twin are used for source_eval first
    assert set(range(9_001, 10_000)) <= sets["source_eval"]
    assert max(sets["eval"] | sets["adapt"] | sets["source"]) < 9_001


def test_usps_parts_are_cut_independently():
    idx = indices_in_test_splits("usps", 10_000, 2_007, dict(source=3000, source_eval=500, adapt=1000, eval=1000))
    assert not set(idx["adapt"].tolist()) & set(idx["eval"].tolist())
    assert not set(idx["source"].tolist()) & set(idx["source_eval"].tolist())
    assert max(idx["eval"].tolist() + idx["adapt"].tolist()) < 2_007


# --------------------------------------------------------------------------- the real (test-only) data root
@pytest.fixture(scope="module")
def _module_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("digits-cache")


@pytest.fixture
def real_root(real_root, _module_cache, monkeypatch):
    """The real root, with one cache for this module: MNIST-M's 9,001 PNGs are decoded once."""
    monkeypatch.setenv("TLCOURSE_CACHE", str(_module_cache))
    return real_root


def test_test_split_task_on_the_real_root(real_root):
    task = make_task("mnist_m", SIZES, seed=1, canonical=False, size=28)
    assert not task.canonical and "disjoint" in task.note
    for part in PARTS:
        x, y = task[part]
        assert x.shape == (SIZES[part], 3, 28, 28) and x.dtype == torch.uint8 and len(y) == SIZES[part]
    # the images really come from the right domain: MNIST is grey (r = g = b), MNIST-M colour
    sx = task["source"][0].float()
    assert (sx[:, 0] - sx[:, 1]).abs().max() == 0
    tx = task["eval"][0].float()
    assert (tx[:, 0] - tx[:, 1]).abs().mean() > 5
    # labels follow the stored indices (MNIST-M test labels equal MNIST test labels)
    from tlcourse.digits import load_digits
    _, my = load_digits("mnist_m", "test", 28)
    assert torch.equal(task["eval"][1], my[task.indices["eval"]])
    print(task.describe())
    assert "eval" in task.describe() and "200 images" in task.describe()


def test_auto_falls_back_with_a_note_and_canonical_names_what_is_missing(real_root):
    if not lab.missing_train_splits("mnist", "mnist_m"):
        pytest.skip("this data root has the train splits")
    assert not lab.has_train_split("mnist") and not lab.has_train_split("mnist_m")
    task = make_task("mnist_m", dict(source=10**6, source_eval=10**6, adapt=10**6, eval=10**6),
                     test_sizes=SIZES, canonical=None)
    assert not task.canonical
    assert "NOTE" in task.note and "train-images-idx3-ubyte.gz" in task.note and "fetch_data.py" in task.note
    assert len(task["source"][1]) == SIZES["source"]  # the fallback used test_sizes
    with pytest.raises(DataMissingError, match="train-images-idx3-ubyte.gz"):
        make_task("mnist_m", SIZES, canonical=True)


def test_usps_task_can_share_the_source_images(real_root):
    m = make_task("mnist_m", SIZES, canonical=False, size=28)
    u = make_task("usps", SIZES, canonical=False, size=28, source=m)
    assert u["source"][0] is m["source"][0] and u["source_eval"][1] is m["source_eval"][1]
    assert u["eval"][0].shape == (200, 3, 28, 28) and "shared" in u.note
    with pytest.raises(ValueError, match="32-pixel images, like this task .it has 28-pixel"):
        make_task("usps", SIZES, canonical=False, size=32, source=m)


def test_bad_arguments():
    with pytest.raises(KeyError, match="mnist_m"):
        make_task("svhn", SIZES)
    with pytest.raises(KeyError, match="lacks"):
        make_task("usps", {"source": 10})


# --------------------------------------------------------------------------- a tiny root with the train splits
def _idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_root(root: Path) -> Path:
    """MNIST (train 60, test 40) and MNIST-M (train 50, test 30) with labels that tell the splits apart."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n, label in (("train", 60, 1), ("t10k", 40, 2)):
        _idx(raw / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)))
        _idx(raw / f"{split}-labels-idx1-ubyte.gz", np.full(n, label))
    mm = root / "MNIST-M"
    for split, n, label in (("train", 50, 3), ("test", 30, 4)):
        (mm / f"mnist_m_{split}").mkdir(parents=True)
        lines = []
        for i in range(n):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(mm / f"mnist_m_{split}" / f"{i:08d}.png")
            lines.append(f"{i:08d}.png {label}")
        (mm / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")
    return root


def test_canonical_splits_are_used_when_present(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_DATA", str(_fake_root(tmp_path / "data")))
    assert lab.has_train_split("mnist") and lab.has_train_split("mnist_m")
    task = make_task("mnist_m", dict(source=1000, source_eval=25, adapt=20, eval=1000), canonical=None)
    assert task.canonical and task.note == "canonical train/test splits" and not task.indices
    sizes = {p: len(task[p][1]) for p in PARTS}
    assert sizes == dict(source=60, source_eval=25, adapt=20, eval=30)  # capped at each split's size
    # source = MNIST train, source_eval = MNIST test, adapt = MNIST-M train, eval = MNIST-M test
    assert [set(task[p][1].tolist()) for p in PARTS] == [{1}, {2}, {3}, {4}]
    assert task["eval"][0].shape[1:] == (3, 32, 32)
