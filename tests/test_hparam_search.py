"""Grid vs random search, holdout scoring and the budget curve (tlcourse.labs.choosing_a_strategy)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tlcourse.labs import choosing_a_strategy as search  # noqa: E402
from tlcourse.errors import InvalidSettingError  # noqa: E402


def test_grid_points_cover_the_log_range_times_every_batch_size():
    pts = search.grid_points((1e-4, 1e-0), (4, 16), budget=8)
    lrs = sorted({p["lr"] for p in pts})
    assert len(pts) == 8 and len(lrs) == 4
    assert lrs[0] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1.0)
    assert lrs[1] / lrs[0] == pytest.approx(lrs[2] / lrs[1])  # evenly spaced in log
    assert {p["batch_size"] for p in pts} == {4, 16}
    # scikit-learn's order: the last key varies fastest
    assert [p["batch_size"] for p in pts] == [4] * 4 + [16] * 4


def test_points_are_scikit_learns_generators():
    """What the lesson's search cell writes with ParameterGrid / ParameterSampler, point for point."""
    from scipy.stats import loguniform
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    space = {"lr": loguniform(1e-5, 1.0), "batch_size": [4, 16, 64]}
    by_hand = list(ParameterSampler(space, n_iter=12, random_state=0))
    pts = search.random_points((1e-5, 1.0), (4, 16, 64), budget=12, seed=0)
    assert [p["batch_size"] for p in pts] == [p["batch_size"] for p in by_hand]
    assert [p["lr"] for p in pts] == pytest.approx([p["lr"] for p in by_hand], rel=1e-12)
    grid = list(ParameterGrid({"lr": [1e-5, 1e-3, 1e-1], "batch_size": [4, 16]}))
    mine = search.grid_points((1e-5, 1e-1), (4, 16), budget=6)
    assert [p["batch_size"] for p in mine] == [p["batch_size"] for p in grid]
    assert [p["lr"] for p in mine] == pytest.approx([p["lr"] for p in grid], rel=1e-9)


def test_random_points_are_reproducible_and_in_range():
    a = search.random_points((1e-5, 1e-1), (8, 32, 64), budget=20, seed=3)
    assert a == search.random_points((1e-5, 1e-1), (8, 32, 64), budget=20, seed=3)
    assert a != search.random_points((1e-5, 1e-1), (8, 32, 64), budget=20, seed=4)
    assert all(1e-5 <= p["lr"] <= 1e-1 and p["batch_size"] in (8, 32, 64) for p in a)
    assert len({p["lr"] for p in a}) == 20  # a new learning rate every trial


def test_random_learning_rates_are_log_uniform():
    lrs = [p["lr"] for p in search.random_points((1e-6, 1.0), (8,), budget=1000, seed=0)]
    below = sum(lr < 1e-3 for lr in lrs) / len(lrs)
    assert below == pytest.approx(0.5, abs=0.06)  # half the decades, half the trials (uniform: 0.1 %)


@pytest.mark.parametrize("lr_range, budget", [((1e-2, 1e-3), 4), ((0.0, 1e-3), 4), ((1e-4, 100.0), 4),
                                              ((1e-4, 1e-2), 1)])
def test_bad_search_settings_are_refused_clearly(lr_range, budget):
    with pytest.raises(InvalidSettingError):
        search.grid_points(lr_range, (4, 16), budget)


def test_run_search_tracks_the_running_best_and_chosen_is_the_best_holdout():
    scores = iter([0.5, 0.7, 0.6, 0.9])
    table = search.run_search(lambda lr, batch_size: (next(scores), 1 - lr),
                              search.grid_points((1e-3, 1e-1), (8, 16), 4), "grid")
    assert table["best_so_far"].tolist() == [0.5, 0.7, 0.7, 0.9]
    assert table["trial"].tolist() == [1, 2, 3, 4] and (table["method"] == "grid").all()
    assert search.chosen(table)["trial"] == 4


def test_budget_curve_picks_by_holdout_and_reports_the_test_of_the_pick():
    # holdout and test disagree on purpose: the best holdout trial has the worst test accuracy
    pool = pd.DataFrame({"score": [0.1, 0.2, 0.3, 0.9], "test": [0.8, 0.8, 0.8, 0.2]})
    curve = search.budget_curve(pool, budget=4, draws=400, seed=0)
    assert curve.index.tolist() == [1, 2, 3, 4]
    assert curve["best score"].is_monotonic_increasing
    assert curve.loc[4, "best score"] == pytest.approx(0.9) and curve.loc[4, "test of chosen"] == pytest.approx(0.2)
    assert curve.loc[1, "best score"] == pytest.approx(0.375, abs=0.04)  # the mean of one random trial
    assert curve.loc[1, "test of chosen"] == pytest.approx(0.65, abs=0.05)
    with pytest.raises(InvalidSettingError):
        search.budget_curve(pool, budget=5)


def test_search_split_is_disjoint_and_balanced():
    x, y = torch.arange(20.0).unsqueeze(1), torch.tensor([0] * 10 + [1] * 10)
    (fx, fy), (hx, hy) = search.search_split((x, y), per_class=3)
    assert fy.bincount().tolist() == [3, 3] and len(hy) == 14
    assert not set(fx.flatten().tolist()) & set(hx.flatten().tolist())


def test_head_trial_learning_rate_matters():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    trial = search.HeadTrial((x[:60], y[:60]), (x[60:180], y[60:180]), (x[180:], y[180:]), epochs=10)
    good, bad = trial(lr=3e-2, batch_size=8), trial(lr=1e-6, batch_size=8)
    assert good[0] > 0.85 and good[1] > 0.85 and good[0] - bad[0] > 0.2
    assert trial(lr=3e-2, batch_size=8) == good  # seeded: the same settings, the same numbers
    assert trial(lr=3e-2, batch_size=8) != search.HeadTrial(*trial_sets(x, y), epochs=10, seed=1)(3e-2, 8)


def trial_sets(x, y):
    return (x[:60], y[:60]), (x[60:180], y[60:180]), (x[180:], y[180:])


def test_plot_search_with_and_without_curve():
    pool = search.run_search(lambda lr, batch_size: (0.5 + lr, 0.5 - lr), search.random_points(
        (1e-3, 1e-1), (4, 16), 6), "random")
    grid = search.run_search(lambda lr, batch_size: (0.5 + lr, 0.5), search.grid_points((1e-3, 1e-1), (4, 16), 4),
                             "grid")
    table = pd.concat([grid, pool], ignore_index=True)
    assert len(search.plot_search(table).axes) == 1
    fig = search.plot_search(table, search.budget_curve(pool, 4, draws=20))
    assert len(fig.axes) == 2 and not math.isnan(fig.axes[1].get_lines()[0].get_ydata()[-1])
    plt.close("all")
