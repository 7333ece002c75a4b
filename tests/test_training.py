"""The fit loop: learning, early stopping, best checkpoint, resume, repeatability, safe loading."""
from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import training
from tlcourse.errors import CourseError


def problem(seed: int = 0, n: int = 96):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True), DataLoader(TensorDataset(x, y), 32)


def model_and_opt(lr: float = 0.1):
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def run(epochs=6, **kw):
    training.seed_everything(0)
    train, val = problem()
    model, opt = model_and_opt()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, training.fit(model, train, val, opt, epochs, scheduler=sched, progress=False, **kw)


def test_fit_learns_and_records_history():
    model, h = run()
    assert h.epochs == 6 and len(h.val_acc) == len(h.lr) == 6
    assert h.val_acc[-1] > 0.85 and h.train_loss[-1] < h.train_loss[0]
    assert h.lr[0] == 0.1 and h.lr[2] == 0.05  # StepLR stepped once per epoch


def test_same_seed_same_metrics_on_cpu():
    assert run()[1].to_dict()["val_loss"] == run()[1].to_dict()["val_loss"]


def test_early_stopping_and_best_weights_restored(tmp_path):
    training.seed_everything(0)
    train, val = problem()
    model, opt = model_and_opt(lr=0.0)  # cannot improve after epoch 1
    h = training.fit(model, train, val, opt, 20, patience=2, checkpoint_dir=tmp_path, progress=False)
    assert h.stopped_early and h.epochs == 3 and h.best_epoch == 0
    best = training.load_checkpoint(tmp_path / "best.pt")["model"]
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    _, full = run(epochs=6)

    class Interrupt:
        def __call__(self, history):
            if history.epochs == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(epochs=6, checkpoint_dir=tmp_path, callbacks=[Interrupt()])
    # a new session: new objects, same code, resume=True
    train, val = problem()
    torch.manual_seed(123)  # whatever the RNG is now, the checkpoint restores it
    model, opt = model_and_opt()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    resumed = training.fit(model, train, val, opt, 6, scheduler=sched, checkpoint_dir=tmp_path,
                           resume=True, progress=False)
    assert resumed.val_loss == pytest.approx(full.val_loss, abs=1e-6)
    assert resumed.lr == full.lr


def test_checkpoint_of_another_architecture_is_explained(tmp_path):
    training.save_checkpoint(tmp_path / "w.pt", model=nn.Linear(3, 2).state_dict())
    with pytest.raises(CourseError, match="does not fit this model"):
        training.load_weights(nn.Linear(6, 2), tmp_path / "w.pt")


