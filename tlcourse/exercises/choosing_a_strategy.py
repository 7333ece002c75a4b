"""Graders of lesson 07's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

Exercise 07.5 is a measurement: a random search over the head's learning rate and weight decay on
the lesson's data. What can be checked without the data is the search itself, so the grader hands
``random_search`` a made-up scoring function (a smooth hill in log learning rate and log weight
decay, no training) that records every setting it is asked to score.

Example:
    >>> import pandas as pd
    >>> from scipy.stats import loguniform
    >>> from sklearn.model_selection import ParameterSampler
    >>> def random_search(train_and_score, n_trials=12, seed=0):
    ...     space = {"lr": loguniform(1e-4, 1e-1), "weight_decay": loguniform(1e-6, 1e-1)}
    ...     points = ParameterSampler(space, n_iter=n_trials, random_state=seed)
    ...     table = pd.DataFrame([{**p, "score": train_and_score(**p)} for p in points])
    ...     return table.loc[table["score"].idxmax()].to_dict(), table
    >>> print(grade("07.5", random_search))  # doctest: +ELLIPSIS
    ✔ Exercise 07.5: on a made-up scoring function (no training): 12 trials, 12 distinct settings...
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .grading import Wrong, case, grade, grades  # noqa: F401  (grade: the doctest)

LR_RANGE = (1e-4, 1e-1)
WD_RANGE = (1e-6, 1e-1)
MANY = 200  # trials of the distribution check: each decade's share is then well measured


class _Scorer:
    """A stand-in for ``train_and_score(lr, weight_decay)``: a smooth hill in log lr and log weight
    decay (highest at lr 1e-2, weight decay 1e-3), recording every setting it scores."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, float]] = []  # (lr, weight_decay, score)

    @staticmethod
    def score(lr: float, weight_decay: float) -> float:
        return 0.9 - 0.05 * (math.log10(lr) + 2) ** 2 - 0.02 * (math.log10(weight_decay) + 3) ** 2

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        unknown = sorted(set(kwargs) - {"lr", "weight_decay"})
        if unknown:
            raise Wrong(f"train_and_score was called with an argument named {unknown[0]!r}; "
                        "it takes lr and weight_decay")
        if len(args) > 2:
            raise Wrong(f"train_and_score was called with {len(args)} values; it takes two, lr and weight_decay")
        bound = dict(zip(("lr", "weight_decay"), args))
        for name, value in kwargs.items():
            if name in bound:
                raise Wrong(f"train_and_score got {name} twice")
            bound[name] = value
        if "weight_decay" not in bound:
            raise Wrong("train_and_score was called without weight_decay: pass each trial's weight decay too, "
                        "as train_and_score(lr=..., weight_decay=...)")
        if "lr" not in bound:
            raise Wrong("train_and_score was called without lr: pass each trial's learning rate too")
        try:
            lr, wd = float(bound["lr"]), float(bound["weight_decay"])
        except (TypeError, ValueError):
            raise Wrong(f"train_and_score was called with lr={bound['lr']!r}, weight_decay="
                        f"{bound['weight_decay']!r}; both should be numbers") from None
        if not (lr > 0 and wd > 0):  # the hill needs logarithms; the range check names the trial
            self.calls.append((lr, wd, float("nan")))
            return 0.0
        s = self.score(lr, wd)
        self.calls.append((lr, wd, s))
        return s


def _search(answer: Any, n_trials: int, seed: int) -> tuple[_Scorer, Any]:
    scorer = _Scorer()
    result = answer(scorer, n_trials, seed)
    if len(scorer.calls) != n_trials:
        raise Wrong(f"train_and_score was called {len(scorer.calls)} times; with n_trials={n_trials} "
                    f"it should be called {n_trials} times, once per trial")
    return scorer, result


def _power(x: float) -> str:
    """A power of ten as the lesson writes it: 1e-4."""
    return f"1e{round(math.log10(x))}"


def _setting(lr: float, wd: float) -> str:
    return f"lr={lr:.3g}, weight_decay={wd:.3g}"


def _check_ranges_and_distinct(calls: list[tuple[float, float, float]]) -> None:
    for i, (lr, wd, _) in enumerate(calls, start=1):
        for name, value, (low, high) in (("lr", lr, LR_RANGE), ("weight_decay", wd, WD_RANGE)):
            if not low * (1 - 1e-9) <= value <= high * (1 + 1e-9):
                raise Wrong(f"trial {i} used {name}={value:.3g}, outside {_power(low)} .. {_power(high)}")
    n = len(calls)
    for name, column, (low, high) in (("learning rates", 0, LR_RANGE), ("weight decays", 1, WD_RANGE)):
        values = {c[column] for c in calls}
        if len(values) == 1:
            raise Wrong(f"every trial used the same {name[:-1]} ({next(iter(values)):.3g}): draw it at random "
                        f"in each trial too, log-uniformly in {_power(low)} .. {_power(high)}")
        if len(values) < n:
            raise Wrong(f"only {len(values)} distinct {name} in {n} trials: a grid (or a list to choose from) "
                        "repeats values; draw every trial's value at random from a log-uniform distribution")


