"""Heads on cached features: training, scikit-learn, cache vs recompute, cut depth, preprocessing."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tlcourse import backbones, features
from tlcourse import probes
from tlcourse.labs import feature_extraction as lab
from tlcourse.errors import InvalidSettingError


def blobs(n: int = 120, dim: int = 8, seed: int = 0) -> tuple[probes.FeatureSet, probes.FeatureSet]:
    """Two separable classes in ``dim`` dimensions, split 2:1 into train and val."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, dim, generator=g) + 4.0 * y[:, None] * torch.eye(dim)[0]
    cut = 2 * n // 3
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_heads_learn_and_keep_the_last_epoch(kind):
    train, val = blobs()
    head, h = lab.train_head(kind, train, val, epochs=15, lr=0.05, hidden=16)
    assert h.epochs == 15 and h.val_acc[-1] > 0.8
    assert probes.accuracy(head, *val) == pytest.approx(h.val_acc[-1])  # the last epoch, not the best


def test_same_seed_same_head():
    train, val = blobs()
    a = lab.train_head("linear", train, val, epochs=3, lr=1e-2)[0]
    b = lab.train_head("linear", train, val, epochs=3, lr=1e-2)[0]
    assert torch.equal(a.weight, b.weight)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_train_head_is_lesson_01s_hand_written_loop(kind):
    """Lesson 01, section 3 writes this loop out (``train_loop``) and trains a linear head and an
    ``nn.Sequential`` MLP with it; train_head(seed=0) must give the same heads (dropout included)."""
    from torch.utils.data import DataLoader

    train, val = blobs()
    torch.manual_seed(0)
    dim = train[0].shape[1]
    head = nn.Linear(dim, 2) if kind == "linear" else \
        nn.Sequential(nn.Linear(dim, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(*train), batch_size=32, shuffle=True)
    val_acc = []
    for _ in range(4):
        head.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(head(x), y).backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():  # a DataLoader for val too: each one drawn from takes a seed from torch's RNG
            correct = sum((head(x).argmax(1) == y).sum().item() for x, y in DataLoader(TensorDataset(*val), 256))
        val_acc.append(correct / len(val[1]))
    helper, h = lab.train_head(kind, train, val, epochs=4, lr=1e-2, hidden=16, seed=0)
    for mine, theirs in zip(head.parameters(), helper.parameters(), strict=True):
        torch.testing.assert_close(theirs, mine, rtol=1e-5, atol=1e-6)
    assert h.val_acc == pytest.approx(val_acc)


def test_logreg_and_few_shot():
    train, val = blobs(n=300)
    clf = probes.fit_logreg(train)
    assert probes.accuracy(clf, *val) > 0.8
    assert probes.predict_labels(clf, val[0]).shape == val[1].shape
    accs = probes.few_shot_accuracy(train, val, per_class=5, draws=4, seed=3)
    assert len(accs) == 4 and accs == probes.few_shot_accuracy(train, val, per_class=5, draws=4, seed=3)


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(epochs=2.5), dict(lr=0.0), dict(lr="fast")])
def test_bad_knobs_are_refused(bad):
    train, val = blobs()
    with pytest.raises(InvalidSettingError):
        lab.train_head("linear", train, val, **{"epochs": 2, "lr": 1e-3, **bad})


def test_bad_head_kind_and_mismatched_features():
    train, val = blobs()
    with pytest.raises(InvalidSettingError, match="linear"):
        lab.make_head("svm", 8, 2)
    with pytest.raises(ValueError, match="same depth"):
        lab.train_head("linear", train, (val[0][:, :4], val[1]), epochs=1)
    with pytest.raises(InvalidSettingError):
        probes.few_shot_accuracy(train, val, per_class=0)


def test_frozen_features_stay_frozen_in_train_mode():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1))
    frozen = lab.FrozenFeatures(net)
    frozen.train()
    assert not net[1].training and not any(p.requires_grad for p in frozen.parameters())
    before = net[1].running_mean.clone()
    out = frozen(torch.randn(5, 3, 8, 8))
    assert out.shape == (5, 4) and not out.requires_grad
    assert torch.equal(net[1].running_mean, before)  # batch statistics did not move


