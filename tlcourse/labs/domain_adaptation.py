"""Lesson 06's lab: the source/target digit splits, and domain-adversarial training (DANN) on them.

**DANN** (Ganin & Lempitsky 2015) for small colour digits. Three parts share one input::

    image ─▶ feature extractor G_f ─┬─▶ label classifier G_y ─▶ digit 0-9    (source labels)
                                    └─▶ gradient reversal ─▶ domain classifier G_d ─▶ source / target

The domain classifier learns to tell source from target features; the
gradient reversal layer (identity forward, gradient times −λ backward) makes
the feature extractor do the opposite, so it learns features on which the two
domains look alike while the label classifier keeps them good for digits.

Example:
    >>> import torch
    >>> x = torch.ones(3, requires_grad=True)
    >>> grad_reverse(x, 0.5).sum().backward()
    >>> x.grad.tolist()
    [-0.5, -0.5, -0.5]
    >>> round(lambda_schedule(0.5), 3), lambda_schedule(0.0), round(lambda_schedule(1.0, max_lambda=0.3), 3)
    (0.987, 0.0, 0.3)
    >>> model = DANN(size=28)
    >>> model(torch.zeros(2, 3, 28, 28, dtype=torch.uint8)).shape
    torch.Size([2, 10])

**The splits.** Domain adaptation needs four sets of images, with or without the published
train splits in the data root:

==============  ==========================  =========================================
part            domain                      used for
==============  ==========================  =========================================
``source``      source (MNIST), labelled    training the label classifier
``source_eval`` source, held out            checking the model still reads the source
``adapt``       target, labels hidden       the domain classifier (and the oracle)
``eval``        target, held out            the one number every method is judged on
==============  ==========================  =========================================

With the canonical splits in the data root (``canonical=True``) these are the
published train and test splits: MNIST train → ``source``, MNIST test →
``source_eval``, target train → ``adapt``, target test → ``eval``. A data
root with only the *test* splits (like ``../shared/course-data``) still works
(``canonical=False``): the available test images are cut into disjoint
parts. One subtlety: MNIST-M test image ``i`` **is** MNIST test image ``i``
blended over a photo, so the parts are cut from one shared index range and
no digit of ``eval`` is ever seen, in either domain, during training.

Example:
    >>> parts = split_indices(10, {"a": 3, "b": 5}, seed=0)
    >>> sorted(len(v) for v in parts.values())
    [3, 5]
    >>> set(parts["a"].tolist()) & set(parts["b"].tolist())
    set()
    >>> task = make_task("mnist_m", dict(source=600, source_eval=200, adapt=600, eval=300),
    ...                  canonical=False)                                        # doctest: +SKIP
    >>> print(task.describe())                                                   # doctest: +SKIP
    mnist → mnist_m: disjoint parts of the test splits (the quick profile's choice)
      source       mnist         600 images
      ...
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable, Sequence
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from .. import plots, training
from ..infra.device import autocast, optimizer_step, pick_device, seed_everything
from ..training import History
from dataclasses import dataclass, field
from ..digits import load_digits
from ..errors import FETCH_COMMAND, CourseError
from ..infra.registry import DATASETS


# =========================================================================== domain_adaptation
METHODS = ("source only", "target batches in BN (λ = 0)", "DANN", "target oracle")


# --------------------------------------------------------------------------- gradient reversal
class GradReverse(torch.autograd.Function):
    """Identity on the way forward; multiplies the gradient by ``-lambd`` on the way back.

    Lesson 06 writes this class out in its "gradient reversal layer" cell; a check cell there
    compares the gradients of the two.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lambd * grad, None  # no gradient for λ itself


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Apply :class:`GradReverse` with strength ``lambd``.

    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> (grad_reverse(x, 2.0) * torch.tensor([3.0, -1.0])).sum().backward()
    >>> x.grad.tolist()
    [-6.0, 2.0]
    """
    return GradReverse.apply(x, lambd)


class GradientReversal(nn.Module):
    """The reversal layer as a module; set ``.lambd`` during training (the schedule).

    >>> GradientReversal(0.3)
    GradientReversal(lambd=0.3)
    """

    def __init__(self, lambd: float = 1.0) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd:g}"


def lambda_schedule(p: float, gamma: float = 10.0, max_lambda: float = 1.0) -> float:
    """DANN's λ at training progress ``p`` in [0, 1]: ``max_lambda · (2 / (1 + exp(−γ p)) − 1)``.

    It starts at 0, so the domain classifier cannot disturb the young features,
    and rises smoothly to ``max_lambda`` (γ sets how fast). Lesson 06 writes it as one line
    of its DANN loop, and its check compares that line with this function at every step.

    >>> [round(lambda_schedule(p), 2) for p in (0, 0.1, 0.25, 1)]
    [0.0, 0.46, 0.85, 1.0]
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"training progress p must be in [0, 1], got {p}")
    return max_lambda * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


