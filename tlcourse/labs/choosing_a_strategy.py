"""Lesson 07's lab: the decision guide measured, backbones compared, hyperparameters searched.

The decision guide, measured
----------------------------
Strategy x target-data size x similarity to the source.

:func:`run_strategies` trains fixed features, lower-layer features, partial and
full fine-tuning and training from scratch for several numbers of labelled
images per class, on a target similar to ImageNet (hymenoptera) and a
dissimilar one (digits), and :func:`compare_with_guide` sets the measured
winner of every cell beside what :func:`tlcourse.guide.recommend` says.

It is cheap by design, so that it runs on a laptop CPU in a minute:

* the frozen part of the backbone runs **once** per task over the images the
  experiment uses: one pass gives the pooled features after every block (the
  two feature strategies) *and* the feature maps entering the last blocks, so
  a partial fine-tune trains only those blocks on cached maps (exactly the same
  computation as fine-tuning with the lower blocks frozen, without augmentation);
* full fine-tuning and from-scratch runs use small images and a fixed budget
  of optimiser steps (:class:`Recipe`), the same for every run;
* the race is fair in its one knob per strategy: :func:`tune` picks each
  strategy's learning rate (``C`` for the two logistic regressions) on a
  *holdout* carved from the training pool (:attr:`Task.holdout`), never on the
  eval set, and :func:`run_strategies` trains every strategy with its own pick;
* every finished run is stored as JSON in :func:`results_dir`, keyed by all the
  settings that change it, so running the notebook again trains nothing.

Example:
    >>> Recipe(epochs=2, min_steps=5, max_steps=50, batch_size=16).steps_for(100)
    13
    >>> Task("hymenoptera", similarity=0.9, image_size=96).label
    'similar'
    >>> table = pd.DataFrame({"similarity": ["similar"] * 2, "per_class": [5, 5],
    ...                       "strategy": ["fixed features", "from scratch"], "accuracy": [0.9, 0.6]})
    >>> compare_with_guide(table, {"similar": 0.9}).loc[0, ["winner", "guide says"]].tolist()
    ['fixed features', 'fixed features']
    >>> Recipe().tuned("full fine-tune", 3e-4).knob("full fine-tune")  # the pretrained layers' rate
    0.0003

Choosing a pretrained backbone
------------------------------
Accuracy, parameters, size on disk and speed, measured here.

Four numbers decide between backbones. Only the first needs the pretrained
weights; the other three depend on the architecture (and the machine) alone,
so a backbone whose weights are not on this machine is still sized and timed
with random weights, and its row says so instead of disappearing.

Example:
    >>> Variant("efficientnet_lite0", depth=6).label
    'efficientnet_lite0 cut after block 6/9'
    >>> net = feature_net(Variant("efficientnet_lite0", depth=3), pretrained=False)
    >>> round(backbones.count_params(net) / 1e3)  # thousands: the first blocks are tiny
    16
    >>> images_per_second(net, size=32, batch=2, repeats=1) > 0
    True

Hyperparameter search on a small budget
---------------------------------------
Grid vs random, scored on a holdout, never on the test set.

Lesson 07 writes the search loop out in its own cell with scikit-learn's
``ParameterGrid`` and ``ParameterSampler``; this module repeats it for the
widget and the checks. :func:`grid_points` and :func:`random_points` are those
two scikit-learn generators over log learning rate x batch size (plus the
range checks a widget needs); :func:`run_search` scores every trial on a
*holdout* carved from the training data and reports the test accuracy beside
it, so choosing never looks at the test set. :func:`budget_curve` answers
"how much does the budget matter?" the way Bergstra & Bengio (2012) drew it:
by drawing many random searches of k trials from one pool of finished trials.

Example:
    >>> pts = grid_points((1e-4, 1e-1), batch_sizes=(8, 32), budget=6)
    >>> [(f"{p['lr']:.0e}", p["batch_size"]) for p in pts][:4]
    [('1e-04', 8), ('3e-03', 8), ('1e-01', 8), ('1e-04', 32)]
    >>> table = run_search(lambda lr, batch_size: (lr * 10, lr), pts, "grid")
    >>> table.columns.tolist()
    ['method', 'trial', 'lr', 'batch_size', 'score', 'test', 'best_so_far']
    >>> round(float(table.best_so_far.iloc[-1]), 3)
    1.0
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as nnf
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset
from .. import backbones, config, features, images, probes, training, transforms
from ..infra.device import autocast, pick_device, seed_everything
import io
from typing import Iterable
from ..errors import check_range
from typing import Callable
from ..probes import FeatureSet
from ..errors import InvalidSettingError

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from ..backbones import BackboneSpec


# =========================================================================== choosing_a_strategy
#: The strategies measured, cheapest first.
MEASURED_STRATEGIES = ("fixed features", "lower-layer features", "partial fine-tune", "full fine-tune", "from scratch")
#: The two that train only a classifier on frozen features.
FEATURE_STRATEGIES = MEASURED_STRATEGIES[:2]
#: Which measured strategies carry out each recommendation of the lesson-00 guide.
GUIDE_STRATEGIES = {"fixed features": ("fixed features",),
                    "lower-layer features": ("lower-layer features",),
                    "fine-tune": ("partial fine-tune", "full fine-tune"),
                    "fine-tune all": ("full fine-tune",)}
#: Bumped whenever a change in this module changes results, so old cached runs are not reused.
VERSION = 5
#: Each digit domain's own image size: loaded as it is, resized only for the images a run uses.
DIGIT_SIZES = {"mnist": 28, "usps": 16, "mnist_m": 32}


@dataclass(frozen=True)
class Task:
    """A target task: ``dataset`` is ``"hymenoptera"`` or a digit domain (``"mnist"``, ``"usps"``, ``"mnist_m"``).

    ``similarity`` is how much it looks like ImageNet (0..1: the guide's input),
    ``image_size`` the pixels fed to the backbone, ``eval_images`` how many held-out
    digits to score on (hymenoptera always uses its own val split). ``holdout > 0``
    makes it a *tuning* task: that many images per class are set aside from the
    training pool and scored instead of the eval set, which tuning never sees.
    """

    dataset: str
    similarity: float
    image_size: int
    eval_images: int = 500
    holdout: int = 0

    @property
    def label(self) -> str:
        """``"similar"`` or ``"dissimilar"``, with the guide's threshold."""
        from ..guide import SIMILAR_FROM

        return "similar" if self.similarity >= SIMILAR_FROM else "dissimilar"


@dataclass(frozen=True)
class Recipe:
    """How every training run of the experiment is done: one recipe for all, a fair race.

    A fine-tune run takes :meth:`steps_for` Adam steps on its subset (no
    augmentation: every strategy sees the same pixels) and is scored once at the
    end. The feature strategies fit logistic regression (``C``) on features
    after the last block, or after :meth:`depth_for` blocks. The partial
    fine-tune trains the last ``partial_blocks`` blocks and the new head.
    """

    epochs: float = 3.0
    min_steps: int = 10
    max_steps: int = 40
    batch_size: int = 16
    head_lr: float = 1e-3
    backbone_lr: float = 3e-4
    scratch_lr: float = 1e-3
    partial_blocks: int = 2
    lower_depth: int | None = None  # None: two thirds of the way up (block 6 of 9 in EfficientNet-Lite0)
    C: float = 1.0

    def depth_for(self, spec: "BackboneSpec") -> int:
        """The cut of the lower-layer strategy.

        >>> Recipe().depth_for(backbones.get_spec("efficientnet_lite0"))
        6
        """
        return self.lower_depth or spec.num_blocks * 2 // 3

    def cut_for(self, spec: "BackboneSpec") -> int:
        """How many blocks stay frozen in the partial fine-tune.

        >>> Recipe(partial_blocks=2).cut_for(backbones.get_spec("efficientnet_lite0"))
        7
        """
        if not 1 <= self.partial_blocks < spec.num_blocks:
            raise ValueError(f"partial_blocks must be in 1..{spec.num_blocks - 1}, got {self.partial_blocks}")
        return spec.num_blocks - self.partial_blocks

    def steps_for(self, n_images: int) -> int:
        """Optimiser steps for a subset of ``n_images``: ``epochs`` passes, within [min_steps, max_steps].

        >>> [Recipe(epochs=2, min_steps=10, max_steps=40, batch_size=16).steps_for(n) for n in (10, 200, 2000)]
        [10, 25, 40]
        """
        return min(self.max_steps, max(self.min_steps, math.ceil(self.epochs * n_images / self.batch_size)))

    def knob(self, strategy: str) -> float:
        """The one setting :func:`tune` searches for ``strategy``: ``C`` of the logistic regression of
        the feature strategies, the rate of the pretrained layers of a fine-tune, the rate of every
        layer from scratch.

        >>> Recipe(C=0.5).knob("fixed features"), Recipe(scratch_lr=3e-3).knob("from scratch")
        (0.5, 0.003)
        """
        if strategy in FEATURE_STRATEGIES:
            return self.C
        return self.scratch_lr if strategy == "from scratch" else self.backbone_lr

    def tuned(self, strategy: str, value: float) -> "Recipe":
        """This recipe with ``strategy``'s knob set to ``value``.

        A fine-tune's new head learns 10x faster than its pretrained layers (lesson 03's rule: the
        head starts from random weights, the layers below only need adjusting); from scratch every
        layer is new, so all of them, head included, share the one rate.

        >>> r = Recipe().tuned("partial fine-tune", 1e-4)
        >>> r.backbone_lr, r.head_lr
        (0.0001, 0.001)
        >>> r = Recipe().tuned("from scratch", 3e-3)
        >>> r.scratch_lr, r.head_lr
        (0.003, 0.003)
        """
        if strategy in FEATURE_STRATEGIES:
            return replace(self, C=value)
        if strategy == "from scratch":
            return replace(self, scratch_lr=value, head_lr=value)
        if strategy not in MEASURED_STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose from {MEASURED_STRATEGIES}")
        return replace(self, backbone_lr=value, head_lr=10 * value)

    def settings(self, strategy: str) -> dict:
        """The fields that change the result of ``strategy`` (the rest do not enter its cache key).

        >>> sorted(Recipe().settings("fixed features"))
        ['C', 'lower_depth']
        """
        if strategy in FEATURE_STRATEGIES:
            return {"C": self.C, "lower_depth": self.lower_depth}
        fields = asdict(self)
        for name in ("C", "lower_depth") + (("partial_blocks",) if strategy != "partial fine-tune" else ()):
            fields.pop(name)
        return fields


@dataclass
class TaskData:
    """A task's images: the pool that training subsets are drawn from, and the eval set (preprocessed)."""

    task: Task
    pool: tuple[torch.Tensor, torch.Tensor]
    eval: tuple[torch.Tensor, torch.Tensor]
    num_classes: int


def _normalised(x: torch.Tensor, spec: "BackboneSpec", size: int) -> torch.Tensor:
    """uint8 digits (N, 3, H, W) -> float, resized to ``size``, the backbone's mean/std
    (:func:`tlcourse.transforms.normalize`, which leaves an already-float tensor's scale alone)."""
    x = x.float() / 255
    if x.shape[-1] != size:
        x = nnf.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return transforms.normalize(spec)(x)


def load_task(task: Task, spec: "BackboneSpec") -> TaskData:
    """A task's images with the backbone's own preprocessing.

    Hymenoptera: the train split is the pool, the val split the eval set, both
    through the backbone's eval transform at ``task.image_size``. Digits: a fixed
    random ``eval_images`` of the test split (the only split in the offline data
    root) are the eval set and the rest the pool, kept as uint8 at the domain's own
    size so that only the images a subset draws are resized and normalised.
    With ``task.holdout``, the eval set is replaced by that many pool images per
    class (a fixed draw), which leave the pool: tuning scores on them and never
    sees the eval set.
    """
    if task.dataset == "hymenoptera":
        tf = transforms.eval_transform(spec, task.image_size)
        split = [images.hymenoptera(s, tf) for s in ("train", "val")]
        stacked = [(torch.stack([ds[i][0] for i in range(len(ds))]), torch.as_tensor(ds.targets)) for ds in split]
        data = TaskData(task, stacked[0], stacked[1], len(split[0].classes))
    else:
        from .. import digits

        # no resize, no copy
        x, y = digits.load_digits(task.dataset, "test", DIGIT_SIZES.get(task.dataset, 32))
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        ev, rest = order[:task.eval_images], order[task.eval_images:]
        data = TaskData(task, (x[rest], y[rest]), (_normalised(x[ev], spec, task.image_size), y[ev]), 10)
    if task.holdout:
        held = torch.as_tensor(images.subset_per_class(data.pool[1].tolist(), task.holdout, seed=12345))
        keep = torch.ones(len(data.pool[1]), dtype=torch.bool)
        keep[held] = False
        data.eval = (pool_images(data, spec, held), data.pool[1][held])
        data.pool = (data.pool[0][keep], data.pool[1][keep])
    return data


def subset_indices(data: TaskData, per_class: int, seed: int) -> torch.Tensor:
    """Pool indices of ``per_class`` random images of every class (the same seed gives nested subsets).

    A class with fewer images gives all it has (hymenoptera has 121-124 per class).
    """
    return torch.as_tensor(images.subset_per_class(data.pool[1].tolist(), per_class, seed))


def pool_images(data: TaskData, spec: "BackboneSpec", idx: torch.Tensor) -> torch.Tensor:
    """The pool images ``idx``, preprocessed for the backbone."""
    x = data.pool[0][idx]
    return _normalised(x, spec, data.task.image_size) if x.dtype == torch.uint8 else x


@torch.inference_mode()
def frozen_pass(model: nn.Module, spec: "BackboneSpec", x: torch.Tensor, cut: int, batch_size: int = 32,
                device: torch.device | None = None) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """One pass of the pretrained network over ``x``: pooled features after every block, and the
    feature maps after the first ``cut`` blocks (the input of a partial fine-tune).

    ``pooled[d]`` equals what ``backbones.truncate(model, spec, d)`` outputs, as in
    :func:`tlcourse.features.features_by_depth`; this pass differs in what it must also keep: the
    maps at ``cut`` (which the partial fine-tune trains on) from the same forward pass, over a
    tensor of images already in memory rather than a Dataset.

    >>> spec = backbones.get_spec("efficientnet_lite0")
    >>> net = backbones.build(spec, pretrained=False)
    >>> pooled, maps = frozen_pass(net, spec, torch.randn(3, 3, 64, 64), cut=7)
    >>> pooled[9].shape, maps.shape
    (torch.Size([3, 1280]), torch.Size([3, 192, 2, 2]))
    """
    device = device or pick_device()
    parts = backbones.blocks(model.to(device).eval(), spec)
    pooled: dict[int, list] = {d: [] for d in range(1, len(parts) + 1)}
    maps = []
    for start in range(0, len(x), batch_size):
        h = x[start:start + batch_size].to(device)
        with autocast(device):
            for d, block in enumerate(parts, start=1):
                h = block(h)
                pooled[d].append(h.float().mean((2, 3)).cpu())
                if d == cut:
                    maps.append(h.float().cpu())
    return {d: torch.cat(v) for d, v in pooled.items()}, torch.cat(maps)


def feature_run(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                C: float = 1.0) -> float:
    """Logistic regression on frozen features: test accuracy.

    >>> x = torch.randn(40, 3); y = (x[:, 0] > 0).long()
    >>> feature_run((x[:20], y[:20]), (x[20:], y[20:])) > 0.7
    True
    """

    return probes.accuracy(probes.fit_logreg(train, C), *test)


class TopBlocks(nn.Module):
    """The last blocks of a pretrained network and a new head: what a partial fine-tune trains."""

    def __init__(self, model: nn.Module, spec: "BackboneSpec", cut: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*copy.deepcopy(backbones.blocks(model, spec)[cut:]))
        self.head = nn.Linear(spec.feature_dim, num_classes)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(maps).mean((2, 3)))


