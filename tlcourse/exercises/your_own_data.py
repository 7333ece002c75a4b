"""Graders of lesson 08's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

Example:
    >>> import torch
    >>> from PIL import Image, ImageOps
    >>> def predict_files(model, preprocess, files, batch_size=8):
    ...     model.eval()
    ...     out = []
    ...     with torch.inference_mode():
    ...         for start in range(0, len(files), batch_size):
    ...             batch = torch.stack([preprocess(ImageOps.exif_transpose(Image.open(f)).convert("RGB"))
    ...                                  for f in files[start:start + batch_size]])
    ...             out.append(model(batch).softmax(dim=1))
    ...     return torch.cat(out)
    >>> print(grade("08.3", predict_files))  # doctest: +ELLIPSIS
    ✔ Exercise 08.3: on 10 colour PNGs (batch_size 8) and on 8 files with a greyscale PNG, a transparent PNG...
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn
from torchvision.transforms import v2

from .grading import Wrong, _crash, case, grade, grades  # noqa: F401  (grade: the doctest)

NUM_CLASSES = 3
ORIENTATION = 0x0112  # the EXIF tag a phone writes instead of turning the pixels


def _tiny_classifier() -> nn.Module:
    """A small CNN with BatchNorm and Dropout, handed over in training mode: only eval() gives the
    one-by-one predictions (running statistics, no dropout)."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(4, NUM_CLASSES))
    with torch.no_grad():  # running statistics unlike any batch's, as after training
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.train()


def _preprocess() -> v2.Compose:
    """The lesson's eval pipeline, small: PIL image → resize → centre crop → normalised float tensor."""
    return v2.Compose([v2.ToImage(), v2.Resize(20, antialias=True), v2.CenterCrop(16),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])])


def _noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]  # colour, greyscale, colour with transparency
    pixels = np.random.randint(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)


def _write_folder(root: Path, tricky: bool) -> list[Path]:
    """Image files in ``root/<class>/``, listed in an order that is not sorted. ``tricky``: 8 files,
    a greyscale PNG, a transparent PNG and a JPEG stored sideways with an EXIF orientation tag among
    colour PNGs; else 10 colour PNGs."""
    for name in ("ants", "bees"):
        (root / name).mkdir()
    if not tricky:
        files = [root / ("bees" if k % 3 else "ants") / f"img_{(7 * k) % 10}.png" for k in range(10)]
        for k, file in enumerate(files):
            _noise(24 + 2 * k, 30 - k).save(file)
        return files
    files = [root / "bees" / "b_2.png", root / "ants" / "grey.png", root / "ants" / "a_1.png",
             root / "bees" / "phone.jpg", root / "ants" / "a_0.png", root / "bees" / "transparent.png",
             root / "bees" / "b_1.png", root / "ants" / "a_3.png"]
    for k, file in enumerate(files):
        if file.name == "grey.png":
            _noise(26, 22, "L").save(file)
        elif file.name == "transparent.png":
            _noise(25, 21, "RGBA").save(file)
        elif file.name == "phone.jpg":
            exif = Image.Exif()
            exif[ORIENTATION] = 6  # "turn 90° clockwise to view"
            _noise(36, 20).save(file, "JPEG", exif=exif.tobytes())
        else:
            _noise(22 + k, 28 - k).save(file)
    return files


def _one_by_one(model: nn.Module, preprocess: Callable, files: Sequence[Path], upright: bool = True) -> torch.Tensor:
    """The reference: each file alone, as predict_image does it (upright, RGB, eval mode, softmax)."""
    model.eval()
    rows = []
    with torch.inference_mode():
        for file in files:
            image = Image.open(file)
            image = (ImageOps.exif_transpose(image) if upright else image).convert("RGB")
            rows.append(model(preprocess(image).unsqueeze(0)).softmax(dim=1)[0])
    model.train()
    return torch.stack(rows)