# --------------------------------------------------------------------------- the network
def _mlp(dim: int, hidden: Sequence[int], out: int, batchnorm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(dim, h), nn.BatchNorm1d(h) if batchnorm else nn.Identity(), nn.ReLU()]
        dim = h
    return nn.Sequential(*layers, nn.Linear(dim, out))


class DANN(nn.Module):
    """The DANN paper's MNIST network, plus BatchNorm and Dropout2d.

    The paper's network: two 5x5 conv layers (32 and 48 filters, each followed by 2x2 max
    pooling), a label classifier with hidden layers of 100 and 100 units, and a domain
    classifier with one hidden layer of 100 units (here a 2-way softmax instead of the paper's
    single sigmoid output). Added here: BatchNorm after every hidden layer and ``Dropout2d(0.1)``
    after the second convolution. The BatchNorm layers matter for the results: in
    :func:`dann_step` each domain's batch is normalised with its own statistics, and the
    ``"target batches in BN (λ = 0)"`` ablation measures that effect alone. Lesson 06 writes
    the same network out (``DigitDANN``); with the same seed the two have the same weights.

    ``forward`` returns class logits, so it is an ordinary classifier;
    :meth:`features` and :meth:`domain_logits` give the other two parts.
    Inputs are uint8 images (or floats in [0, 255]) of ``size`` pixels;
    scaling to [-1, 1] happens inside.

    >>> DANN(size=32).dim, DANN(size=28).dim
    (1200, 768)
    """

    def __init__(self, size: int = 28, widths: tuple[int, int] = (32, 48),
                 hidden: Sequence[int] = (100, 100), domain_hidden: Sequence[int] = (100,),
                 batchnorm: bool = True, lambd: float = 0.0) -> None:
        super().__init__()
        w1, w2 = widths
        bn: Callable[[int], nn.Module] = nn.BatchNorm2d if batchnorm else (lambda c: nn.Identity())
        # conv 5x5 → pool → conv 5x5 → pool, as in the paper.
        self.feature = nn.Sequential(
            nn.Conv2d(3, w1, 5), bn(w1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w1, w2, 5), bn(w2), nn.Dropout2d(0.1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        side = ((size - 4) // 2 - 4) // 2  # two 5x5 convs (no padding), each followed by a 2x2 pool
        if side < 1:
            raise ValueError(f"images of {size} pixels are too small for this network (at least 16)")
        self.size, self.dim = size, w2 * side * side
        self.classifier = _mlp(self.dim, hidden, 10, batchnorm)
        self.reversal = GradientReversal(lambd)
        self.domain = _mlp(self.dim, domain_hidden, 2, batchnorm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The shared features (N, dim) of uint8 images (768 at 28 px, 1200 at 32 px)."""
        return self.feature(x.float() / 127.5 - 1.0)

    def domain_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Source-vs-target logits of features, through the reversal layer."""
        return self.domain(self.reversal(feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def parts(self) -> dict[str, nn.Module]:
        """The three trainable parts by name (the reversal layer has no weights)."""
        return {"feature extractor": self.feature, "label classifier": self.classifier,
                "domain classifier": self.domain}


# --------------------------------------------------------------------------- training
def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _labelled_batches(x: torch.Tensor, y: torch.Tensor | None, batch_size: int) -> list[Data]:
    """``(x, y)`` in consecutive batches of ``batch_size`` (``y=None``: placeholder labels)."""
    y = torch.zeros(len(x), dtype=torch.long) if y is None else y
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]


def predict_digits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted digits for images ``x`` (eval mode, on the model's device), on the CPU.

    :func:`tlcourse.training.predict` on batches of ``batch_size``, then argmax.
    """
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.long)
    return training.predict(model, _labelled_batches(x, None, batch_size), _device_of(model))[0].argmax(1)


def digit_accuracy(model: nn.Module, data: Data, batch_size: int = 1000) -> float:
    """Share of ``data`` the model labels correctly (eval mode): :func:`tlcourse.training.accuracy`.

    >>> digit_accuracy(DANN(), (torch.zeros(4, 3, 28, 28), torch.zeros(4, dtype=torch.long))) in (0.0, 1.0)
    True
    """
    x, y = data
    if len(x) == 0:
        return float("nan")  # an empty mean, as before
    return training.accuracy(model, _labelled_batches(x, y, batch_size), device=_device_of(model))


@torch.inference_mode()
def feature_vectors(model: DANN, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Shared features of images ``x`` (eval mode), on the CPU, for feature-space maps.

    >>> feature_vectors(DANN(), torch.zeros(3, 3, 28, 28)).shape
    torch.Size([3, 768])
    """
    model.eval()
    device = _device_of(model)
    return torch.cat([model.features(x[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(x), batch_size)])


def dann_step(model: DANN, optimizer: torch.optim.Optimizer, xs: torch.Tensor, ys: torch.Tensor,
              xt: torch.Tensor, lambd: float, adapt: bool | None = None) -> tuple[float, float, float]:
    """One update on a labelled source batch and an unlabelled target batch.

    Lesson 06 writes this step out (its ``dann_step`` cell, the ``adapt=True`` case) and a check
    cell shows that the two give the same losses and gradients.
    Returns (label loss, domain loss, domain accuracy). The source batch and
    the target batch go through the network *separately*, so in training
    BatchNorm normalises each domain with its own batch statistics (as the
    reference PyTorch implementations of DANN do). With ``lambd > 0`` the
    domain classifier's gradient reaches the feature extractor reversed and
    scaled by λ. With ``adapt=False`` (source only; the default when
    ``lambd == 0``) the feature extractor never sees a target image in
    training mode, and the domain classifier only *measures* how far apart
    the domains are: it is trained on detached features computed in eval
    mode. ``adapt=True, lambd=0`` is the ablation in between: target images
    pass through the feature extractor in training mode (BatchNorm normalises
    each target batch with its own statistics, and its running statistics,
    used at test time, average over source and target batches), but no
    domain gradient reaches it. That is not AdaBN (Li et al., 2016), which
    re-estimates the statistics on target images after training.
    """
    adapt = lambd > 0 if adapt is None else adapt
    label_loss, domain_loss, domain_acc = _update(model, optimizer, xs, ys, xt, lambd, adapt).tolist()
    return label_loss, domain_loss, domain_acc


def _update(model: DANN, optimizer: torch.optim.Optimizer, xs: torch.Tensor, ys: torch.Tensor,
            xt: torch.Tensor, lambd: float, adapt: bool) -> torch.Tensor:
    """:func:`dann_step`'s update; its (label loss, domain loss, domain accuracy) as one float32
    tensor on the training device, so :func:`train_dann` can sum them there without a host read
    (a ``.item()`` per step waits for the GPU at every step)."""
    model.train()
    model.reversal.lambd = lambd
    device = xs.device
    dom_true = torch.cat([torch.zeros(len(xs), dtype=torch.long, device=device),
                          torch.ones(len(xt), dtype=torch.long, device=device)])
    with autocast(device):
        fs = model.features(xs)
        label_logits = model.classifier(fs)
        if adapt:
            dom_feats = (fs, model.features(xt))
        else:
            with torch.no_grad():
                model.feature.eval()
                dom_feats = (model.features(xs), model.features(xt))
                model.feature.train()
        dom_logits = torch.cat([model.domain_logits(f) for f in dom_feats]).float()
        label_loss = F.cross_entropy(label_logits.float(), ys)
        domain_loss = F.cross_entropy(dom_logits, dom_true)
    optimizer.zero_grad(set_to_none=True)
    # The reversal layer flips the domain gradient for G_f only, so one sum trains all three.
    optimizer_step(label_loss + domain_loss, optimizer, device)  # backward + step (loss-scaled in float16)
    dom_acc = (dom_logits.argmax(1) == dom_true).float().mean()
    return torch.stack([label_loss.detach().float(), domain_loss.detach().float(), dom_acc])


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterable[torch.Tensor]:
    """Index batches of a fresh permutation of ``range(n)``, forever."""
    while True:
        order = torch.randperm(n, generator=generator)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i:i + batch_size]


def train_dann(model: DANN, source: Data, target_x: torch.Tensor, *, epochs: int = 5,
               lr: float = 1e-3, batch_size: int = 64, max_lambda: float = 1.0, gamma: float = 10.0,
               eval_data: Data | None = None, seed: int = 0, mode: str = "dann",
               device: torch.device | str | None = None,
               callbacks: Iterable[Callable[[History], None]] = ()) -> History:
    """Train ``model`` on labelled ``source`` and unlabelled ``target_x``; return its history.

    An epoch is one pass over the source; each step also takes a target batch.
    ``mode='dann'`` raises λ by :func:`lambda_schedule` up to ``max_lambda``;
    ``mode='source'`` keeps λ = 0 (source only: the domain classifier just
    watches); ``mode='bn'`` also keeps λ = 0 but lets the target images pass
    through the feature extractor, so only its BatchNorm statistics see them
    (the ablation that separates that effect from the adversarial one). For
    the target oracle, pass the labelled *target* images as ``source`` with
    ``mode='source'``. Adam, with the paper's learning-rate
    decay ``lr / (1 + 10 p)^0.75``. Runs on ``device`` (default: CUDA if
    present, :func:`tlcourse.infra.device.pick_device`); the model stays there.

    The record is the course's one :class:`~tlcourse.training.History`: ``train_loss``
    is the label loss on source batches, ``val_acc`` the accuracy on ``eval_data``
    (held-out target images), and ``extra`` holds ``domain_loss``, ``domain_acc``
    (0.5: the domain classifier cannot tell the domains apart) and ``lambda`` (its last value).
    The loop is not :func:`tlcourse.training.fit`'s: each step takes a source *and* a
    target batch and adds two losses (lesson 06 writes that step out).

    >>> x = torch.randint(0, 255, (64, 3, 28, 28), dtype=torch.uint8)
    >>> h = train_dann(DANN(), (x, torch.arange(64) % 10), x, epochs=1, batch_size=32, device="cpu")
    >>> h.epochs, sorted(h.extra)
    (1, ['domain_acc', 'domain_loss', 'lambda'])
    """
    if mode not in ("dann", "source", "bn"):
        raise ValueError(f"mode must be 'dann', 'source' or 'bn', got {mode!r}")
    if epochs < 1 or batch_size < 2 or len(source[1]) < batch_size or len(target_x) < batch_size:
        raise ValueError(f"need epochs ≥ 1 and at least batch_size={batch_size} images in each domain "
                         f"(got epochs={epochs}, {len(source[1])} source and {len(target_x)} target images)")
    seed_everything(seed)
    device = torch.device(device) if device is not None else pick_device()
    model.to(device)
    xs_all, ys_all = source[0].to(device), source[1].to(device)
    xt_all = target_x.to(device)
    steps = len(ys_all) // batch_size
    # Separate generators: the source batches do not depend on the target set's size.
    src_batches = _batches(len(ys_all), batch_size, torch.Generator().manual_seed(seed))
    tgt_batches = _batches(len(xt_all), batch_size, torch.Generator().manual_seed(seed + 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 + 10 * s / (epochs * steps)) ** -0.75)
    history = History()
    # The per-step numbers are summed on the training device and read once per epoch. float64
    # where the device has it (CPU, CUDA): the same float64 sums, in the same order, as adding
    # each step's .item()s on the host did, so CPU histories are unchanged bit for bit. MPS has no float64.
    sum_dtype = torch.float32 if device.type == "mps" else torch.float64
    for epoch in range(epochs):
        t0, sums = time.perf_counter(), torch.zeros(3, dtype=sum_dtype, device=device)
        for step in range(steps):
            p = (epoch * steps + step) / (epochs * steps)
            lambd = lambda_schedule(p, gamma, max_lambda) if mode == "dann" else 0.0
            i, j = next(src_batches).to(device), next(tgt_batches).to(device)
            sums += _update(model, opt, xs_all[i], ys_all[i], xt_all[j], lambd, adapt=mode != "source")
            sched.step()
        label_loss, domain_loss, domain_acc = (v / steps for v in sums.tolist())  # the epoch's one host read
        train_time = time.perf_counter() - t0
        val_acc = digit_accuracy(model, eval_data) if eval_data is not None else None
        history.add_epoch(train_loss=label_loss, val_acc=val_acc, lr=opt.param_groups[0]["lr"],
                          domain_loss=domain_loss, domain_acc=domain_acc, **{"lambda": lambd},
                          epoch_time=time.perf_counter() - t0, train_time=train_time)
        for cb in callbacks:
            cb(history)
    model.eval()
    return history


def train_method(method: str, task: Any, *, seed: int = 0, model_kw: dict | None = None,
                 **train_kw: Any) -> tuple[DANN, History]:
    """Train one of :data:`METHODS` on a :class:`AdaptationTask`; return (model, history).

    - ``'source only'``: labelled source images; the target images only feed
      the watching domain classifier.
    - ``'target batches in BN (λ = 0)'``: as DANN, but λ stays 0: the ``adapt``
      images only reach the feature extractor's BatchNorm statistics (an ablation).
    - ``'DANN'``: labelled source + unlabelled ``adapt`` images, gradient reversal.
    - ``'target oracle'``: the ``adapt`` images *with their labels* (the
      ceiling; unavailable in real adaptation), source images for the domain
      classifier to watch.

    Every method is judged on the same held-out ``eval`` images
    (``history.val_acc``). ``train_kw`` goes to :func:`train_dann`.

    >>> x = torch.randint(0, 255, (32, 3, 28, 28), dtype=torch.uint8); y = torch.arange(32) % 10
    >>> toy = {"source": (x, y), "adapt": (x, y), "eval": (x, y)}
    >>> model, h = train_method("DANN", toy, epochs=1, batch_size=16, device="cpu")
    >>> h.epochs, len(h.val_acc), h.extra["lambda"][0] > 0
    (1, 1, True)
    """
    if method not in METHODS:
        raise KeyError(f"method must be one of {METHODS}, got {method!r}")
    size = task["source"][0].shape[-1]
    seed_everything(seed)
    model = DANN(size=size, **(model_kw or {}))
    if method == "target oracle":
        source, target_x, mode = task["adapt"], task["source"][0], "source"
    else:
        source, target_x = task["source"], task["adapt"][0]
        mode = {"DANN": "dann", "source only": "source"}.get(method, "bn")
    history = train_dann(model, source, target_x, mode=mode, seed=seed, eval_data=task["eval"], **train_kw)
    return model, history


def result_row(method: str, task: Any, model: nn.Module, history: History, seed: int) -> dict[str, Any]:
    """One row of the results table: accuracy on ``task``'s held-out target and held-out source images.

    The accuracy is measured here, so a model trained for one target (source
    only) can get a row for another one too.
    """
    return {"target": task.target_name, "method": method, "seed": seed,
            "target_acc": digit_accuracy(model, task["eval"]), "source_acc": digit_accuracy(model, task["source_eval"]),
            "seconds": sum(history.epoch_time)}


def results_table(rows: Sequence[dict[str, Any]]):
    """Mean ± std over seeds, one row per (target, method), in :data:`METHODS` order.

    >>> rows = [dict(target="mnist_m", method="DANN", seed=s, target_acc=a, source_acc=.98, seconds=1.0)
    ...         for s, a in enumerate([.7, .8])]
    >>> results_table(rows)["target acc"].iloc[0]
    '0.750 ± 0.071'
    """
    import pandas as pd

    df = pd.DataFrame(list(rows))

    def order(method: str) -> float:  # the METHODS order; variants ("DANN (λ 0.3)") right after theirs
        return next((i + 0.5 * (method != m) for i, m in enumerate(METHODS)
                     if method == m or method.startswith(m + " ")), len(METHODS))

    out = []
    for (target, method), g in df.groupby(["target", "method"], sort=False):
        t, s = g["target_acc"], g["source_acc"]
        out.append({"target": target, "method": method, "seeds": len(g),
                    "target acc": f"{t.mean():.3f} ± {t.std(ddof=1):.3f}" if len(g) > 1 else f"{t.mean():.3f}",
                    "source acc": f"{s.mean():.3f}", "mean target acc": t.mean(),
                    "s per run": round(float(g["seconds"].mean()), 1), "_o": order(method)})
    table = pd.DataFrame(out)
    first_seen = {t: i for i, t in enumerate(dict.fromkeys(df["target"]))}
    table = table.assign(_t=table["target"].map(first_seen)).sort_values(["_t", "_o"])
    return table.drop(columns=["_o", "_t"]).set_index(["target", "method"])


# --------------------------------------------------------------------------- pictures
def plot_dann_history(histories: dict[str, History] | History, fig: Figure | None = None,
                      title: str = "") -> Figure:
    """Label loss, domain loss, domain accuracy and target accuracy per epoch of :func:`train_dann` runs.

    One colour per run (:func:`tlcourse.plots.plot_history` draws :func:`~tlcourse.training.fit`'s curves).

    >>> h = History(train_loss=[1, .5], val_acc=[.3, .5], extra={"domain_loss": [.7, .6], "domain_acc": [.9, .6]})
    >>> len(plot_dann_history({"a": h}).axes)
    4
    """
    panels = [("train_loss", {"title": "label loss (source)"}), ("domain_loss", {"title": "domain loss"}),
              ("domain_acc", {"title": "domain accuracy (0.5 = can't tell)", "ylim": (0.3, 1.02)}),
              ("val_acc", {"title": "accuracy on held-out target", "ylim": (0, 1.02)})]
    curves = [(settings, [(key, "-o", {"ms": 3, "label": True})]) for key, settings in panels]
    fig = plots.plot_curves(histories, curves, fig, title, figsize=(13, 3.2))
    fig.axes[2].axhline(0.5, color="grey", ls=":", lw=1)
    return fig


def LiveDannCurves(title: str = "", others: dict[str, History] | None = None,  # noqa: N802 (reads as a class)
                   display: bool = True) -> "plots.LiveCurves":
    """A :func:`train_dann` callback that redraws :func:`plot_dann_history` after every epoch.

    >>> LiveDannCurves(display=False)(History(train_loss=[1.0], extra={"domain_loss": [.7], "domain_acc": [.5]}))
    """
    return plots.LiveCurves(title, others, display, plot=plot_dann_history, figsize=(13, 3.2))


def plot_lambda_schedule(gamma: float = 10.0, max_lambda: float = 1.0, ax: Any = None,
                         reference: tuple[float, float] | None = (10.0, 1.0)) -> Figure:
    """λ over training progress for one γ and scale (dotted: the paper's γ = 10, scale 1).

    >>> len(plot_lambda_schedule(5.0, 0.5).axes[0].lines)
    2
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 2.6))
    p = np.linspace(0, 1, 101)
    ax.plot(p, [lambda_schedule(v, gamma, max_lambda) for v in p], label=f"γ = {gamma:g}, scale {max_lambda:g}")
    if reference:
        ax.plot(p, [lambda_schedule(v, *reference) for v in p], ":", color="grey",
                label=f"paper: γ = {reference[0]:g}, scale {reference[1]:g}")
    ax.set(xlabel="training progress p", ylabel="λ", title="the λ schedule",
           ylim=(0, max(1.05, 1.05 * max_lambda)))
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure


def _scatter(ax: Any, xy: np.ndarray, labels: np.ndarray, title: str, size: float) -> None:
    for i, value in enumerate(dict.fromkeys(labels.tolist())):
        pick = labels == value
        ax.scatter(xy[pick, 0], xy[pick, 1], s=size, alpha=0.6, color=f"C{i % 10}", label=str(value))
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(fontsize=7, markerscale=2, ncol=2 if len(set(labels.tolist())) > 5 else 1)


def feature_maps(models: dict[str, DANN], source_x: torch.Tensor, source_y: torch.Tensor,
                 target_x: torch.Tensor, target_y: torch.Tensor, method: str = "pca",
                 names: tuple[str, str] = ("source", "target")) -> Figure:
    """For each model, one 2-D map of its features, coloured by domain (top) and by digit (bottom).

    The map is computed once per model from source and target features together
    (:func:`tlcourse.plots.project_2d`), so both colourings show the very same points.

    >>> x = torch.randint(0, 255, (20, 3, 28, 28), dtype=torch.uint8); y = torch.arange(20) % 10
    >>> len(feature_maps({"a": DANN()}, x, y, x, y).axes)
    2
    """
    fig, axes = plt.subplots(2, len(models), figsize=(4.6 * len(models), 8.4), squeeze=False)
    domain = np.array([names[0]] * len(source_x) + [names[1]] * len(target_x))
    digits = torch.cat([source_y, target_y]).cpu().numpy()
    for col, (title, model) in enumerate(models.items()):
        xy = plots.project_2d(feature_vectors(model, torch.cat([source_x, target_x])).numpy(), method)
        _scatter(axes[0, col], xy, domain, f"{title}: by domain ({method.upper()})", 6)
        _scatter(axes[1, col], xy, digits, f"{title}: by digit", 6)
    return plots.finish(fig)


# =========================================================================== _ds
PARTS = ("source", "source_eval", "adapt", "eval")
TARGETS = ("mnist_m", "usps")
#: the file whose presence means the canonical train split of a domain is in the data root
TRAIN_FILES = {"mnist": "train-images-idx3-ubyte.gz", "mnist_m": "mnist_m_train_labels.txt",
               "usps": "usps.bz2"}
FETCH_HINT = f"{FETCH_COMMAND} mnist mnist_m usps"

#: uint8 images (N, 3, H, W) and their labels (N,).
Data = tuple[torch.Tensor, torch.Tensor]


@dataclass
class AdaptationTask:
    """One adaptation problem: uint8 images (N, 3, size, size) and labels for each part.

    ``indices`` (cut from the test splits only) holds, for each part, the
    positions of its images in its domain's test split, so disjointness can be
    checked; ``note`` says where the parts come from and why.
    """

    source_name: str
    target_name: str
    parts: dict[str, Data]
    canonical: bool  # True: published train/test splits; False: cut from the test splits
    note: str = ""
    indices: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, part: str) -> Data:
        return self.parts[part]

    def describe(self) -> str:
        """One line per part (domain, size), after a line that says where they come from."""
        lines = [f"{self.source_name} → {self.target_name}: {self.note}"]
        for part in PARTS:
            domain = self.source_name if part.startswith("source") else self.target_name
            lines.append(f"  {part:<12} {domain:<8} {len(self.parts[part][1]):>7,} images")
        return "\n".join(lines)


def has_train_split(domain: str) -> bool:
    """Whether the data root holds the canonical train split of ``domain``.

    >>> has_train_split("usps") in (True, False)
    True
    """
    return (DATASETS[domain].path() / TRAIN_FILES[domain]).exists()


def missing_train_splits(*domains: str) -> list[str]:
    """The train-split files of ``domains`` that the data root lacks (``folder/file``).

    >>> isinstance(missing_train_splits("mnist", "mnist_m"), list)
    True
    """
    return [f"{DATASETS[d].folder}/{TRAIN_FILES[d]}" for d in domains if not has_train_split(d)]


def split_indices(n: int, sizes: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Disjoint random index sets of ``range(n)`` with the given sizes (each sorted).

    >>> split_indices(5, {"a": 4, "b": 2})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    CourseError: The parts need 6 images but only 5 are available ...
    """
    if any(size < 0 for size in sizes.values()):
        raise ValueError(f"sizes must not be negative: {sizes}")
    need = sum(sizes.values())
    if need > n:
        raise CourseError(f"The parts need {need} images but only {n} are available: {sizes}. "
                          "Make the profile's sizes smaller.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = order[start:start + size].sort().values
        start += size
    return out


def _take(data: Data, size: int, seed: int) -> Data:
    """A random subset of ``size`` items (all of them, in order, if ``size`` is as large)."""
    if size >= len(data[1]):
        return data
    idx = split_indices(len(data[1]), {"x": size}, seed)["x"]
    return data[0][idx], data[1][idx]


def _canonical(target: str, sizes: dict[str, int], seed: int, size: int) -> dict[str, Data]:
    return {"source": _take(load_digits("mnist", "train", size), sizes["source"], seed),
            "source_eval": _take(load_digits("mnist", "test", size), sizes["source_eval"], seed + 1),
            "adapt": _take(load_digits(target, "train", size), sizes["adapt"], seed + 2),
            "eval": _take(load_digits(target, "test", size), sizes["eval"], seed + 3)}


def indices_in_test_splits(target: str, n_source: int, n_target: int, sizes: dict[str, int],
                       seed: int = 0) -> dict[str, torch.Tensor]:
    """Where each part comes from when only the test splits exist: positions in the test splits.

    For MNIST-M (image ``i`` is MNIST image ``i`` on a photo) all four parts
    are cut from the shared range ``0 .. n_target - 1``, so no digit is in two
    parts; MNIST images past that range go to ``source_eval`` first. For USPS
    (unrelated images) source and target are cut independently.

    >>> idx = indices_in_test_splits("mnist_m", 12, 10, dict(source=4, source_eval=3, adapt=3, eval=2))
    >>> [len(idx[p]) for p in PARTS], idx["source_eval"][:2].tolist()
    ([4, 3, 3, 2], [10, 11])
    """
    if target == "mnist_m":
        extra = torch.arange(n_target, n_source)
        n_extra = min(len(extra), sizes["source_eval"])
        idx = split_indices(n_target, {"source": sizes["source"], "adapt": sizes["adapt"],
                                       "eval": sizes["eval"],
                                       "source_eval": sizes["source_eval"] - n_extra}, seed)
        idx["source_eval"] = torch.cat([extra[:n_extra], idx["source_eval"]])
        return {p: idx[p] for p in PARTS}
    s = split_indices(n_source, {"source": sizes["source"], "source_eval": sizes["source_eval"]}, seed)
    t = split_indices(n_target, {"adapt": sizes["adapt"], "eval": sizes["eval"]}, seed + 1)
    return {**s, **t}


def _from_test_splits(target: str, sizes: dict[str, int], seed: int, size: int
                      ) -> tuple[dict[str, Data], dict[str, torch.Tensor]]:
    sx, sy = load_digits("mnist", "test", size)
    tx, ty = load_digits(target, "test", size)
    if target == "mnist_m" and not torch.equal(sy[:len(ty)], ty):
        raise CourseError("MNIST-M test labels do not follow MNIST test: is the MNIST-M folder right?")
    idx = indices_in_test_splits(target, len(sy), len(ty), sizes, seed)
    parts = {p: (sx[i], sy[i]) if p.startswith("source") else (tx[i], ty[i]) for p, i in idx.items()}
    return parts, idx


def make_task(target: str, sizes: dict[str, int], seed: int = 0, canonical: bool | None = None,
              size: int = 32, test_sizes: dict[str, int] | None = None,
              source: AdaptationTask | None = None) -> AdaptationTask:
    """MNIST (labelled source) → ``target`` (``'mnist_m'`` or ``'usps'``), split into :data:`PARTS`.

    Args:
        sizes: the number of images of each part (with the canonical splits, at
            most the split's size is taken).
        canonical: ``True`` uses the published train/test splits (an error
            names what to fetch when they are missing); ``False`` cuts disjoint
            parts from the test splits; ``None`` uses the canonical splits when
            both train splits are in the data root, and otherwise falls back to
            the test splits and says so in :attr:`AdaptationTask.note`.
        size: image side in pixels (28 or 32 for these networks).
        test_sizes: the sizes to use when cutting from the test splits
            (default ``sizes``): the test splits hold fewer images.
        source: reuse this task's ``source`` and ``source_eval`` parts (to
            compare two targets on the very same source images).
    """
    if target not in TARGETS:
        raise KeyError(f"target must be one of {TARGETS}, got {target!r}")
    missing = [p for p in PARTS if p not in sizes]
    if missing:
        raise KeyError(f"sizes lacks {missing}; give a size for each of {PARTS}")
    absent = missing_train_splits("mnist", target)
    if canonical is None:
        canonical = not absent
        note = ("canonical train/test splits" if canonical else
                f"NOTE: the canonical train splits are not in the data root (missing {', '.join(absent)}), "
                f"so the parts are disjoint pieces of the test splits instead; fetch them with "
                f"`{FETCH_HINT}`")
    else:
        note = "canonical train/test splits" if canonical else "disjoint parts of the test splits"
    indices: dict[str, torch.Tensor] = {}
    if canonical:
        parts = _canonical(target, sizes, seed, size)
    else:
        parts, indices = _from_test_splits(target, test_sizes or sizes, seed, size)
    if source is not None:
        if source.source_name != "mnist" or source["source"][0].shape[-1] != size:
            raise ValueError(f"source= must be an MNIST task with {size}-pixel images, like this "
                             f"task (it has {source['source'][0].shape[-1]}-pixel {source.source_name} images)")
        parts.update(source=source["source"], source_eval=source["source_eval"])
        indices.pop("source", None), indices.pop("source_eval", None)
        note += f"; source parts shared with the mnist → {source.target_name} task"
    return AdaptationTask("mnist", target, parts, canonical, note, indices)
