"""Lesson 07's graded exercise: typical mistakes fail with the message a learner needs."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform, uniform
from sklearn.model_selection import ParameterGrid, ParameterSampler

from tlcourse.exercises.grading import grade

SPACE = {"lr": loguniform(1e-4, 1e-1), "weight_decay": loguniform(1e-6, 1e-1)}


def _search(points, train_and_score, pick=max):
    rows = [{**p, "score": train_and_score(**p)} for p in points]
    best = pick(rows, key=lambda r: r["score"])
    return best, pd.DataFrame(rows)


def random_search(train_and_score, n_trials=12, seed=0):  # a correct answer, written differently from the lesson's
    return _search(ParameterSampler(SPACE, n_iter=n_trials, random_state=seed), train_and_score)


def _uniform(train_and_score, n_trials=12, seed=0):  # uniform, not log-uniform
    space = {"lr": uniform(1e-4, 1e-1 - 1e-4), "weight_decay": uniform(1e-6, 1e-1 - 1e-6)}
    return _search(ParameterSampler(space, n_iter=n_trials, random_state=seed), train_and_score)


def _minimum(train_and_score, n_trials=12, seed=0):  # keeps the lowest score, as if it were a loss
    return _search(ParameterSampler(SPACE, n_iter=n_trials, random_state=seed), train_and_score, pick=min)


def _no_weight_decay(train_and_score, n_trials=12, seed=0):  # searches the learning rate only
    rows = []
    for p in ParameterSampler({"lr": loguniform(1e-4, 1e-1)}, n_iter=n_trials, random_state=seed):
        rows.append({**p, "score": train_and_score(p["lr"])})
    return max(rows, key=lambda r: r["score"]), pd.DataFrame(rows)


def _fixed_weight_decay(train_and_score, n_trials=12, seed=0):
    space = {"lr": loguniform(1e-4, 1e-1), "weight_decay": [1e-4]}
    return _search(ParameterSampler(space, n_iter=n_trials, random_state=seed), train_and_score)


def _grid(train_and_score, n_trials=12, seed=0):  # 4 x 3 grid, evenly spaced in log
    grid = ParameterGrid({"lr": np.logspace(-4, -1, 4), "weight_decay": np.logspace(-6, -1, n_trials // 4)})
    return _search(grid, train_and_score)


def _fixed_seed(train_and_score, n_trials=12, seed=0):  # ignores its seed
    return _search(ParameterSampler(SPACE, n_iter=n_trials, random_state=0), train_and_score)


def _no_seed(train_and_score, n_trials=12, seed=0):  # a new search on every call
    return _search(ParameterSampler(SPACE, n_iter=n_trials), train_and_score)


def _one_draw_for_both(train_and_score, n_trials=12, seed=0):  # the same random number sets both knobs
    u = np.random.default_rng(seed).random(n_trials)
    points = [{"lr": 10 ** (-4 + 3 * v), "weight_decay": 10 ** (-6 + 5 * v)} for v in u]
    return _search(points, train_and_score)


def _hard_coded_twelve(train_and_score, n_trials=12, seed=0):
    return random_search(train_and_score, 12, seed)


def _wide_range(train_and_score, n_trials=12, seed=0):  # section 2's range, 1e-5 .. 1
    space = {**SPACE, "lr": loguniform(1e-5, 1.0)}
    return _search(ParameterSampler(space, n_iter=n_trials, random_state=seed), train_and_score)


def _wrong_name(train_and_score, n_trials=12, seed=0):
    space = {"lr": loguniform(1e-4, 1e-1), "wd": loguniform(1e-6, 1e-1)}
    return _search(ParameterSampler(space, n_iter=n_trials, random_state=seed), train_and_score)


def _best_only(train_and_score, n_trials=12, seed=0):  # forgets the table
    return random_search(train_and_score, n_trials, seed)[0]


def _table_without_scores(train_and_score, n_trials=12, seed=0):
    best, table = random_search(train_and_score, n_trials, seed)
    return best, table.drop(columns="score")


MISTAKES = {
    _uniform: "the learning rates are not spread over the decades (",
    _minimum: "your best is the setting with the lowest score",
    _no_weight_decay: "train_and_score was called without weight_decay",
    _fixed_weight_decay: "every trial used the same weight decay (0.0001): draw it at random in each trial too, "
                           "log-uniformly in 1e-6 .. 1e-1",
    _grid: "only 4 distinct learning rates in 12 trials: a grid",
    _fixed_seed: "seed 1 drew the same 12 settings as seed 0",
    _no_seed: "the same seed drew different settings",
    _one_draw_for_both: "the learning rate and the weight decay rise and fall together (correlation of their "
                        "logarithms 1.00)",
    _hard_coded_twelve: "random_search(train_and_score, 200, 0): train_and_score was called 12 times; with "
                        "n_trials=200",
    _wide_range: "outside 1e-4 .. 1e-1",
    _wrong_name: "called with an argument named 'wd'; it takes lr and weight_decay",
    _best_only: "random_search should return (best, table); it returned dict",
    _table_without_scores: "the table has no column 'score'",
}


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda f: f.__name__)
def test_mistakes_fail_with_the_first_difference(mistake):
    verdict = grade("07.5", mistake)
    assert verdict.status == "failed" and MISTAKES[mistake] in verdict.message, (mistake.__name__, verdict.message)


def test_a_correct_answer_written_differently_passes_in_seconds():
    start = time.perf_counter()
    verdict = grade("07.5", random_search)
    assert verdict.status == "passed", verdict.message
    assert time.perf_counter() - start < 3
    assert "Left to your judgement" in verdict.message


@pytest.mark.parametrize("seed", range(5))
def test_a_correct_sampler_passes_the_spread_bars_whatever_its_stream(seed):
    """The bars are tolerant: log-uniform draws from other random streams (numpy's Generator, not
    ParameterSampler's) pass too."""
    def numpy_search(train_and_score, n_trials=12, seed_=0):
        rng = np.random.default_rng([seed, seed_])
        points = [{"lr": 10 ** rng.uniform(-4, -1), "weight_decay": 10 ** rng.uniform(-6, -1)} for _ in range(n_trials)]
        return _search(points, train_and_score)

    verdict = grade("07.5", numpy_search)
    assert verdict.status == "passed", verdict.message
