"""The course's pictures: training curves (live or after the fact), image grids,
confusion matrices, mistakes, filters, feature maps and feature-space maps.

Every function draws on a Matplotlib axes it is given (or makes one) and
returns the figure, so notebooks stay one line per picture.

Example:
    >>> from tlcourse.training import History
    >>> h = History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.6],
    ...             train_acc=[0.5, 0.8], val_acc=[0.5, 0.7])
    >>> fig = plot_history({"run": h})
    >>> len(fig.axes)
    2
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .i18n import N_, tr
from .training import History


#: One panel of :func:`plot_curves`: its ``Axes.set`` settings (title, labels, ylim) and its curves,
#: each ``(metric, format, plot kwargs)``; ``label=True`` in the kwargs labels that curve with the run's name.
CurvePanel = tuple[dict[str, Any], Sequence[tuple[str, str, dict[str, Any]]]]


def plot_curves(histories: Mapping[str, History] | History, panels: Sequence[CurvePanel], fig: Figure | None = None,
                title: str = "", figsize: tuple[float, float] = (10, 3.5)) -> Figure:
    """Per-epoch curves, one panel per entry of ``panels``, one colour per run; legend on the last panel.

    The one way the course draws training curves: :func:`plot_history` (``fit``) and lesson 06's
    ``plot_dann_history`` only choose their panels. A metric is looked up with ``History.metric``.

    >>> h = History(train_loss=[1.0, 0.5], extra={"domain_acc": [0.9, 0.6]})
    >>> fig = plot_curves(h, [({"title": "loss"}, [("train_loss", "-o", {"label": True})]),
    ...                       ({"title": "domain"}, [("domain_acc", "-", {})])])
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'domain']
    """
    if isinstance(histories, History):
        histories = {"run": histories}
    fig = fig or plt.figure(figsize=figsize)
    fig.clear()
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for i, (name, h) in enumerate(histories.items()):
        for ax, (_, curves) in zip(axes, panels):
            for key, fmt, kwargs in curves:
                values = h.metric(key)
                style = {**kwargs, "label": name} if kwargs.get("label") is True else kwargs
                ax.plot(np.arange(1, len(values) + 1), values, fmt, color=f"C{i}", **style)
    for ax, (settings, _) in zip(axes, panels):
        ax.set(xlabel=tr("epoch"), **{k: tr(v) if k in ("title", "ylabel") else v for k, v in settings.items()})
    axes[-1].legend(loc="lower right", fontsize=8)
    return finish(fig, title)


def plot_history(histories: Mapping[str, History] | History, fig: Figure | None = None,
                 title: str = "") -> Figure:
    """Loss and accuracy per epoch, train dashed and val solid, one colour per run."""
    train, val = ("--", {"alpha": 0.7}), {"label": True}
    return plot_curves(histories, [
        ({"ylabel": N_("loss"), "title": N_("loss (dashed: train, solid: val)")},
         [("train_loss", *train), ("val_loss", "-", val)]),
        ({"ylabel": N_("accuracy"), "title": N_("accuracy (dashed: train, solid: val)"), "ylim": (0, 1.02)},
         [("train_acc", *train), ("val_acc", "-o", {"ms": 3, **val})]),
    ], fig, title)


def finish(fig: Figure, title: str = "") -> Figure:
    """The last step of every multi-panel picture: the figure's title (if any), then a tight layout."""
    if title:
        fig.suptitle(tr(title))  # a title in the catalog is shown in the course's language
    fig.tight_layout()
    return fig


class LiveCurves:
    """A ``fit`` callback that redraws the curves after every epoch, in place.

    ``plot(histories, fig, title)`` draws them: :func:`plot_history` by default; lesson 06 passes
    its DANN curves (see ``dann.LiveDannCurves``).

    >>> live = LiveCurves(display=False)
    >>> live(History(train_loss=[1.0], val_loss=[1.0], train_acc=[.5], val_acc=[.5]))
    """

    def __init__(self, title: str = "", others: Mapping[str, Any] | None = None, display: bool = True,
                 plot: Callable[..., Figure] | None = None, figsize: tuple[float, float] = (10, 3.5)) -> None:
        self.title, self.others, self.show = title, dict(others or {}), display
        self.plot = plot or plot_history
        self.fig = plt.figure(figsize=figsize)
        plt.close(self.fig)  # drawn only through the display handle below
        self.handle = None

    def __call__(self, history: Any) -> None:
        self.plot({**self.others, tr("this run"): history}, self.fig, self.title)
        if not self.show:
            return
        from IPython.display import display

        if self.handle is None:
            self.handle = display(self.fig, display_id=True)
        else:
            self.handle.update(self.fig)


