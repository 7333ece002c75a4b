"""Gradual unfreezing thaws the right blocks at the right epochs and trains them; the recipe helper."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import backbones, finetune, training
from tlcourse.labs import how_much_to_train as lab
from tlcourse.backbones import BackboneSpec

# A three-block "backbone" small enough to train in milliseconds, in the registry's terms.
TOY = BackboneSpec("toy", "timm", "toy", feature_dim=8, head="head",
                   blocks=(("b0",), ("b1",), ("b2",)), mean=(0.5,) * 3, std=(0.5,) * 3)


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b0 = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.b1 = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.b2 = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.b2(self.b1(self.b0(x))))


def loaders():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True), DataLoader(TensorDataset(x, y), 64)


def test_schedule_counts():
    assert finetune.unfreeze_schedule(5) == [0, 1, 2, 3, 4]
    assert finetune.unfreeze_schedule(5, start=1, every=2, step=2, max_blocks=4) == [1, 1, 3, 3, 4]
    with pytest.raises(ValueError, match="every >= 1"):
        finetune.unfreeze_schedule(3, every=0)


def test_lr_schedule_is_steplr():
    assert finetune.lr_schedule(1.0, epochs=5, step_size=2, gamma=0.5) == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_gradual_unfreezing_thaws_blocks_in_order_and_trains_them():
    training.seed_everything(0)
    model = Toy()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    thaw = finetune.GradualUnfreezing(model, TOY, schedule=[0, 1, 3], backbone_lr=0.05, verbose=False)
    opt = torch.optim.SGD(finetune.param_groups(model, TOY, head_lr=0.1), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    seen = []
    train, val = loaders()
    training.fit(model, train, val, opt, 3, scheduler=sched, progress=False, restore_best=False,
                 callbacks=[thaw.attach(opt), lambda h: seen.append(backbones.count_trainable(model))])
    head, b0, b1, b2 = 8 * 2 + 2, 4 * 8 + 8, 8 * 8 + 8 + 2 * 8, 8 * 8 + 8  # b1 has BatchNorm's 2 x 8
    assert seen == [head + b2, head + b0 + b1 + b2, head + b0 + b1 + b2]  # after epochs 1, 2, 3
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, start[k])}
    # b2 trained for 2 epochs and b0/b1 for 1: every block moved
    assert {"b0.0.weight", "b1.0.weight", "b2.0.weight", "head.weight"} <= changed
    # thawed groups follow the StepLR decay of the head (step at 2 epochs, gamma 0.1)
    assert [round(g["lr"], 6) for g in opt.param_groups] == [0.01, 0.005, 0.005]


def test_thawed_weights_did_not_move_while_frozen():
    training.seed_everything(0)
    model = Toy()
    b0 = model.b0[0].weight.detach().clone()
    thaw = finetune.GradualUnfreezing(model, TOY, schedule=[0, 0, 3], backbone_lr=0.05, verbose=False)
    opt = torch.optim.SGD(finetune.param_groups(model, TOY, head_lr=0.1), lr=0.1)
    train, val = loaders()
    checks = []
    training.fit(model, train, val, opt, 2, progress=False, restore_best=False,
                 callbacks=[lambda h: checks.append(torch.equal(model.b0[0].weight, b0)), thaw.attach(opt)])
    assert checks == [True, True]  # frozen during epochs 1 and 2; only thawed after the last


def test_schedule_must_not_decrease_and_optimizer_is_needed():
    with pytest.raises(ValueError, match="never decrease"):
        finetune.GradualUnfreezing(Toy(), TOY, schedule=[2, 1], backbone_lr=0.1)
    thaw = finetune.GradualUnfreezing(Toy(), TOY, schedule=[0, 1], backbone_lr=0.1)
    with pytest.raises(RuntimeError, match="attach"):
        thaw(training.History(train_loss=[1.0]))


def test_fine_tune_recipe_with_a_schedule(monkeypatch):
    monkeypatch.setattr(finetune.backbones, "build", lambda spec, pretrained=True: Toy())
    train, val = loaders()
    training.seed_everything(0)
    model, history = finetune.fine_tune(TOY, train, val, epochs=6, lr=0.1, head_lr=0.5, schedule=[0, 1, 3],
                                        step_size=7, progress=False)
    assert history.epochs == 6 and history.best_val_acc > 0.9
    assert backbones.count_trainable(model) == backbones.count_params(model)


def test_block_drift_and_plot():
    a, b = Toy(), Toy()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.b2[0].weight.mul_(2.0)  # exactly 100 % drift of b2's weight
    drift = lab.block_drift(b, a, TOY)
    assert drift[0] == drift[1] == 0.0 and drift[2] == pytest.approx(1.0)
    fig = lab.plot_trainable(lab.block_sizes(a, TOY), TOY, 1, head_size=18)
    assert "last 1 of 3 blocks" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="0..3"):
        lab.plot_trainable([1, 2, 3], TOY, 4)


# Lesson 03's gradual unfreezing, written out (section 4), on a toy with a BatchNorm2d in a frozen block.
TOY2D = BackboneSpec("toy2d", "timm", "toy2d", feature_dim=4, head="head",
                     blocks=(("b0",), ("b1",), ("b2",)), mean=(0.5,) * 3, std=(0.5,) * 3)


class Toy2d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b0 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.b1 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.b2(self.b1(self.b0(x))))


def image_loaders():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 3, 6, 6, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True), DataLoader(TensorDataset(x, y), 16)


def plain_gradual_unfreezing(model, spec, schedule, train_loader, val_loader, head_lr, body_lr, step_size):
    """Lesson 03's core cell (section 4) without the prints, early stopping and best-weights copy."""
    criterion = nn.CrossEntropyLoss()
    head = getattr(model, spec.head)
    blocks = [[model.get_submodule(name) for name in names] for names in spec.blocks]
    model.requires_grad_(False)
    head.requires_grad_(True)
    optimizer = torch.optim.SGD([{"params": head.parameters(), "lr": head_lr}], lr=head_lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=0.1)
    hist = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    thawed = 0
    for wanted in schedule:
        while thawed < wanted:
            thawed += 1
            new = [p for module in blocks[-thawed] for p in module.parameters()]
            for p in new:
                p.requires_grad_(True)
            decay = optimizer.param_groups[0]["lr"] / head_lr
            optimizer.add_param_group({"params": new, "lr": body_lr * decay})
        for phase, loader in (("train", train_loader), ("val", val_loader)):
            model.train(phase == "train")
            for module in (m for block in blocks[:len(blocks) - thawed] for m in block):
                module.eval()
            loss_sum, correct = 0.0, 0
            with torch.set_grad_enabled(phase == "train"):
                for inputs, labels in loader:
                    outputs = model(inputs)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                    loss_sum += loss.item() * len(labels)
                    correct += (outputs.argmax(1) == labels).sum().item()
            hist[f"{phase}_loss"].append(loss_sum / len(loader.dataset))
            hist[f"{phase}_acc"].append(correct / len(loader.dataset))
        scheduler.step()
    return hist


