"""Lesson 08's scaffolding: folder inspection, class warnings, the split, the similarity proxy, the CI folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import data_root
from PIL import Image

from tlcourse import guide
from tlcourse.labs import your_own_data as lab


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path / "cache"))


def make_folder(root: Path, counts: dict[str, int], size=(40, 30)) -> Path:
    for k, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, (40 * k, 5 * i, 100)).save(root / name / f"{i:03d}.png")
    return root


def test_bad_files_are_listed_with_their_reason_not_fatal(tmp_path):
    root = make_folder(tmp_path / "f", {"a": 4, "b": 4})
    good = (root / "a" / "000.png").read_bytes()
    Image.new("RGB", (64, 48), (9, 9, 9)).save(root / "b" / "photo.jpg", quality=90)
    jpeg = (root / "b" / "photo.jpg").read_bytes()
    (root / "a" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "a" / "text.jpg").write_text("hello")
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "b" / "notes.txt").write_text("x")
    (root / "b" / "png_named.jpg").write_bytes(good)  # content decides, not the name: usable
    report = lab.inspect_folder(root)
    why = dict(report.skipped)
    assert sorted(why) == ["a/cut.jpg", "a/empty.png", "a/text.jpg", "b/notes.txt"]
    assert why["a/empty.png"].startswith("empty file")
    assert why["a/text.jpg"].startswith("not an image")
    assert why["a/cut.jpg"].startswith("corrupt")
    assert why["b/notes.txt"].startswith("not an image type")
    assert report.counts == {"a": 4, "b": 6}
    assert len(report.images) == len(report.targets) == len(report.files) == 10
    assert report.images[0].dtype == torch.uint8 and report.images[0].shape == (3, 30, 40)
    assert report.sizes[0] == (40, 30) and set(report.modes) == {"RGB"}
    assert "a/cut.jpg" in report.summary()


def test_bad_files_are_named_in_a_warning(tmp_path):
    root = make_folder(tmp_path / "f", {"a": 3, "b": 3})
    (root / "a" / "text.jpg").write_text("hello")
    with pytest.warns(UserWarning, match=r"a/text\.jpg \(not an image"):
        report = lab.inspect_folder(root)
    assert [n for n, _ in report.skipped] == ["a/text.jpg"]
    with pytest.warns(UserWarning, match="a/text.jpg"):  # from the cache too
        lab.inspect_folder(root)


def test_decompression_bomb_is_skipped_with_the_reason(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "f", {"a": 3, "b": 3})
    Image.new("RGB", (100, 100), (1, 2, 3)).save(root / "b" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 100x100 is over twice the limit: an error
    with pytest.warns(UserWarning, match="huge.png"):
        report = lab.inspect_folder(root, use_cache=False)
    assert dict(report.skipped)["b/huge.png"].startswith("too many pixels")
    assert report.counts == {"a": 3, "b": 3}


def test_broken_symlink_class_folder_is_listed(tmp_path):
    root = make_folder(tmp_path / "f", {"a": 3, "b": 3})
    (root / "c").symlink_to(tmp_path / "gone", target_is_directory=True)
    with pytest.warns(UserWarning, match="broken symlink"):
        report = lab.inspect_folder(root, use_cache=False)
    assert report.classes == ["a", "b"] and dict(report.skipped)["c"].startswith("class folder is a broken symlink")


def test_same_files_and_pixels_as_the_core_reader(tmp_path):
    """One reader: the lab's report holds CachedImageFolder's files, targets and pixels."""
    from tlcourse import images

    root = make_folder(tmp_path / "f", {"a": 3, "b": 2})
    report = lab.inspect_folder(root, use_cache=False)
    ds = images.CachedImageFolder(root, disk_cache=False)
    assert [str(root / f) for f in report.files] == [str(p) for p, _ in ds.samples]
    assert report.targets == ds.targets and all(torch.equal(x, y) for x, y in zip(report.images, ds.images))
    assert isinstance(report.dataset(), images.ImageList)


def test_unreadable_file_is_listed(tmp_path):
    root = make_folder(tmp_path / "f", {"a": 2, "b": 2})
    locked = root / "a" / "001.png"
    locked.chmod(0)
    try:
        if locked.open("rb"):  # running as root: permissions do not apply
            pytest.skip("permissions are not enforced for this user")
    except PermissionError:
        pass
    try:
        assert dict(lab.inspect_folder(root, use_cache=False).skipped)["a/001.png"].startswith("unreadable")
    finally:
        locked.chmod(0o644)


def test_modes_and_sizes_are_reported(tmp_path):
    root = tmp_path / "f"
    (root / "gray").mkdir(parents=True)
    (root / "sixteen").mkdir()
    Image.new("L", (20, 10), 128).save(root / "gray" / "g.png")
    Image.fromarray(np.full((12, 8), 65535, dtype=np.uint16)).save(root / "sixteen" / "s.png")
    report = lab.inspect_folder(root, use_cache=False)
    assert report.modes == ["L", "I;16"] or report.modes[0] == "L"
    assert report.sizes == [(20, 10), (8, 12)]
    assert report.images[1].max() == 255  # 16-bit white stays white (tlcourse.images' decoder)


def test_cache_returns_the_same_and_notices_a_new_file(tmp_path):
    root = make_folder(tmp_path / "f", {"a": 3, "b": 3})
    first = lab.inspect_folder(root)
    again = lab.inspect_folder(root)
    assert again.files == first.files and all(torch.equal(x, y) for x, y in zip(first.images, again.images))
    (root / "b" / "new.txt").write_text("x")
    assert [n for n, _ in lab.inspect_folder(root).skipped] == ["b/new.txt"]


def test_not_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(lab.CourseError, match="one sub-folder per class"):
        lab.inspect_folder(tmp_path / "missing")


def test_imbalance_warnings():
    assert lab.imbalance_warnings({"a": 50, "b": 40}) == []
    warnings = lab.imbalance_warnings({"a": 90, "b": 20, "c": 5})
    assert any(w.startswith("c: only 5") for w in warnings)
    assert any(w.startswith("b: 20 images, 4.5x fewer than a") for w in warnings)
    assert lab.imbalance_warnings({}) == ["no usable images at all"]


def test_split_is_stratified_disjoint_and_repeatable():
    targets = [0] * 40 + [1] * 12 + [2] * 8
    train, test = lab.split(targets)
    assert not set(train) & set(test) and len(train) + len(test) == 60
    assert [targets[i] for i in test].count(1) == 3 and [targets[i] for i in test].count(2) == 2
    assert lab.split(targets) == (train, test)


def test_similarity_score_and_best_depth():
    sim = lab.Similarity({1: 0.6, 2: 0.9, 3: 0.95}, {1: 0.6, 2: 0.55, 3: 0.5}, 0.5)
    assert sim.score == pytest.approx(0.9) and sim.best_depth == 3
    flat = lab.Similarity({1: 0.4, 2: 0.5, 3: 0.3}, {1: 0.3, 2: 0.3, 3: 0.3}, 0.1)
    assert flat.score == 0.0 and flat.best_depth == 2
    assert "similarity 0.00" in str(flat)


def test_probe_accuracy_separable_vs_noise():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    assert lab.probe_accuracy(rng.normal(size=(40, 5)) + 4 * y[:, None], y) == 1.0
    assert lab.probe_accuracy(rng.normal(size=(40, 5)), y) < 0.8


@pytest.mark.skipif(not (data_root() / "hymenoptera_data").is_dir(), reason="no prepared data root")
def test_demo_folders_are_built_once_with_their_bad_files(monkeypatch):
    monkeypatch.setenv("TLCOURSE_DATA", str(data_root()))
    photos = lab.demo_folder("photos", per_class=6)
    stamp = (photos / ".complete").stat().st_mtime_ns
    assert lab.demo_folder("photos", per_class=6) == photos
    assert (photos / ".complete").stat().st_mtime_ns == stamp  # idempotent: not rebuilt
    digits = lab.demo_folder("digits", per_class=6)
    for folder, kind in ((photos, "photos"), (digits, "digits")):
        report = lab.inspect_folder(folder)
        assert sorted(n for n, _ in report.skipped) == lab.PLANTED[kind]
    assert lab.inspect_folder(photos).counts == {"ants": 6, "bees": 6}
    counts = lab.inspect_folder(digits).counts
    assert len(counts) == 10 and counts["9"] == 2 and counts["0"] == 6
    assert str(data_root()) not in str(photos)  # written into the cache, never the data root


@pytest.mark.slow
@pytest.mark.skipif(not (data_root() / "hymenoptera_data").is_dir(), reason="no prepared data root")
def test_recommendation_differs_between_photos_and_digits(monkeypatch):
    """The proxy with the offline backbone: photos are similar to ImageNet, digits are not."""
    from tlcourse import backbones

    monkeypatch.setenv("TLCOURSE_DATA", str(data_root()))
    spec = backbones.get_spec("efficientnet_lite0")
    recs = {}
    for kind, n, size in (("photos", 30, 128), ("digits", 15, 64)):
        report = lab.inspect_folder(lab.demo_folder(kind, per_class=n))
        train, _ = lab.split(report.targets)
        sim = lab.similarity(report, train, spec, size)
        recs[kind] = guide.recommend(min(np.bincount([report.targets[i] for i in train])), sim.score)
    assert recs["photos"].strategy == "fixed features"
    assert recs["digits"].strategy == "lower-layer features"


@pytest.mark.parametrize("strategy", ["fixed features", "lower-layer features", "fine-tune"])
def test_run_strategy_trains_on_the_training_part_and_tests_once(tmp_path, strategy):
    """The widget's run (section 11): every strategy runs, validation comes from the training part."""
    from tlcourse import backbones

    root = make_folder(tmp_path / "f", {"a": 8, "b": 8}, size=(48, 48))
    report = lab.inspect_folder(root)
    train, test = lab.split(report.targets)
    spec = backbones.get_spec("efficientnet_lite0")
    seen = []
    model, history, acc = lab.run_strategy(report, train, test, spec, 32, strategy, epochs=2, lr=1e-3,
                                                  depth=3, callbacks=[seen.append])
    assert history.epochs == 2 and len(seen) == 2 and 0.0 <= acc <= 1.0
    with pytest.raises(ValueError, match="strategy must be one of"):
        lab.run_strategy(report, train, test, spec, 32, "magic", epochs=1, lr=1e-3)