def train_steps(model: nn.Module, groups: list[dict], train: tuple[torch.Tensor, torch.Tensor],
                test: tuple[torch.Tensor, torch.Tensor], steps: int, batch_size: int,
                device: torch.device | None = None, recalibrate: int = 256) -> float:
    """``steps`` Adam steps on random batches of ``train``, then accuracy on ``test``.

    The steps are one epoch of :func:`tlcourse.training.fit` (the course's one fit loop) over a
    sampler that draws exactly ``steps`` batches: the race budgets optimizer steps, not epochs.
    Before scoring, BatchNorm's running statistics are recomputed on (at most
    ``recalibrate``) training images: after a few dozen steps they are still
    mostly ImageNet's, which would misjudge a model trained on digits.

    >>> model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
    >>> train_steps(model, [{"params": model.parameters(), "lr": 0.05}], (x, y), (x, y), 40, 16) > 0.8
    True
    """
    device = device or pick_device()
    model.to(device)
    dataset = TensorDataset(*train)
    batch = min(batch_size, len(dataset))
    sampler = RandomSampler(dataset, num_samples=steps * batch)  # exactly `steps` batches
    training.fit(model, DataLoader(dataset, batch_size=batch, sampler=sampler), None, torch.optim.Adam(groups), 1,
                 device=device, progress=False, restore_best=False)
    if recalibrate:
        from torch.optim.swa_utils import update_bn

        part = train[0][torch.randperm(len(dataset))[:recalibrate]]
        with torch.no_grad(), autocast(device):
            update_bn(DataLoader(part, batch_size=32), model, device)
    return training.accuracy(model, DataLoader(TensorDataset(*test), batch_size=32), device=device)


