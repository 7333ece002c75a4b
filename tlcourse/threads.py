"""Run small computations on one CPU thread.

A linear head on a few hundred cached feature rows, a logistic regression,
or a t-SNE of 400 points does so little work per operation that splitting
each matrix product over several threads costs more (waking and syncing
them) than it saves. On a busy machine the waiting threads spin and the
same work takes many times longer. :func:`limit_threads` pins PyTorch and
the BLAS/OpenMP pools that NumPy and scikit-learn use to ``n`` threads for
a block of code, then puts everything back. Large work (a backbone pass over
images) should keep the default.

Example:
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with limit_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from .errors import check_range


@contextmanager
def limit_threads(n: int = 1) -> Iterator[None]:
    """Use at most ``n`` CPU threads in PyTorch, BLAS and OpenMP inside the ``with`` block.

    Also works as a decorator: ``@limit_threads(1)``. The previous settings
    come back when the block ends, also when it raises.
    """
    from threadpoolctl import threadpool_limits

    n = check_range("threads", n, 1, 4096, kind=int)
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)
