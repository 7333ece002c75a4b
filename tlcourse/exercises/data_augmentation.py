"""Graders of lesson 05's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

05.5 asks for MixUp by hand: ``my_mixup(x, y, alpha, num_classes)`` returns the batch blended with
a partner picture, λ·x + (1 − λ)·x[partner], and the one-hot labels blended with the *same* λ, one
λ per batch drawn from Beta(α, α). The grader reads λ and each picture's partner back from the
pictures it gets (any pairing is accepted, not only ``x.roll(1, 0)``), then checks the labels
against them, that λ changes from call to call and, over many calls, that it has the mean and
spread of Beta(α, α).

Example:
    >>> import torch
    >>> def my_mixup(x, y, alpha, num_classes):
    ...     lam = torch.distributions.Beta(alpha, alpha).sample()
    ...     y = torch.nn.functional.one_hot(y, num_classes).float()
    ...     return lam * x + (1 - lam) * x.roll(1, 0), lam * y + (1 - lam) * y.roll(1, 0)
    >>> print(grade("05.5", my_mixup))  # doctest: +ELLIPSIS
    ✔ Exercise 05.5: on a batch of 8 pictures with 5 classes every picture is λ·itself + (1 − λ)·its partner...
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .grading import Wrong, case, grade, grades  # noqa: F401  (grade: the doctest)

BATCH, CLASSES, DRAWS = 8, 5, 800
ALPHAS = (0.2, 1.0, 5.0)


def _fmt(v: torch.Tensor) -> str:
    return "[" + ", ".join(f"{float(t):.2f}" for t in v) + "]"


def _returned(out: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The answer's (mixed pictures, soft labels), with their shapes checked."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong(f"my_mixup returned {type(out).__name__}; return two things: the mixed pictures and "
                    "the soft labels (return mixed_x, mixed_y)")
    xm, ym = out
    for what, t in (("mixed pictures", xm), ("labels", ym)):
        if not isinstance(t, torch.Tensor):
            raise Wrong(f"the {what} you return are a {type(t).__name__}, not a torch tensor")
    if tuple(xm.shape) != tuple(x.shape):
        raise Wrong(f"your mixed pictures have shape {tuple(xm.shape)}; the batch had {tuple(x.shape)}, and "
                    "MixUp keeps it")
    n = len(x)
    if ym.dim() == 1 and len(ym) == n:
        raise Wrong(f"your labels have shape {tuple(ym.shape)}: one class number per picture. MixUp's labels are "
                    "soft: one row of class probabilities per picture (nn.functional.one_hot, then blend)")
    return xm.detach().double(), ym.detach().double()


def _pairs(x: torch.Tensor, xm: torch.Tensor) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """For each mixed picture i: the partner j and the weights (a, b) with xm[i] = a·x[i] + b·x[j],
    the j that fits best (j = i: b = 0). Raises Wrong when no pair fits."""
    X, M = x.reshape(len(x), -1).double(), xm.reshape(len(x), -1)
    G, C = X @ X.T, M @ X.T  # G[i, j] = x_i·x_j, C[i, j] = m_i·x_j
    partners, a, b = [], torch.zeros(len(x), dtype=torch.float64), torch.zeros(len(x), dtype=torch.float64)
    for i in range(len(x)):
        best = (float("inf"), i, 0.0, 0.0)
        for j in range(len(x)):
            if j == i:
                ai, bj = C[i, i] / G[i, i], torch.tensor(0.0, dtype=torch.float64)
            else:
                A = torch.stack([torch.stack([G[i, i], G[i, j]]), torch.stack([G[i, j], G[j, j]])])
                ai, bj = torch.linalg.solve(A, torch.stack([C[i, i], C[i, j]]))
            residual = (M[i] - ai * X[i] - bj * X[j]).norm().item()
            if residual < best[0]:
                best = (residual, j, ai.item(), bj.item())
        residual, j, ai, bj = best
        if residual > 1e-4 * (1 + M[i].norm().item()):
            raise Wrong(f"mixed picture {i} is not a blend λ·x[{i}] + (1 − λ)·x[j] of two pictures of the batch "
                        "(blend the pictures themselves: no noise, no cut and paste)")
        if j != i and abs(bj) < 1e-6:  # λ = 1: the partner is invisible, keep it as "itself"
            j, ai, bj = i, ai + bj, 0.0
        partners.append(j)
        a[i], b[i] = ai, bj
    return partners, a, b


def _lam(x: torch.Tensor, xm: torch.Tensor) -> tuple[list[int], float | None]:
    """The partners and the one λ of a mixed batch (None when every picture came back unchanged)."""
    partners, a, b = _pairs(x, xm)
    for i in range(len(x)):
        if abs(a[i] + b[i] - 1) > 1e-4:
            raise Wrong(f"picture {i} is {a[i]:.2f} × picture {i} + {b[i]:.2f} × picture {partners[i]}: the two "
                        "weights should add up to 1 (λ and 1 − λ)")
        if a[i] < -1e-5 or b[i] < -1e-5:
            raise Wrong(f"picture {i} is blended with λ = {a[i]:.2f}, outside [0, 1] (draw λ from Beta(α, α))")
    mixed = [i for i in range(len(x)) if partners[i] != i]
    if not mixed:
        return partners, None
    for i in mixed[1:]:
        if abs(a[i] - a[mixed[0]]) > 1e-4:
            raise Wrong(f"picture {mixed[0]} is blended with λ = {a[mixed[0]]:.3f}, picture {i} with λ = "
                        f"{a[i]:.3f}: MixUp draws one λ for the whole batch, not one per picture")
    return partners, float(a[mixed[0]])


def _check_labels(y: torch.Tensor, ym: torch.Tensor, partners: list[int], lam: float, num_classes: int) -> None:
    n = len(y)
    if tuple(ym.shape) != (n, num_classes):
        raise Wrong(f"your labels have shape {tuple(ym.shape)}; expected ({n}, {num_classes}): one row of "
                    f"{num_classes} class probabilities per picture")
    sums = ym.sum(1)
    i = int((sums - 1).abs().argmax())
    if abs(sums[i] - 1) > 1e-4:
        raise Wrong(f"the label of picture {i} sums to {sums[i]:.2f}, not 1: a soft label is a blend of two "
                    "one-hot labels, with weights λ and 1 − λ")
    hard = torch.nn.functional.one_hot(y, num_classes).double()
    expected = torch.stack([lam * hard[i] + (1 - lam) * hard[partners[i]] for i in range(n)])
    bad = ((ym - expected).abs().max(1).values > 1e-4).nonzero()
    if len(bad) == 0:
        return
    i = int(bad[0])
    j = partners[i]
    if torch.allclose(ym, hard, atol=1e-4):
        hint = "the labels are not blended: blend the one-hot labels with the same λ and partner as the pictures"
    elif y[i] != y[j] and abs(ym[i].sum() - 1) < 1e-4 and abs(ym[i, y[i]] + ym[i, y[j]] - 1) < 1e-4:
        hint = (f"your label blends them with λ = {ym[i, y[i]]:.3f}, the picture with λ = {lam:.3f}: use the same λ "
                "for pictures and labels")
    else:
        hint = "blend each label with its picture's partner's, with the same λ"
    raise Wrong(f"picture {i} is {lam:.2f} of picture {i} (class {int(y[i])}) and {1 - lam:.2f} of picture {j} "
                f"(class {int(y[j])}), so its label should be {_fmt(expected[i])}; yours is {_fmt(ym[i])} ({hint})")


def _beta_spread(alpha: float) -> float:
    return (1 / (4 * (2 * alpha + 1))) ** 0.5  # Beta(α, α): mean 1/2, variance 1 / (4 (2α + 1))


@grades("05.5", "my_mixup")
def my_mixup(answer: Callable[..., Any]) -> str:
    """``answer(x, y, alpha, num_classes)`` returns ``(λ·x + (1 − λ)·x[p], λ·onehot(y) + (1 − λ)·onehot(y)[p])``
    for a pairing ``p`` and one λ ~ Beta(α, α) per call."""
    x = torch.randn(BATCH, 3, 4, 4)
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])  # neighbours (and roll partners) differ in class
    lams = []
    desc = f"on a batch of {BATCH} random pictures (3×4×4) with labels from {CLASSES} classes, α = 1"
    with case(desc):
        for _ in range(5):
            out = answer(x.clone(), y.clone(), 1.0, CLASSES)
            xm, ym = _returned(out, x)
            partners, lam = _lam(x, xm)
            if lam is None:  # every picture came back as it was: try again (λ = 1 or no partner drawn)
                continue
            _check_labels(y, ym, partners, lam, CLASSES)
            lams.append(lam)
            if len(lams) == 1:
                first_partners = partners
            if len(lams) == 3:
                break
        if not lams:
            raise Wrong("your pictures come back unchanged in 5 calls: blend each picture with its partner, "
                        "λ·x + (1 − λ)·x.roll(1, 0)")
        if len(lams) > 1 and max(lams) - min(lams) < 1e-6:
            raise Wrong(f"λ was {lams[0]:.3f} in each of {len(lams)} calls: draw a new λ from Beta(α, α) in every "
                        "call (is a seed set inside your function?)")
    pairing = ("the batch rolled by one" if first_partners == [(i - 1) % BATCH for i in range(BATCH)]
               else "a shuffled batch")

    # λ's distribution: pictures that are the rows of an identity matrix show λ directly
    eye = torch.eye(BATCH).reshape(BATCH, 1, 2, 4)
    ey = torch.arange(BATCH) % 2
    spreads = []
    for alpha in ALPHAS:
        with case(f"over {DRAWS} calls with α = {alpha:g}"):
            drawn = []
            for _ in range(DRAWS):
                xm, _ = _returned(answer(eye.clone(), ey.clone(), alpha, 2), eye)
                # row i is λ·e_i + (1 − λ)·e_partner: its diagonal entry is λ, or 1 where the partner is i
                drawn.append(xm.reshape(BATCH, BATCH).diagonal().min().item())
            drawn_t = torch.tensor(drawn, dtype=torch.float64)
            mean, spread, want = drawn_t.mean().item(), drawn_t.std().item(), _beta_spread(alpha)
            if abs(mean - 0.5) > 0.08 or abs(spread - want) > 0.15 * want:
                raise Wrong(f"your λ has mean {mean:.2f} and spread (standard deviation) {spread:.2f}; "
                            f"Beta({alpha:g}, {alpha:g}) has mean 0.50 and spread {want:.2f} "
                            "(draw λ with torch.distributions.Beta(alpha, alpha).sample())")
            spreads.append(f"{spread:.2f}")
    return (f"on a batch of {BATCH} pictures with {CLASSES} classes every picture is λ·itself + (1 − λ)·its partner "
            f"({pairing}) and its label the same blend of one-hot labels, with one λ per batch, new in every call; "
            f"over {DRAWS} calls each, λ has the mean and spread of Beta(α, α) for α = "
            f"{', '.join(f'{a:g}' for a in ALPHAS)} (spreads {', '.join(spreads)})")
