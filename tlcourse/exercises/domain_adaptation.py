"""Graders of lesson 06's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

06.5 asks for AdaBN (Li et al., 2016): ``adabn(model, batches)`` returns a copy of ``model`` whose
BatchNorm layers hold the statistics of the unlabelled target ``batches`` (a plain average over all
of them, as ``momentum = None`` gives), with every weight unchanged and the copy in eval mode; the
source model stays as it was. The grader runs the answer on a small random CNN shaped like the
lesson's (BatchNorm after each convolution and hidden layer, Dropout2d before the classifier)
whose statistics come from "source" noise, and compares every BatchNorm layer with the statistics
of four "target" batches of differently scaled noise.

Example:
    >>> import copy
    >>> import torch
    >>> def adabn(model, batches):
    ...     adapted = copy.deepcopy(model).eval()
    ...     for m in adapted.modules():
    ...         if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
    ...             m.reset_running_stats()
    ...             m.momentum = None
    ...             m.train()
    ...     with torch.no_grad():
    ...         for xb in batches:
    ...             adapted(xb)
    ...     return adapted.eval()
    >>> print(grade("06.5", adabn))  # doctest: +ELLIPSIS
    ✔ Exercise 06.5: on a small CNN with 3 BatchNorm layers and a Dropout2d, and 4 target batches: ...
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .grading import Wrong, case, grade, grades  # noqa: F401  (grade: the doctest)

N_BATCHES, BATCH = 4, 64
MEAN_TOL, VAR_TOL = 0.1, 0.1  # in standard deviations of the target statistic / relative to the variance


class _SmallCNN(nn.Module):
    """The lesson's DigitDANN in miniature: conv-BN-ReLU-pool, conv-BN-Dropout2d-ReLU-pool, linear-BN-ReLU-linear."""

    def __init__(self) -> None:
        super().__init__()
        self.feature = nn.Sequential(
            nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3), nn.BatchNorm2d(8), nn.Dropout2d(0.5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten())
        self.classifier = nn.Sequential(nn.Linear(8 * 2 * 2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.feature(x))


def _bns(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def _source_model() -> nn.Module:
    """A small CNN whose BatchNorm statistics come from 'source' batches (standard normal noise)."""
    model = _SmallCNN()
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(BATCH, 3, 14, 14))
    return model.eval()


def _target_batches() -> list[torch.Tensor]:
    """Four 'target' batches: noise with other means and scales per colour channel."""
    shift, scale = torch.tensor([1.5, -1.0, 2.5]).view(1, 3, 1, 1), torch.tensor([3.0, 0.5, 2.0]).view(1, 3, 1, 1)
    return [shift + scale * torch.randn(BATCH, 3, 14, 14) for _ in range(N_BATCHES)]


def _variant(model: nn.Module, batches: Sequence[torch.Tensor], *, reset: bool, momentum: float | None,
             only_bn: bool) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The running statistics AdaBN (reset, momentum None, only BatchNorm in train mode) or one of its
    typical mistakes leaves in every BatchNorm layer."""
    m = copy.deepcopy(model)
    if not only_bn:
        m.train()
    for bn in _bns(m).values():
        if reset:
            bn.reset_running_stats()
        bn.momentum = momentum
        bn.train()
    with torch.no_grad():
        for xb in batches:
            m(xb)
    return {name: (bn.running_mean.clone(), bn.running_var.clone()) for name, bn in _bns(m).items()}


def _distance(stats: tuple[torch.Tensor, torch.Tensor], ref: tuple[torch.Tensor, torch.Tensor]) -> float:
    """How far BatchNorm statistics are from ``ref``, in tolerances: at most 1 counts as the same."""
    (mean, var), (rmean, rvar) = stats, tuple(t.double() for t in ref)
    mean_off = ((mean - rmean).abs() - 1e-5).clamp(min=0) / (MEAN_TOL * rvar.sqrt())
    var_off = ((var - rvar).abs() - 1e-5).clamp(min=0) / (VAR_TOL * rvar)
    return max(mean_off.max().item(), var_off.max().item())


def _close(stats: tuple[torch.Tensor, torch.Tensor], ref: tuple[torch.Tensor, torch.Tensor]) -> bool:
    return _distance(stats, ref) <= 1


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@grades("06.5", "adabn")
def adabn(answer: Callable[[nn.Module, Any], Any]) -> str:
    """``answer(model, batches)`` returns an adapted copy: every BatchNorm layer's running statistics
    are the average over the target ``batches``, the weights are the source model's, the copy is in
    eval mode, and ``model`` is left as it was."""
    model = _source_model()
    batches = _target_batches()
    before = _state(model)
    modes = {name: m.training for name, m in model.named_modules()}
    momenta = {name: bn.momentum for name, bn in _bns(model).items()}
    expected = _variant(model, batches, reset=True, momentum=None, only_bn=True)
    with case(f"on a small CNN with BatchNorm and Dropout2d (in eval mode, with source statistics) and "
              f"{N_BATCHES} target batches of {BATCH} images"):
        adapted = answer(model, [b.clone() for b in batches])
        if not isinstance(adapted, nn.Module):
            raise Wrong(f"adabn returned {type(adapted).__name__}; return the adapted copy of the model")
        if adapted is model:
            raise Wrong("you returned the model you were given: adapt a copy (copy.deepcopy(model)) and leave the "
                        "source model as it was")
        after = model.state_dict()
        for key, value in before.items():
            if not torch.equal(after[key], value):
                raise Wrong(f"your call changed the source model you passed in ({key}): adapt a copy "
                            "(copy.deepcopy(model)) and leave the source model as it was")
        for name, module in model.named_modules():
            if module.training != modes[name]:
                raise Wrong(f"your call switched the source model you passed in to training mode ({name or 'the model'}"
                            "): adapt a copy (copy.deepcopy(model)) and leave the source model as it was")
        for name, bn in _bns(model).items():
            if bn.momentum != momenta[name]:
                raise Wrong(f"your call changed the momentum of {name} in the source model you passed in: adapt a "
                            "copy (copy.deepcopy(model)) and leave the source model as it was")
        params = dict(adapted.named_parameters())
        if set(params) != {k for k, _ in model.named_parameters()}:
            raise Wrong("the model you return has other parameters than the one you were given: return a copy of it")
        for key, p in params.items():
            if not torch.equal(p.detach(), before[key]):
                raise Wrong(f"{key} changed: AdaBN changes no weight, only the BatchNorm statistics (no optimizer, "
                            "no backward: pass the batches under torch.no_grad())")
        training = [name or "the model" for name, m in adapted.named_modules() if m.training]
        if training:
            raise Wrong(f"the model you return is still in training mode ({', '.join(training[:3])}): switch it to "
                        "eval mode (.eval()) so that it uses the new statistics")
        got = {name: (bn.running_mean.detach().double(), bn.running_var.detach().double())
               for name, bn in _bns(adapted).items()}
        if set(got) != set(expected):
            raise Wrong(f"the model you return has BatchNorm layers {sorted(got)}; expected {sorted(expected)}")
        _compare(model, batches, got, expected)
    names = list(expected)
    return (f"on a small CNN with {len(names)} BatchNorm layers and a Dropout2d, and {N_BATCHES} target batches: "
            f"every BatchNorm layer of your copy holds the target batches' mean and variance ({', '.join(names)}), "
            "no weight changed, the copy is in eval mode and the source model is untouched. Left to you: how "
            "much of the shift AdaBN closes on MNIST-M (the lesson's numbers below)")


def _compare(model: nn.Module, batches: Sequence[torch.Tensor], got: dict[str, tuple[torch.Tensor, torch.Tensor]],
             expected: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Raise Wrong for the first BatchNorm layer whose statistics are not the target batches', with a
    diagnosis of the usual mistakes."""
    names = list(expected)
    for k, name in enumerate(names):
        ref = tuple(t.double() for t in expected[name])
        if _close(got[name], ref):
            continue
        (mean, var), (rmean, rvar) = got[name], ref
        mean_off, var_off = (mean - rmean).abs() / rvar.sqrt(), (var - rvar).abs() / rvar
        if mean_off.max() / MEAN_TOL >= var_off.max() / VAR_TOL:
            c, which, yours, target = int(mean_off.argmax()), "running_mean", mean, rmean
        else:
            c, which, yours, target = int(var_off.argmax()), "running_var", var, rvar
        found = (f"{name}.{which} is not the target batches' statistic (channel {c}: yours {yours[c]:.3f}, "
                 f"the target batches' {target[c]:.3f})")
        source = {n: (bn.running_mean.double(), bn.running_var.double()) for n, bn in _bns(model).items()}[name]
        if torch.allclose(mean, source[0], atol=1e-6) and torch.allclose(var, source[1], atol=1e-6):
            raise Wrong(f"{found}; these are still the source model's statistics: reset them, then pass the target "
                        "batches through with the BatchNorm layers in training mode")
        fresh = (torch.zeros_like(mean), torch.ones_like(var))
        if torch.allclose(mean, fresh[0], atol=1e-6) and torch.allclose(var, fresh[1], atol=1e-6):
            raise Wrong(f"{found}; these are freshly reset statistics (mean 0, variance 1): the target batches must "
                        "then pass through the BatchNorm layers in training mode")
        mistakes = [
            (dict(reset=False, momentum=None), "the source statistics still count: reset every BatchNorm layer "
             "(reset_running_stats()) first"),
            (dict(reset=False, momentum=0.1), "the source statistics still count: reset every BatchNorm layer "
             "(reset_running_stats()) and set momentum = None, so that only the target batches count, all equally"),
            (dict(reset=True, momentum=0.1), "an exponential average (momentum 0.1) still holds the reset values: "
             "set momentum = None for a plain average over all the batches"),
        ]
        distance, hint = min((_distance((mean, var), _variant(model, batches, only_bn=True, **how)[name]), hint)
                             for how, hint in mistakes)
        if distance <= 1:
            raise Wrong(f"{found}; {hint}")
        order = [n for n, _ in model.named_modules()]
        dropouts = [order.index(n) for n, m in model.named_modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        before_ok = all(_close(got[n], tuple(t.double() for t in expected[n])) for n in names[:k])
        if before_ok and any(d < order.index(name) for d in dropouts):
            raise Wrong(f"{found}, while the BatchNorm layers before the Dropout2d are right: it saw dropped-out "
                        "activations. Put only the BatchNorm layers in training mode (model.train() switches "
                        "dropout on too)")
        raise Wrong(f"{found}: reset every BatchNorm layer, set momentum = None and pass every target batch "
                    "through with only the BatchNorm layers in training mode")
