"""Linear probes on frozen features: scikit-learn's logistic regression, its predictions, its accuracy.

A *probe* is the cheapest test of a representation: freeze the backbone, fit a logistic regression
on its features, score it. Lessons 00, 01, 04 and 07 use it (lesson 01 writes the call out in its
own cell); this module is its one copy.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(80, 5, generator=g); y = (x[:, 0] > 0).long()
    >>> accuracy(fit_logreg((x[:60], y[:60])), x[60:], y[60:]) > 0.8
    True
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

# The course's one accuracy and prediction, re-exported for the probe's callers (lessons 01, 04, 07):
from .training import accuracy, predict_labels  # noqa: F401
from .errors import check_range
from .threads import limit_threads

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

#: A cached feature table and its labels: (N, D) floats, (N,) class indices.
FeatureSet = tuple[torch.Tensor, torch.Tensor]


def fit_logreg(train: FeatureSet, C: float = 1.0) -> "LogisticRegression":
    """scikit-learn's logistic regression (L2, smaller ``C``: stronger) on the features as they are.

    Lesson 01 (section 3) calls ``LogisticRegression(C=1.0, max_iter=5000).fit(X, y)`` in its
    own cell; this is the same call, on one thread.

    No standardisation: the pooled features are already on a sensible scale, and
    means and spreads estimated from a few images per class would only add noise.
    """
    from sklearn.linear_model import LogisticRegression

    C = check_range("C", C, 1e-6, 1e6)
    with limit_threads(1):
        return LogisticRegression(C=C, max_iter=5000).fit(train[0].numpy(), train[1].numpy())


def few_shot_accuracy(train: FeatureSet, val: FeatureSet, per_class: int, draws: int = 5,
                      C: float = 1.0, seed: int = 0) -> list[float]:
    """Val accuracy of logistic regression trained on ``per_class`` random images per class.

    Repeated for ``draws`` different random subsets: with 10 images the luck of the
    draw matters, so the spread is part of the answer.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(100, 4, generator=g); y = (x[:, 0] > 0).long()
    >>> accs = few_shot_accuracy((x[:60], y[:60]), (x[60:], y[60:]), per_class=5, draws=3)
    >>> len(accs), min(accs) > 0.6
    (3, True)
    """
    from .images import subset_per_class

    check_range("images per class", per_class, 1, 1_000_000, kind=int)
    accs = []
    for d in range(check_range("draws", draws, 1, 1000, kind=int)):
        idx = subset_per_class(train[1].tolist(), per_class, seed + d)
        accs.append(accuracy(fit_logreg((train[0][idx], train[1][idx]), C), *val))
    return accs
