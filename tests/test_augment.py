"""Augmentation pipelines, the view bank, its loader, the experiment runner and its read-outs."""
from __future__ import annotations

import json
import random

import pandas as pd
import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from tlcourse.labs import data_augmentation as lab
from tlcourse import backbones, config, training, transforms

SPEC = backbones.get_spec("efficientnet_lite0")


def picture(seed: int = 0, h: int = 60, w: int = 80) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


# --------------------------------------------------------------------------- pipelines
def test_strength_zero_is_exactly_the_val_pipeline_and_one_is_extreme():
    img = picture()
    assert torch.equal(lab.strength_transform(SPEC, 48, 0.0)(img), transforms.eval_transform(SPEC, 48)(img))
    assert lab.strength_recipe(0.0) == {"min_crop_area": 1.0, "max_crop_area": 1.0, "rotation": 0,
                                            "ops": 1, "magnitude": 0}
    assert lab.strength_recipe(1.0) == {"min_crop_area": 0.01, "max_crop_area": 0.04, "rotation": 180,
                                            "ops": 4, "magnitude": 30}
    steps = lab.strength_transform(SPEC, 48, 1.0).transforms
    ra = next(t for t in steps if isinstance(t, v2.RandAugment))
    assert (ra.num_ops, ra.magnitude) == (4, 30)
    assert next(t for t in steps if isinstance(t, v2.RandomResizedCrop)).scale == (0.01, 0.04)
    areas = [lab.strength_recipe(s / 10)["min_crop_area"] for s in range(11)]
    assert areas == sorted(areas, reverse=True)  # stronger: never larger crops
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lab.strength_recipe(1.5)


def test_stronger_augmentation_moves_pictures_further():
    img = picture(1)
    clean = transforms.eval_transform(SPEC, 48)(img)

    def distance(s: float) -> float:
        outs = lab.draw(lab.strength_transform(SPEC, 48, s), img, 12, seed=0)
        return float(torch.stack([(o - clean).abs().mean() for o in outs]).mean())

    assert distance(0.0) == 0.0
    assert distance(0.1) < distance(0.5) < distance(1.0)


def test_arms_differ_as_documented():
    img = picture(2)
    none = lab.arm_transform("none", SPEC, 48)
    assert not lab.is_random(none)
    assert torch.equal(none(img), none(img))
    for arm in ("classic", "policy"):
        tf = lab.arm_transform(arm, SPEC, 48)
        assert lab.is_random(tf) and tf(img).shape == (3, 48, 48)
    assert any(isinstance(t, v2.RandAugment) for t in lab.arm_transform("policy", SPEC, 48).transforms)
    assert any(isinstance(t, v2.ColorJitter) for t in lab.arm_transform("classic", SPEC, 48).transforms)
    with pytest.raises(ValueError, match="arm must be one of"):
        lab.arm_transform("mixup", SPEC, 48)


def test_compose_builds_what_the_knobs_say():
    plain = lab.compose(32)
    assert not lab.is_random(plain)
    img = picture(3)
    assert plain(img).dtype == torch.uint8 and plain(img).shape == (3, 32, 32)
    full = lab.compose(32, rotation=20, flip=True, translate=0.1, min_area=0.5, jitter=0.3,
                           policy="TrivialAugmentWide")
    kinds = [type(t) for t in full.transforms]
    assert kinds == [v2.RandomResizedCrop, v2.RandomHorizontalFlip, v2.RandomAffine, v2.ColorJitter,
                     v2.TrivialAugmentWide]
    outs = lab.draw(full, img, 3, seed=0)
    assert not torch.equal(outs[0], outs[1])
    assert all(torch.equal(a, b) for a, b in zip(outs, lab.draw(full, img, 3, seed=0)))
    with pytest.raises(ValueError, match="policy"):
        lab.compose(32, policy="GAN")


