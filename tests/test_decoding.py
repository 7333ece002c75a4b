"""decode_image gives the right pixel VALUES for every mode PIL opens, upright, or refuses clearly.

Each expected value is computed independently with numpy from the raw array the file
was written from (16-bit: value / 257, rounded; alpha: composited on white; CMYK:
(255 - C)(255 - K) / 255), never by PIL's own conversion of the decoded image.
Some 16-bit files are written by a small PNG encoder below, not by PIL.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets.folder import pil_loader

from tlcourse import images

RNG = np.random.default_rng(0)


def write_png16(path, array: np.ndarray) -> None:
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA), written without PIL."""
    h, w = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def decoded(path) -> np.ndarray:
    x = images.decode_image(path, short_side=None)
    assert x.dtype == torch.uint8 and x.shape[0] == 3
    return x.permute(1, 2, 0).numpy().astype(np.int64)


def gray_as_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(gray, dtype=np.int64)[..., None], 3, axis=2)


def on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float64)[..., None] / 255.0
    return np.rint(rgb * a + 255.0 * (1 - a)).astype(np.int64)


# --------------------------------------------------------------------------- 8-bit modes
def test_8bit_rgb_and_gray_are_exact(tmp_path):
    rgb = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert (decoded(tmp_path / "rgb.png") == rgb).all()
    gray = RNG.integers(0, 256, (6, 5), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "l.png")
    assert (decoded(tmp_path / "l.png") == gray_as_rgb(gray)).all()


def test_one_bit_is_black_and_white(tmp_path):
    bits = RNG.integers(0, 2, (6, 8)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "bits.png")
    assert Image.open(tmp_path / "bits.png").mode == "1"
    assert (decoded(tmp_path / "bits.png") == gray_as_rgb(bits * 255)).all()


def test_palette_without_and_with_transparency(tmp_path):
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    index = RNG.integers(0, 4, (5, 7), dtype=np.uint8)
    img = Image.fromarray(index, "P")
    img.putpalette(palette.flatten().tolist())
    img.save(tmp_path / "p.png")
    assert (decoded(tmp_path / "p.png") == palette[index]).all()
    img.save(tmp_path / "pt.png", transparency=2)  # colour 2 is fully transparent
    expected = palette[index].astype(np.int64)
    expected[index == 2] = 255  # on white
    assert Image.open(tmp_path / "pt.png").mode == "P"
    assert (decoded(tmp_path / "pt.png") == expected).all()


def test_alpha_is_composited_on_white(tmp_path):
    rgba = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.abs(decoded(tmp_path / "rgba.png") - on_white(rgba[..., :3], rgba[..., 3])).max() <= 1
    la = RNG.integers(0, 256, (6, 5, 2), dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert np.abs(decoded(tmp_path / "la.png") - on_white(gray_as_rgb(la[..., 0]), la[..., 1])).max() <= 1
    # ImageFolder keeps the colour under a transparent pixel: we do not
    clear = rgba.copy()
    clear[..., :3], clear[..., 3] = 0, 0
    Image.fromarray(clear, "RGBA").save(tmp_path / "clear.png")
    assert (decoded(tmp_path / "clear.png") == 255).all()
    assert (np.asarray(pil_loader(str(tmp_path / "clear.png"))) == 0).all()


def test_cmyk_uses_the_standard_formula(tmp_path):
    cmyk = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.tif")
    c, m, y, k = (cmyk[..., i].astype(np.float64) for i in range(4))
    expected = np.stack([(255 - ch) * (255 - k) / 255 for ch in (c, m, y)], axis=2)
    assert np.abs(decoded(tmp_path / "cmyk.tif") - expected).max() <= 1


# --------------------------------------------------------------------------- 16-bit and float
def test_16bit_gray_is_scaled_not_clipped(tmp_path):
    raw = RNG.integers(0, 65536, (6, 5), dtype=np.uint16)
    expected = gray_as_rgb(np.rint(raw / 257.0))
    Image.fromarray(raw).save(tmp_path / "pil16.png")  # PIL's own writer: mode I;16
    assert Image.open(tmp_path / "pil16.png").mode.startswith("I;16")
    assert (decoded(tmp_path / "pil16.png") == expected).all()
    write_png16(tmp_path / "raw16.png", raw)  # an independent writer
    assert (decoded(tmp_path / "raw16.png") == expected).all()
    ramp = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)
    write_png16(tmp_path / "ramp.png", ramp)
    assert abs(float(images.decode_image(tmp_path / "ramp.png", None).float().mean()) - 127.5) < 0.5