class Evil:
    def __reduce__(self):
        return (print, ("this ran code while loading",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(CourseError, match="not a plain checkpoint"):
        training.load_checkpoint(path)
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CourseError):
        training.load_weights(nn.Linear(6, 2), path)


def test_bad_arguments_are_clear():
    train, val = problem()
    model, opt = model_and_opt()
    with pytest.raises(ValueError, match="epochs"):
        training.fit(model, train, val, opt, 0, progress=False)
    empty = DataLoader(TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(CourseError, match="empty"):
        training.fit(model, empty, val, opt, 1, progress=False)


def test_dict_batches_and_predict():
    class Keyword(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 2)

        def forward(self, features):
            return self.lin(features)

    x = torch.randn(40, 6)
    y = (x[:, 0] > 0).long()
    data = [{"features": x[i:i + 8], "labels": y[i:i + 8]} for i in range(0, 40, 8)]
    model = Keyword()
    h = training.fit(model, data, data, torch.optim.Adam(model.parameters(), 0.05), 15, progress=False)
    logits, labels = training.predict(model, data)
    assert logits.shape == (40, 2) and torch.equal(labels, y) and h.best_val_acc > 0.8


def test_device_choice_is_overridable(monkeypatch):
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu")
    assert training.pick_device().type == "cpu"


def train_model(model, criterion, optimizer, scheduler, dataloaders, num_epochs, patience=None):
    """Lesson 02's hand-written loop (section 2), verbatim but for the prints and the timing."""
    import copy

    sizes = {phase: len(loader.dataset) for phase, loader in dataloaders.items()}
    best_wts, best_acc, best_epoch = copy.deepcopy(model.state_dict()), 0.0, 0
    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    for epoch in range(num_epochs):
        for phase in ["train", "val"]:
            model.train() if phase == "train" else model.eval()
            running_loss, running_corrects = 0.0, 0
            for inputs, labels in dataloaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                running_corrects += (outputs.argmax(1) == labels).sum().item()
            if phase == "train":
                scheduler.step()
            history[f"{phase}_loss"].append(running_loss / sizes[phase])
            history[f"{phase}_acc"].append(running_corrects / sizes[phase])
            if phase == "val" and history["val_acc"][-1] > best_acc:
                best_acc, best_epoch = history["val_acc"][-1], epoch
                best_wts = copy.deepcopy(model.state_dict())
        if patience is not None and epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_wts)
    return model, history


def bn_model_and_opt():
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


@pytest.mark.parametrize("patience", [None, 1])
def test_fit_reproduces_lesson_02s_hand_written_loop(patience):
    """The lesson's check cell in miniature: same seed, same batches -> the same history.

    BatchNorm (train vs eval), dropout (the same random numbers in the same order), StepLR,
    early stopping and the best-weights copy all have to agree.
    """
    def run(use_fit):
        training.seed_everything(0)
        train, val = problem()
        model, opt = bn_model_and_opt()
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        if use_fit:
            h = training.fit(model, train, val, opt, 8, scheduler=sched, patience=patience,
                             device=torch.device("cpu"), progress=False)
            return model, h.to_dict()
        return train_model(model, nn.CrossEntropyLoss(), opt, sched, {"train": train, "val": val}, 8, patience)

    hand_model, hand = run(False)
    fit_model, fitted = run(True)
    assert len(fitted["train_loss"]) == len(hand["train_loss"])
    for key in ("train_loss", "val_loss"):
        assert fitted[key] == pytest.approx(hand[key], abs=1e-5)
    assert fitted["train_acc"] == hand["train_acc"] and fitted["val_acc"] == hand["val_acc"]
    assert all(torch.equal(v, fit_model.state_dict()[k]) for k, v in hand_model.state_dict().items())
    assert training.History.from_dict(hand).best_epoch == fitted["best_epoch"]


def test_history_add_epoch_routes_fields_and_extra_and_metric_reads_both():
    h = training.History()
    assert h.add_epoch(epoch_time=1.0, train_loss=0.9, val_acc=0.5, domain_acc=0.8, epochs=3.0)
    assert not h.add_epoch(epoch_time=2.0, train_loss=0.7, val_acc=0.4, domain_acc=0.6, lr=None)
    assert h.train_loss == [0.9, 0.7] and h.val_acc == [0.5, 0.4] and h.lr == []  # None: not measured
    assert h.extra == {"domain_acc": [0.8, 0.6], "epochs": [3.0]}  # a name that is no list field goes to extra
    assert h.metric("train_loss") is h.train_loss and h.metric("domain_acc") == [0.8, 0.6]
    assert h.metric("never recorded") == [] and h.metric("best_epoch") == []  # not a per-epoch list
    assert (h.epochs, h.best_epoch, h.best_val_acc) == (2, 0, 0.5)


def test_metrics_stay_on_the_device_until_the_epoch_ends(host_reads):
    """No host read per batch (on a GPU each one waits for the device): the same few reads for 2 or 12 batches."""
    reads = host_reads("tlcourse.training", ("cpu", "item", "tolist", "__float__", "__int__"))
    counts = []
    for n in (32, 192):  # 2 and 12 batches of 16
        reads.clear()
        training.seed_everything(0)
        x = torch.randn(n, 6)
        model, opt = model_and_opt()
        loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
        loss, acc = training.run_epoch(model, loader, nn.CrossEntropyLoss(), torch.device("cpu"), opt, progress=False)
        counts.append(sorted(reads))
    assert counts[0] == counts[1] and "cpu" not in counts[0] and len(counts[0]) <= 5, counts  # the sums, once


def test_val_only_after_the_last_epoch_trains_the_same():
    def go(**kw):  # a val set of plain batches: a pass over it draws no random numbers (a DataLoader does)
        training.seed_everything(0)
        train, val = problem()
        model, opt = model_and_opt()
        return training.fit(model, train, list(val), opt, 6, progress=False, **kw)

    every, last = go(), go(val_every_epoch=False)
    assert last.train_loss == every.train_loss and last.train_acc == every.train_acc
    assert last.val_acc == every.val_acc[-1:] and last.val_loss == every.val_loss[-1:]
    assert last.best_epoch == 5 and last.best_val_acc == every.val_acc[-1] and last.epochs == 6


def test_fit_without_a_val_loader_only_trains():
    training.seed_everything(0)
    train, _ = problem()
    model, opt = model_and_opt()
    h = training.fit(model, train, None, opt, 3, progress=False, restore_best=False)
    assert len(h.train_loss) == 3 and h.val_acc == [] and h.best_epoch == -1
    with pytest.raises(ValueError, match="restore_best"):
        training.fit(model, train, None, opt, 1, progress=False)
    with pytest.raises(ValueError, match="patience"):
        training.fit(model, train, None, opt, 1, progress=False, restore_best=False, patience=2)
    with pytest.raises(ValueError, match="patience"):
        training.fit(model, train, train, opt, 1, progress=False, val_every_epoch=False, patience=2)
