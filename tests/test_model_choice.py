"""Choosing a backbone: size, speed, fixed-feature accuracy, rows for missing weights (labs.choosing_a_strategy)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from tlcourse import backbones  # noqa: E402
from tlcourse.labs import choosing_a_strategy as lab  # noqa: E402
from tlcourse.labs.choosing_a_strategy import Variant  # noqa: E402
from tlcourse.errors import InvalidSettingError  # noqa: E402


def test_size_on_disk_is_about_four_bytes_per_parameter():
    net = nn.Linear(500, 200)
    size = lab.state_dict_bytes(net)
    assert 4 * backbones.count_params(net) <= size < 4 * backbones.count_params(net) + 10_000


def test_images_per_second_is_positive_and_checks_repeats():
    assert lab.images_per_second(nn.Conv2d(3, 2, 3), size=16, batch=2, repeats=2) > 0
    with pytest.raises(InvalidSettingError):
        lab.images_per_second(nn.Conv2d(3, 2, 3), size=16, repeats=0)


def test_a_bigger_model_is_slower():
    small = nn.Conv2d(3, 4, 3)
    big = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 64, 64, 3, padding=1) for i in range(4)])
    assert lab.images_per_second(small, 32, 4, 3) > lab.images_per_second(big, 32, 4, 3)


def test_variant_labels_and_feature_nets():
    cut = Variant("efficientnet_lite0", depth=6)
    assert cut.label == "efficientnet_lite0 cut after block 6/9"
    assert Variant("resnet18", depth=5).label == "resnet18"  # cutting after the last block cuts nothing
    assert Variant("efficientnet_lite0", image_size=96).label == "efficientnet_lite0 at 96 px"
    net = lab.feature_net(cut, pretrained=False)
    def output_dim(module):
        with torch.inference_mode():
            return module.eval()(torch.zeros(1, 3, 32, 32)).shape[1]

    assert output_dim(net) == 112  # blocks.4 of EfficientNet-Lite0 ends with 112 channels
    whole = lab.feature_net(Variant("efficientnet_lite0"), pretrained=False)
    assert output_dim(whole) == 1280
    assert backbones.count_params(net) < 0.3 * backbones.count_params(whole)


def test_compare_models_keeps_backbones_without_weights(monkeypatch):
    monkeypatch.setattr(lab.backbones, "is_available_offline", lambda spec: spec.name == "efficientnet_lite0")
    monkeypatch.setattr(lab, "fixed_feature_accuracy", lambda variant, size: 0.9)
    table = lab.compare_models([Variant("resnet18"), Variant("efficientnet_lite0", depth=6)],
                                        size=32, batch=1, repeats=1)
    assert table["model"].tolist() == ["resnet18", "efficientnet_lite0 cut after block 6/9"]
    resnet, effnet = table.iloc[0], table.iloc[1]
    assert math.isnan(resnet["val accuracy"]) and resnet["weights"] == lab.NOT_AVAILABLE
    assert "not available here" in resnet["weights"] and "random weights" in resnet["weights"]
    assert resnet["params (M)"] == pytest.approx(11.18, abs=0.01)  # sized and timed without weights
    assert effnet["val accuracy"] == 0.9 and effnet["weights"] == lab.PRETRAINED
    assert (table["images/s"] > 0).all() and (table["size on disk (MB)"] > 4 * table["params (M)"]).all()
    fig = lab.plot_models(table)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("not available here" in t for t in texts)
    plt.close("all")