def test_draw_leaves_the_global_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    lab.draw(v2.RandomRotation(30), picture(), 4, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_mixup_and_cutmix_mix_pictures_and_labels_consistently():
    a = torch.zeros(3, 16, 16, dtype=torch.uint8)
    b = torch.full((3, 16, 16), 255, dtype=torch.uint8)
    batch, labels = torch.stack([a, b, a, b]), torch.tensor([0, 1, 0, 1])
    mixed, soft = lab.mix_batch(batch, labels, "mixup", alpha=1.0, seed=0)
    assert soft.shape == (4, 2) and torch.allclose(soft.sum(1), torch.ones(4))
    # A MixUp picture is the same blend as its label: brightness = share of the white picture ("bees").
    assert torch.allclose(mixed.mean(dim=(1, 2, 3)), soft[:, 1], atol=1e-5)
    cut, soft_c = lab.mix_batch(batch, labels, "cutmix", alpha=1.0, seed=0)
    values = set(cut.unique().tolist())
    assert values <= {0.0, 1.0}  # CutMix pastes pixels, it never blends them
    assert torch.allclose(cut.mean(dim=(1, 2, 3)), soft_c[:, 1], atol=1e-5)  # label = pasted area
    with pytest.raises(ValueError, match="mixup"):
        lab.mix_batch(batch, labels, "blend")


# --------------------------------------------------------------------------- frozen part, tail, bank, loader
def test_frozen_part_then_tail_is_the_whole_network():
    torch.manual_seed(0)
    model = backbones.replace_head(backbones.build(SPEC, pretrained=False), SPEC, 2).eval()
    x = torch.randn(2, 3, 64, 64)
    for k in (0, 1, 2):
        frozen = lab.frozen_part(model, SPEC, k)
        tail = lab.trainable_tail(model, SPEC, k).eval()
        head = tail if k == 0 else tail[-1]
        head.load_state_dict(model.classifier.state_dict())
        with torch.no_grad():
            assert torch.allclose(tail(frozen(x)), model(x), atol=1e-4), k
        assert not any(p.requires_grad for p in frozen.parameters())
        assert all(p.requires_grad for p in tail.parameters())
    with pytest.raises(ValueError, match="trainable_blocks"):
        lab.frozen_part(model, SPEC, SPEC.num_blocks)


def test_one_trainable_block_of_resnet18_is_the_split_lesson_05_writes_out():
    """Lesson 05, section 7: conv1, bn1, relu, maxpool, layer1-layer3 frozen; layer4 trains (random weights)."""
    spec = backbones.get_spec("resnet18")
    torch.manual_seed(0)
    model = backbones.build(spec, pretrained=False).eval()
    plain = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3)
    frozen, tail = lab.frozen_part(model, spec, 1), lab.trainable_tail(model, spec, 1)
    assert spec.blocks[-1] == ("layer4",)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(frozen(x), plain(x))
        assert torch.equal(tail[0](frozen(x)), model.layer4(plain(x)))
    assert backbones.count_params(tail[0]) == backbones.count_params(model.layer4)


def test_view_bank_is_repeatable_and_holds_distinct_views():
    pics = [picture(i, 20, 20) for i in range(5)]
    tf = v2.RandomRotation(90)
    bank = lab.view_bank(nn.Flatten(), pics, tf, views=3, seed=7, progress=False, device=torch.device("cpu"))
    again = lab.view_bank(nn.Flatten(), pics, tf, views=3, seed=7, progress=False, device=torch.device("cpu"))
    assert bank.shape == (3, 5, 3 * 20 * 20) and bank.dtype == torch.float32
    assert torch.equal(bank, again)
    assert not torch.equal(bank[0], bank[1])
    with pytest.raises(ValueError, match="views"):
        lab.view_bank(nn.Flatten(), pics, tf, views=0)


def test_view_loader_reads_the_next_view_each_pass_and_every_sample_once():
    bank = torch.arange(3 * 5, dtype=torch.float32).view(3, 5, 1)  # view v, sample i -> 5 v + i
    labels = torch.tensor([0, 1, 0, 1, 0])
    loader = ViewLoader = lab.ViewLoader(bank, labels, batch_size=2)
    assert len(ViewLoader) == 3
    for p in range(4):
        xs, ys = zip(*loader)
        x, y = torch.cat(xs).flatten(), torch.cat(ys)
        assert sorted(x.tolist()) == [5.0 * (p % 3) + i for i in range(5)]
        assert torch.equal(y, labels[(x - 5 * (p % 3)).long()])  # labels travel with their samples
    with pytest.raises(ValueError, match="labels"):
        lab.ViewLoader(bank, labels[:3])