def test_cached_and_recomputed_epochs_give_the_same_head():
    torch.manual_seed(0)
    # BatchNorm in the backbone: a run that switched it to training mode would differ from the cache
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net[1].running_mean.uniform_(-1, 1)
    x, y = torch.randn(48, 3, 10, 10), torch.arange(48) % 2
    x[y == 1, 0] += 1.0
    data = TensorDataset(x, y)
    feats = features.extract_features(net, data, progress=False)
    head = nn.Linear(6, 2)
    start = head.weight.clone()
    runs = lab.compare_epoch_cost(net, head, (data, data), (feats, feats), epochs=2, lr=1e-2, batch_size=8)
    assert set(runs) == {"cached", "recomputed"}
    for key in ("val_acc", "train_loss", "val_loss"):
        assert getattr(runs["cached"], key) == pytest.approx(getattr(runs["recomputed"], key), abs=1e-5)
    assert all(len(h.epoch_time) == 2 and min(h.epoch_time) > 0 for h in runs.values())
    assert torch.equal(head.weight, start)  # the caller's head is left untouched


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_features_by_depth_match_truncation(name):
    spec = backbones.get_spec(name)
    torch.manual_seed(0)
    model = backbones.build(spec, pretrained=False).eval()
    data = TensorDataset(torch.randn(3, 3, 64, 64), torch.tensor([0, 1, 0]))
    by_depth, labels = features.features_by_depth(model, spec, data, progress=False)
    assert sorted(by_depth) == list(range(1, spec.num_blocks + 1)) and labels.tolist() == [0, 1, 0]
    for depth in (1, spec.num_blocks // 2, spec.num_blocks):
        cut = features.extract_features(backbones.truncate(model, spec, depth), data, progress=False)[0]
        assert torch.allclose(by_depth[depth], cut, atol=1e-5)
    assert by_depth[spec.num_blocks].shape[1] == spec.feature_dim


def test_preprocessing_mistakes_and_imagenet_accuracy():
    spec = backbones.get_spec("efficientnet_lite0")
    tfs = lab.preprocessing_mistakes(spec, 96)
    img = torch.randint(0, 256, (3, 120, 150), dtype=torch.uint8)
    right, raw = tfs["matching"](img), tfs["pixels 0-255"](img)
    assert right.shape == raw.shape == (3, 96, 96) and tfs["too small (64 px)"](img).shape == (3, 64, 64)
    assert right.abs().max() <= 1.01 < raw.abs().max()
    assert not torch.allclose(tfs["another mean/std"](img), right)

    class Says(nn.Module):  # a "model" that names ImageNet class 310 ('ant') for every image
        def forward(self, x):
            return nn.functional.one_hot(torch.full((len(x),), 310), 1000).float()

    acc = lab.imagenet_accuracy(Says(), [img] * 4, [0, 0, 1, 1], tfs["matching"], [310, 309])
    assert acc == 0.5
    # in batches that do not divide the images evenly, every image still counts once
    assert lab.imagenet_accuracy(Says(), [img] * 5, [0, 0, 0, 1, 1], tfs["matching"], [310, 309], batch_size=2) == 0.6


def test_as_table():
    text = lab.as_table({"linear": {"val acc": 0.9}, "a long name": {"val acc": 1.0}}, first="way")
    assert text.splitlines()[0].startswith("way") and "1.000" in text


@pytest.mark.slow
def test_random_weights_miss_the_lesson_bar(real_root):
    """Lesson 01 asserts val accuracy >= 0.90; random backbone weights stay far below it.

    Kept cheap: the val split only (5-fold cross-validation) at 96 px.
    """
    from sklearn.model_selection import cross_val_score

    spec = backbones.get_spec("efficientnet_lite0")
    acc = {}
    for pretrained in (True, False):
        x, y = features.hymenoptera_features(spec, "val", 96, pretrained=pretrained, progress=False)
        clf = probes.fit_logreg((x, y)).set_params(max_iter=5000)
        acc[pretrained] = cross_val_score(clf, x.numpy(), y.numpy(), cv=5).mean()
    assert acc[True] >= 0.85, acc  # even at 96 px and ~122 training images, pretrained features work
    assert acc[False] <= 0.80 and acc[True] - acc[False] >= 0.15, acc  # random weights: far below 0.90


@pytest.mark.slow
def test_hymenoptera_by_depth_is_cached_and_matches_the_shared_features(real_root, private_cache):
    spec = backbones.get_spec("efficientnet_lite0")
    by_depth, labels = features.hymenoptera_by_depth(spec, "val", 64, progress=False)
    assert len(labels) == 153 and sorted(by_depth) == list(range(1, spec.num_blocks + 1))
    files = list((private_cache / "features").glob("*every-depth*"))
    assert len(files) == 1
    again, _ = features.hymenoptera_by_depth(spec, "val", 64, progress=False)  # from the cache
    assert torch.equal(again[3], by_depth[3])
    full, full_labels = features.hymenoptera_features(spec, "val", 64, progress=False)
    assert torch.equal(full_labels, labels)
    assert torch.allclose(by_depth[spec.num_blocks], full, atol=1e-4)
