"""limit_threads pins PyTorch and the BLAS pools, and always restores them."""
from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info

from tlcourse.threads import limit_threads
from tlcourse.errors import InvalidSettingError


@pytest.fixture(autouse=True)
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_inside_one_thread_everywhere_then_restored():
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl controls)

    torch.set_num_threads(2)
    before_blas = blas_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert blas_threads() <= {1}
    assert torch.get_num_threads() == 2 and blas_threads() == before_blas


def test_restored_after_an_error_and_usable_as_decorator():
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError):
        with limit_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 2

    @limit_threads(1)
    def threads() -> int:
        return torch.get_num_threads()

    assert threads() == 1 and threads() == 1 and torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1"])
def test_bad_counts_are_refused(bad):
    with pytest.raises(InvalidSettingError):
        with limit_threads(bad):
            pass
