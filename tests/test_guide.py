"""The decision guide and the joint objective's λ."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch

from tlcourse import guide
from tlcourse.labs import concepts as lab
from tlcourse.errors import InvalidSettingError


@pytest.mark.parametrize("size, similarity, strategy", [
    (50, 0.9, "fixed features"),
    (50_000, 0.9, "fine-tune"),
    (50, 0.1, "lower-layer features"),
    (50_000, 0.1, "fine-tune all"),
])
def test_four_quadrants(size, similarity, strategy):
    rec = guide.recommend(size, similarity)
    assert rec.strategy == strategy and not rec.borderline
    assert strategy.upper() in str(rec) and rec.how and rec.why


def test_boundaries_and_borderline():
    assert guide.recommend(guide.SMALL_BELOW - 1, 0.9).data == "small"
    assert guide.recommend(guide.SMALL_BELOW, 0.9).data == "large"
    assert guide.recommend(10, guide.SIMILAR_FROM).similarity == "similar"
    assert guide.recommend(guide.SMALL_BELOW, 0.95).borderline
    assert guide.recommend(10, guide.SIMILAR_FROM - 0.05).borderline
    assert "measure" in str(guide.recommend(10, 0.45))
    assert guide.recommend(500, 0.9, small_below=100).strategy == "fine-tune"  # thresholds are knobs
    assert set(guide.STRATEGIES) == {"fixed features", "fine-tune", "lower-layer features", "fine-tune all"}


@pytest.mark.parametrize("size, similarity", [(0, 0.5), (-5, 0.5), (10.5, 0.5), ("100", 0.5),
                                              (10, 1.5), (10, -0.1), (10, math.nan), (10, None)])
def test_bad_inputs_are_refused(size, similarity):
    with pytest.raises(InvalidSettingError):
        guide.recommend(size, similarity)


def test_plot_guide_marks_the_task():
    fig = guide.plot_guide(120, 0.9)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.lines) == 1
    assert {t.get_text() for t in ax.texts} == set(guide.STRATEGIES)
    plt.close(fig)


def test_joint_loss():
    src, tgt = torch.tensor(1.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    loss = lab.joint_loss(src, tgt, lam=0.25)
    loss.backward()
    assert float(loss.detach()) == 1.5 and float(src.grad) == 1.0 and float(tgt.grad) == 0.25
    assert float(lab.joint_loss(src, tgt, 0).detach()) == 1.0
    with pytest.raises(InvalidSettingError):
        lab.joint_loss(src, tgt, -1.0)


def test_toy_domains_are_repeatable():
    a, b = lab.toy_domains(seed=1), lab.toy_domains(seed=1)
    assert all(torch.equal(a[k][0], b[k][0]) for k in a)
    assert a["source"][0].shape == (400, 2) and a["target"][0].shape == (10, 2)
    assert a["target"][1].tolist().count(0) == 5  # balanced classes


def test_lambda_trades_source_for_target():
    toy = lab.toy_domains()
    sweep = lab.lambda_sweep(toy, [0.01, 1, 100])
    assert sweep[0.01]["source"] > 0.9  # the source model
    assert sweep[1]["target"] > sweep[0.01]["target"] + 0.05  # listening to the target helps it ...
    assert sweep[100]["source"] < sweep[0.01]["source"] - 0.05  # ... at the source's expense


def test_plot_joint():
    toy = lab.toy_domains()
    fig = lab.plot_joint(toy, 1.0, lab.lambda_sweep(toy, [0.1, 1, 10]))
    assert len(fig.axes) == 3
    plt.close(fig)
    fig = lab.plot_joint(toy, 1.0)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_joint_fit_is_lesson_00s_fit_joint():
    """The fit that lesson 00 writes out (section 5): same seed, L-BFGS, penalty: same weights."""
    toy = lab.toy_domains()
    (x_src, y_src), (x_tgt, y_tgt) = toy["source"], toy["target"]
    ce = torch.nn.CrossEntropyLoss()
    for lam in (0.01, 1.0, 100.0):
        torch.manual_seed(0)
        clf = torch.nn.Linear(2, 2)
        opt = torch.optim.LBFGS(clf.parameters(), lr=1, max_iter=100, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = ce(clf(x_src), y_src) + lam * ce(clf(x_tgt), y_tgt) + 1e-3 * clf.weight.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        packaged, _ = lab.joint_fit(toy, lam)
        assert torch.allclose(clf.weight, packaged.weight, atol=1e-6), lam
        assert torch.allclose(clf.bias, packaged.bias, atol=1e-6), lam