def test_view_loader_trains_with_fit():
    torch.manual_seed(0)
    x = torch.randn(4, 40, 6)  # 4 noisy views of 40 samples
    y = (x[0, :, 0] > 0).long()
    x[..., 0] = x[0, :, 0]  # the label's feature is the same in every view
    head = nn.Linear(6, 2)
    h = training.fit(head, lab.ViewLoader(x, y, 8), [(x[0], y)],
                     torch.optim.SGD(head.parameters(), lr=0.5), 6, progress=False)
    assert h.best_val_acc > 0.9


# --------------------------------------------------------------------------- read-outs
def frame(rows):
    return pd.DataFrame(rows, columns=["arm", "n_train", "seed", "val_acc"])


def test_paired_gains_use_the_same_subset_and_give_honest_verdicts():
    rows = []
    for s, base in enumerate([0.70, 0.80, 0.90]):  # the subsets differ a lot ...
        rows += [("none", 8, s, base), ("helps", 8, s, base + 0.05), ("noise", 8, s, base + (0.02, -0.02, 0.0)[s]),
                 ("hurts", 8, s, base - 0.10 + 0.01 * s)]
    g = lab.paired_gains(frame(rows)).set_index("arm")
    # ... but pairing by seed sees through that: a constant +0.05 is a clear gain.
    assert g.loc["helps", "verdict"] == "helps" and g.loc["helps", "gain"] == pytest.approx(0.05)
    assert g.loc["noise", "verdict"] == "within noise"
    assert g.loc["hurts", "verdict"] == "hurts"
    s = lab.summarize(frame(rows)).set_index("arm")
    assert s.loc["none", "mean"] == pytest.approx(0.8) and s.loc["none", "seeds"] == 3


def test_plots_draw_one_line_per_arm():
    rows = [(a, n, s, 0.8 + 0.01 * s) for a in ("none", "classic", "policy") for n in (8, 16) for s in range(2)]
    fig = lab.plot_by_size(frame(rows))
    assert len(fig.axes[0].lines) >= 3 and fig.axes[0].get_legend() is not None
    rows = [(str(st), 16, s, 0.9 - st / 5 + 0.01 * s) for st in (0, 0.5, 1.0) for s in range(2)]
    fig = lab.plot_strength(frame(rows))
    assert "best: strength 0" in fig.axes[0].get_legend().get_texts()[0].get_text()


# --------------------------------------------------------------------------- the runner on real data
@pytest.mark.slow
def test_lab_runs_every_arm_size_and_seed_and_caches_the_results(real_root, monkeypatch):
    runner = lab.AugmentLab(SPEC, size=64, progress=False)
    arms = {a: lab.arm_transform(a, SPEC, 64) for a in ("none", "policy")}
    df = runner.run(arms, sizes=[2, 4], seeds=[0, 1], views=2, epochs=3)
    assert len(df) == 2 * 2 * 2 and set(df.arm) == set(arms)
    assert sorted(df.n_train.unique()) == [4, 8]
    assert (df[df.arm == "none"].views == 1).all() and (df[df.arm == "policy"].views == 2).all()
    assert df.val_acc.between(0, 1).all()
    saved = list((config.cache_dir() / "augment").glob("experiment-*.json"))
    assert len(saved) == 1 and len(json.loads(saved[0].read_text())["rows"]) == 8
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("cached results must not retrain"))
    pd.testing.assert_frame_equal(runner.run(arms, sizes=[2, 4], seeds=[0, 1], views=2, epochs=3), df)
    with pytest.raises(pytest.fail.Exception):  # other settings: a new experiment
        runner.run(arms, sizes=[2, 4], seeds=[0, 1], views=2, epochs=4)


