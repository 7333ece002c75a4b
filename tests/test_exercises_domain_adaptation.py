"""Lesson 06's graded exercise (AdaBN): typical mistakes fail with the message a learner needs, and
correct answers that differ from the hidden solution pass."""
from __future__ import annotations

import copy

import torch
from torch import nn

from notebook_answers import assert_mistakes_fail
from tlcourse.exercises.grading import grade

BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def _prepare(model, *, reset=True, momentum=None, copy_it=True):
    adapted = copy.deepcopy(model).eval() if copy_it else model
    for m in adapted.modules():
        if isinstance(m, BN):
            if reset:
                m.reset_running_stats()
            m.momentum = momentum
            m.train()
    return adapted


def _run(adapted, batches):
    with torch.no_grad():
        for xb in batches:
            adapted(xb)
    return adapted


def _all_at_once(model, batches):  # correct: one pass over all the target images together
    adapted = _prepare(model, momentum=1.0)
    return _run(adapted, [torch.cat(list(batches))]).eval()


def _no_reset(model, batches):  # the source statistics stay in the exponential average
    return _run(_prepare(model, reset=False, momentum=0.1), batches).eval()


def _reset_but_momentum(model, batches):  # reset, but the default exponential average (momentum 0.1)
    return _run(_prepare(model, momentum=0.1), batches).eval()


def _modifies_the_original(model, batches):
    _run(_prepare(model, copy_it=False), batches).eval()
    return copy.deepcopy(model)


def _returns_the_original(model, batches):
    return _run(_prepare(model, copy_it=False), batches).eval()


def _left_in_train_mode(model, batches):
    return _run(_prepare(model), batches)


def _whole_model_in_train_mode(model, batches):  # dropout is on while the statistics are collected
    adapted = copy.deepcopy(model).train()
    for m in adapted.modules():
        if isinstance(m, BN):
            m.reset_running_stats()
            m.momentum = None
    return _run(adapted, batches).eval()


def _entropy_steps(model, batches):  # updates the weights with an optimizer (that is TENT, not AdaBN)
    adapted = _prepare(model)
    optimizer = torch.optim.SGD(adapted.parameters(), lr=0.01)
    for xb in batches:
        p = adapted(xb).softmax(1)
        loss = -(p * p.log()).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return adapted.eval()


def _eval_mode_pass(model, batches):  # reset, but the batches pass in eval mode: nothing is collected
    adapted = _prepare(model).eval()
    return _run(adapted, batches)


def test_another_correct_answer_passes():
    verdict = grade("06.5", _all_at_once)
    assert verdict.status == "passed", verdict.message


def test_mistakes_fail_with_the_first_difference():
    cases = {
        _no_reset: "the source statistics still count: reset every BatchNorm layer (reset_running_stats()) and set "
                   "momentum = None",
        _reset_but_momentum: "an exponential average (momentum 0.1) still holds the reset values",
        _modifies_the_original: "your call changed the source model you passed in (feature.1.running_mean)",
        _returns_the_original: "you returned the model you were given",
        _left_in_train_mode: "the model you return is still in training mode (feature.1, feature.5, classifier.1)",
        _whole_model_in_train_mode: "classifier.1.running_var is not the target batches' statistic",
        _entropy_steps: "feature.0.weight changed: AdaBN changes no weight",
        _eval_mode_pass: "these are freshly reset statistics (mean 0, variance 1)",
    }
    assert_mistakes_fail("06.5", cases)
    assert "model.train() switches dropout on too" in grade("06.5", _whole_model_in_train_mode).message
