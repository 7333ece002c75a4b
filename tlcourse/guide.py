"""Which way to transfer: the decision guide, and the joint objective's λ.

The classic rule of thumb (lesson 00, measured in lesson 07) looks at two
things: how much labelled target data there is, and how much the target
looks like the source (ImageNet photos for the vision backbones):

=================  ======================================  ==========================================
                   similar to the source                    dissimilar
=================  ======================================  ==========================================
small target set   fixed features + new classifier          classifier on *lower* layers only
large target set   fine-tune (the top blocks, or all)       fine-tune everything (pretrained init
                                                            still beats random)
=================  ======================================  ==========================================

The second half illustrates the joint objective L = L_source + λ·L_target on
a toy pair of 2-D domains: one shared classifier, and λ deciding whose loss
counts more.

Example:
    >>> rec = recommend(data_size=50, similarity=0.9)
    >>> rec.strategy
    'fixed features'
    >>> recommend(data_size=20_000, similarity=0.1).strategy
    'fine-tune all'
    >>> joint_loss(torch.tensor(1.0), torch.tensor(2.0), lam=0.5)
    tensor(2.)
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .threads import limit_threads
from .widgets import check_range

#: Fewer labelled images per class than this counts as "small" (a rule of thumb, not a law).
SMALL_BELOW = 1000
#: A similarity (0 = nothing alike, 1 = the same kind of images) from this value counts as "similar".
SIMILAR_FROM = 0.5

# (data, similarity) -> (strategy, how, why, lesson)
_QUADRANTS = {
    ("small", "similar"): (
        "fixed features",
        "Freeze the whole backbone, extract its last features once, train a new classifier on them.",
        "The pretrained features already describe images like yours; with little data, training "
        "millions of weights would overfit, while a small head trained on fixed features cannot.",
        "lesson 01"),
    ("large", "similar"): (
        "fine-tune",
        "Start from the pretrained weights, replace the head, fine-tune the top blocks (or all of them) "
        "with a small learning rate.",
        "With enough data the backbone can adapt to your classes without overfitting; starting from "
        "pretrained weights makes it converge fast and well.",
        "lessons 02 and 03"),
    ("small", "dissimilar"): (
        "lower-layer features",
        "Cut the backbone at a lower block (general edges, colours, textures), freeze it, train a "
        "classifier on those features.",
        "The top layers are specialised in the source's classes and fit your images badly; the lower "
        "layers are general, and there is too little data to retrain much.",
        "lesson 01 (cut depth)"),
    ("large", "dissimilar"): (
        "fine-tune all",
        "Fine-tune every layer (from the pretrained weights), with a learning rate large enough to move them.",
        "There is data enough to learn new features; the pretrained start still converges faster and "
        "usually ends better than random initialisation.",
        "lessons 02, 03 and 07"),
}

#: The four strategies, in the order of the table above.
STRATEGIES = tuple(v[0] for v in _QUADRANTS.values())


@dataclass(frozen=True)
class Recommendation:
    """The guide's advice for one target task."""

    strategy: str
    how: str
    why: str
    lesson: str
    data: str  # "small" or "large"
    similarity: str  # "similar" or "dissimilar"
    borderline: bool  # near a boundary of the guide: try both neighbours

    def __str__(self) -> str:
        lines = [f"{self.data} target set, {self.similarity} to the source  ->  {self.strategy.upper()}",
                 f"How: {self.how}", f"Why: {self.why}", f"See: {self.lesson}."]
        if self.borderline:
            lines.append("Near a boundary of the guide: try this and its neighbour, and measure (lesson 07).")
        return "\n".join(lines)


def recommend(data_size: int, similarity: float, small_below: int = SMALL_BELOW,
              similar_from: float = SIMILAR_FROM) -> Recommendation:
    """The guide's strategy for ``data_size`` labelled images per class and a ``similarity`` in [0, 1].

    >>> recommend(100, 0.2).strategy
    'lower-layer features'
    >>> recommend(900, 0.55).borderline
    True
    >>> recommend(0, 0.5)
    Traceback (most recent call last):
    ...
    tlcourse.widgets.WidgetValueError: labelled images per class=0 is out of range: choose a value in [1, 1000000000].
    """
    data_size = check_range("labelled images per class", data_size, 1, 1_000_000_000, kind=int)
    similarity = check_range("similarity", similarity, 0.0, 1.0)
    data = "small" if data_size < small_below else "large"
    alike = "similar" if similarity >= similar_from else "dissimilar"
    borderline = (small_below / 2 <= data_size < small_below * 2) or abs(similarity - similar_from) < 0.1
    return Recommendation(*_QUADRANTS[(data, alike)], data=data, similarity=alike, borderline=borderline)


def plot_guide(data_size: int | None = None, similarity: float | None = None, ax=None,
               small_below: int = SMALL_BELOW, similar_from: float = SIMILAR_FROM) -> Figure:
    """The guide as a map (images per class, log scale x similarity), with a task marked on it."""
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(6.5, 4))
    lo, hi = 1, 1_000_000
    cells = {("small", "similar"): (lo, small_below, similar_from, 1),
             ("large", "similar"): (small_below, hi, similar_from, 1),
             ("small", "dissimilar"): (lo, small_below, 0, similar_from),
             ("large", "dissimilar"): (small_below, hi, 0, similar_from)}
    for i, (key, (x0, x1, y0, y1)) in enumerate(cells.items()):
        ax.fill_between([x0, x1], y0, y1, color=f"C{i}", alpha=0.18)
        ax.text(np.sqrt(x0 * x1), (y0 + y1) / 2, _QUADRANTS[key][0], ha="center", va="center", fontsize=11)
    if data_size is not None and similarity is not None:
        ax.plot([data_size], [similarity], "k*", ms=16, label="your task")
        ax.legend(loc="lower right", fontsize=8)
    ax.set(xscale="log", xlim=(lo, hi), ylim=(0, 1), xlabel="labelled target images per class",
           ylabel="similarity to the source (0..1)", title="the decision guide")
    if own:
        ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------- joint objective