def partial_run(model: nn.Module, spec: "BackboneSpec", train_maps: tuple[torch.Tensor, torch.Tensor],
                test_maps: tuple[torch.Tensor, torch.Tensor], num_classes: int, recipe: Recipe, seed: int,
                device: torch.device | None = None) -> float:
    """Partial fine-tune on cached maps: the last ``recipe.partial_blocks`` blocks + a new head.

    Lesson 07 writes one such run out on the whole network (the lower blocks frozen with
    ``requires_grad_(False)`` and kept in ``eval()``) and checks that it gives this accuracy.
    """
    seed_everything(seed)
    top = TopBlocks(model, spec, recipe.cut_for(spec), num_classes)
    groups = [{"params": top.head.parameters(), "lr": recipe.head_lr},
              {"params": top.body.parameters(), "lr": recipe.backbone_lr}]
    return train_steps(top, groups, train_maps, test_maps, recipe.steps_for(len(train_maps[1])),
                       recipe.batch_size, device)


def finetune_run(spec: "BackboneSpec", train: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor], num_classes: int, strategy: str, recipe: Recipe,
                 seed: int, device: torch.device | None = None) -> float:
    """Full fine-tune (pretrained start) or from scratch (random start): every layer trains."""
    from .. import finetune

    seed_everything(seed)
    scratch = strategy == "from scratch"
    model = finetune.make_classifier(spec, num_classes, pretrained=not scratch)
    groups = finetune.param_groups(model, spec, recipe.head_lr, recipe.scratch_lr if scratch else recipe.backbone_lr)
    return train_steps(model, groups, train, test, recipe.steps_for(len(train[1])), recipe.batch_size, device)


def results_dir() -> Path:
    """``<cache>/guide-measured``: one JSON file per finished run."""
    path = config.cache_dir() / "guide-measured"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_entry(task: Task, per_class: int, strategy: str, seed: int, recipe: Recipe, spec: "BackboneSpec"):
    """The run's :class:`tlcourse.infra.cache.Entry` (a JSON file in :func:`results_dir`).

    Keyed like every cache of the course: the settings, and the fingerprint of the data the run reads
    (the task's dataset folder, and the pretrained weights unless it trains from scratch), so a
    changed data file is noticed.
    """
    from ..infra import cache
    from ..infra.registry import DATASETS

    settings = dict(task=asdict(task), per_class=per_class, strategy=strategy, seed=seed,
                    recipe=recipe.settings(strategy), backbone=spec.name, version=VERSION)
    data = [DATASETS[task.dataset].path(),
            *features.weights_files(spec, pretrained=strategy != "from scratch")]
    return cache.Entry(results_dir().name, settings, suffix=".json", data=data, name="run", version=VERSION)


