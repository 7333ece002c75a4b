"""The preprocessing numbers typed into each BackboneSpec agree with what the model's own library
carries: torchvision's ``weights.transforms()`` and timm's ``resolve_model_data_config``.

Both are read offline: torchvision's weight enums hold the numbers, timm's model holds its
``pretrained_cfg`` without loading any weights.
"""
from __future__ import annotations

import math

import pytest

from tlcourse.backbones import BACKBONES


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_spec_preprocessing_matches_the_library(name):
    spec = BACKBONES[name]
    if spec.family == "torchvision":
        import torchvision.models as tvm

        t = tvm.get_model_weights(spec.arch).DEFAULT.transforms()
        assert t.crop_size == [spec.input_size] and t.resize_size == [spec.resize_size]
        assert tuple(t.mean) == spec.mean and tuple(t.std) == spec.std
        assert t.interpolation.value == spec.interpolation
    else:
        import timm

        cfg = timm.data.resolve_model_data_config(timm.create_model(spec.arch, pretrained=False))
        assert cfg["input_size"] == (3, spec.input_size, spec.input_size)
        assert tuple(cfg["mean"]) == spec.mean and tuple(cfg["std"]) == spec.std
        assert cfg["interpolation"] == spec.interpolation
        assert math.floor(spec.input_size / cfg["crop_pct"]) == spec.resize_size  # timm's resize rule
