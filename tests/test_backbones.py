"""Backbone registry: real weights, clear errors offline, the same surgery for every family."""
from __future__ import annotations

import pytest
import torch

from tlcourse import backbones, images, transforms
from tlcourse.errors import ModelUnavailableError

FAMILIES = list(backbones.BACKBONES)


def test_registry_entries_are_complete():
    assert {"resnet18", "resnet50", "efficientnet_lite0"} <= set(backbones.BACKBONES)
    for spec in backbones.BACKBONES.values():
        assert spec.num_blocks >= 5 and spec.feature_dim > 0 and len(spec.mean) == 3


def test_unknown_backbone_names_the_choices():
    with pytest.raises(KeyError, match="efficientnet_lite0"):
        backbones.get_spec("vgg99")


@pytest.mark.parametrize("name", FAMILIES)
def test_surgery_works_the_same_for_every_family(name):
    spec = backbones.get_spec(name)
    model = backbones.build(spec, pretrained=False)
    assert len(backbones.blocks(model, spec)) == spec.num_blocks
    backbones.replace_head(model, spec, num_classes=3)
    x = torch.randn(2, 3, 64, 64)
    assert model.eval()(x).shape == (2, 3)
    backbones.freeze(model, spec, trainable_blocks=0)
    head = getattr(model, spec.head)
    assert backbones.count_trainable(model) == sum(p.numel() for p in head.parameters())
    backbones.freeze(model, spec, trainable_blocks=1)
    last = backbones.blocks(model, spec)[-1]
    assert all(p.requires_grad for p in last.parameters())
    assert not any(p.requires_grad for p in backbones.blocks(model, spec)[0].parameters())
    backbones.freeze(model, spec, trainable_blocks=spec.num_blocks)
    assert backbones.count_trainable(model) == backbones.count_params(model)
    with pytest.raises(ValueError, match="trainable_blocks"):
        backbones.freeze(model, spec, trainable_blocks=spec.num_blocks + 1)
    with torch.inference_mode():
        dims = [backbones.truncate(model, spec, d).eval()(torch.zeros(1, 3, 64, 64)).shape[1]
                for d in range(1, spec.num_blocks + 1)]
    assert dims[-1] == spec.feature_dim and len(set(dims)) > 2
    backbones.remove_head(model, spec)
    assert model(x).shape == (2, spec.feature_dim)


def test_frozen_blocks_keep_batchnorm_statistics():
    spec = backbones.get_spec("efficientnet_lite0")
    model = backbones.replace_head(backbones.build(spec, pretrained=False), spec, 2)
    backbones.freeze(model, spec, trainable_blocks=1)
    first = backbones.blocks(model, spec)[0]
    before = {k: v.clone() for k, v in first.state_dict().items()}
    model.train()(torch.randn(4, 3, 64, 64) * 5 + 3)
    after = first.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_efficientnet_lite0_weights_are_real_imagenet_weights(real_root):
    """Zero-shot: ImageNet class 310 is 'ant', 309 is 'bee'. Random weights score ~0."""
    spec = backbones.get_spec("efficientnet_lite0")
    val = images.hymenoptera("val", transforms.eval_transform(spec))
    pick = [i for c in (0, 1) for i in [j for j, t in enumerate(val.targets) if t == c][:10]]
    x = torch.stack([val[i][0] for i in pick])
    truth = torch.tensor([310 if val.targets[i] == 0 else 309 for i in pick])
    with torch.inference_mode():
        pretrained = (backbones.build(spec).eval()(x).argmax(1) == truth).float().mean()
        random = (backbones.build(spec, pretrained=False).eval()(x).argmax(1) == truth).float().mean()
    assert pretrained >= 0.7 and random <= 0.1


def test_order_mapping_refuses_a_shifted_order():
    source = {"a.weight": torch.zeros(2, 3), "a.bias": torch.zeros(2), "b.running_mean": torch.zeros(2)}
    target = {"x.weight": torch.zeros(2, 3), "x.running_mean": torch.zeros(2), "y.bias": torch.zeros(2)}
    with pytest.raises(ValueError, match="cannot map"):
        backbones.map_state_dict_by_order(source, target)
    with pytest.raises(ValueError, match="tensors"):
        backbones.map_state_dict_by_order(source, {"x.weight": torch.zeros(2, 3)})


def test_resnet_offline_gives_clear_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    if backbones.is_available_offline("resnet18"):
        pytest.skip("ResNet-18 weights are present here")

    def no_network(*args, **kwargs):  # what an offline machine answers
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ModelUnavailableError) as err:
        backbones.build("resnet18")
    text = str(err.value)
    assert "fetch_data.py --weights resnet18" in text
    assert "TLCOURSE_BACKBONE=efficientnet_lite0" in text
    assert str(backbones.torch_hub_dir()) in text


def test_default_backbone_is_announced_and_real(tmp_path, monkeypatch):
    monkeypatch.delenv("TLCOURSE_BACKBONE", raising=False)
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    assert backbones.default_name() == "efficientnet_lite0"
    monkeypatch.setenv("TLCOURSE_BACKBONE", "resnet50")
    assert backbones.default_name() == "resnet50"
    assert "not a ResNet" in backbones.describe(backbones.get_spec("efficientnet_lite0"))


def _load_pretrained(spec, pretrained=True):
    """Lesson 00's ``load_pretrained`` (section 1), copied from its core cell."""
    import timm
    import torchvision
    from torchvision.models import ResNet18_Weights

    if spec.family == "torchvision":
        return torchvision.models.resnet18(weights=ResNet18_Weights.DEFAULT if pretrained else None)
    net = timm.create_model("tf_efficientnet_lite0")
    if pretrained:
        net.load_state_dict(backbones.efficientnet_lite0_state_dict(net))
    return net


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_build_is_lesson_00s_load_pretrained(name, tmp_path, monkeypatch):
    """build(spec) gives the weights that lesson 00's plain torchvision/timm function loads.

    ResNet-18 offline: a seeded random state dict stands in for the download, under torchvision's
    file name in the data root (as tests/standin.py does); both ways must read that same file.
    """
    import torchvision.models as tvm

    spec = backbones.get_spec(name)
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    if spec.family == "torchvision":
        weights = backbones.torch_hub_dir() / tvm.ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[-1]
        weights.parent.mkdir(parents=True)
        torch.manual_seed(0)
        torch.save(tvm.resnet18(weights=None).state_dict(), weights)
    hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch" / "hub"))  # the lesson's set_dir line
    try:
        ours = _load_pretrained(spec).state_dict()
    finally:
        torch.hub.set_dir(hub)
    packaged = backbones.build(spec).state_dict()
    assert list(ours) == list(packaged)
    assert all(torch.equal(ours[k], packaged[k]) for k in ours)
    random = _load_pretrained(spec, pretrained=False).state_dict()
    assert not all(torch.equal(ours[k], random[k]) for k in ours)  # the weights are not the initial ones