def test_lesson_03s_plain_gradual_unfreezing_loop_gives_fine_tunes_history(monkeypatch):
    """The lesson's check in miniature: same seed, same schedule -> the same history.

    Thawing between epochs (requires_grad_ + add_param_group at the decayed backbone rate) and
    frozen BatchNorm kept in eval() must agree with GradualUnfreezing's backbones.freeze
    (FrozenBatchNorm2d), through a StepLR decay that lands before the last thaw.
    """
    monkeypatch.setattr(finetune.backbones, "build", lambda spec, pretrained=True: Toy2d())
    schedule, kwargs = [0, 1, 1, 3, 3], dict(head_lr=0.2, body_lr=0.05, step_size=3)
    train, val = image_loaders()
    training.seed_everything(0)
    model = Toy2d()
    setattr(model, TOY2D.head, nn.Linear(TOY2D.feature_dim, 2))
    plain = plain_gradual_unfreezing(model, TOY2D, schedule, train, val, **kwargs)
    training.seed_everything(0)
    _, helper = finetune.fine_tune(TOY2D, train, val, len(schedule), lr=kwargs["body_lr"], head_lr=kwargs["head_lr"],
                                   schedule=schedule, step_size=kwargs["step_size"], device=torch.device("cpu"),
                                   progress=False)
    assert helper.epochs == len(plain["val_acc"]) == len(schedule)
    for key in ("train_loss", "val_loss"):
        assert getattr(helper, key) == pytest.approx(plain[key], abs=1e-5), key
    assert helper.train_acc == plain["train_acc"] and helper.val_acc == plain["val_acc"]
    assert len(set(plain["train_loss"])) == len(schedule)  # it trained: every epoch's loss differs