def _unpack(result: Any) -> tuple[dict[str, float], pd.DataFrame]:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Wrong(f"random_search should return (best, table); it returned {type(result).__name__}"
                    + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    best, table = result
    try:
        best = {k: float(best[k]) for k in ("lr", "weight_decay")}
    except (KeyError, TypeError, IndexError, ValueError):
        raise Wrong("best should be a dict with the keys 'lr' and 'weight_decay' (a row of the table is fine "
                    f"too); yours is a {type(best).__name__}") from None
    try:
        table = pd.DataFrame(table)
    except Exception:
        raise Wrong("the table should be a pandas DataFrame (or a list of dicts) with one row per trial; "
                    f"yours is a {type(table).__name__}") from None
    missing = [c for c in ("lr", "weight_decay", "score") if c not in table.columns]
    if missing:
        raise Wrong(f"the table has no column {missing[0]!r}; it needs lr, weight_decay and score "
                    f"(it has {', '.join(map(str, table.columns)) or 'none'})")
    return best, table


def _find(calls: list[tuple[float, float, float]], lr: float, wd: float) -> int | None:
    for i, (c_lr, c_wd, _) in enumerate(calls):
        if math.isclose(c_lr, lr, rel_tol=1e-9) and math.isclose(c_wd, wd, rel_tol=1e-9):
            return i
    return None


def _check_best_and_table(calls: list[tuple[float, float, float]], best: dict[str, float],
                          table: pd.DataFrame) -> None:
    scores = [c[2] for c in calls]
    top, low = int(np.argmax(scores)), int(np.argmin(scores))
    i = _find(calls, best["lr"], best["weight_decay"])
    if i is None:
        raise Wrong(f"your best ({_setting(best['lr'], best['weight_decay'])}) is not one of the settings "
                    "train_and_score scored")
    if i != top:
        which = "the lowest score" if i == low else "a score"
        raise Wrong(f"your best is the setting with {which} ({scores[i]:.3f}); the highest score was "
                    f"{scores[top]:.3f}, at {_setting(*calls[top][:2])}: choose the maximum of the holdout scores")
    if len(table) != len(calls):
        raise Wrong(f"the table has {len(table)} rows; it should have one per trial ({len(calls)})")
    for r, row in enumerate(table.itertuples(index=False), start=1):
        lr, wd, s = float(getattr(row, "lr")), float(getattr(row, "weight_decay")), float(getattr(row, "score"))
        j = _find(calls, lr, wd)
        if j is None:
            raise Wrong(f"row {r} of the table ({_setting(lr, wd)}) is not a setting train_and_score scored")
        if not math.isclose(s, scores[j], rel_tol=1e-9, abs_tol=1e-12):
            raise Wrong(f"row {r} of the table says score {s:.3f} for {_setting(lr, wd)}, but train_and_score "
                        f"returned {scores[j]:.3f} for it")


def _check_spread(calls: list[tuple[float, float, float]]) -> None:
    n = len(calls)
    for name, column, (low, high), share in (("learning rates", 0, LR_RANGE, "a third"),
                                              ("weight decays", 1, WD_RANGE, "a fifth")):
        logs = np.log10([c[column] for c in calls])
        edges = np.arange(round(math.log10(low)), round(math.log10(high)) + 1)
        counts, _ = np.histogram(np.clip(logs, edges[0], edges[-1]), bins=edges)
        fair = n / len(counts)
        if counts.min() < 0.4 * fair:  # a log-uniform draw misses this by more than 4 standard deviations
            spread = ", ".join(f"{k} in 1e{a}..1e{a + 1}" for k, a in zip(counts, edges[:-1]))
            raise Wrong(f"the {name} are not spread over the decades ({spread}): draw them log-uniformly "
                        f"(scipy.stats.loguniform({_power(low)}, {_power(high)})), so each decade gets about {share}")
    logs = np.log10([c[:2] for c in calls])
    r = float(np.corrcoef(logs[:, 0], logs[:, 1])[0, 1])
    if abs(r) > 0.3:  # independent draws: |r| about 0.07
        raise Wrong(f"the learning rate and the weight decay rise and fall together (correlation of their "
                    f"logarithms {r:.2f}): draw each knob on its own")


@grades("07.5", "random_search")
def random_search(answer) -> str:
    """``answer(train_and_score, n_trials, seed)`` calls ``train_and_score(lr, weight_decay)`` once
    for each of ``n_trials`` settings drawn at random, log-uniformly and independently, in lr 1e-4 ..
    1e-1 and weight decay 1e-6 .. 1e-1, reproducibly from ``seed``; it returns ``(best, table)``:
    the highest-scoring setting and one row per trial (lr, weight_decay, score)."""
    with case("on a made-up scoring function, random_search(train_and_score, 12, 0)"):
        scorer, result = _search(answer, 12, 0)
        _check_ranges_and_distinct(scorer.calls)
        best, table = _unpack(result)
        _check_best_and_table(scorer.calls, best, table)
    first = [c[:2] for c in scorer.calls]
    with case("called again with seed 0"):
        again, _ = _search(answer, 12, 0)
        if [c[:2] for c in again.calls] != first:
            raise Wrong("the same seed drew different settings: pass seed to ParameterSampler as random_state, "
                        "so that a search can be repeated")
    with case("called with seed 1"):
        other, _ = _search(answer, 12, 1)
        if [c[:2] for c in other.calls] == first:
            raise Wrong("seed 1 drew the same 12 settings as seed 0: pass seed to ParameterSampler as random_state")
    with case(f"random_search(train_and_score, {MANY}, 0)"):
        many, _ = _search(answer, MANY, 0)
        _check_ranges_and_distinct(many.calls)
        _check_spread(many.calls)
    return (f"on a made-up scoring function (no training): 12 trials, 12 distinct settings in lr 1e-4 .. 1e-1 "
            f"and weight decay 1e-6 .. 1e-1; with {MANY} trials every decade of both knobs gets its share "
            "(log-uniform) and the two vary independently; your best is the highest score and the table holds "
            "every trial; the same seed repeats the search, another seed changes it. Left to your judgement: "
            "whether searching weight decay finds a better head on the lesson's data than section 2's search")

