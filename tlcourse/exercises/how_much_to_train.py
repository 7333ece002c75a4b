"""Graders of lesson 03's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

Exercise 03.3: ``last_block_optimizer(model, spec, lr, momentum)`` sets ``requires_grad`` by hand,
parameter by parameter, so that only the last block (``spec.blocks[-1]``) and the head
(``spec.head``) train, and returns an SGD optimizer that holds exactly those parameters.

Example:
    >>> from torch import optim
    >>> def last_block_optimizer(model, spec, lr=0.001, momentum=0.9):
    ...     keep = tuple(f"{name}." for name in (*spec.blocks[-1], spec.head))
    ...     for name, param in model.named_parameters():
    ...         param.requires_grad_(name.startswith(keep))
    ...     return optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)
    >>> print(grade("03.3", last_block_optimizer))  # doctest: +ELLIPSIS
    ✔ Exercise 03.3: on ResNet-18 and EfficientNet-Lite0 (random weights), from any start, exactly the last block...
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import backbones
from .grading import Wrong, case, grade, grades  # noqa: F401  (grade: the doctest)


def _random_classifier(name: str, num_classes: int) -> tuple[nn.Module, backbones.BackboneSpec]:
    spec = backbones.get_spec(name)
    net = backbones.replace_head(backbones.build(spec, pretrained=False), spec, num_classes=num_classes)
    return net, spec


def _check_flags(net: nn.Module, spec: backbones.BackboneSpec) -> tuple[str, ...]:
    should_train = tuple(f"{m}." for m in (*spec.blocks[-1], spec.head))
    for pname, p in net.named_parameters():
        if p.requires_grad and not pname.startswith(should_train):
            raise Wrong(f"{pname} still trains; only the last block {spec.blocks[-1]} and the head '{spec.head}' "
                        "should (compare each name with the last block's and the head's names followed by '.')")
        if not p.requires_grad and pname.startswith(should_train):
            part = "the head" if pname.startswith(f"{spec.head}.") else f"the last block {spec.blocks[-1]}"
            raise Wrong(f"{pname} is frozen, but it belongs to {part}, which should train (set requires_grad "
                        "to True there: the model may come in frozen)")
    return should_train


def _check_optimizer(optimizer: Any, net: nn.Module, lr: float, momentum: float) -> int:
    if not isinstance(optimizer, torch.optim.SGD):
        raise Wrong(f"you returned {type(optimizer).__name__}; return the torch.optim.SGD optimizer you built")
    for key, want in (("lr", lr), ("momentum", momentum)):
        got = {g[key] for g in optimizer.param_groups}
        if got != {want}:
            raise Wrong(f"your SGD's {key} is {', '.join(f'{v:g}' for v in sorted(got))}, but the call passed "
                        f"{key}={want:g}: use the argument")
    names = {id(p): n for n, p in net.named_parameters()}
    held = [p for g in optimizer.param_groups for p in g["params"]]
    outside = [p for p in held if id(p) not in names]
    if outside:
        raise Wrong(f"your optimizer holds {len(outside)} tensor(s) that are not parameters of this model "
                    "(build it from the model you were given)")
    for p in held:
        if not p.requires_grad:
            raise Wrong(f"your optimizer holds {names[id(p)]}, which is frozen: give it only the parameters "
                        "that train (p.requires_grad)")
    ids = {id(p) for p in held}
    for n, p in net.named_parameters():
        if p.requires_grad and id(p) not in ids:
            raise Wrong(f"{n} trains, but your optimizer does not hold it, so no step would ever change it")
    return len(held)


def _one_step(optimizer: torch.optim.Optimizer, net: nn.Module, num_classes: int) -> int:
    """One SGD step on a random batch: trainable tensors move, no frozen one does; how many moved."""
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    x, y = torch.randn(2, 3, 64, 64), torch.arange(2) % num_classes
    optimizer.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    optimizer.step()
    moved = 0
    for n, p in net.named_parameters():
        changed = not torch.equal(p.detach(), before[n])
        if changed and not p.requires_grad:
            raise Wrong(f"one step of your optimizer changed {n}, which is frozen")
        moved += changed
    if not moved:
        raise Wrong("one step of your optimizer changed no parameter at all")
    return moved


@grades("03.3", "last_block_optimizer")
def last_block_optimizer(answer: Callable[..., Any]) -> str:
    """``answer(model, spec, lr=, momentum=)`` freezes every parameter but those of ``spec.blocks[-1]``
    and ``spec.head`` and returns an SGD holding exactly the trainable ones, at ``lr`` and ``momentum``."""
    found = []
    cases = (("resnet18", "ResNet-18", True, 3, 0.01, 0.9),  # name, label, trainable before, classes, lr, momentum
             ("efficientnet_lite0", "EfficientNet-Lite0", False, 2, 0.005, 0.8))
    for name, label, start, num_classes, lr, momentum in cases:
        net, spec = _random_classifier(name, num_classes)
        net.requires_grad_(start)
        state = "everything trainable" if start else "everything frozen"
        with case(f"on a random {label} with {state} before your call (lr={lr:g}, momentum={momentum:g})"):
            try:
                optimizer = answer(net, spec, lr=lr, momentum=momentum)
            except ValueError as err:  # SGD on an empty list: say first what made it empty
                if "empty parameter list" in str(err):
                    _check_flags(net, spec)
                raise
            _check_flags(net, spec)
            held = _check_optimizer(optimizer, net, lr, momentum)
            moved = _one_step(optimizer, net, num_classes)
        trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
        found.append(f"{label}: {held} tensors, {trainable:,} numbers, {moved} moved by one step")
    return ("on ResNet-18 and EfficientNet-Lite0 (random weights), from any start, exactly the last block and the "
            "head train, and your SGD holds exactly those parameters at the lr and momentum asked for; one step "
            f"moves them and nothing frozen ({'; '.join(found)})")
