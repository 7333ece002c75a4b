"""Which way to transfer: the decision guide.

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

Example:
    >>> rec = recommend(data_size=50, similarity=0.9)
    >>> rec.strategy
    'fixed features'
    >>> recommend(data_size=20_000, similarity=0.1).strategy
    'fine-tune all'
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .errors import check_range
from .i18n import N_, tr

#: Fewer labelled images per class than this counts as "small" (a rule of thumb, not a law).
SMALL_BELOW = 1000
#: A similarity (0 = nothing alike, 1 = the same kind of images) from this value counts as "similar".
SIMILAR_FROM = 0.5

# (data, similarity) -> (strategy, how, why, lesson)
_QUADRANTS = {  # N_: translated where printed (tlcourse.i18n)
    ("small", "similar"): (
        N_("fixed features"),
        N_("Freeze the whole backbone, extract its last features once, train a new classifier on them."),
        N_("The pretrained features already describe images like yours; with little data, training "
           "millions of weights would overfit, while a small head trained on fixed features cannot."),
        N_("lesson 01")),
    ("large", "similar"): (
        N_("fine-tune"),
        N_("Start from the pretrained weights, replace the head, fine-tune the top blocks (or all of them) "
           "with a small learning rate."),
        N_("With enough data the backbone can adapt to your classes without overfitting; starting from "
           "pretrained weights makes it converge fast and well."),
        N_("lessons 02 and 03")),
    ("small", "dissimilar"): (
        N_("lower-layer features"),
        N_("Cut the backbone at a lower block (general edges, colours, textures), freeze it, train a "
           "classifier on those features."),
        N_("The top layers are specialised in the source's classes and fit your images badly; the lower "
           "layers are general, and there is too little data to retrain much."),
        N_("lesson 01 (cut depth)")),
    ("large", "dissimilar"): (
        N_("fine-tune all"),
        N_("Fine-tune every layer (from the pretrained weights), with a learning rate large enough to move them."),
        N_("There is data enough to learn new features; the pretrained start still converges faster and "
           "usually ends better than random initialisation."),
        N_("lessons 02, 03 and 07")),
}
_WORDS = (N_("small"), N_("large"), N_("similar"), N_("dissimilar"))  # Recommendation.data / .similarity

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
        lines = [tr("{data} target set, {similarity} to the source  ->  {strategy}", data=tr(self.data),
                    similarity=tr(self.similarity), strategy=tr(self.strategy).upper()),
                 tr("How: {how}", how=tr(self.how)), tr("Why: {why}", why=tr(self.why)),
                 tr("See: {lesson}.", lesson=tr(self.lesson))]
        if self.borderline:
            lines.append(tr("Near a boundary of the guide: try this and its neighbour, and measure (lesson 07)."))
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
    tlcourse.errors.InvalidSettingError: labelled images per class=0 is out of range: choose a value in [1, 1000000000].
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
        ax.text(np.sqrt(x0 * x1), (y0 + y1) / 2, tr(_QUADRANTS[key][0]), ha="center", va="center", fontsize=11)
    if data_size is not None and similarity is not None:
        ax.plot([data_size], [similarity], "k*", ms=16, label=tr("your task"))
        ax.legend(loc="lower right", fontsize=8)
    ax.set(xscale="log", xlim=(lo, hi), ylim=(0, 1), xlabel=tr("labelled target images per class"),
           ylabel=tr("similarity to the source (0..1)"), title=tr("the decision guide"))
    if own:
        ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------- joint objective


