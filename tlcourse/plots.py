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

from .training import History


def plot_history(histories: Mapping[str, History] | History, fig: Figure | None = None,
                 title: str = "") -> Figure:
    """Loss and accuracy per epoch, train dashed and val solid, one colour per run."""
    if isinstance(histories, History):
        histories = {"run": histories}
    fig = fig or plt.figure(figsize=(10, 3.5))
    fig.clear()
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, (name, h) in enumerate(histories.items()):
        colour = f"C{i}"
        epochs = np.arange(1, len(h.train_loss) + 1)
        ax_loss.plot(epochs, h.train_loss, "--", color=colour, alpha=0.7)
        ax_loss.plot(epochs, h.val_loss, "-", color=colour, label=name)
        ax_acc.plot(epochs, h.train_acc, "--", color=colour, alpha=0.7)
        ax_acc.plot(epochs, h.val_acc, "-o", color=colour, ms=3, label=name)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss (dashed: train, solid: val)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy (dashed: train, solid: val)",
               ylim=(0, 1.02))
    ax_acc.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
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
        self.plot({**self.others, "this run": history}, self.fig, self.title)
        if not self.show:
            return
        from IPython.display import display

        if self.handle is None:
            self.handle = display(self.fig, display_id=True)
        else:
            self.handle.update(self.fig)


def show_images(images: torch.Tensor | Sequence[torch.Tensor], titles: Sequence[str] | None = None,
                ncols: int = 8, size: float = 1.8, title: str = "") -> Figure:
    """A grid of images: uint8 or float [0, 1] tensors (C, H, W)."""
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, min(n, ncols), figsize=(size * min(n, ncols), size * nrows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        img = img.detach().cpu()
        img = img.float() / 255 if img.dtype == torch.uint8 else img.float()
        ax = axes.flat[i]
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).squeeze().numpy(),
                  cmap="gray" if img.shape[0] == 1 else None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, classes: Sequence[str], ax=None, title: str = "") -> Figure:
    """scikit-learn's confusion matrix, counts in the cells."""
    from sklearn.metrics import ConfusionMatrixDisplay

    disp = ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true), np.asarray(y_pred), display_labels=list(classes), ax=ax,
        colorbar=False, cmap="Blues")
    disp.ax_.set_title(title or "confusion matrix (rows: true, columns: predicted)")
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
    ax.set(title=title or f"feature space ({method.upper()})", xticks=[], yticks=[])
    ax.legend(fontsize=8, markerscale=2)
    return ax.figure
