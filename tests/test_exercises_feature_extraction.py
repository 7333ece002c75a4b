"""Lesson 01's graded exercise: typical mistakes fail with the message a learner needs."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.exercises.grading import grade


def _answer(hidden=256, dropout=0.5, optimizer="adamw", fixed_lr=None, restore="deepcopy", eval_hold=True,
            stop_after=lambda since, patience: since >= patience, early_stopping=True, only_head=False):
    """A learner's train_mlp_early_stopping, with one thing or another done wrong."""
    def train_mlp_early_stopping(X_fit, y_fit, X_hold, y_hold, num_classes, lr=1e-3, patience=5, max_epochs=200,
                                 batch_size=32):
        head = nn.Sequential(nn.Linear(X_fit.shape[1], hidden), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(hidden, num_classes))
        rate = fixed_lr if fixed_lr is not None else lr
        if optimizer == "adamw":
            opt = torch.optim.AdamW(head.parameters(), lr=rate, weight_decay=1e-2)
        else:  # section 3's train_loop, copied
            opt = torch.optim.Adam(head.parameters(), lr=rate, weight_decay=1e-4)
        loader = DataLoader(TensorDataset(X_fit, y_fit), batch_size=batch_size, shuffle=True)
        hold_losses, best_state, best_epoch = [], None, 0
        for epoch in range(1, max_epochs + 1):
            head.train()
            for x, y in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(head(x), y).backward()
                opt.step()
            if eval_hold:
                head.eval()
            with torch.no_grad():
                hold_losses.append(nn.functional.cross_entropy(head(X_hold), y_hold).item())
            if hold_losses[-1] == min(hold_losses):
                state = head.state_dict()
                best_state, best_epoch = (copy.deepcopy(state) if restore == "deepcopy" else state), epoch
            elif early_stopping and stop_after(epoch - best_epoch, patience):
                break
        if restore:
            head.load_state_dict(best_state)
        return head if only_head else (head, hold_losses)
    return train_mlp_early_stopping


def test_a_correct_answer_passes():
    verdict = grade("01.5", _answer())
    assert verdict.status == "passed", verdict.message


def test_mistakes_fail_with_the_first_difference():
    cases = {
        "no early stopping": (_answer(early_stopping=False), "but your loop went on to epoch"),
        "patience off by one": (_answer(stop_after=lambda since, patience: since > patience),
                                "but your loop went on to epoch"),
        "stops too early": (_answer(stop_after=lambda since, patience: since >= patience - 1),
                            "epoch(s) after the best held-out loss"),
        "no restore": (_answer(restore=None), "the head you return has the last epoch's weights"),
        "state_dict without a copy": (_answer(restore="reference"), "the head you return has the last epoch's weights"),
        "held-out loss in train mode": (_answer(eval_hold=False), "measure the held-out loss in eval() mode"),
        "section 3's Adam": (_answer(optimizer="adam"), "your optimizer is Adam with weight_decay=0.0001"),
        "1024 hidden units": (_answer(hidden=1024), "your head is Linear(12→1024), ReLU, Dropout(0.5), Linear(1024→3)"),
        "no dropout": (_answer(dropout=0.0), "the exercise asks for Linear(12→256), ReLU, Dropout(0.5)"),
        "lr ignored": (_answer(fixed_lr=1e-3), "learning rate is 0.001, but the call passed lr=0.01"),
        "returns the head only": (_answer(only_head=True), "return (head, hold_losses)"),
    }
    for mistake, (answer, expected) in cases.items():
        verdict = grade("01.5", answer)
        assert verdict.status == "failed" and expected in verdict.message, (mistake, verdict.message)


def test_two_classes_hard_coded_fails_on_three_with_the_learners_line():
    def train_mlp_early_stopping(X_fit, y_fit, X_hold, y_hold, num_classes, **knobs):
        return _answer()(X_fit, y_fit, X_hold, y_hold, 2, **knobs)
    verdict = grade("01.5", train_mlp_early_stopping)
    assert verdict.status == "failed", verdict.message
    assert verdict.message.startswith("on 3 well-separated classes (96 training rows, 48 held out): your code raised "
                                      "IndexError: Target 2 is out of bounds. (line "), verdict.message