# --------------------------------------------------------------------------- MixUp / CutMix in a training step
def _toy_pictures(n: int = 8):
    """Pictures whose class is their brightness: dark = 0, bright = 1."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    pics = [(torch.randint(0, 90, (3, 8, 8), generator=g) + 160 * int(c)).to(torch.uint8) for c in labels]
    return pics, labels


def test_train_mixed_repeats_with_a_seed_and_leaves_the_tail_alone():
    pics, labels = _toy_pictures()
    tail = nn.Sequential(nn.Linear(3 * 8 * 8, 4), nn.ReLU(), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in tail.state_dict().items()}
    tf = v2.Compose([v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True)])
    mix = v2.RandomChoice([v2.MixUp(num_classes=2), v2.CutMix(num_classes=2)])
    a = lab.train_mixed(nn.Flatten(), tail, pics, labels, tf, 3, mix=mix, batch_size=4, seed=1)
    b = lab.train_mixed(nn.Flatten(), tail, pics, labels, tf, 3, mix=mix, batch_size=4, seed=1)
    c = lab.train_mixed(nn.Flatten(), tail, pics, labels, tf, 3, mix=mix, batch_size=4, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a[-1].weight, c[-1].weight)
    assert all(torch.equal(v, tail.state_dict()[k]) for k, v in before.items())  # trains a copy


def test_train_mixed_takes_soft_labels_and_learns():
    pics, labels = _toy_pictures(16)
    tf = v2.ToDtype(torch.float32, scale=True)
    x = torch.stack([tf(p) for p in pics]).flatten(1)
    seen = []

    def spy(xb, yb):
        out = v2.MixUp(alpha=1.0, num_classes=2)(xb, yb)
        seen.append(out[1])
        return out

    net = lab.train_mixed(nn.Flatten(), nn.Linear(3 * 8 * 8, 2), pics, labels, tf, 30, lr=0.05, mix=spy,
                              batch_size=8)
    assert all(y.shape == (8, 2) and torch.allclose(y.sum(1), torch.ones(8)) for y in seen)
    assert lab.head_accuracy(net, x, labels) == 1.0


def test_mixing_runs_table_and_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path))
    pics, labels = _toy_pictures(12)
    tf = v2.ToDtype(torch.float32, scale=True)
    val_x = torch.stack([tf(p) for p in pics]).flatten(1)
    arms = {"plain": (tf, None), "mixup": (tf, v2.MixUp(num_classes=2))}
    kw = dict(per_class=2, seeds=[0, 1], epochs=2, batch_size=4, key="toy", progress=False)
    df = lab.mixing_runs(nn.Flatten(), nn.Linear(192, 2), pics, labels.tolist(), val_x, labels, arms, **kw)
    assert len(df) == 4 and set(df.arm) == set(arms) and (df.n_train == 4).all()
    assert df.val_acc.between(0, 1).all()
    monkeypatch.setattr(lab, "train_mixed", lambda *a, **k: pytest.fail("cached results must not retrain"))
    pd.testing.assert_frame_equal(
        lab.mixing_runs(nn.Flatten(), nn.Linear(192, 2), pics, labels.tolist(), val_x, labels, arms, **kw), df)
    assert set(lab.paired_gains(df, baseline="plain").arm) == {"mixup"}


def test_mixing_runs_cache_is_keyed_by_the_datas_fingerprint(fake_root, monkeypatch):
    """A changed data file (default: hymenoptera's train and val folders) invalidates the entry."""
    pics, labels = _toy_pictures(8)
    tf = v2.ToDtype(torch.float32, scale=True)
    val_x = torch.stack([tf(p) for p in pics]).flatten(1)
    kw = dict(per_class=2, seeds=[0], epochs=1, batch_size=4, key="toy", progress=False)
    calls = []
    real = lab.train_mixed

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(lab, "train_mixed", counting)
    run = lambda **extra: lab.mixing_runs(nn.Flatten(), nn.Linear(192, 2), pics, labels.tolist(),  # noqa: E731
                                          val_x, labels, {"plain": (tf, None)}, **kw, **extra)
    run()
    run()
    assert len(calls) == 1  # warm: read back
    picture = next((fake_root / "hymenoptera_data" / "val" / "bees").iterdir())
    picture.write_bytes(picture.read_bytes() + b"\0")  # one val file changes
    run()
    assert len(calls) == 2  # noticed: rebuilt
    other = fake_root / "elsewhere.bin"  # an explicit data list is fingerprinted the same way
    other.write_bytes(b"a")
    run(data=[other])
    run(data=[other])
    assert len(calls) == 3
    other.write_bytes(b"ab")
    run(data=[other])
    assert len(calls) == 4


def test_training_without_per_epoch_validation_gives_the_same_last_accuracy():
    class Lab(lab.AugmentLab):  # the parts of AugmentLab that train() uses, without the data
        def __init__(self):
            torch.manual_seed(0)
            self.spec, self.trainable_blocks, self.classes = SPEC, 0, ["a", "b"]
            self.device = torch.device("cpu")
            self.model = backbones.build(SPEC, pretrained=False)
            self.val_x, self.val_y = torch.randn(20, SPEC.feature_dim), torch.arange(20) % 2

    augment = Lab()  # not `lab`: that name is the module, used by the class statement above
    bank, labels = torch.randn(3, 12, SPEC.feature_dim), torch.arange(12) % 2
    full = augment.train(bank, labels, 4, seed=3)
    last = augment.train(bank, labels, 4, seed=3, val_every_epoch=False)
    assert last.val_acc == [full.val_acc[-1]]
    assert last.train_loss == pytest.approx(full.train_loss, rel=1e-5)  # same steps (float noise only)


def _written_out_train_mixed(frozen, tail, pictures, labels, transform, epochs, lr, mix, batch_size, seed):
    """Lesson 05's cell (and train_mixed before it went through fit), statement for statement."""
    import copy

    torch.manual_seed(seed)
    net = copy.deepcopy(tail)
    head = net[-1] if isinstance(net, nn.Sequential) else net
    head.reset_parameters()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    frozen.eval()
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(labels)).split(batch_size):
            x = torch.stack([transform(pictures[i]) for i in batch])
            y = labels[batch]
            if mix is not None:
                x, y = mix(x, y)
            with torch.no_grad():
                h = frozen(x)
            loss = loss_fn(net(h), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net


@pytest.mark.parametrize("mix", [None, v2.RandomChoice([v2.MixUp(num_classes=2), v2.CutMix(num_classes=2)])])
def test_train_mixed_through_fit_is_the_written_out_loop(mix):
    pics, labels = _toy_pictures(10)
    tail = nn.Sequential(nn.Linear(3 * 8 * 8, 4), nn.ReLU(), nn.Linear(4, 2))
    tf = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomErasing(), v2.ToDtype(torch.float32, scale=True)])
    torch.manual_seed(7)
    a = lab.train_mixed(nn.Flatten(), tail, pics, labels, tf, 3, 0.05, mix, batch_size=4, seed=3)
    after_a = torch.get_rng_state()
    torch.manual_seed(7)
    b = _written_out_train_mixed(nn.Flatten(), tail, pics, labels, tf, 3, 0.05, mix, 4, 3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert torch.equal(after_a, torch.get_rng_state())  # the same draws, in the same order


def test_mixed_batches_run_the_frozen_part_in_eval_mode_without_gradients():
    frozen = nn.Sequential(nn.Flatten(), nn.Dropout(0.5))
    frozen.train()
    pics, labels = _toy_pictures(6)
    batches = lab.MixedBatches(frozen, pics, labels, v2.ToDtype(torch.float32, scale=True), batch_size=4)
    with torch.enable_grad():
        out = list(batches)
    assert len(batches) == 2 and [len(y) for _, y in out] == [4, 2]
    assert not frozen.training and not any(h.requires_grad for h, _ in out)
    flat = torch.stack([v2.ToDtype(torch.float32, scale=True)(p) for p in pics]).flatten(1)
    assert all(any(torch.equal(r, f) for f in flat) for h, _ in out for r in h)  # dropout off: unchanged rows


@pytest.mark.parametrize("fn", ["draw", "mix_batch"])
def test_draws_leave_every_generator_as_it_was(fn):
    random_state = (random.getstate(), torch.get_rng_state())
    if fn == "draw":
        lab.draw(v2.RandomRotation(30), picture(), 3, seed=2)
    else:
        lab.mix_batch(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), seed=2)
    assert random.getstate() == random_state[0] and torch.equal(random_state[1], torch.get_rng_state())