def show_image(image: torch.Tensor, ax=None, heat: torch.Tensor | None = None, alpha: float = 0.45,
               title: str = "", size: float = 3.0) -> Figure:
    """One image (C, H, W; uint8 or float in [0, 1]; one channel in grey), axis off.

    ``heat`` (H, W) in [0, 1], if given, is laid over it as a heat map (Grad-CAM's overlay).

    >>> len(show_image(torch.rand(3, 8, 8), heat=torch.rand(8, 8)).axes[0].images)
    2
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    img = image.detach().cpu()
    img = img.float() / 255 if img.dtype == torch.uint8 else img.float()
    ax.imshow(img.permute(1, 2, 0).clamp(0, 1).squeeze().numpy(), cmap="gray" if img.shape[0] == 1 else None)
    if heat is not None:
        ax.imshow(heat.detach().cpu().numpy(), cmap="jet", alpha=alpha, vmin=0, vmax=1)
    if title:
        ax.set_title(title, fontsize=8)
    ax.axis("off")
    return ax.figure


def show_images(images: torch.Tensor | Sequence[torch.Tensor | None], titles: Sequence[str] | None = None,
                ncols: int = 8, size: float = 1.8, title: str = "",
                heats: Sequence[torch.Tensor | None] | torch.Tensor | None = None, alpha: float = 0.45,
                row_labels: Sequence[str] | None = None) -> Figure:
    """A grid of images (:func:`show_image`), row by row: uint8 or float [0, 1] tensors (C, H, W).

    ``titles``: one per image; ``heats``: one heat map (H, W) or None per image, laid over it;
    a ``None`` image leaves its cell empty; ``row_labels``: one name per row, written left of it
    (lesson 05's augmentation rows). Every axis is off.

    >>> fig = show_images([torch.rand(3, 8, 8), None, torch.rand(1, 8, 8)], ["a", "", "c"], ncols=2,
    ...                   heats=[torch.rand(8, 8), None, None], row_labels=["top", "bottom"])
    >>> len(fig.axes), [len(ax.images) for ax in fig.axes], fig.axes[2].texts[0].get_text()
    (4, [2, 0, 1, 0], 'bottom')
    """
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, min(n, ncols), figsize=(size * min(n, ncols), size * nrows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        if img is not None:
            show_image(img, axes.flat[i], heat=None if heats is None else heats[i], alpha=alpha,
                       title=titles[i] if titles is not None else "")
    for ax, label in zip(axes[:, 0], row_labels or ()):
        ax.text(-0.06, 0.5, label, transform=ax.transAxes, ha="right", va="center", fontsize=9)
    return finish(fig, title)


def confusion_matrix(y_true, y_pred, classes: Sequence[str], ax=None, title: str = "") -> Figure:
    """scikit-learn's confusion matrix, counts in the cells."""
    from sklearn.metrics import ConfusionMatrixDisplay

    disp = ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true), np.asarray(y_pred), display_labels=list(classes), ax=ax,
        colorbar=False, cmap="Blues")
    disp.ax_.set_title(title or tr("confusion matrix (rows: true, columns: predicted)"))
    return disp.figure_


def show_filters(weight: torch.Tensor, ncols: int = 8, title: str = "first-layer filters") -> Figure:
    """The first conv layer's filters (out, 3, k, k) as small colour images."""
    w = weight.detach().float().cpu()
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    return show_images((w - lo) / (hi - lo + 1e-8), ncols=ncols, size=0.9, title=title)


def show_feature_maps(maps: torch.Tensor, n: int = 16, ncols: int = 8, title: str = "") -> Figure:
    """The first ``n`` channels of one feature map (C, H, W), each as a heat map."""
    m = maps.detach().float().cpu()[:n]
    m = (m - m.amin(dim=(1, 2), keepdim=True)) / (m.amax(dim=(1, 2), keepdim=True)
                                                  - m.amin(dim=(1, 2), keepdim=True) + 1e-8)
    return show_images(m.unsqueeze(1), ncols=ncols, size=1.1, title=title)


def project_2d(features: torch.Tensor | np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D coordinates of feature vectors: PCA (fast, linear) or t-SNE (slower, keeps neighbours).

    The one projection behind every feature-space map (:func:`embedding_map`, lesson 06's
    ``dann.feature_maps``).

    >>> project_2d(np.random.rand(30, 5)).shape
    (30, 2)
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float32)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        return TSNE(n_components=2, init="pca", perplexity=min(30, len(x) - 1),
                    random_state=seed).fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")


def embedding_map(features: torch.Tensor | np.ndarray, colour_by: Sequence, names: Sequence[str] | None = None,
                  method: str = "pca", ax=None, title: str = "", seed: int = 0, **scatter) -> Figure:
    """2-D map of a feature space (:func:`project_2d`), points coloured by class or domain."""
    xy = project_2d(features, method, seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    labels = np.asarray(colour_by)
    for i, value in enumerate(np.unique(labels)):
        pick = labels == value
        label = names[value] if names is not None and isinstance(value, (int, np.integer)) else value
        ax.scatter(xy[pick, 0], xy[pick, 1], s=scatter.get("s", 8), alpha=scatter.get("alpha", 0.6),
                   color=f"C{i}", label=str(label))
    ax.set(title=title or tr("feature space ({method})", method=method.upper()), xticks=[], yticks=[])
    ax.legend(fontsize=8, markerscale=2)
    return ax.figure
