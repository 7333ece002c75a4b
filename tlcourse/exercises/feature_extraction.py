"""Graders of lesson 01's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

Exercise 01.5: ``train_mlp_early_stopping(X_fit, y_fit, X_hold, y_hold, num_classes, lr, patience,
max_epochs, batch_size)`` trains an MLP head (``Linear(features, 256)``, ReLU, dropout 0.5,
``Linear(256, num_classes)``) with AdamW (weight decay 1e-2) on the fit rows, measures the held-out
loss after every epoch, stops once it has not improved for ``patience`` epochs, and returns the head
with the best epoch's weights and the list of held-out losses, one per epoch.

Example:
    >>> import copy
    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> def train_mlp_early_stopping(X_fit, y_fit, X_hold, y_hold, num_classes, lr=1e-3, patience=5,
    ...                              max_epochs=200, batch_size=32):
    ...     head = nn.Sequential(nn.Linear(X_fit.shape[1], 256), nn.ReLU(), nn.Dropout(0.5),
    ...                          nn.Linear(256, num_classes))
    ...     optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    ...     loader = DataLoader(TensorDataset(X_fit, y_fit), batch_size=batch_size, shuffle=True)
    ...     hold_losses, best_state = [], None
    ...     for epoch in range(max_epochs):
    ...         head.train()
    ...         for x, y in loader:
    ...             optimizer.zero_grad()
    ...             nn.functional.cross_entropy(head(x), y).backward()
    ...             optimizer.step()
    ...         head.eval()
    ...         with torch.no_grad():
    ...             hold_losses.append(nn.functional.cross_entropy(head(X_hold), y_hold).item())
    ...         if hold_losses[-1] == min(hold_losses):
    ...             best_state, best_epoch = copy.deepcopy(head.state_dict()), epoch
    ...         elif epoch - best_epoch >= patience:
    ...             break
    ...     head.load_state_dict(best_state)
    ...     return head, hold_losses
    >>> print(grade("01.5", train_mlp_early_stopping))  # doctest: +ELLIPSIS
    ✔ Exercise 01.5: the head is Linear(features→256), ReLU, Dropout(0.5), Linear(256→classes)...
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from .grading import Wrong, case, grade, grades  # noqa: F401  (grade: the doctest)

_HIDDEN, _DROPOUT, _WEIGHT_DECAY = 256, 0.5, 1e-2


def _blobs(n: int, dim: int, num_classes: int, shift: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points around ``num_classes`` well-separated centres; ``shift`` relabels class c as c + shift."""
    y = torch.arange(n) % num_classes
    centres = 4.0 * torch.eye(num_classes, dim)
    x = centres[y] + torch.randn(n, dim)
    return x, (y + shift) % num_classes


def _layers(head: nn.Module) -> str:
    names = []
    for m in head.modules():
        if isinstance(m, nn.Linear):
            names.append(f"Linear({m.in_features}→{m.out_features})")
        elif isinstance(m, nn.Dropout):
            names.append(f"Dropout({m.p:g})")
        elif next(m.children(), None) is None:
            names.append(type(m).__name__)
    return ", ".join(names) or "no layers"


def _check_architecture(head: Any, dim: int, num_classes: int, X: torch.Tensor) -> None:
    if not isinstance(head, nn.Module):
        raise Wrong(f"the head you returned is a {type(head).__name__}, not an nn.Module")
    want = f"Linear({dim}→{_HIDDEN}), ReLU, Dropout({_DROPOUT:g}), Linear({_HIDDEN}→{num_classes})"
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    dropouts = [m for m in head.modules() if isinstance(m, nn.Dropout)]
    shapes = [(m.in_features, m.out_features) for m in linears]
    if shapes != [(dim, _HIDDEN), (_HIDDEN, num_classes)] or [m.p for m in dropouts] != [_DROPOUT]:
        raise Wrong(f"your head is {_layers(head)}; the exercise asks for {want}")
    head.eval()
    with torch.no_grad():
        expected = linears[1](torch.relu(linears[0](X)))
        if not torch.allclose(head(X), expected, atol=1e-5):
            raise Wrong(f"in eval() mode your head does not compute Linear → ReLU → Linear ({want})")
        head.train()
        noisy = head(X)
        head.eval()
    if torch.allclose(noisy, expected, atol=1e-5):
        raise Wrong("in train() mode your head gives the same outputs as in eval(): its dropout does nothing")


