"""Grad-CAM: finds the evidence where it is, works on every registry backbone, leaves the model as it was."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tlcourse import backbones, finetune, gradcam
from tlcourse.backbones import BackboneSpec

# A model whose answer is known: class 1's score is the mean brightness of the feature map,
# so its evidence is wherever the image is bright; class 0's score is the negative of it.
TINY = BackboneSpec("tiny", "timm", "tiny", feature_dim=4, head="fc",
                    blocks=(("conv",), ("relu",)), mean=(0.5,) * 3, std=(0.5,) * 3)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=4, stride=4, bias=False)  # 32x32 image -> 8x8 map
        nn.init.constant_(self.conv.weight, 1.0 / 48)
        self.relu = nn.ReLU()
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[-1.0] * 4, [1.0] * 4]))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))))


def bright_square(corner: str) -> torch.Tensor:
    img = torch.zeros(3, 32, 32)
    rows, cols = (slice(0, 12), slice(0, 12)) if corner == "top-left" else (slice(20, 32), slice(20, 32))
    img[:, rows, cols] = 1.0
    return img


def test_heat_sits_on_the_evidence_of_the_class():
    model = Tiny()
    images = torch.stack([bright_square("top-left"), bright_square("bottom-right")])
    heat, logits = gradcam.grad_cam(model, TINY, images, target=1)
    assert heat.shape == (2, 32, 32) and logits.shape == (2, 2)
    assert heat[0, :12, :12].mean() > 0.8 and heat[0, 20:, 20:].mean() < 0.05
    assert heat[1, 20:, 20:].mean() > 0.8 and heat[1, :12, :12].mean() < 0.05
    # class 0 loses score where the image is bright: no positive evidence anywhere
    heat0, _ = gradcam.grad_cam(model, TINY, images, target=0)
    assert heat0.max() == 0


def test_default_target_is_the_prediction():
    model = Tiny()
    images = torch.stack([bright_square("top-left")])
    by_default, logits = gradcam.grad_cam(model, TINY, images)
    explicit, _ = gradcam.grad_cam(model, TINY, images, target=[int(logits.argmax())])
    assert torch.equal(by_default, explicit)


@pytest.mark.parametrize("name", list(backbones.BACKBONES))
def test_every_registry_backbone_frozen_or_not(name):
    spec = backbones.get_spec(name)
    torch.manual_seed(0)
    model = finetune.make_classifier(spec, 2, pretrained=False, trainable_blocks=0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    heat, logits = gradcam.grad_cam(model, spec, torch.randn(2, 3, 64, 48))
    assert heat.shape == (2, 64, 48) and logits.shape == (2, 2)
    assert heat.min() >= 0 and heat.max() <= 1 and torch.isfinite(heat).all()
    # the model is left as it was: mode, weights (BatchNorm statistics too), no hooks, no grads
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not gradcam.target_layer(model, spec)._forward_hooks
    assert all(p.grad is None for p in model.parameters())


def test_target_layer_follows_the_registry():
    spec = backbones.get_spec("efficientnet_lite0")
    model = backbones.build(spec, pretrained=False)
    assert gradcam.target_layer(model, spec) is model.bn2  # conv_head + bn2: the last block


def test_bad_target_is_a_clear_error():
    with pytest.raises(ValueError, match="one class in 0..1"):
        gradcam.grad_cam(Tiny(), TINY, torch.rand(2, 3, 32, 32), target=[0, 5])
    with pytest.raises(ValueError, match="per image"):
        gradcam.grad_cam(Tiny(), TINY, torch.rand(2, 3, 32, 32), target=[1])


def test_overlay_and_grid_draw():
    img = (torch.rand(3, 16, 16) * 255).to(torch.uint8)
    fig = gradcam.overlay(img, torch.rand(16, 16), title="x")
    assert len(fig.axes[0].images) == 2
    assert len(gradcam.overlay(img, None).axes[0].images) == 1
    grid = gradcam.show_grad_cam(torch.rand(5, 3, 16, 16), torch.rand(5, 16, 16), ncols=3)
    assert sum(len(ax.images) for ax in grid.axes) == 15  # 5 plain + 5 with a heat map on top