def test_16bit_rgb_and_rgba_are_within_one_level(tmp_path):
    """PIL reads 16-bit colour PNGs as 8-bit (the high byte): at most 1 from value / 257."""
    rgb = RNG.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    write_png16(tmp_path / "rgb16.png", rgb)
    assert np.abs(decoded(tmp_path / "rgb16.png") - np.rint(rgb / 257.0)).max() <= 1
    rgba = RNG.integers(0, 65536, (6, 5, 4), dtype=np.uint16)
    write_png16(tmp_path / "rgba16.png", rgba)
    expected = on_white(rgba[..., :3] / 257.0, np.rint(rgba[..., 3] / 257.0))
    assert np.abs(decoded(tmp_path / "rgba16.png") - expected).max() <= 2


def test_float_images_in_0_1_are_scaled_others_refused(tmp_path):
    values = RNG.random((6, 5)).astype(np.float32)
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    assert (decoded(tmp_path / "f.tif") == gray_as_rgb(np.rint(values * 255))).all()
    Image.fromarray(values * 1000, "F").save(tmp_path / "big.tif")
    with pytest.raises(images.BadImageError, match=r"big\.tif.*float.*Convert it"):
        images.decode_image(tmp_path / "big.tif")


def test_32bit_integer_images_are_refused(tmp_path):
    Image.fromarray(RNG.integers(0, 2**20, (6, 5)).astype(np.int32), "I").save(tmp_path / "i32.tif")
    assert Image.open(tmp_path / "i32.tif").mode == "I"
    with pytest.raises(images.BadImageError, match=r"i32\.tif.*32-bit integer"):
        images.decode_image(tmp_path / "i32.tif")


def test_modes_without_a_faithful_conversion_are_refused(tmp_path):
    Image.new("LAB", (4, 4), (50, 128, 128)).save(tmp_path / "lab.tif")
    with pytest.raises(images.BadImageError, match=r"lab\.tif.*'LAB'"):
        images.decode_image(tmp_path / "lab.tif")


def test_a_refused_image_is_skipped_in_a_folder_and_reported(tmp_path):
    from conftest import make_image_folder

    folder = make_image_folder(tmp_path / "imgs", {"a": 2, "b": 2})
    Image.fromarray(RNG.integers(0, 2**20, (6, 5)).astype(np.int32), "I").save(folder / "a" / "deep.tif")
    with pytest.warns(UserWarning, match="deep.tif"):
        ds = images.CachedImageFolder(folder)
    assert len(ds) == 4 and any("32-bit integer" in s for s in ds.skipped)
    with pytest.raises(images.BadImageError, match="deep.tif"):  # strict, read from the cache
        images.CachedImageFolder(folder, strict=True)


# --------------------------------------------------------------------------- orientation
def exif_with_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def test_exif_orientation_is_applied_unlike_imagefolder(tmp_path):
    stored = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)  # 4 rows x 6 columns as stored
    Image.fromarray(stored).save(tmp_path / "rot.png", exif=exif_with_orientation(6))
    upright = np.rot90(stored, k=-1)  # orientation 6: turn 90 degrees clockwise to display
    assert (decoded(tmp_path / "rot.png") == upright).all()
    assert np.asarray(pil_loader(str(tmp_path / "rot.png"))).shape == stored.shape  # ImageFolder: sideways


def test_exif_orientation_of_a_reduced_jpeg(tmp_path):
    """A sideways phone-style JPEG, decoded at reduced scale (draft): still upright, colours in place."""
    stored = np.zeros((400, 600, 3), np.uint8)
    stored[:, :300] = (250, 0, 0)  # left half red, right half blue, as stored
    stored[:, 300:] = (0, 0, 250)
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif_with_orientation(6), quality=95)
    x = images.decode_image(tmp_path / "phone.jpg", short_side=100)
    assert tuple(x.shape) == (3, 150, 100)  # upright: taller than wide, short side 100
    top, bottom = x[:, :60].float().mean((1, 2)), x[:, -60:].float().mean((1, 2))
    assert top[0] > 200 and top[2] < 50 and bottom[2] > 200 and bottom[0] < 50  # left half is now on top
