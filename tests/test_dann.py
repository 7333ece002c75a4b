"""DANN: the reversal layer, the λ schedule, one training step, the loop and the table (all cheap)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tlcourse.labs import domain_adaptation as lab
from tlcourse.labs.domain_adaptation import DANN, GradientReversal, dann_step, grad_reverse, lambda_schedule, train_dann
from tlcourse.training import History


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is faster than two fighting over a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(n: int, size: int = 28, seed: int = 0, colour: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1 if not colour else 3, size, size), generator=g, dtype=torch.uint8)
    return x.expand(-1, 3, -1, -1).contiguous() if not colour else x


# --------------------------------------------------------------------------- gradient reversal
@pytest.mark.parametrize("lambd", [0.0, 0.25, 1.0, 3.0])
def test_reversal_is_identity_forward_and_negates_and_scales_backward(lambd):
    x = torch.randn(4, 5, requires_grad=True)
    w = torch.randn(4, 5)
    y = grad_reverse(x, lambd)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -lambd * w)


def test_reversal_module_reads_lambda_at_call_time():
    layer = GradientReversal(1.0)
    layer.lambd = 0.5  # what the schedule does between steps
    x = torch.ones(3, requires_grad=True)
    layer(x).pow(2).sum().backward()  # d/dx x^2 = 2x = 2, reversed and scaled: -1
    assert x.grad.tolist() == [-1.0, -1.0, -1.0]


def test_feature_gradient_from_the_domain_loss_is_reversed_in_the_network():
    torch.manual_seed(0)
    model = DANN().eval()  # eval: no dropout, so both passes see the same function
    x = _images(8, colour=True)
    labels = torch.tensor([0, 1] * 4)
    grads = {}
    for lambd in (0.0, 1.0, 0.5):
        model.zero_grad()
        model.reversal.lambd = lambd
        if lambd == 0.0:  # reference: the domain classifier without reversal
            loss = F.cross_entropy(model.domain(model.features(x)), labels)
        else:
            loss = F.cross_entropy(model.domain_logits(model.features(x)), labels)
        loss.backward()
        grads[lambd] = model.feature[0].weight.grad.clone()
        # the domain classifier itself is trained normally, whatever λ is
        assert model.domain[0].weight.grad.abs().sum() > 0
    assert torch.allclose(grads[1.0], -grads[0.0], atol=1e-6)
    assert torch.allclose(grads[0.5], -0.5 * grads[0.0], atol=1e-6)


# --------------------------------------------------------------------------- λ schedule
def test_lambda_schedule_values():
    assert lambda_schedule(0.0) == 0.0
    assert lambda_schedule(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)  # 0.4621
    assert lambda_schedule(1.0) == pytest.approx(0.999909, abs=1e-6)
    assert lambda_schedule(1.0, max_lambda=0.3) == pytest.approx(0.3, abs=1e-4)
    assert lambda_schedule(0.5, gamma=2.0, max_lambda=2.0) == pytest.approx(2 * (2 / (1 + math.exp(-1)) - 1))
    values = [lambda_schedule(p / 20) for p in range(21)]
    assert all(a < b for a, b in zip(values, values[1:]))  # rises all the way
    assert lambda_schedule(0.1, gamma=20) > lambda_schedule(0.1, gamma=10)  # γ: how fast
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lambda_schedule(1.5)


# --------------------------------------------------------------------------- one step
def _step_grads(lambd: float, adapt: bool | None = None):
    """Parameter changes and gradients of one dann_step on a fresh model (seeded)."""
    torch.manual_seed(0)
    model = DANN(widths=(4, 6), hidden=(8,), domain_hidden=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    xs, xt = _images(16, seed=1), _images(16, seed=2, colour=True)
    ys = torch.arange(16) % 10
    torch.manual_seed(1)
    losses = dann_step(model, opt, xs, ys, xt, lambd, adapt=adapt)
    changed = {name: any(not torch.equal(before[f"{prefix}.{k}"], v)
                         for k, v in part.state_dict().items() if v.is_floating_point())
               for name, part in model.parts().items()
               for prefix in [{"feature extractor": "feature", "label classifier": "classifier",
                               "domain classifier": "domain"}[name]]}
    grads = {name: torch.cat([p.grad.flatten() for p in part.parameters() if p.grad is not None])
             for name, part in model.parts().items()}
    return model, changed, grads, losses, (xs, ys)


def test_a_dann_step_updates_all_three_parts():
    _, changed, grads, (label_loss, domain_loss, domain_acc), _ = _step_grads(1.0)
    assert changed == {"feature extractor": True, "label classifier": True, "domain classifier": True}
    assert all(g.abs().sum() > 0 for g in grads.values())
    assert label_loss > 0 and domain_loss > 0 and 0.0 <= domain_acc <= 1.0
    assert label_loss == pytest.approx(math.log(10), rel=0.3)  # an untrained 10-way classifier


def test_source_only_step_keeps_the_domain_classifier_off_the_features():
    model, changed, grads, _, (xs, ys) = _step_grads(0.0)
    assert all(changed.values())  # the domain classifier still learns to watch
    # the feature extractor's gradient is exactly the label loss's gradient
    torch.manual_seed(0)
    ref = DANN(widths=(4, 6), hidden=(8,), domain_hidden=(8,)).train()
    torch.manual_seed(1)  # same dropout mask as in the step
    F.cross_entropy(ref(xs), ys).backward()
    expected = torch.cat([p.grad.flatten() for p in ref.feature.parameters()])
    assert torch.allclose(grads["feature extractor"], expected, atol=1e-6)


def test_bn_only_ablation_lets_target_images_reach_batchnorm_but_no_domain_gradient():
    src, _, src_grads, _, _ = _step_grads(0.0, adapt=False)
    bn, _, bn_grads, _, _ = _step_grads(0.0, adapt=True)
    # no domain gradient reaches the features in either case: only the label loss's
    assert torch.allclose(src_grads["feature extractor"], bn_grads["feature extractor"], atol=1e-6)
    # but the BatchNorm running statistics saw the target batch in the ablation only
    assert not torch.allclose(src.feature[1].running_mean, bn.feature[1].running_mean)


# --------------------------------------------------------------------------- the loop
def test_train_dann_records_every_epoch_and_follows_the_schedule():
    x, y = _images(64), torch.arange(64) % 10
    seen = []
    h = train_dann(DANN(widths=(4, 6), hidden=(8,), domain_hidden=(8,)), (x, y), _images(64, colour=True),
                   epochs=3, batch_size=16, max_lambda=0.5, eval_data=(x, y), device="cpu",
                   callbacks=[lambda hist: seen.append(hist.epochs)])
    assert seen == [1, 2, 3] and h.epochs == 3 and len(h.val_acc) == 3 and len(h.extra["domain_acc"]) == 3
    assert 0 < h.extra["lambda"][0] < h.extra["lambda"][1] < h.extra["lambda"][2] <= 0.5
    assert h.best_val_acc == max(h.val_acc) and len(h.epoch_time) == 3 and h.val_loss == []
    assert History.from_dict(h.to_dict()) == h  # the one History, saved and read back
    h0 = train_dann(DANN(widths=(4, 6), hidden=(8,), domain_hidden=(8,)), (x, y), _images(64, colour=True),
                    epochs=1, batch_size=16, mode="source", device="cpu")
    assert h0.extra["lambda"] == [0.0] and h0.val_acc == [] and h0.best_epoch == -1


def test_train_dann_repeats_with_a_seed():
    x, y = _images(64), torch.arange(64) % 10
    def run():
        torch.manual_seed(0)  # the same initial weights ...
        return train_dann(DANN(widths=(4, 6), hidden=(8,), domain_hidden=(8,)), (x, y), _images(64, colour=True),
                          epochs=1, batch_size=16, seed=3, device="cpu")  # ... and the same batches, dropout

    runs = [run(), run()]
    assert runs[0].train_loss == runs[1].train_loss and runs[0].extra == runs[1].extra


def test_train_dann_reads_the_device_once_per_epoch_whatever_the_number_of_steps(host_reads):
    """No host read per step (on a GPU each one waits for the device): the same few reads for 2 or 8 steps."""
    reads = host_reads("tlcourse.labs.domain_adaptation")
    counts = []
    for n in (32, 128):  # 2 and 8 steps of 16 per epoch
        reads.clear()
        x, y = _images(n), torch.arange(n) % 10
        h = train_dann(DANN(widths=(4, 6), hidden=(8,), domain_hidden=(8,)), (x, y), _images(n, colour=True),
                       epochs=2, batch_size=16, device="cpu")
        counts.append(sorted(reads))
        assert h.epochs == 2
    assert counts[0] == counts[1] and "item" not in counts[0] and len(counts[0]) <= 2, counts  # the sums, once an epoch


def test_train_dann_epoch_means_are_the_host_means_of_its_steps_bit_for_bit(monkeypatch):
    """Summing on the device changes no number: each epoch's means are what adding every step's
    floats on the host in float64 (as dann_step returns them) gives, to the last bit."""
    steps = []
    real_update = lab._update

    def update(*args, **kwargs):
        out = real_update(*args, **kwargs)
        steps.append(out.clone().tolist())  # the step's three float32 numbers, as dann_step returns them
        return out
    monkeypatch.setattr(lab, "_update", update)
    x, y = _images(96), torch.arange(96) % 10
    h = train_dann(DANN(widths=(4, 6), hidden=(8,), domain_hidden=(8,)), (x, y), _images(80, colour=True),
                   epochs=2, batch_size=16, device="cpu")
    for epoch, per_step in enumerate([steps[:6], steps[6:]]):
        sums = np.zeros(3)
        for values in per_step:
            sums += values
        expected = [float(v) for v in sums / 6]
        got = [h.train_loss[epoch], h.extra["domain_loss"][epoch], h.extra["domain_acc"][epoch]]
        assert [v.hex() for v in got] == [v.hex() for v in expected]
    assert len(steps) == 12


def test_dann_step_returns_python_floats():
    _, _, _, losses, _ = _step_grads(0.5)
    assert all(type(v) is float for v in losses)


def test_watching_domain_classifier_learns_to_tell_grey_from_colour():
    # source only: dark grey source vs bright colour target are easy to tell apart, the probe sees it
    torch.manual_seed(0)
    x, y = _images(64) // 3, torch.arange(64) % 10
    h = train_dann(DANN(), (x, y), 255 - _images(64, seed=5, colour=True) // 3, epochs=15, batch_size=16, mode="source",
                   lr=3e-3, device="cpu")
    acc = h.extra["domain_acc"]
    assert acc[-1] > 0.9 and acc[-1] > acc[0], acc


def test_train_dann_refuses_bad_arguments():
    x, y = _images(8), torch.arange(8) % 10
    with pytest.raises(ValueError, match="mode"):
        train_dann(DANN(), (x, y), x, mode="oracle")
    with pytest.raises(ValueError, match="at least batch_size=16"):
        train_dann(DANN(), (x, y), x, batch_size=16)
    with pytest.raises(ValueError, match="too small"):
        DANN(size=12)


def test_accuracy_and_predictions():
    class Always3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return F.one_hot(torch.full((len(x),), 3), 10).float() + 0 * self.w

    y = torch.tensor([3, 3, 1, 0])
    assert lab.digit_accuracy(Always3(), (torch.zeros(4, 3, 28, 28), y), batch_size=3) == 0.5
    assert lab.predict_digits(Always3(), torch.zeros(5, 3, 28, 28), batch_size=2).tolist() == [3] * 5


class _FakeTask:
    """What train_method needs from a digit_splits.AdaptationTask, with tiny random parts."""

    target_name = "toy"

    def __init__(self):
        self.parts = {"source": (_images(32), torch.arange(32) % 10),
                      "source_eval": (_images(16, seed=3), torch.arange(16) % 10),
                      "adapt": (_images(32, seed=1, colour=True), torch.arange(32) % 10),
                      "eval": (_images(16, seed=2, colour=True), torch.arange(16) % 10)}

    def __getitem__(self, part):
        return self.parts[part]


def test_train_method_and_results_table(monkeypatch):
    task, rows, modes = _FakeTask(), [], []
    real = lab.train_dann
    monkeypatch.setattr(lab, "train_dann", lambda *a, **kw: modes.append(kw["mode"]) or real(*a, **kw))
    kw = dict(model_kw=dict(widths=(4, 6), hidden=(8,), domain_hidden=(8,)), epochs=1, batch_size=16, device="cpu")
    for method in reversed(lab.METHODS):
        for seed in (0, 1):
            model, h = lab.train_method(method, task, seed=seed, **kw)
            assert modes[-1] == {"DANN": "dann", "target batches in BN (λ = 0)": "bn"}.get(method, "source")
            assert len(h.val_acc) == 1 and (h.extra["lambda"][0] > 0) == (method == "DANN")
            rows.append(lab.result_row(method, task, model, h, seed))
    rows.append(rows[-1] | {"method": "DANN (λ scale 0.3)"})  # a variant goes right after its method
    rows.append(rows[-1] | {"method": "something else"})
    table = lab.results_table(rows)
    assert list(table.index.get_level_values("method")) == [  # table order, not run order
        "source only", "target batches in BN (λ = 0)", "DANN", "DANN (λ scale 0.3)", "target oracle", "something else"]
    base = table[table.index.get_level_values("method").isin(lab.METHODS)]
    assert (base["seeds"] == 2).all() and base["target acc"].str.contains("±").all()
    assert table.loc[("toy", "something else"), "seeds"] == 1
    with pytest.raises(KeyError, match="target oracle"):
        lab.train_method("oracle", task)


def test_pictures_draw():
    h = History(train_loss=[1, .5], val_acc=[.3, .5], extra={"domain_loss": [.7, .6], "domain_acc": [.9, .6]})
    fig = lab.plot_dann_history({"a": h, "b": h})
    assert len(fig.axes) == 4 and list(fig.axes[2].lines[0].get_ydata()) == [.9, .6]
    fig = lab.plot_lambda_schedule(5.0, 0.2)
    ys = fig.axes[0].lines[0].get_ydata()
    assert ys[0] == 0 and ys[-1] == pytest.approx(0.2 * (2 / (1 + math.exp(-5)) - 1))
    x, y = _images(10), torch.arange(10)
    fig = lab.feature_maps({"a": DANN(), "b": DANN()}, x, y, _images(10, colour=True), y)
    assert len(fig.axes) == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_trains_on_cuda():
    x, y = _images(64), torch.arange(64) % 10
    model = DANN()
    h = train_dann(model, (x, y), _images(64, colour=True), epochs=1, batch_size=32, eval_data=(x, y), device="cuda")
    assert next(model.parameters()).is_cuda and len(h.val_acc) == 1
    assert lab.feature_vectors(model, x).device.type == "cpu"