class _StepSpy:
    """Records every optimizer step taken while it is active (whichever way AdamW was imported)."""

    def __init__(self) -> None:
        self.steps: list[torch.optim.Optimizer] = []

    def __enter__(self) -> _StepSpy:
        self.handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: self.steps.append(opt))
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


def _check_optimizer(spy: _StepSpy, head: nn.Module, lr: float) -> None:
    if not spy.steps:
        raise Wrong("your code never called optimizer.step(): nothing was trained")
    optimizers = {id(o): o for o in spy.steps}
    if len(optimizers) > 1:
        raise Wrong(f"your code stepped {len(optimizers)} different optimizers; create one AdamW before the "
                    "loop (a new one every epoch forgets its running averages)")
    (opt,) = optimizers.values()
    group = opt.param_groups[0]
    decoupled = isinstance(opt, torch.optim.AdamW) or bool(group.get("decoupled_weight_decay"))
    if not isinstance(opt, torch.optim.Adam) or not decoupled:
        raise Wrong(f"your optimizer is {type(opt).__name__} with weight_decay={group.get('weight_decay', 0):g}; "
                    "the exercise asks for torch.optim.AdamW(..., weight_decay=1e-2), whose decay shrinks the "
                    "weights directly instead of adding a penalty to the gradient")
    decays = {g["weight_decay"] for g in opt.param_groups}
    if decays != {_WEIGHT_DECAY}:
        raise Wrong(f"your AdamW has weight_decay={', '.join(f'{d:g}' for d in sorted(decays))}; "
                    f"the exercise asks for {_WEIGHT_DECAY:g}")
    lrs = {g.get("initial_lr", g["lr"]) for g in opt.param_groups}
    if lrs != {lr}:
        raise Wrong(f"your AdamW's learning rate is {', '.join(f'{r:g}' for r in sorted(lrs))}, but the call "
                    f"passed lr={lr:g}: use the lr argument")
    held = sorted(tuple(p.shape) for g in opt.param_groups for p in g["params"])
    own = sorted(tuple(p.shape) for p in head.parameters())
    if held != own:
        raise Wrong(f"your AdamW holds {len(held)} parameter tensors of shapes {held}; the head has {own}: "
                    "give it head.parameters()")


def _expected_stop(losses: Sequence[float], patience: int, max_epochs: int) -> tuple[int, int]:
    """(the epoch early stopping ends on, the best epoch before it), both counted from 1."""
    best = 1
    for epoch in range(1, len(losses) + 1):
        if losses[epoch - 1] < losses[best - 1]:
            best = epoch
        if epoch - best >= patience:
            return epoch, best
    return max_epochs, best


def _run(answer: Callable[..., Any], data: tuple[torch.Tensor, ...], num_classes: int,
         **knobs: Any) -> tuple[nn.Module, list[float], _StepSpy]:
    with _StepSpy() as spy:
        returned = answer(*data, num_classes, **knobs)
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise Wrong(f"your function returned {type(returned).__name__}; return (head, hold_losses): the trained "
                    "head and the list of held-out losses, one per epoch")
    head, losses = returned
    try:
        losses = [float(v) for v in losses]
    except (TypeError, ValueError):
        raise Wrong("hold_losses should be a list of numbers, the held-out loss after each epoch, "
                    f"not {type(losses).__name__}") from None
    if not losses:
        raise Wrong("your list of held-out losses is empty: append the held-out loss after every epoch")
    return head, losses, spy


