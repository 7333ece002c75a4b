"""Digit domains load as they lie in the data root, in one format."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from tlcourse import digits
from tlcourse.errors import CourseError, DataMissingError


@pytest.mark.parametrize("domain,n", [("mnist", 10_000), ("usps", 2_007), ("mnist_m", 9_001)])
def test_test_splits_load(real_root, domain, n):
    x, y = digits.load_digits(domain, "test")
    assert x.shape == (n, 3, 32, 32) and x.dtype == torch.uint8
    assert y.shape == (n,) and set(y.tolist()) == set(range(10))
    assert x.float().std() > 20  # real pictures, not blanks


def test_missing_train_images_are_named(real_root):
    if (real_root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("this data root has the MNIST train images")
    with pytest.raises(DataMissingError, match="train-images-idx3-ubyte.gz"):
        digits.load_digits("mnist", "train")


def test_cache_returns_identical_tensors(real_root):
    a = digits.load_digits("usps", "test")
    b = digits.load_digits("usps", "test")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_truncated_idx_file_is_reported(tmp_path):
    header = bytes([0, 0, 8, 3]) + (100).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path = tmp_path / "t.gz"
    with gzip.open(path, "wb") as f:
        f.write(header + np.zeros(28 * 28 * 10, np.uint8).tobytes())
    with pytest.raises(CourseError, match="truncated"):
        digits.read_idx(path)


def test_unknown_domain():
    with pytest.raises(KeyError, match="mnist_m"):
        digits.load_digits("svhn")
