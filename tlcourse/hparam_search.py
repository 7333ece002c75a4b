"""Hyperparameter search on a small budget: grid vs random, scored on a holdout, never on the test set.

Lesson 07 writes the search loop out in its own cell with scikit-learn's
``ParameterGrid`` and ``ParameterSampler``; this module repeats it for the
widget and the checks. :func:`grid_points` and :func:`random_points` are those
two scikit-learn generators over log learning rate x batch size (plus the
range checks a widget needs); :func:`run_search` scores every trial on a
*holdout* carved from the training data and reports the test accuracy beside
it, so choosing never looks at the test set. :func:`budget_curve` answers
"how much does the budget matter?" the way Bergstra & Bengio (2012) drew it:
by drawing many random searches of k trials from one pool of finished trials.

Example:
    >>> pts = grid_points((1e-4, 1e-1), batch_sizes=(8, 32), budget=6)
    >>> [(f"{p['lr']:.0e}", p["batch_size"]) for p in pts][:4]
    [('1e-04', 8), ('3e-03', 8), ('1e-01', 8), ('1e-04', 32)]
    >>> table = run_search(lambda lr, batch_size: (lr * 10, lr), pts, "grid")
    >>> table.columns.tolist()
    ['method', 'trial', 'lr', 'batch_size', 'score', 'test', 'best_so_far']
    >>> round(float(table.best_so_far.iloc[-1]), 3)
    1.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from . import images
from .heads import FeatureSet
from .widgets import WidgetValueError, check_range

if TYPE_CHECKING:
    from matplotlib.figure import Figure


#: A trial: (lr, batch_size) -> (holdout score used to choose, test accuracy only reported).
Trial = Callable[[float, int], tuple[float, float]]


def _check_lr_range(lr_range: tuple[float, float]) -> tuple[float, float]:
    low = check_range("lowest learning rate", lr_range[0], 1e-6, 10.0)
    high = check_range("highest learning rate", lr_range[1], 1e-6, 10.0)
    if not low < high:
        raise WidgetValueError(f"the lowest learning rate ({low:g}) must be below the highest ({high:g}).")
    return low, high


def grid_points(lr_range: tuple[float, float], batch_sizes: Sequence[int], budget: int) -> list[dict]:
    """scikit-learn's ``ParameterGrid``: ``budget // len(batch_sizes)`` learning rates, evenly spaced
    in log, x every batch size (the batch size varies slowest: scikit-learn's order).

    >>> len(grid_points((1e-3, 1e-1), (16, 64), budget=7))
    6
    """
    from sklearn.model_selection import ParameterGrid

    low, high = _check_lr_range(lr_range)
    budget = check_range("budget (trials)", budget, len(batch_sizes), 1000, kind=int)
    n_lr = budget // len(batch_sizes)
    lrs = np.logspace(math.log10(low), math.log10(high), n_lr) if n_lr > 1 else [math.sqrt(low * high)]
    grid = ParameterGrid({"lr": [float(v) for v in lrs], "batch_size": [int(b) for b in batch_sizes]})
    return [{"lr": p["lr"], "batch_size": p["batch_size"]} for p in grid]


def random_points(lr_range: tuple[float, float], batch_sizes: Sequence[int], budget: int,
                  seed: int = 0) -> list[dict]:
    """scikit-learn's ``ParameterSampler``: ``budget`` trials, learning rate log-uniform in the range
    (``scipy.stats.loguniform``), batch size drawn from the list; the same ``seed``, the same trials.

    Random search tries a *new* learning rate in every trial, where a grid
    repeats each one for every batch size: when one knob matters much more than
    the other, that is more distinct values of the knob that matters.

    >>> pts = random_points((1e-4, 1e-1), (8, 32), budget=4, seed=0)
    >>> len({p["lr"] for p in pts}), all(1e-4 <= p["lr"] <= 1e-1 for p in pts)
    (4, True)
    """
    from scipy.stats import loguniform
    from sklearn.model_selection import ParameterSampler

    low, high = _check_lr_range(lr_range)
    budget = check_range("budget (trials)", budget, 1, 1000, kind=int)
    space = {"lr": loguniform(low, high), "batch_size": [int(b) for b in batch_sizes]}
    return [{"lr": float(p["lr"]), "batch_size": int(p["batch_size"])}
            for p in ParameterSampler(space, n_iter=budget, random_state=seed)]


def run_search(trial: Trial, points: Sequence[dict], method: str) -> pd.DataFrame:
    """Run every point; a tidy table with the running best holdout score (``best_so_far``).

    The ``run`` loop of lesson 07's search cell, for any ``trial`` (e.g. :class:`HeadTrial`)."""
    rows = []
    for i, point in enumerate(points, start=1):
        score, test = trial(**point)
        rows.append({"method": method, "trial": i, **point, "score": score, "test": test})
    table = pd.DataFrame(rows)
    table["best_so_far"] = table["score"].cummax()
    return table


def chosen(table: pd.DataFrame) -> pd.Series:
    """The trial a search picks: the best holdout score (the first one on ties)."""
    return table.loc[table["score"].idxmax()]


@dataclass
class HeadTrial:
    """A cheap, real training run to tune: a linear head on cached features.

    Trains on ``train``, is *scored* on ``holdout`` (what a search may look at)
    and also reports accuracy on ``test`` (what a search must not look at).
    The training is the plain-PyTorch ``head_trial`` of lesson 07's search cell
    (seed 0, Adam, shuffled mini-batches, the last epoch's weights), so the
    same settings give the same numbers as that cell.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(90, 6, generator=g); y = (x[:, 0] > 0).long()
    >>> trial = HeadTrial((x[:30], y[:30]), (x[30:60], y[30:60]), (x[60:], y[60:]), epochs=20)
    >>> trial(lr=1e-2, batch_size=8)[0] > trial(lr=1e-6, batch_size=8)[0]
    True
    """

    train: FeatureSet
    holdout: FeatureSet
    test: FeatureSet
    epochs: int = 10
    seed: int = 0

    def __call__(self, lr: float, batch_size: int) -> tuple[float, float]:
        from torch import nn

        torch.manual_seed(self.seed)
        x, y = self.train
        head = nn.Linear(x.shape[1], int(y.max()) + 1)
        optimizer = torch.optim.Adam(head.parameters(), lr=lr)
        for _ in range(self.epochs):
            for idx in torch.randperm(len(y)).split(batch_size):
                optimizer.zero_grad()
                nn.functional.cross_entropy(head(x[idx]), y[idx]).backward()
                optimizer.step()
        with torch.no_grad():
            hold, test = ((head(fx).argmax(1) == fy).float().mean().item() for fx, fy in (self.holdout, self.test))
        return hold, test


def search_split(train: FeatureSet, per_class: int, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """``per_class`` random rows of every class to train on; all the other rows as the holdout.

    >>> x, y = torch.arange(8.0).unsqueeze(1), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    >>> fit, hold = search_split((x, y), per_class=1)
    >>> len(fit[1]), len(hold[1])
    (2, 6)
    """
    idx = torch.as_tensor(images.subset_per_class(train[1].tolist(), per_class, seed))
    rest = torch.ones(len(train[1]), dtype=torch.bool)
    rest[idx] = False
    return (train[0][idx], train[1][idx]), (train[0][rest], train[1][rest])


def budget_curve(pool: pd.DataFrame, budget: int, draws: int = 200, seed: int = 0) -> pd.DataFrame:
    """How good a random search of k trials is, for k = 1..``budget``, from a pool of finished trials.

    Each draw takes k trials of ``pool`` (a :func:`run_search` table of random
    trials) without replacement, picks the best holdout score and records it
    with the *test* accuracy of the trial it picked. One row per k: the mean,
    5th and 95th percentile of both over ``draws`` draws. Resampling a pool
    costs no training, so the curve can average hundreds of searches.

    >>> pool = pd.DataFrame({"score": [0.5, 0.9, 0.7], "test": [0.4, 0.8, 0.9]})
    >>> curve = budget_curve(pool, budget=3, draws=50)
    >>> curve.loc[3, ["best score", "test of chosen"]].round(3).tolist()
    [0.9, 0.8]
    """
    budget = check_range("budget (trials)", budget, 1, len(pool), kind=int)
    draws = check_range("draws", draws, 1, 100_000, kind=int)
    rng = np.random.default_rng(seed)
    scores, tests = pool["score"].to_numpy(), pool["test"].to_numpy()
    rows = []
    for k in range(1, budget + 1):
        picks = np.array([rng.choice(len(pool), k, replace=False) for _ in range(draws)])
        best = picks[np.arange(draws), scores[picks].argmax(1)]
        row = {"trials": k}
        for name, values in (("best score", scores[best]), ("test of chosen", tests[best])):
            row[name] = float(values.mean())
            row[f"{name} p5"], row[f"{name} p95"] = (float(v) for v in np.percentile(values, [5, 95]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("trials")


def plot_search(table: pd.DataFrame, curve: pd.DataFrame | None = None) -> "Figure":
    """Left: every trial, holdout score vs learning rate (log), marker by method, size by batch size.
    Right (if ``curve``, from :func:`budget_curve`): best holdout score and test accuracy of the
    choice vs the number of random trials."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if curve is not None else 1, figsize=(12 if curve is not None else 6.5, 4),
                             squeeze=False)
    ax = axes[0, 0]
    for method, marker in (("grid", "s"), ("random", "o")):
        part = table[table["method"] == method]
        if len(part):
            ax.scatter(part["lr"], part["score"], s=12 + 2 * part["batch_size"], marker=marker,
                       alpha=0.7, label=f"{method} ({len(part)} trials)")
            best = chosen(part)
            ax.scatter([best["lr"]], [best["score"]], s=220, marker="*", color="k", zorder=5)
    ax.set(xscale="log", xlabel="learning rate (log scale; marker size ~ batch size)",
           ylabel="holdout accuracy", title="every trial (star: each method's choice)", ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="lower right")
    if curve is not None:
        ax = axes[0, 1]
        for col, colour in (("best score", "C0"), ("test of chosen", "C1")):
            ax.plot(curve.index, curve[col], "o-", color=colour, label=f"{col} (mean)")
            ax.fill_between(curve.index, curve[f"{col} p5"], curve[f"{col} p95"], color=colour, alpha=0.15)
        ax.set(xlabel="budget: number of random trials", ylabel="accuracy", ylim=(0, 1.02),
               title="how much the budget matters (band: 5-95 % of searches)")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
