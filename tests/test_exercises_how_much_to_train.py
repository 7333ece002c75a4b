"""Lesson 03's graded exercise: typical mistakes fail with the message a learner needs."""
from __future__ import annotations

from torch import optim

from notebook_answers import assert_mistakes_fail


def _keep(spec):
    return tuple(f"{name}." for name in (*spec.blocks[-1], spec.head))


def _everything_to_sgd(model, spec, lr=0.001, momentum=0.9):  # froze right, but the optimizer gets all
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(_keep(spec)))
    return optim.SGD(model.parameters(), lr=lr, momentum=momentum)


def _forgets_the_head(model, spec, lr=0.001, momentum=0.9):
    keep = tuple(f"{name}." for name in spec.blocks[-1])
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(keep))
    return optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)


def _substring_match(model, spec, lr=0.001, momentum=0.9):  # "bn2" in "blocks.0.0.bn2.weight"
    for name, param in model.named_parameters():
        param.requires_grad_(any(part in name for part in (*spec.blocks[-1], spec.head)))
    return optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)


def _only_freezes(model, spec, lr=0.001, momentum=0.9):  # never sets requires_grad back to True
    for name, param in model.named_parameters():
        if not name.startswith(_keep(spec)):
            param.requires_grad_(False)
    return optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)


def _ignores_the_arguments(model, spec, lr=0.001, momentum=0.9):
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(_keep(spec)))
    return optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)


def _adam(model, spec, lr=0.001, momentum=0.9):
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(_keep(spec)))
    return optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


def _resnet_only(model, spec, lr=0.001, momentum=0.9):  # hard-codes ResNet's names
    model.requires_grad_(False)
    model.layer4.requires_grad_(True)
    model.fc.requires_grad_(True)
    return optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)


def test_mistakes_fail_with_the_first_difference():
    cases = {
        _everything_to_sgd: "your optimizer holds conv1.weight, which is frozen",
        _forgets_the_head: "fc.weight is frozen, but it belongs to the head",
        _substring_match: "bn2.weight still trains",
        _only_freezes: "on a random EfficientNet-Lite0 with everything frozen before your call (lr=0.005, "
                       "momentum=0.8): conv_head.weight is frozen, but it belongs to the last block",
        _ignores_the_arguments: "your SGD's lr is 0.001, but the call passed lr=0.01",
        _adam: "you returned Adam",
        _resnet_only: "on a random EfficientNet-Lite0 with everything frozen before your call (lr=0.005, "
                      "momentum=0.8): your code raised AttributeError",
    }
    assert_mistakes_fail("03.3", cases)