def _run_path(task: Task, per_class: int, strategy: str, seed: int, recipe: Recipe, spec: "BackboneSpec") -> Path:
    return _run_entry(task, per_class, strategy, seed, recipe, spec).path


def _run_group(data: TaskData, spec: "BackboneSpec", jobs: list[tuple[int, str, Recipe]], seed: int,
               device: torch.device) -> Iterator[tuple[tuple[int, str, Recipe], dict]]:
    """Every (per_class, strategy, recipe) job of one task and seed, yielded as it finishes (so each is
    saved at once and an interrupted experiment resumes where it stopped); the frozen pass runs once for
    all (the recipes differ only in their knobs, never in the cut)."""
    subsets = {n: subset_indices(data, n, seed) for n, _, _ in jobs}
    frozen_jobs = [n for n, s, _ in jobs if s in FEATURE_STRATEGIES + ("partial fine-tune",)]
    if frozen_jobs:
        recipe = jobs[0][2]
        model = backbones.build(spec, pretrained=True)
        cut = recipe.cut_for(spec)
        needed = torch.unique(torch.cat([subsets[n] for n in frozen_jobs]))
        row_of = {int(i): r for r, i in enumerate(needed)}
        pooled, maps = frozen_pass(model, spec, pool_images(data, spec, needed), cut, device=device)
        eval_pooled, eval_maps = frozen_pass(model, spec, data.eval[0], cut, device=device)
    for n, strategy, recipe in jobs:
        start, idx = time.perf_counter(), subsets[n]
        y = data.pool[1][idx]
        if strategy in FEATURE_STRATEGIES or strategy == "partial fine-tune":
            rows = torch.tensor([row_of[int(i)] for i in idx])
        if strategy in FEATURE_STRATEGIES:
            depth = spec.num_blocks if strategy == "fixed features" else recipe.depth_for(spec)
            acc = feature_run((pooled[depth][rows], y), (eval_pooled[depth], data.eval[1]), recipe.C)
        elif strategy == "partial fine-tune":
            acc = partial_run(model, spec, (maps[rows], y), (eval_maps, data.eval[1]), data.num_classes,
                              recipe, seed, device)
        else:
            acc = finetune_run(spec, (pool_images(data, spec, idx), y), data.eval, data.num_classes, strategy,
                               recipe, seed, device)
        yield (n, strategy, recipe), {"accuracy": acc, "train_images": len(idx), "knob": recipe.knob(strategy),
                              "steps": 0 if strategy in FEATURE_STRATEGIES else recipe.steps_for(len(idx)),
                              "seconds": round(time.perf_counter() - start, 2)}


def _execute(jobs: list[tuple[Task, int, str, int, Recipe]], spec: "BackboneSpec", device: torch.device,
             progress: bool, desc: str) -> list[dict]:
    """Run (or read back from the cache) every (task, per_class, strategy, seed, recipe) job; one row each."""
    from tqdm.auto import tqdm

    from ..infra import cache

    done = {j: _run_entry(j[0], j[1], j[2], j[3], j[4], spec) for j in dict.fromkeys(jobs)}
    stored = {j: e.load() for j, e in done.items()}
    todo = [j for j in done if stored[j] is cache.MISSING]
    bar = tqdm(total=len(todo), desc=desc, disable=not progress or not todo)
    with cache.rng_neutral():  # the runs seed themselves; the caller's random state stays as it was
        for task in dict.fromkeys(t for t, *_ in todo):
            data = load_task(task, spec)
            for seed in dict.fromkeys(sd for t, _, _, sd, _ in todo if t == task):
                group = [(n, s, r) for t, n, s, sd, r in todo if t == task and sd == seed]
                for (n, strategy, recipe), row in _run_group(data, spec, group, seed, device):
                    job = (task, n, strategy, seed, recipe)
                    done[job].save(row)  # atomic: an interrupted run leaves no half result
                    stored[job] = json.loads(json.dumps(row))  # as it reads back from the cache
                    bar.update()
    bar.close()
    return [{"task": t.dataset, "similarity": t.label, "per_class": n, "strategy": s, "seed": seed,
             **stored[(t, n, s, seed, r)], "cached": (t, n, s, seed, r) not in todo}
            for t, n, s, seed, r in jobs]