def joint_loss(source_loss: torch.Tensor, target_loss: torch.Tensor, lam: float) -> torch.Tensor:
    """L = L_source + λ·L_target: λ says how much the target counts against the source."""
    lam = check_range("λ", lam, 0.0, 1e6)
    return source_loss + lam * target_loss


def toy_domains(n_source: int = 400, n_target: int = 10, angle: float = 70.0, n_test: int = 1000,
                seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Two 2-D domains with the same two classes; the target is the source turned by ``angle`` degrees.

    Returns ``{"source", "target", "source test", "target test"}`` -> (points, labels).
    Many labelled source points, few target ones: the usual transfer situation.

    >>> d = toy_domains(n_target=6)
    >>> d["target"][0].shape, d["source test"][0].shape
    (torch.Size([6, 2]), torch.Size([1000, 2]))
    """
    g = torch.Generator().manual_seed(seed)
    rad = torch.tensor(angle * np.pi / 180)
    turn = torch.stack([torch.stack([rad.cos(), -rad.sin()]), torch.stack([rad.sin(), rad.cos()])])

    def draw(n: int, rotate: bool) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 2
        x = torch.randn(n, 2, generator=g) + torch.stack([3.0 * y - 1.5, torch.zeros(n)], 1)
        return (x @ turn.T if rotate else x), y

    return {"source": draw(n_source, False), "target": draw(n_target, True),
            "source test": draw(n_test, False), "target test": draw(n_test, True)}


def joint_fit(data: dict[str, tuple[torch.Tensor, torch.Tensor]], lam: float) -> tuple[nn.Linear, dict[str, float]]:
    """One linear classifier shared by both domains, trained on L_source + λ·L_target.

    Returns it and its accuracy on the source and target test points. Lesson 00 (section 5) writes
    this fit out as ``fit_joint(lam)`` (same seed, optimizer and penalty), and a check there shows
    both give the same weights.

    >>> _, acc = joint_fit(toy_domains(), lam=0.0)
    >>> acc["source"] > 0.9 > acc["target"]
    True
    """
    torch.manual_seed(0)
    model, ce = nn.Linear(2, 2), nn.CrossEntropyLoss()
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = joint_loss(ce(model(data["source"][0]), data["source"][1]),
                          ce(model(data["target"][0]), data["target"][1]), lam)
        loss = loss + 1e-3 * model.weight.square().sum()  # keeps the weights finite on separable points
        loss.backward()
        return loss

    with limit_threads(1):  # a 2-D toy: threads would only add overhead
        opt.step(closure)
    with torch.no_grad():
        acc = {dom: float((model(data[f"{dom} test"][0]).argmax(1) == data[f"{dom} test"][1]).float().mean())
               for dom in ("source", "target")}
    return model, acc


def lambda_sweep(data: dict[str, tuple[torch.Tensor, torch.Tensor]], lams: list[float]
                 ) -> dict[float, dict[str, float]]:
    """Source and target test accuracy of :func:`joint_fit` for every λ in ``lams``."""
    return {lam: joint_fit(data, lam)[1] for lam in lams}


def plot_joint(data: dict[str, tuple[torch.Tensor, torch.Tensor]], lam: float,
               sweep: dict[float, dict[str, float]] | None = None) -> Figure:
    """The shared boundary for this λ over both domains, and (if given) accuracy vs λ."""
    model, acc = joint_fit(data, lam)
    fig, axes = plt.subplots(1, 3 if sweep else 2, figsize=(13 if sweep else 8.5, 3.8))
    w, b = model.weight.detach(), model.bias.detach()
    (w0, w1), bd = (w[1] - w[0]).tolist(), float(b[1] - b[0])  # boundary: w0 x + w1 y + bd = 0
    xs = np.linspace(-5, 5, 2)
    for ax, dom in zip(axes, ("source", "target")):
        x, y = (t.numpy() for t in data[f"{dom} test"])
        ax.scatter(x[:, 0], x[:, 1], c=[f"C{v}" for v in y], s=4, alpha=0.15)
        xt, yt = (t.numpy() for t in data[dom])
        ax.scatter(xt[:, 0], xt[:, 1], c=[f"C{v}" for v in yt], s=40 if dom == "target" else 6,
                   edgecolors="k" if dom == "target" else "none")
        if abs(w1) > 1e-8:
            ax.plot(xs, -(w0 * xs + bd) / w1, "k-", lw=2)
        ax.set(xlim=(-5, 5), ylim=(-5, 5), aspect="equal", xticks=[], yticks=[],
               title=f"{dom}: test accuracy {acc[dom]:.2f}")
    if sweep:
        lams = sorted(sweep)
        for dom, style in (("source", "o-"), ("target", "s-")):
            axes[2].plot(lams, [sweep[v][dom] for v in lams], style, label=dom)
        axes[2].axvline(lam, color="k", ls=":")
        axes[2].set(xscale="log", xlabel="λ", ylabel="test accuracy", ylim=(0.4, 1.0),
                    title="what λ trades")
        axes[2].legend(fontsize=8)
    fig.suptitle(f"one classifier for both domains, trained on L_source + {lam:g}·L_target")
    fig.tight_layout()
    return fig
