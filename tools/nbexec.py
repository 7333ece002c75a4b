"""Moved into the package: :mod:`tlcourse.execute` (the ``tlcourse-execute`` command).

The course has one notebook executor, nbclient waiting in 1 s slices so that a reply missed
around a widget cell cannot hang a run (``tlcourse/execute.py`` says why). This name stays
for scripts written against ``tools/nbexec.py``; new code imports ``tlcourse.execute``.

Example:
    >>> import nbexec, tlcourse.execute
    >>> nbexec.execute is tlcourse.execute.execute
    True
"""
from tlcourse.execute import SLICE_S, SlicedWaitClient, execute, wait_in_slices

__all__ = ["SLICE_S", "SlicedWaitClient", "execute", "wait_in_slices"]