def _check_strategies(strategies: Sequence[str]) -> None:
    unknown = set(strategies) - set(MEASURED_STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; choose from {MEASURED_STRATEGIES}")


def run_strategies(tasks: Sequence[Task], sizes: dict[str, Sequence[int]], recipe: Recipe,
                   strategies: Sequence[str] = MEASURED_STRATEGIES, seeds: Sequence[int] = (0,),
                   spec: "BackboneSpec | None" = None, device: torch.device | None = None,
                   progress: bool = True, rates: dict[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """Every task x size x strategy x seed, one row each (accuracy, knob, steps, seconds, cached or not).

    ``sizes[task.dataset]`` lists the labelled images per class to try.
    ``rates[(task.dataset, strategy)]`` (from :func:`best_rates`) sets that strategy's
    knob (:meth:`Recipe.tuned`); a pair not in it trains with ``recipe`` as it is.
    Finished runs are read back from :func:`results_dir` (keyed by every setting
    that changes the result), so a second run of the notebook trains nothing.
    """
    spec = spec or backbones.get_spec()
    device = device or pick_device()
    _check_strategies(strategies)
    rates = rates or {}

    def recipe_for(task: Task, strategy: str) -> Recipe:
        value = rates.get((task.dataset, strategy))
        return recipe if value is None else recipe.tuned(strategy, value)

    jobs = [(t, n, s, seed, recipe_for(t, s)) for t in tasks for n in sizes[t.dataset] for s in strategies
            for seed in seeds]
    return pd.DataFrame(_execute(jobs, spec, device, progress, "strategy runs"))


def tune(tasks: Sequence[Task], grid: dict[str, Sequence[float]], recipe: Recipe, per_class: dict[str, int],
         holdout: int, spec: "BackboneSpec | None" = None, seed: int = 0, device: torch.device | None = None,
         progress: bool = True) -> pd.DataFrame:
    """A small grid search of every strategy's knob (:meth:`Recipe.knob`), scored on a holdout.

    For every task, strategy and value of ``grid[strategy]`` (every combination:
    scikit-learn's ``ParameterGrid``), one run trains on ``per_class[task.dataset]``
    images per class of the training pool and is scored on ``holdout`` *other*
    pool images per class (:attr:`Task.holdout`): the eval set that
    :func:`run_strategies` reports on is never looked at. One row per run, with
    the value in ``knob`` and the holdout accuracy in ``score``; cached like every run.
    """
    from sklearn.model_selection import ParameterGrid

    spec = spec or backbones.get_spec()
    device = device or pick_device()
    _check_strategies(grid)
    jobs = []
    for task in tasks:
        held = replace(task, holdout=holdout)
        for point in ParameterGrid([{"strategy": [s], "knob": list(values)} for s, values in grid.items()]):
            jobs.append((held, per_class[task.dataset], point["strategy"], seed,
                         recipe.tuned(point["strategy"], point["knob"])))
    table = pd.DataFrame(_execute(jobs, spec, device, progress, "tuning runs"))
    return table.rename(columns={"accuracy": "score"})


def best_rates(tuned: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Each (task, strategy)'s knob with the best holdout score (the smallest such value on ties).

    >>> t = pd.DataFrame({"task": "mnist", "strategy": "from scratch", "knob": [1e-3, 3e-3, 1e-2],
    ...                   "score": [0.2, 0.5, 0.5]})
    >>> best_rates(t)
    {('mnist', 'from scratch'): 0.003}
    """
    best = tuned.sort_values("knob").groupby(["task", "strategy"], sort=False)["score"].idxmax()
    return {(tuned.loc[i, "task"], tuned.loc[i, "strategy"]): float(tuned.loc[i, "knob"]) for i in best}


# --------------------------------------------------------------------------- reading the results
def mean_table(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy averaged over seeds: rows (similarity, per_class), one column per strategy."""
    wide = table.pivot_table(index=["similarity", "per_class"], columns="strategy", values="accuracy",
                             aggfunc="mean")
    return wide[[s for s in MEASURED_STRATEGIES if s in wide.columns]]


def compare_with_guide(table: pd.DataFrame, similarity: dict[str, float], tolerance: float = 0.02
                       ) -> pd.DataFrame:
    """Per (similarity, size): the measured winner, the guide's pick, and whether they agree.

    The guide "agrees" when its strategy's accuracy is within ``tolerance`` of
    the winner's (closer than that is within the noise of a few hundred test images).
    """
    from ..guide import recommend

    rows = []
    for (alike, n), accs in mean_table(table).iterrows():
        pick = recommend(int(n), similarity[alike]).strategy
        candidates = [s for s in GUIDE_STRATEGIES[pick] if s in accs.index]
        guide_acc = max(accs[s] for s in candidates) if candidates else float("nan")
        rows.append({"similarity": alike, "per_class": n, "winner": accs.idxmax(), "winner acc": accs.max(),
                     "guide says": pick, "guide's acc": guide_acc, "gap": accs.max() - guide_acc,
                     # not measured: neither agrees nor disagrees
                     "agrees": None if math.isnan(guide_acc) else bool(accs.max() - guide_acc <= tolerance)})
    return pd.DataFrame(rows)


def describe_agreement(verdict: pd.DataFrame, names: dict[str, str] | None = None) -> str:
    """One line per (similarity, size) of :func:`compare_with_guide`, in words.

    >>> row = dict(similarity="similar", per_class=5, winner="fixed features", **{"winner acc": 0.9},
    ...            **{"guide says": "fixed features", "guide's acc": 0.9, "gap": 0.0, "agrees": True})
    >>> print(describe_agreement(pd.DataFrame([row])))
    similar, 5/class: winner fixed features (0.900); guide: fixed features -> agrees
    """
    lines = []
    for _, r in verdict.iterrows():
        name = (names or {}).get(r["similarity"], r["similarity"])
        guide_acc = r["guide's acc"]
        verdict_text = ("not measured" if r["agrees"] is None else "agrees" if r["agrees"]
                        else f"DISAGREES: the guide's pick scores {guide_acc:.3f}, {r['gap']:.3f} lower")
        lines.append(f"{name}, {r['per_class']}/class: winner {r['winner']} ({r['winner acc']:.3f}); "
                     f"guide: {r['guide says']} -> {verdict_text}")
    return "\n".join(lines)


def crossover(table: pd.DataFrame, similarity: str) -> int | None:
    """The fewest images per class at which the best fine-tune beats both feature strategies (None: never).

    >>> t = pd.DataFrame({"similarity": "s", "per_class": [5, 5, 50, 50],
    ...                   "strategy": ["fixed features", "full fine-tune"] * 2, "accuracy": [.8, .7, .8, .9]})
    >>> crossover(t, "s")
    50
    """
    wide = mean_table(table).loc[similarity]
    tuned = wide[[s for s in wide.columns if s not in FEATURE_STRATEGIES and s != "from scratch"]].max(axis=1)
    frozen = wide[[s for s in wide.columns if s in FEATURE_STRATEGIES]].max(axis=1)
    wins = wide.index[tuned > frozen]
    return int(wins.min()) if len(wins) else None


def plot_strategies(table: pd.DataFrame, titles: dict[str, str] | None = None,
                    verdict: pd.DataFrame | None = None) -> "Figure":
    """Two panels (similar, dissimilar): accuracy vs images per class, one line per strategy.

    Bands span the seeds (min..max); a dotted line marks chance; with ``verdict``
    (from :func:`compare_with_guide`) a star marks the winner at every size and
    a ring the guide's pick.
    """
    import matplotlib.pyplot as plt

    panels = [s for s in ("similar", "dissimilar") if s in set(table["similarity"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False, sharey=True)
    for ax, alike in zip(axes[0], panels):
        part = table[table["similarity"] == alike]
        for strategy in (s for s in MEASURED_STRATEGIES if s in set(part["strategy"])):
            stats = part[part["strategy"] == strategy].groupby("per_class")["accuracy"].agg(["mean", "min", "max"])
            colour = f"C{MEASURED_STRATEGIES.index(strategy)}"
            ax.plot(stats.index, stats["mean"], "o-", color=colour, label=strategy)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.15)
        if verdict is not None:
            v = verdict[verdict["similarity"] == alike]
            ax.scatter(v["per_class"], v["winner acc"], marker="*", s=240, color="k", zorder=5,
                       label="measured winner")
            ax.scatter(v["per_class"], v["guide's acc"], marker="o", s=170, facecolors="none",
                       edgecolors="k", linewidths=1.5, zorder=5, label="the guide's pick")
        n_classes = round(part["train_images"].max() / part["per_class"].max()) if len(part) else 2
        ax.axhline(1 / max(2, n_classes), color="grey", ls=":", label="chance")
        name = (titles or {}).get(alike, part["task"].iloc[0])
        sizes = sorted(set(part["per_class"]))
        ax.set(xscale="log", xlabel="labelled training images per class (log scale)", ylim=(0, 1.02),
               title=f"{alike} to ImageNet: {name}")
        ax.set_xticks(sizes, [str(v) for v in sizes])
        ax.minorticks_off()
    axes[0, 0].set_ylabel("accuracy on held-out images")
    axes[0, -1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


#: Short names for labels on crowded plots.
SHORT = {"fixed features": "fixed", "lower-layer features": "lower layers", "partial fine-tune": "partial FT",
         "full fine-tune": "full FT", "from scratch": "scratch"}


def plot_measured_guide(verdict: pd.DataFrame, similarity: dict[str, float], ax=None) -> "Figure":
    """Lesson 00's guide map with the measured winner of every cell written on it.

    The background is :func:`tlcourse.guide.plot_guide` (its four recommendations);
    each square is one measured (images per class, similarity) cell, labelled with
    the strategy that won there and ringed in red where the guide's pick lost by
    more than the tolerance.
    """
    import matplotlib.pyplot as plt

    from ..guide import plot_guide

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.6))
    plot_guide(ax=ax)
    ys = verdict["similarity"].map(similarity)
    ax.scatter(verdict["per_class"], ys, s=70, marker="s", color="white", edgecolors="k", zorder=5,
               label="a measured cell")
    for (_, row), y in zip(verdict.iterrows(), ys):
        ax.annotate(SHORT.get(row["winner"], row["winner"]), (row["per_class"], y), xytext=(0, 9),
                    textcoords="offset points", ha="center", fontsize=7, rotation=35, zorder=6)
    lost = verdict["agrees"] == False  # noqa: E712 (None means not measured)
    ax.scatter(verdict.loc[lost, "per_class"], ys[lost], s=300, facecolors="none", edgecolors="red",
               linewidths=2, zorder=6, label="the guide's pick lost here")
    ax.legend(fontsize=8, loc="center right")
    ax.set_title("the guide (background) and the measured winner of every cell (labels)")
    ax.figure.tight_layout()
    return ax.figure


def plot_at_size(table: pd.DataFrame, per_class: int, verdict: pd.DataFrame | None = None,
                 ax=None) -> "Figure":
    """Bars: mean accuracy of every strategy at one size, similar and dissimilar side by side.

    The guide's pick for that cell (from :func:`compare_with_guide`) has a black edge.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    part = table[table["per_class"] == per_class]
    alikes = [s for s in ("similar", "dissimilar") if s in set(part["similarity"])]
    width = 0.8 / max(1, len(alikes))
    for j, alike in enumerate(alikes):
        acc = part[part["similarity"] == alike].groupby("strategy")["accuracy"].mean()
        pick: tuple[str, ...] = ()
        if verdict is not None:
            hit = verdict[(verdict["similarity"] == alike) & (verdict["per_class"] == per_class)]
            pick = GUIDE_STRATEGIES.get(hit["guide says"].iloc[0], ()) if len(hit) else ()
        xs = np.arange(len(MEASURED_STRATEGIES)) + (j - (len(alikes) - 1) / 2) * width
        edges = ["k" if s in pick else "none" for s in MEASURED_STRATEGIES]
        ax.bar(xs, [acc.get(s, np.nan) for s in MEASURED_STRATEGIES], width, color=f"C{j}", edgecolor=edges,
               linewidth=2, label=alike)
    ax.set_xticks(np.arange(len(MEASURED_STRATEGIES)), MEASURED_STRATEGIES, fontsize=8)
    ax.set(ylim=(0, 1), ylabel="accuracy", title=f"{per_class} labelled images per class "
           "(black edge: the guide's pick)")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------- summary
_SUMMARY = (
    ("fixed features", "a pretrained backbone; one pass over the data; seconds of training",
     "little data and a target like the source (e.g. photos); always the first baseline"),
    ("lower-layer features", "the same, cut at a lower block (pick the depth on a holdout)",
     "little data and a target unlike the source"),
    ("partial fine-tune", "backprop through the top block(s); cached lower features make it cheap",
     "some data and a target like the source: adapt the top features"),
    ("full fine-tune", "backprop through everything; a GPU for real sizes; a small LR for pretrained layers",
     "much data, or a target unlike the source (pretrained init still helps)"),
    ("from scratch", "no pretrained weights, but much data and compute",
     "huge target sets, or no backbone was ever trained on anything like them"),
    ("hyperparameter search", "a holdout split and a budget of trials",
     "always for the learning rate (log scale); random search when some knobs barely matter"),
    ("choosing a backbone", "its weights, your data, and a timer on the target machine",
     "accuracy from fixed features first; then size and speed decide between close ones"),
)


def summary_table(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Method, what it needs, when to use it -- plus, given the experiment, its measured accuracy.

    >>> summary_table().columns.tolist()
    ['method', 'what it needs', 'when to use it']
    """
    summary = pd.DataFrame(_SUMMARY, columns=["method", "what it needs", "when to use it"])
    if table is None:
        return summary
    for alike, part in table.groupby("similarity", sort=False):
        for n in (part["per_class"].min(), part["per_class"].max()):
            acc = part[part["per_class"] == n].groupby("strategy")["accuracy"].mean()
            summary[f"{alike}, {n}/class"] = summary["method"].map(acc).round(3)
    return summary


# =========================================================================== _mc
#: The note of a backbone whose pretrained weights are not on this machine.
NOT_AVAILABLE = ("not available here: no ImageNet weights on this machine "
                 "(params, size and speed measured with random weights; accuracy needs the weights)")
PRETRAINED = "ImageNet weights"


@dataclass(frozen=True)
class Variant:
    """A backbone, optionally cut after ``depth`` blocks or fed ``image_size`` pixels.

    >>> Variant("efficientnet_lite0", image_size=96).label
    'efficientnet_lite0 at 96 px'
    >>> Variant("resnet18", depth=5).label  # cutting after the last block cuts nothing
    'resnet18'
    """

    backbone: str
    depth: int | None = None
    image_size: int | None = None  # None: the size the comparison uses for every model

    @property
    def spec(self) -> "BackboneSpec":
        return backbones.get_spec(self.backbone)

    @property
    def full_depth(self) -> bool:
        return self.depth is None or self.depth == self.spec.num_blocks

    @property
    def label(self) -> str:
        label = self.backbone
        if not self.full_depth:
            label += f" cut after block {self.depth}/{self.spec.num_blocks}"
        return label + (f" at {self.image_size} px" if self.image_size else "")


def feature_net(variant: Variant, pretrained: bool = True) -> nn.Module:
    """The variant as a feature extractor: pooled features out, no ImageNet head."""
    spec = variant.spec
    model = backbones.build(spec, pretrained=pretrained)
    if variant.full_depth:
        return backbones.remove_head(model, spec)
    return backbones.truncate(model, spec, variant.depth)


def state_dict_bytes(model: nn.Module) -> int:
    """Size of the model's saved weights (``torch.save(state_dict)``), in bytes.

    >>> state_dict_bytes(nn.Linear(1000, 250)) > 1000 * 250 * 4
    True
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


@torch.inference_mode()
def images_per_second(model: nn.Module, size: int = 160, batch: int = 16, repeats: int = 3,
                      device: torch.device | None = None) -> float:
    """Forward-pass throughput on ``device``: ``repeats`` timed batches after two warm-up ones.

    ``torch.utils.benchmark.Timer`` does the timing: it warms up (first calls allocate
    memory and pick kernels), synchronises CUDA and uses as many threads as the notebook does.

    >>> images_per_second(nn.Conv2d(3, 4, 3), size=32, batch=2, repeats=1) > 0
    True
    """
    from torch.utils import benchmark

    check_range("repeats", repeats, 1, 100, kind=int)
    device = device or pick_device()
    model = model.to(device).eval()
    x = torch.randn(batch, 3, size, size, device=device)
    timer = benchmark.Timer("model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads())
    return batch / timer.timeit(repeats).mean


def fixed_feature_accuracy(variant: Variant, size: int = 160, C: float = 1.0) -> float:
    """Val accuracy on hymenoptera of logistic regression on the variant's frozen features.

    Reads the every-depth feature cache that lesson 01 fills (the same image size
    gives the same file), so at the lessons' size it costs well under a second.
    """

    spec = variant.spec
    depth = spec.num_blocks if variant.full_depth else variant.depth
    train = features.hymenoptera_by_depth(spec, "train", size, progress=False)
    val = features.hymenoptera_by_depth(spec, "val", size, progress=False)
    model = probes.fit_logreg((train[0][depth], train[1]), C)
    return probes.accuracy(model, val[0][depth], val[1])


def compare_models(variants: Iterable[Variant], size: int = 160, batch: int = 16,
                   repeats: int = 3) -> pd.DataFrame:
    """One row per variant: weights, params, size on disk, images/s here, fixed-feature accuracy.

    Backbones whose pretrained weights are not on this machine are built with
    random weights for the size and speed columns (neither depends on the
    values of the weights); their accuracy is NaN and their note says why.

    >>> compare_models([Variant("resnet18")], size=32, batch=1, repeats=1).columns.tolist()  # doctest: +SKIP
    ['model', 'weights', 'params (M)', 'size on disk (MB)', 'images/s', 'val accuracy', 'image px']
    """
    rows = []
    for variant in variants:
        available = backbones.is_available_offline(variant.spec)
        net = feature_net(variant, pretrained=available)
        pixels = variant.image_size or size
        rows.append({
            "model": variant.label,
            "weights": PRETRAINED if available else NOT_AVAILABLE,
            "params (M)": backbones.count_params(net) / 1e6,
            "size on disk (MB)": state_dict_bytes(net) / 1e6,
            "images/s": images_per_second(net, pixels, batch, repeats),
            "val accuracy": fixed_feature_accuracy(variant, pixels) if available else float("nan"),
            "image px": pixels,
        })
        del net
    return pd.DataFrame(rows)


def plot_models(table: pd.DataFrame, ax=None) -> "Figure":
    """Accuracy vs images/s, marker area ~ parameters; rows without accuracy hollow, at the bottom."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.4))
    known = table.dropna(subset=["val accuracy"])
    floor = max(0.0, known["val accuracy"].min() - 0.1) if len(known) else 0.5
    for i, row in table.reset_index(drop=True).iterrows():
        missing = math.isnan(row["val accuracy"])
        y = floor if missing else row["val accuracy"]
        ax.scatter(row["images/s"], y, s=30 + 12 * row["params (M)"], color=f"C{i}",
                   facecolors="none" if missing else f"C{i}", linewidths=2)
        ax.annotate(row["model"] + ("\n(not available here: speed only)" if missing else ""),
                    (row["images/s"], y), textcoords="offset points", xytext=(8, 4), fontsize=8)
    if len(table) and table["val accuracy"].isna().any():
        ax.axhline(floor + 0.015, color="grey", lw=0.5, ls=":")
    ax.set(xscale="log", xlabel="images per second on this machine (log scale)",
           ylabel="val accuracy (fixed features)", ylim=(floor - 0.03, 1.0),
           title="choosing a backbone: accuracy vs speed (marker area ~ parameters)")
    ax.figure.tight_layout()
    return ax.figure


# =========================================================================== _hp
#: A trial: (lr, batch_size) -> (holdout score used to choose, test accuracy only reported).
Trial = Callable[[float, int], tuple[float, float]]


def _check_lr_range(lr_range: tuple[float, float]) -> tuple[float, float]:
    low = check_range("lowest learning rate", lr_range[0], 1e-6, 10.0)
    high = check_range("highest learning rate", lr_range[1], 1e-6, 10.0)
    if not low < high:
        raise InvalidSettingError(f"the lowest learning rate ({low:g}) must be below the highest ({high:g}).")
    return low, high


def grid_points(lr_range: tuple[float, float], batch_sizes: Sequence[int], budget: int) -> list[dict]:
    """scikit-learn's ``ParameterGrid``: ``budget // len(batch_sizes)`` learning rates, evenly spaced
    in log, x every batch size (the batch size varies slowest: scikit-learn's order).

    >>> len(grid_points((1e-3, 1e-1), (16, 64), budget=7))
    6
    """
    from sklearn.model_selection import ParameterGrid

    low, high = _check_lr_range(lr_range)
    budget = check_range("budget (trials)", budget, len(batch_sizes), 1000, kind=int)
    n_lr = budget // len(batch_sizes)
    lrs = np.logspace(math.log10(low), math.log10(high), n_lr) if n_lr > 1 else [math.sqrt(low * high)]
    grid = ParameterGrid({"lr": [float(v) for v in lrs], "batch_size": [int(b) for b in batch_sizes]})
    return [{"lr": p["lr"], "batch_size": p["batch_size"]} for p in grid]


def random_points(lr_range: tuple[float, float], batch_sizes: Sequence[int], budget: int,
                  seed: int = 0) -> list[dict]:
    """scikit-learn's ``ParameterSampler``: ``budget`` trials, learning rate log-uniform in the range
    (``scipy.stats.loguniform``), batch size drawn from the list; the same ``seed``, the same trials.

    Random search tries a *new* learning rate in every trial, where a grid
    repeats each one for every batch size: when one knob matters much more than
    the other, that is more distinct values of the knob that matters.

    >>> pts = random_points((1e-4, 1e-1), (8, 32), budget=4, seed=0)
    >>> len({p["lr"] for p in pts}), all(1e-4 <= p["lr"] <= 1e-1 for p in pts)
    (4, True)
    """
    from scipy.stats import loguniform
    from sklearn.model_selection import ParameterSampler

    low, high = _check_lr_range(lr_range)
    budget = check_range("budget (trials)", budget, 1, 1000, kind=int)
    space = {"lr": loguniform(low, high), "batch_size": [int(b) for b in batch_sizes]}
    return [{"lr": float(p["lr"]), "batch_size": int(p["batch_size"])}
            for p in ParameterSampler(space, n_iter=budget, random_state=seed)]


def run_search(trial: Trial, points: Sequence[dict], method: str) -> pd.DataFrame:
    """Run every point; a tidy table with the running best holdout score (``best_so_far``).

    The ``run`` loop of lesson 07's search cell, for any ``trial`` (e.g. :class:`HeadTrial`)."""
    rows = []
    for i, point in enumerate(points, start=1):
        score, test = trial(**point)
        rows.append({"method": method, "trial": i, **point, "score": score, "test": test})
    table = pd.DataFrame(rows)
    table["best_so_far"] = table["score"].cummax()
    return table


def chosen(table: pd.DataFrame) -> pd.Series:
    """The trial a search picks: the best holdout score (the first one on ties)."""
    return table.loc[table["score"].idxmax()]


@dataclass
class HeadTrial:
    """A cheap, real training run to tune: a linear head on cached features.

    Trains on ``train``, is *scored* on ``holdout`` (what a search may look at)
    and also reports accuracy on ``test`` (what a search must not look at).
    The training is the plain-PyTorch ``head_trial`` of lesson 07's search cell
    (seed 0, Adam, shuffled mini-batches, the last epoch's weights), so the
    same settings give the same numbers as that cell.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(90, 6, generator=g); y = (x[:, 0] > 0).long()
    >>> trial = HeadTrial((x[:30], y[:30]), (x[30:60], y[30:60]), (x[60:], y[60:]), epochs=20)
    >>> trial(lr=1e-2, batch_size=8)[0] > trial(lr=1e-6, batch_size=8)[0]
    True
    """

    train: FeatureSet
    holdout: FeatureSet
    test: FeatureSet
    epochs: int = 10
    seed: int = 0

    def __call__(self, lr: float, batch_size: int) -> tuple[float, float]:
        from torch import nn

        torch.manual_seed(self.seed)
        x, y = self.train
        head = nn.Linear(x.shape[1], int(y.max()) + 1)
        optimizer = torch.optim.Adam(head.parameters(), lr=lr)
        for _ in range(self.epochs):
            for idx in torch.randperm(len(y)).split(batch_size):
                optimizer.zero_grad()
                nn.functional.cross_entropy(head(x[idx]), y[idx]).backward()
                optimizer.step()
        return probes.accuracy(head, *self.holdout), probes.accuracy(head, *self.test)


def search_split(train: FeatureSet, per_class: int, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """``per_class`` random rows of every class to train on; all the other rows as the holdout.

    >>> x, y = torch.arange(8.0).unsqueeze(1), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    >>> fit, hold = search_split((x, y), per_class=1)
    >>> len(fit[1]), len(hold[1])
    (2, 6)
    """
    idx = torch.as_tensor(images.subset_per_class(train[1].tolist(), per_class, seed))
    rest = torch.ones(len(train[1]), dtype=torch.bool)
    rest[idx] = False
    return (train[0][idx], train[1][idx]), (train[0][rest], train[1][rest])


def budget_curve(pool: pd.DataFrame, budget: int, draws: int = 200, seed: int = 0) -> pd.DataFrame:
    """How good a random search of k trials is, for k = 1..``budget``, from a pool of finished trials.

    Each draw takes k trials of ``pool`` (a :func:`run_search` table of random
    trials) without replacement, picks the best holdout score and records it
    with the *test* accuracy of the trial it picked. One row per k: the mean,
    5th and 95th percentile of both over ``draws`` draws. Resampling a pool
    costs no training, so the curve can average hundreds of searches.

    >>> pool = pd.DataFrame({"score": [0.5, 0.9, 0.7], "test": [0.4, 0.8, 0.9]})
    >>> curve = budget_curve(pool, budget=3, draws=50)
    >>> curve.loc[3, ["best score", "test of chosen"]].round(3).tolist()
    [0.9, 0.8]
    """
    budget = check_range("budget (trials)", budget, 1, len(pool), kind=int)
    draws = check_range("draws", draws, 1, 100_000, kind=int)
    rng = np.random.default_rng(seed)
    scores, tests = pool["score"].to_numpy(), pool["test"].to_numpy()
    rows = []
    for k in range(1, budget + 1):
        picks = np.array([rng.choice(len(pool), k, replace=False) for _ in range(draws)])
        best = picks[np.arange(draws), scores[picks].argmax(1)]
        row = {"trials": k}
        for name, values in (("best score", scores[best]), ("test of chosen", tests[best])):
            row[name] = float(values.mean())
            row[f"{name} p5"], row[f"{name} p95"] = (float(v) for v in np.percentile(values, [5, 95]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("trials")


def plot_search(table: pd.DataFrame, curve: pd.DataFrame | None = None) -> "Figure":
    """Left: every trial, holdout score vs learning rate (log), marker by method, size by batch size.
    Right (if ``curve``, from :func:`budget_curve`): best holdout score and test accuracy of the
    choice vs the number of random trials."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if curve is not None else 1, figsize=(12 if curve is not None else 6.5, 4),
                             squeeze=False)
    ax = axes[0, 0]
    for method, marker in (("grid", "s"), ("random", "o")):
        part = table[table["method"] == method]
        if len(part):
            ax.scatter(part["lr"], part["score"], s=12 + 2 * part["batch_size"], marker=marker,
                       alpha=0.7, label=f"{method} ({len(part)} trials)")
            best = chosen(part)
            ax.scatter([best["lr"]], [best["score"]], s=220, marker="*", color="k", zorder=5)
    ax.set(xscale="log", xlabel="learning rate (log scale; marker size ~ batch size)",
           ylabel="holdout accuracy", title="every trial (star: each method's choice)", ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="lower right")
    if curve is not None:
        ax = axes[0, 1]
        for col, colour in (("best score", "C0"), ("test of chosen", "C1")):
            ax.plot(curve.index, curve[col], "o-", color=colour, label=f"{col} (mean)")
            ax.fill_between(curve.index, curve[f"{col} p5"], curve[f"{col} p95"], color=colour, alpha=0.15)
        ax.set(xlabel="budget: number of random trials", ylabel="accuracy", ylim=(0, 1.02),
               title="how much the budget matters (band: 5-95 % of searches)")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
