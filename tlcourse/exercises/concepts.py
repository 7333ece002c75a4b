"""Graders of lesson 00's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

Example:
    >>> def freeze_all_but_last_block(net, spec):
    ...     net.requires_grad_(False)
    ...     for name in (*spec.blocks[-1], spec.head):
    ...         net.get_submodule(name).requires_grad_(True)
    ...     return sum(p.numel() for p in net.parameters() if p.requires_grad)
    >>> print(grade("00.5", freeze_all_but_last_block))  # doctest: +ELLIPSIS
    ✔ Exercise 00.5: on ResNet-18 and EfficientNet-Lite0 (random weights) exactly the last block and the head train...
"""
from __future__ import annotations

import torch.nn as nn

from .. import backbones
from .grading import Wrong, case, grade, grades  # noqa: F401  (grade: the doctest)


def _random_classifier(name: str) -> tuple[nn.Module, backbones.BackboneSpec]:
    spec = backbones.get_spec(name)
    net = backbones.replace_head(backbones.build(spec, pretrained=False), spec, num_classes=2)
    return net, spec


@grades("00.5", "freeze_all_but_last_block")
def freeze_all_but_last_block(answer) -> str:
    """``answer(net, spec)`` leaves exactly the parameters of ``spec.blocks[-1]`` and of the head
    ``spec.head`` trainable, whatever was trainable before, and returns how many numbers train."""
    counts = []
    for name, label in (("resnet18", "ResNet-18"), ("efficientnet_lite0", "EfficientNet-Lite0")):
        for start in (True, False):  # all trainable before, or all frozen before
            net, spec = _random_classifier(name)
            net.requires_grad_(start)
            state = "everything trainable" if start else "everything frozen"
            with case(f"on a random {label} with {state} before your call"):
                returned = answer(net, spec)
                should_train = tuple(f"{m}." for m in (*spec.blocks[-1], spec.head))
                for pname, p in net.named_parameters():
                    if p.requires_grad and not pname.startswith(should_train):
                        raise Wrong(f"{pname} still trains; only the last block {spec.blocks[-1]} and the head "
                                    f"'{spec.head}' should (freeze everything first)")
                    if not p.requires_grad and pname.startswith(should_train):
                        part = "the head" if pname.startswith(f"{spec.head}.") else f"the last block {spec.blocks[-1]}"
                        raise Wrong(f"{pname} is frozen, but it belongs to {part}, which should train")
                n = sum(p.numel() for p in net.parameters() if p.requires_grad)
                if returned != n:
                    raise Wrong(f"you returned {returned!r}; the network now has {n:,} trainable parameters")
        counts.append(f"{label} {n:,}")
    return ("on ResNet-18 and EfficientNet-Lite0 (random weights) exactly the last block and the head train, "
            f"from any start, and the count you return is right ({', '.join(counts)})")
