"""Lesson 02's graded exercise: typical mistakes fail with the message a learner needs."""
from __future__ import annotations

import torch

from notebook_answers import assert_mistakes_fail
from tlcourse.exercises.grading import grade


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _model_only(path, model, optimizer, scheduler):  # the weights, as for using the model
    model.load_state_dict(_load(path)["model"])


def _no_scheduler(path, model, optimizer, scheduler):
    state = _load(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])


def _no_optimizer(path, model, optimizer, scheduler):
    state = _load(path)
    model.load_state_dict(state["model"])
    scheduler.load_state_dict(state["scheduler"])


def _rate_by_hand(path, model, optimizer, scheduler):  # the right rate, but no momentum buffers
    state = _load(path)
    model.load_state_dict(state["model"])
    scheduler.load_state_dict(state["scheduler"])
    for group in optimizer.param_groups:
        group["lr"] = scheduler.get_last_lr()[0]


def _one_step_too_many(path, model, optimizer, scheduler):
    state = _load(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scheduler.step()  # "to be on the next epoch"


def _rate_reset(path, model, optimizer, scheduler):
    state = _load(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    for group in optimizer.param_groups:
        group["lr"] = 0.1  # the recipe's starting rate, set again


def _no_model(path, model, optimizer, scheduler):
    state = _load(path)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])


def _new_objects(path, model, optimizer, scheduler):  # builds its own instead of loading into the given ones
    from torch import nn, optim
    state = _load(path)
    model = nn.Linear(5, 3)
    model.load_state_dict(state["model"])
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer.load_state_dict(state["optimizer"])
    return model, optimizer


def _other_keys(path, model, optimizer, scheduler):
    state = _load(path)
    model.load_state_dict(state["model_state_dict"])


PREFIX = "on a tiny nn.Linear saved after 3 epochs of SGD (momentum 0.9) + StepLR (step 2, γ 0.1): "


def test_mistakes_fail_with_the_first_difference():
    cases = {
        _model_only: "after resuming, SGD has no momentum buffer for weight, the uninterrupted run has one: "
                     "the optimizer's state was not restored",
        _no_scheduler: "after resuming, StepLR has counted 0 epoch(s), the uninterrupted run 3: the scheduler's "
                       "state was not restored",
        _no_optimizer: "SGD has no momentum buffer for weight",
        _rate_by_hand: "SGD has no momentum buffer for weight",
        _one_step_too_many: "StepLR has counted 4 epoch(s), the uninterrupted run 3",
        _rate_reset: "after resuming, the learning rate is 0.1 but the uninterrupted run is at 0.01",
        _no_model: "after resuming, the model's weight differs from the uninterrupted run's by up to",
        _new_objects: "the model's state was not restored",
        _other_keys: "your code raised KeyError: 'model_state_dict'",
    }
    assert_mistakes_fail("02.3", cases, PREFIX)
    keys = grade("02.3", _other_keys).message
    assert keys.endswith("the file holds one dict with the keys 'model', 'optimizer', 'scheduler'"), keys


def test_a_correct_answer_in_other_words_passes():
    def resume(path, model, optimizer, scheduler):  # other order, strict load, no map_location
        state = torch.load(path)
        scheduler.load_state_dict(state["scheduler"])
        optimizer.load_state_dict(state["optimizer"])
        model.load_state_dict(state["model"], strict=True)
        return model, optimizer, scheduler

    verdict = grade("02.3", resume)
    assert verdict.passed, str(verdict)
    assert "the rate drops to 0.001 on time" in verdict.message