def _check_run(head: nn.Module, losses: list[float], spy: _StepSpy, data: tuple[torch.Tensor, ...],
               num_classes: int, lr: float, patience: int, max_epochs: int, batch_size: int) -> tuple[int, float]:
    X_fit, _, X_hold, y_hold = data
    _check_architecture(head, X_fit.shape[1], num_classes, X_hold)
    _check_optimizer(spy, head, lr)
    epochs, per_epoch = len(losses), len(X_fit) // batch_size  # the grader's sets divide evenly
    if len(spy.steps) != epochs * per_epoch:
        raise Wrong(f"your optimizer stepped {len(spy.steps)} times, but your list holds {epochs} held-out losses: "
                    f"{len(X_fit)} training rows in batches of {batch_size} make {per_epoch} steps per epoch; "
                    "record the held-out loss once per epoch and use the batch_size argument")
    stop, best = _expected_stop(losses, patience, max_epochs)
    if epochs > stop:
        raise Wrong(f"the held-out loss was lowest at epoch {best} and did not improve in the {patience} epochs "
                    f"after it, but your loop went on to epoch {epochs}: stop at epoch {best + patience} "
                    f"(patience={patience})")
    if epochs < stop:
        raise Wrong(f"your loop stopped at epoch {epochs}, only {epochs - best} epoch(s) after the best "
                    f"held-out loss (epoch {best}); patience={patience} means stop after {patience} epochs "
                    "without improvement")
    with torch.no_grad():
        final = nn.functional.cross_entropy(head(X_hold), y_hold).item()
    lowest = min(losses)
    if abs(final - lowest) > 1e-4 * max(1.0, lowest):
        if abs(final - losses[-1]) <= 1e-4 * max(1.0, losses[-1]) and best != epochs:
            raise Wrong(f"the head you return has the last epoch's weights (held-out loss {final:.4f}, epoch "
                        f"{epochs}), not the best epoch's ({lowest:.4f}, epoch {best}): keep a copy of the best "
                        "state_dict (copy.deepcopy: state_dict() alone refers to the live weights) and load it "
                        "at the end")
        raise Wrong(f"the head you return has a held-out loss of {final:.4f} (mean cross-entropy, measured in "
                    f"eval() mode), but the lowest in your list is {lowest:.4f} (epoch {best}): measure the "
                    "held-out loss in eval() mode, dropout off, and restore the best epoch's weights")
    return best, final


@grades("01.5", "train_mlp_early_stopping")
def train_mlp_early_stopping(answer: Callable[..., Any]) -> str:
    """``answer(X_fit, y_fit, X_hold, y_hold, num_classes, lr=, patience=, max_epochs=, batch_size=)``
    returns ``(head, hold_losses)``: the MLP head with its best held-out epoch's weights, and the
    held-out loss after every epoch it ran."""
    found = []
    cases = (
        ("on 3 well-separated classes (96 training rows, 48 held out)",
         dict(n=96, dim=12, num_classes=3, shift=0),
         dict(lr=1e-2, patience=4, max_epochs=30, batch_size=16)),
        ("on 2 classes whose held-out labels are the opposite of the training labels (its loss only grows)",
         dict(n=64, dim=8, num_classes=2, shift=1),
         dict(lr=1e-2, patience=3, max_epochs=200, batch_size=32)),
    )
    for description, shape, knobs in cases:
        with case(description):
            X_fit, y_fit = _blobs(shape["n"], shape["dim"], shape["num_classes"])
            X_hold, y_hold = _blobs(shape["n"] // 2, shape["dim"], shape["num_classes"], shape["shift"])
            data = (X_fit, y_fit, X_hold, y_hold)
            head, losses, spy = _run(answer, data, shape["num_classes"], **knobs)
            best, _ = _check_run(head, losses, spy, data, shape["num_classes"], **knobs)
            if not shape["shift"]:
                with torch.no_grad():
                    acc = (head(X_hold).argmax(1) == y_hold).float().mean().item()
                if acc < 0.9:
                    raise Wrong(f"after training, your head classifies only {acc:.0%} of the held-out rows "
                                "correctly, on classes a small MLP separates easily")
            found.append(f"{len(losses)} epochs, best {best}")
    return (f"the head is Linear(features→{_HIDDEN}), ReLU, Dropout({_DROPOUT:g}), Linear({_HIDDEN}→classes), trained "
            f"by AdamW (weight decay {_WEIGHT_DECAY:g}) at your lr; it stops `patience` epochs "
            "after the best held-out loss and returns that epoch's weights "
            f"({'; '.join(found)}). Whether the val accuracy it gives the lesson is good is yours to judge")

