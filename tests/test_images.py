"""Image folders: ImageFolder-compatible scanning, odd image modes, corrupt files, caching."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from tlcourse import images
from tlcourse.errors import CourseError, DataMissingError
from conftest import make_image_folder


@pytest.mark.parametrize("how", ["real_root", "linked_root"])
def test_hymenoptera_matches_imagefolder(how, request):
    """The same files, in the same order, under the same paths: also through a symlinked data root."""
    real_root = request.getfixturevalue(how)
    for split, n in (("train", 244), ("val", 153)):
        ours = images.hymenoptera(split)
        theirs = ImageFolder(str(real_root / "hymenoptera_data" / split))
        assert len(ours) == n == len(theirs)
        assert ours.classes == theirs.classes == ["ants", "bees"]
        assert [str(p) for p, _ in ours.samples] == [p for p, _ in theirs.samples]
        assert ours.targets == theirs.targets
    train = images.hymenoptera("train")
    assert any("imageNotFound.gif" in s for s in train.skipped)
    assert any(" " in p.name for p, _ in train.samples)  # "ant photos.jpg" is read
    x, y = train[0]
    assert x.dtype == torch.uint8 and x.shape[0] == 3 and min(x.shape[1:]) == 256


def test_all_image_modes_become_rgb(tmp_path):
    """Shape AND values: each folder image is one flat colour, compared with a numpy reference."""
    colours = [(20, 0, 200), (60, 0, 160)]  # make_image_folder's colours of a/0 and b/0
    luma = [round((299 * r + 587 * g + 114 * b) / 1000) for r, g, b in colours]  # ITU-R 601 grey
    expected = {"L": [(v, v, v) for v in luma], "LA": [(v, v, v) for v in luma], "CMYK": colours,
                "RGBA": colours, "P": colours}
    tolerance = {"L": 3, "CMYK": 3, "RGBA": 0, "LA": 0, "P": 26}  # JPEG; PNG; 6-level web palette
    for mode in expected:
        make_image_folder(tmp_path / mode, {"a": 1, "b": 1}, mode=mode)
        ds = images.CachedImageFolder(tmp_path / mode, disk_cache=False)
        for (x, label), colour in zip(ds, expected[mode]):
            assert x.shape[0] == 3, mode
            mean = x.float().mean((1, 2))
            assert (mean - torch.tensor(colour, dtype=torch.float)).abs().max() <= tolerance[mode], (mode, mean)


def test_corrupt_jpeg_is_skipped_and_reported_or_raised(tiny_folder):
    bad = tiny_folder / "cats" / "broken.jpg"
    good = (tiny_folder / "cats" / "0.jpg").read_bytes()
    bad.write_bytes(good[: len(good) // 3])  # truncated JPEG
    with pytest.warns(UserWarning, match="broken.jpg"):
        ds = images.CachedImageFolder(tiny_folder, disk_cache=False)
    assert len(ds) == 5 and any("broken.jpg" in s for s in ds.skipped)
    with pytest.raises(images.BadImageError, match="broken.jpg"):
        images.CachedImageFolder(tiny_folder, strict=True, disk_cache=False)


def test_non_image_file_is_skipped_like_imagefolder(tiny_folder):
    (tiny_folder / "dogs" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="notes.txt"):
        ds = images.CachedImageFolder(tiny_folder, disk_cache=False)
    assert len(ds) == 5


def test_empty_class_folder_and_wrong_class_count(tiny_folder):
    with pytest.raises(CourseError, match="Expected 3 classes"):
        images.CachedImageFolder(tiny_folder, num_classes=3, disk_cache=False)
    (tiny_folder / "birds").mkdir()
    with pytest.raises(CourseError, match="birds holds no images"):
        images.CachedImageFolder(tiny_folder, disk_cache=False)


def test_missing_folder_errors(tmp_path, monkeypatch):
    with pytest.raises(CourseError, match="does not exist"):
        images.CachedImageFolder(tmp_path / "nope")
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "empty-root"))
    with pytest.raises(DataMissingError, match="fetch_data.py hymenoptera"):
        images.hymenoptera("train")


def test_val_without_a_class_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "root" / "hymenoptera_data"
    make_image_folder(root / "train", {"ants": 2, "bees": 2})
    make_image_folder(root / "val", {"ants": 2})
    (root / "val" / "bees").mkdir()
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "root"))
    with pytest.raises(CourseError, match="bees"):
        images.hymenoptera("val")


def test_disk_cache_is_reused_and_invalidated(tiny_folder, private_cache):
    first = images.CachedImageFolder(tiny_folder)
    files = list((private_cache / "images").glob("*.pt"))
    assert len(files) == 1
    again = images.CachedImageFolder(tiny_folder)
    assert all(torch.equal(a, b) for a, b in zip(first.images, again.images))
    Image.new("RGB", (40, 30), (1, 2, 3)).save(tiny_folder / "dogs" / "new.jpg")
    assert len(images.CachedImageFolder(tiny_folder)) == 6  # a changed folder is re-read


def test_a_16bit_image_in_a_folder_is_not_white(tmp_path):
    """The bug that was: a 16-bit grayscale PNG came out white (mean 254.6 of 255)."""
    import numpy as np

    folder = make_image_folder(tmp_path / "imgs", {"a": 1, "b": 1})
    raw = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(raw).save(folder / "a" / "scan16.png")
    ds = images.CachedImageFolder(folder)
    x = ds[[str(p) for p, _ in ds.samples].index(str(folder / "a" / "scan16.png"))][0]
    assert abs(x.float().mean().item() - np.rint(raw / 257).mean()) < 0.5  # 127.5


def test_the_cache_follows_a_changed_file(tiny_folder):
    import os

    first = images.CachedImageFolder(tiny_folder)
    Image.new("RGB", (40, 30), (255, 255, 255)).save(tiny_folder / "cats" / "0.jpg")  # same name, new pixels
    os.utime(tiny_folder / "cats" / "0.jpg", ns=(1, 1))  # even with an old modification time
    again = images.CachedImageFolder(tiny_folder)
    assert not torch.equal(first.images[0], again.images[0])


def test_scan_folder_finds_what_imagefolder_finds_in_its_order(tmp_path):
    """Nested folders, upper-case and unknown extensions: the same samples as torchvision's ImageFolder."""
    for rel in ["b/x.JPG", "b/a/1.png", "b/a.jpg", "a/z/y/2.jpeg", "a/0.png", "a/notes.txt", "c/sub/3.bmp"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    classes, samples, skipped = images.scan_folder(tmp_path)
    reference = ImageFolder(tmp_path)
    assert classes == reference.classes == ["a", "b", "c"]
    assert [(str(p), label) for p, label in samples] == reference.samples
    assert [str(path) for path, _ in skipped] == [str(tmp_path / "a" / "notes.txt")]


# --------------------------------------------------------------------------- the one rule for bad files
def bad_files(folder):
    """A truncated JPEG, a text file named .jpg, an empty file: each one PIL refuses."""
    good = (folder / "cats" / "0.jpg").read_bytes()
    (folder / "cats" / "cut.jpg").write_bytes(good[: len(good) // 3])
    (folder / "dogs" / "text.jpg").write_text("not an image")
    (folder / "dogs" / "empty.png").write_bytes(b"")
    return {"cut.jpg": "corrupt", "text.jpg": "not an image", "empty.png": "empty file"}


def test_every_file_pil_refuses_is_skipped_with_its_name_and_reason(tiny_folder):
    expected = bad_files(tiny_folder)
    with pytest.warns(UserWarning) as record:
        ds = images.CachedImageFolder(tiny_folder, disk_cache=False)
    message = " ".join(str(w.message) for w in record)
    assert len(ds) == 5
    for name, why in expected.items():
        assert f"{name} (cannot be decoded: {why}" in message
        assert any(name in s and why in s for s in ds.skipped)
    assert all(name not in str(p) for p, _ in ds.samples for name in expected)


def test_read_image_names_the_file_and_the_reason(tiny_folder):
    for name, why in bad_files(tiny_folder).items():
        path = next(tiny_folder.glob(f"*/{name}"))
        with pytest.raises(images.BadImageError, match=name) as info:
            images.read_image(path)
        assert info.value.reason.startswith(why)
    good = tiny_folder / "cats" / "0.jpg"
    pixels, size, mode = images.read_image(good)
    assert size == (40, 30) and mode == "RGB" and torch.equal(pixels, images.decode_image(good))


@pytest.mark.parametrize("limit", ["error", "warning"])
def test_decompression_bomb_is_refused_not_fatal(tiny_folder, monkeypatch, limit):
    """More than twice MAX_IMAGE_PIXELS: PIL raises DecompressionBombError; more than once: it warns.

    Both are a refusal: the file is skipped with its name and the reason, the others are read.
    """
    Image.new("RGB", (100, 100), (1, 2, 3)).save(tiny_folder / "cats" / "big.png")  # 10,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000 if limit == "error" else 8000)  # 40x30 = 1200: fine
    with pytest.raises(images.BadImageError, match="big.png.*decompression bomb"):
        images.read_image(tiny_folder / "cats" / "big.png")
    with pytest.warns(UserWarning, match=r"big\.png \(cannot be decoded: too many pixels"):
        ds = images.CachedImageFolder(tiny_folder, disk_cache=False)
    assert len(ds) == 5 and not any("big.png" in str(p) for p, _ in ds.samples)
    with pytest.raises(images.BadImageError, match="big.png"):
        images.CachedImageFolder(tiny_folder, strict=True, disk_cache=False)


def test_broken_symlink_class_folder_is_reported_not_dropped(tiny_folder):
    (tiny_folder / "birds").symlink_to(tiny_folder.parent / "no-such-folder", target_is_directory=True)
    classes, samples, skipped = images.scan_folder(tiny_folder)
    assert classes == ["cats", "dogs"] and len(samples) == 5
    assert [(p.name, why.split(" (")[0]) for p, why in skipped] == [("birds", "class folder is a broken symlink")]
    with pytest.warns(UserWarning, match="birds.*broken symlink"):
        ds = images.CachedImageFolder(tiny_folder, disk_cache=False)
    assert len(ds) == 5 and ds.classes == ["cats", "dogs"]


def test_only_broken_symlinks_is_a_clear_error(tmp_path):
    (tmp_path / "cats").symlink_to(tmp_path / "gone", target_is_directory=True)
    with pytest.raises(CourseError, match="broken symlink.*one sub-folder per class"):
        images.scan_folder(tmp_path)


def test_good_folder_reads_the_same_as_decode_image_without_warnings(tiny_folder, recwarn):
    ds = images.CachedImageFolder(tiny_folder, disk_cache=False)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    assert ds.skipped == [] and [str(p) for p, _ in ds.samples] == [p for p, _ in ImageFolder(str(tiny_folder)).samples]
    assert all(torch.equal(x, images.decode_image(p)) for x, (p, _) in zip(ds.images, ds.samples))
