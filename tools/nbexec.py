"""Moved into the package: :mod:`tlcourse.infra.execute` (the ``tlcourse-execute`` command).

The course has one notebook executor, nbclient waiting in 1 s slices so that a reply missed
around a widget cell cannot hang a run (``tlcourse/infra/execute.py`` says why). This name stays
for scripts written against ``tools/nbexec.py``; new code imports ``tlcourse.infra.execute``.

Example:
    >>> import nbexec, tlcourse.infra.execute
    >>> nbexec.execute is tlcourse.infra.execute.execute
    True
"""
from tlcourse.infra.execute import SLICE_S, SlicedWaitClient, execute, wait_in_slices

__all__ = ["SLICE_S", "SlicedWaitClient", "execute", "wait_in_slices"]
