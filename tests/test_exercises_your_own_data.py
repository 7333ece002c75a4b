"""Lesson 08's graded exercise: typical mistakes fail with the message a learner needs."""
from __future__ import annotations

import torch
from PIL import Image, ImageOps

from notebook_answers import assert_mistakes_fail
from tlcourse.exercises.grading import grade


def _open(file):
    return ImageOps.exif_transpose(Image.open(file)).convert("RGB")


def _batched(model, preprocess, files, batch_size, load=_open, softmax=True, dim=1, eval_mode=True,
             no_grad=True, stop=None):
    if eval_mode:
        model.eval()
    rows = []
    with torch.inference_mode(no_grad):
        for start in range(0, len(files) if stop is None else stop(len(files), batch_size), batch_size):
            scores = model(torch.stack([preprocess(load(f)) for f in files[start:start + batch_size]]))
            rows.append(scores.softmax(dim=dim) if softmax else scores)
    return torch.cat(rows)


def _no_eval(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, batch_size, eval_mode=False)


def _one_at_a_time(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, 1)


def _always_eight(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, 8)


def _scores(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, batch_size, softmax=False)


def _softmax_over_the_batch(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, batch_size, dim=0)


def _sorted(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, sorted(files), batch_size)


def _sideways(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, batch_size, load=lambda f: Image.open(f).convert("RGB"))


def _not_rgb(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, batch_size, load=lambda f: ImageOps.exif_transpose(Image.open(f)))


def _with_gradients(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, batch_size, no_grad=False)


def _drops_the_last_batch(model, preprocess, files, batch_size=8):
    return _batched(model, preprocess, files, batch_size, stop=lambda n, b: n - b + 1)


def _class_and_probability(model, preprocess, files, batch_size=8):
    probs = _batched(model, preprocess, files, batch_size)
    return [(int(p.argmax()), float(p.max())) for p in probs]


PLAIN = "on 10 colour PNGs (batch_size 8): "
TRICKY = "on 8 files with a greyscale PNG, a transparent PNG and a phone JPEG stored sideways (batch_size 3): "


def test_mistakes_fail_with_the_first_difference():
    cases = {
        _no_eval: PLAIN + "the model ran in training mode (dropout on, BatchNorm using each batch's own "
                          "statistics): call model.eval()",
        _one_at_a_time: PLAIN + "the model was called 10 times for 10 files with batch_size=8: stack the images "
                                "of a batch (torch.stack) and call it once per batch (2 calls)",
        _always_eight: TRICKY + "the model got a batch of 8 images, more than batch_size=3",
        _scores: PLAIN + "row 0 sums to",
        _softmax_over_the_batch: "not 1: turn the model's scores into probabilities with softmax(dim=1)",
        _sorted: PLAIN + "row 1 holds the probabilities of ants/img_1.png, not of files[1] (bees/img_7.png): "
                         "keep the files' order",
        _sideways: TRICKY + "row 3 (bees/phone.jpg, a phone photo stored sideways) is the prediction for the "
                            "sideways picture: turn it upright first with ImageOps.exif_transpose",
        _not_rgb: TRICKY + "your code raised RuntimeError",
        _with_gradients: PLAIN + "the model ran with gradient tracking on: predict inside torch.inference_mode()",
        _drops_the_last_batch: PLAIN + "the model saw 8 images for 10 files (batch sizes [8])",
        _class_and_probability: PLAIN + "you returned a list; return one tensor of probabilities",
    }
    assert_mistakes_fail("08.3", cases)
    not_rgb = grade("08.3", _not_rgb).message
    assert not_rgb.endswith('.convert("RGB") gives every image the 3 the model takes'), not_rgb


def test_correct_answers_in_other_words_pass():
    def rows_as_a_list(model, preprocess, files, batch_size=8):  # a list of per-file rows, torch.no_grad
        model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(files), batch_size):
                images = [_open(f) for f in files[start:start + batch_size]]
                out += list(torch.softmax(model(torch.stack([preprocess(i) for i in images])), dim=-1))
        return out

    def as_numpy(model, preprocess, files, batch_size=8):
        return _batched(model, preprocess, [str(f) for f in files], batch_size).numpy()

    for answer in (rows_as_a_list, as_numpy):
        verdict = grade("08.3", answer)
        assert verdict.passed, (answer.__name__, str(verdict))
        assert "2 forward passes for 10 files and 3 forward passes for 8 files" in verdict.message
