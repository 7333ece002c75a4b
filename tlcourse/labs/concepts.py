"""Lesson 00's lab: the joint objective L = L_source + λ·L_target on a toy pair of 2-D domains.

One shared linear classifier, and λ deciding whose loss counts more. Lesson 00 (section 5) writes
the objective out as a few lines of loss and optimizer; :func:`joint_fit` is the same fit for the
sweep and the widget.

Example:
    >>> joint_loss(torch.tensor(1.0), torch.tensor(2.0), lam=0.5)
    tensor(2.)
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .. import plots
from ..errors import check_range
from ..threads import limit_threads

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
    return plots.finish(fig, f"one classifier for both domains, trained on L_source + {lam:g}·L_target")
