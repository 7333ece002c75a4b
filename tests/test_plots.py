"""``plots`` holds the one way to draw an image grid and training curves; Grad-CAM and lesson 06 reuse it."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tlcourse import gradcam, plots  # noqa: E402
from tlcourse.labs import domain_adaptation as dann  # noqa: E402
from tlcourse.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_history_panels_styles_and_legend():
    h = History(train_loss=[1, .5], val_loss=[1.1, .6], train_acc=[.5, .8], val_acc=[.5, .7])
    fig = plots.plot_history({"a": h, "b": h}, title="T")
    loss, acc = fig.axes
    assert fig._suptitle.get_text() == "T"
    assert loss.get_title() == "loss (dashed: train, solid: val)" and acc.get_ylim() == (0, 1.02)
    assert [(line.get_linestyle(), line.get_color()) for line in acc.lines] == [
        ("--", "C0"), ("-", "C0"), ("--", "C1"), ("-", "C1")]
    assert loss.get_legend() is None
    assert [t.get_text() for t in acc.get_legend().get_texts()] == ["a", "b"]


def test_plot_curves_reads_extra_metrics_and_labels_on_request():
    h = History(train_loss=[1.0, 0.5, 0.2], extra={"domain_acc": [0.9, 0.6, 0.5]})
    fig = plots.plot_curves(h, [({"title": "loss"}, [("train_loss", "-", {})]),
                                ({"title": "domain", "ylim": (0.3, 1.0)}, [("domain_acc", "-o", {"label": True})])])
    loss, domain = fig.axes
    assert list(domain.lines[0].get_xdata()) == [1, 2, 3] and domain.lines[0].get_label() == "run"
    assert loss.lines[0].get_label().startswith("_") and domain.get_ylim() == (0.3, 1.0)
    assert loss.get_xlabel() == "epoch"


def test_dann_history_reuses_plot_curves():
    h = History(train_loss=[1, .5], val_acc=[.3, .5], extra={"domain_loss": [.7, .6], "domain_acc": [.9, .6]})
    fig = dann.plot_dann_history({"a": h, "b": h}, title="D")
    assert [ax.get_title() for ax in fig.axes] == [
        "label loss (source)", "domain loss", "domain accuracy (0.5 = can't tell)", "accuracy on held-out target"]
    assert fig.axes[2].get_ylim() == (0.3, 1.02) and len(fig.axes[2].lines) == 3  # two runs and the 0.5 line
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["a", "b"]


def test_live_curves_redraw_in_place():
    live = dann.LiveDannCurves(display=False)
    for n in (1, 2):
        live(History(train_loss=[1.0] * n, extra={"domain_loss": [.7] * n, "domain_acc": [.5] * n}))
    assert len(live.fig.axes) == 4 and len(live.fig.axes[0].lines[0].get_xdata()) == 2


def test_show_images_titles_heats_empty_cells_and_axes_off():
    imgs = [torch.rand(3, 8, 8), None, (torch.rand(1, 8, 8) * 255).to(torch.uint8)]
    fig = plots.show_images(imgs, ["a", "", "c"], ncols=2, heats=[torch.rand(8, 8), None, None], title="G")
    assert [len(ax.images) for ax in fig.axes] == [2, 0, 1, 0]
    assert [ax.get_title() for ax in fig.axes] == ["a", "", "c", ""]
    assert not any(ax.axison for ax in fig.axes)
    assert fig.axes[2].images[0].get_cmap().name == "gray" and fig.axes[0].images[1].get_cmap().name == "jet"


def test_show_grad_cam_is_a_grid_of_plain_rows_over_heat_rows():
    fig = gradcam.show_grad_cam(torch.rand(5, 3, 8, 8), torch.rand(5, 8, 8), [f"t{i}" for i in range(5)], ncols=3)
    assert tuple(fig.get_size_inches()) == pytest.approx((3 * 2.2, 4 * 2.2))
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 2, 2, 2, 1, 1, 0, 2, 2, 0]
    assert [ax.get_title() for ax in fig.axes[:3]] + [ax.get_title() for ax in fig.axes[6:8]] == [
        "t0", "t1", "t2", "t3", "t4"]
    assert all(ax.get_title() == "" for ax in fig.axes[3:6])
