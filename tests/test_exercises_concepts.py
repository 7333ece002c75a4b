"""Lesson 00's graded exercise: typical mistakes fail with the message a learner needs."""
from __future__ import annotations

from notebook_answers import assert_mistakes_fail


def _only_unfreezes(net, spec):  # forgot to freeze everything first
    for name in (*spec.blocks[-1], spec.head):
        net.get_submodule(name).requires_grad_(True)
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _forgets_the_head(net, spec):
    net.requires_grad_(False)
    for name in spec.blocks[-1]:
        net.get_submodule(name).requires_grad_(True)
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _resnet_only(net, spec):  # hard-codes ResNet's names
    net.requires_grad_(False)
    net.layer4.requires_grad_(True)
    net.fc.requires_grad_(True)
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _counts_everything(net, spec):
    net.requires_grad_(False)
    for name in (*spec.blocks[-1], spec.head):
        net.get_submodule(name).requires_grad_(True)
    return sum(p.numel() for p in net.parameters())


def test_mistakes_fail_with_the_first_difference():
    cases = {
        _only_unfreezes: "conv1.weight still trains",
        _forgets_the_head: "fc.weight is frozen, but it belongs to the head",
        _resnet_only: "on a random EfficientNet-Lite0 with everything trainable before your call: your code raised "
                      "AttributeError",
        _counts_everything: "you returned 11177538; the network now has 8,394,754 trainable parameters",
    }
    assert_mistakes_fail("00.5", cases)
