"""Lesson 05's graded exercise (MixUp by hand): typical mistakes fail with the message a learner needs,
and correct answers that differ from the hidden solution pass."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from notebook_answers import assert_mistakes_fail
from tlcourse.exercises.grading import grade


def _one_hot(y, num_classes):
    return nn.functional.one_hot(y, num_classes).float()


def _shuffled_numpy(x, y, alpha, num_classes):  # correct: NumPy's Beta and a random pairing
    lam = float(np.random.beta(alpha, alpha))
    p = torch.randperm(len(x))
    y = _one_hot(y, num_classes)
    return lam * x + (1 - lam) * x[p], lam * y + (1 - lam) * y[p]


def _torchvision(x, y, alpha, num_classes):  # correct: the library's own MixUp
    from torchvision.transforms import v2
    return v2.MixUp(alpha=alpha, num_classes=num_classes)(x, y)


def _labels_not_blended(x, y, alpha, num_classes):
    lam = torch.distributions.Beta(alpha, alpha).sample()
    return lam * x + (1 - lam) * x.roll(1, 0), _one_hot(y, num_classes)


def _hard_labels(x, y, alpha, num_classes):
    lam = torch.distributions.Beta(alpha, alpha).sample()
    return lam * x + (1 - lam) * x.roll(1, 0), y


def _two_lambdas(x, y, alpha, num_classes):
    beta = torch.distributions.Beta(alpha, alpha)
    lam_x, lam_y = beta.sample(), beta.sample()
    y = _one_hot(y, num_classes)
    return lam_x * x + (1 - lam_x) * x.roll(1, 0), lam_y * y + (1 - lam_y) * y.roll(1, 0)


def _lambda_per_picture(x, y, alpha, num_classes):
    lam = torch.distributions.Beta(alpha, alpha).sample((len(x),))
    y = _one_hot(y, num_classes)
    lx = lam.view(-1, *[1] * (x.dim() - 1))
    return lx * x + (1 - lx) * x.roll(1, 0), lam[:, None] * y + (1 - lam[:, None]) * y.roll(1, 0)


def _uniform(x, y, alpha, num_classes):
    lam = torch.rand(())
    y = _one_hot(y, num_classes)
    return lam * x + (1 - lam) * x.roll(1, 0), lam * y + (1 - lam) * y.roll(1, 0)


def _pictures_not_mixed(x, y, alpha, num_classes):
    lam = torch.distributions.Beta(alpha, alpha).sample()
    y = _one_hot(y, num_classes)
    return x, lam * y + (1 - lam) * y.roll(1, 0)


def _seeded_inside(x, y, alpha, num_classes):
    torch.manual_seed(0)
    lam = torch.distributions.Beta(alpha, alpha).sample()
    y = _one_hot(y, num_classes)
    return lam * x + (1 - lam) * x.roll(1, 0), lam * y + (1 - lam) * y.roll(1, 0)


def _larger_share_first(x, y, alpha, num_classes):  # λ = max(λ, 1 − λ): no longer Beta(α, α)
    lam = torch.distributions.Beta(alpha, alpha).sample()
    lam = torch.maximum(lam, 1 - lam)
    y = _one_hot(y, num_classes)
    return lam * x + (1 - lam) * x.roll(1, 0), lam * y + (1 - lam) * y.roll(1, 0)


def _weights_do_not_add_up(x, y, alpha, num_classes):
    lam = torch.distributions.Beta(alpha, alpha).sample()
    y = _one_hot(y, num_classes)
    return lam * x + lam * x.roll(1, 0), lam * y + (1 - lam) * y.roll(1, 0)


def test_other_correct_answers_pass():
    for answer in (_shuffled_numpy, _torchvision):
        verdict = grade("05.5", answer)
        assert verdict.status == "passed", (answer.__name__, verdict.message)
    assert "(a shuffled batch)" in grade("05.5", _shuffled_numpy).message


def test_mistakes_fail_with_the_first_difference():
    cases = {
        _labels_not_blended: "so its label should be [0.", 
        _hard_labels: "your labels have shape (8,): one class number per picture",
        _two_lambdas: "use the same λ for pictures and labels",
        _lambda_per_picture: "MixUp draws one λ for the whole batch, not one per picture",
        _uniform: "over 800 calls with α = 0.2: your λ has mean 0.",
        _pictures_not_mixed: "your pictures come back unchanged in 5 calls",
        _seeded_inside: "in each of 3 calls: draw a new λ from Beta(α, α) in every call",
        _larger_share_first: "Beta(0.2, 0.2) has mean 0.50",
        _weights_do_not_add_up: "the two weights should add up to 1",
    }
    assert_mistakes_fail("05.5", cases)
    assert "the labels are not blended" in grade("05.5", _labels_not_blended).message