@contextmanager
def _calls(model: nn.Module) -> Iterator[list[tuple[int, bool, bool]]]:
    """Record every forward call of ``model``: (batch size, training mode, gradients on)."""
    seen: list[tuple[int, bool, bool]] = []

    def hook(module: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        seen.append((len(x) if isinstance(x, torch.Tensor) else -1, module.training, torch.is_grad_enabled()))

    handle = model.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _as_probabilities(returned: Any, n: int) -> torch.Tensor:
    if isinstance(returned, (list, tuple)) and returned and all(isinstance(r, torch.Tensor) for r in returned):
        shapes = {tuple(r.shape) for r in returned}
        if len(returned) != n or shapes != {(NUM_CLASSES,)}:
            raise Wrong(f"you returned a {type(returned).__name__} of {len(returned)} tensors; return one tensor "
                        f"of probabilities with a row per file (torch.cat the batches' softmax outputs)")
        returned = torch.stack(returned)
    if isinstance(returned, np.ndarray):
        returned = torch.from_numpy(returned)
    if not isinstance(returned, torch.Tensor):
        kind = type(returned).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        raise Wrong(f"you returned {article} {kind}; return one tensor of probabilities, one row per file and "
                    "one column per class")
    if tuple(returned.shape) != (n, NUM_CLASSES):
        raise Wrong(f"you returned a tensor of shape {tuple(returned.shape)}; expected one row per file and one "
                    f"column per class, ({n}, {NUM_CLASSES})")
    return returned.detach().float()


def _check_calls(seen: list[tuple[int, bool, bool]], n: int, batch_size: int) -> None:
    sizes = [size for size, _, _ in seen]
    expected = math.ceil(n / batch_size)
    if not seen:
        raise Wrong("your function never called the model")
    if max(sizes) > batch_size:
        raise Wrong(f"the model got a batch of {max(sizes)} images, more than batch_size={batch_size}")
    if len(seen) > expected:
        raise Wrong(f"the model was called {len(seen)} times for {n} files with batch_size={batch_size}: stack the "
                    f"images of a batch (torch.stack) and call it once per batch ({expected} calls)")
    if sum(sizes) != n:
        raise Wrong(f"the model saw {sum(sizes)} images for {n} files (batch sizes {sizes})")
    if any(training for _, training, _ in seen):
        raise Wrong("the model ran in training mode (dropout on, BatchNorm using each batch's own statistics): "
                    "call model.eval() before predicting")
    if any(grad for _, _, grad in seen):
        raise Wrong("the model ran with gradient tracking on: predict inside torch.inference_mode() "
                    "(or torch.no_grad())")


def _check_rows(probs: torch.Tensor, reference: torch.Tensor, sideways: torch.Tensor | None,
                files: Sequence[Path]) -> None:
    sums = probs.sum(dim=1)
    bad = (sums - 1).abs() > 1e-4
    if bad.any():
        i = int(bad.nonzero()[0])
        raise Wrong(f"row {i} sums to {sums[i]:.3g}, not 1: turn the model's scores into probabilities with "
                    "softmax(dim=1)")

    def name(i: int) -> str:
        return f"{files[i].parent.name}/{files[i].name}"

    for i in range(len(files)):
        if torch.allclose(probs[i], reference[i], atol=1e-4, rtol=0):
            continue
        others = [j for j in range(len(files)) if torch.allclose(probs[i], reference[j], atol=1e-4, rtol=0)]
        if others:
            raise Wrong(f"row {i} holds the probabilities of {name(others[0])}, not of files[{i}] ({name(i)}): "
                        "keep the files' order")
        if sideways is not None and torch.allclose(probs[i], sideways[i], atol=1e-4, rtol=0):
            raise Wrong(f"row {i} ({name(i)}, a phone photo stored sideways) is the prediction for the sideways "
                        "picture: turn it upright first with ImageOps.exif_transpose(Image.open(file))")
        raise Wrong(f"row {i} ({name(i)}) is {[round(v, 3) for v in probs[i].tolist()]}, the model's prediction "
                    f"for that file alone is {[round(v, 3) for v in reference[i].tolist()]}")


@grades("08.3", "predict_files")
def predict_files(answer: Callable[..., Any]) -> str:
    """``answer(model, preprocess, files, batch_size=8)`` returns the softmax probabilities of every
    file, one row per file in the files' order, equal to one-by-one predictions in eval mode, and
    calls the model once per batch of at most ``batch_size`` images, in eval mode, without gradients."""
    preprocess = _preprocess()
    done = []
    for tricky, batch_size, label in (
            (False, None, "10 colour PNGs (batch_size 8)"),
            (True, 3, "8 files with a greyscale PNG, a transparent PNG and a phone JPEG stored sideways "
                      "(batch_size 3)")):
        with tempfile.TemporaryDirectory() as tmp, case(f"on {label}"):
            files = _write_folder(Path(tmp), tricky)
            model = _tiny_classifier()
            reference = _one_by_one(model, preprocess, files)
            sideways = _one_by_one(model, preprocess, files, upright=False) if tricky else None
            with _calls(model) as seen:
                try:
                    if batch_size is None:
                        returned = answer(model, preprocess, list(files))
                    else:
                        returned = answer(model, preprocess, list(files), batch_size=batch_size)
                except (NotImplementedError, Wrong):
                    raise
                except Exception as err:
                    if not tricky:
                        raise
                    raise Wrong(f"{_crash(err)}. Greyscale and transparent images have 1 and 4 channels: "
                                ".convert(\"RGB\") gives every image the 3 the model takes") from None
            _check_calls(seen, len(files), batch_size or 8)
            _check_rows(_as_probabilities(returned, len(files)), reference, sideways, files)
            done.append(f"{len(seen)} forward passes for {len(files)} files")
    return ("on 10 colour PNGs (batch_size 8) and on 8 files with a greyscale PNG, a transparent PNG and a phone "
            "JPEG stored sideways (batch_size 3): eval mode, no gradients, batches of at most batch_size "
            f"({' and '.join(done)}), rows that sum to 1 in the files' order and equal the model's one-by-one "
            "predictions. The accuracy and the least confident files are yours to read")
