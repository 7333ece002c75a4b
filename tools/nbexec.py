"""Execute a notebook with nbclient without hanging on a missed reply.

nbclient waits for the kernel's messages on asyncio zmq sockets. On the course's 2-core
machines a message sometimes arrives without waking that wait: on 2026-12-01, lesson 04's
widget cell (`widgets.live`) hung 2 runs out of 2 in `benchmarks/run.py`, with the kernel idle
and answering a second client (it had run the cell and sent the reply) and nbclient idle until
its cell timeout. Waiting in slices of one second and polling again picks the message up, since
zmq's poll looks at the socket's state before it waits: with this client the same cell took
1.0 s and the lesson finished in 76 s. nbval (``make test``) uses jupyter_client's blocking
client, whose poll does not miss messages, so only the tools that drive nbclient need this.

Used by ``benchmarks/run.py``, ``tests/standin.py`` and ``tests/overlay.py``.

Example:
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    >>> execute(nb, timeout=60).cells[0].outputs[0]["data"]["text/plain"]  # doctest: +SKIP
    '2'
"""
from __future__ import annotations

import queue
import time
from typing import Any

from nbclient import NotebookClient

#: Longest wait before polling a channel again (seconds): the most a missed message costs.
SLICE_S = 1.0


def wait_in_slices(channel: Any, slice_s: float = SLICE_S) -> None:
    """Make ``channel.get_msg(timeout)`` wait in slices of ``slice_s``, polling again after each.

    The total wait and the ``queue.Empty`` at its end are unchanged; ``timeout=None`` still
    waits for ever, one slice at a time.
    """
    get = channel.get_msg

    async def get_msg(timeout: float | None = None, **kw: Any) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = slice_s if deadline is None else min(slice_s, max(0.0, deadline - time.monotonic()))
            try:
                return await get(timeout=wait, **kw)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    channel.get_msg = get_msg


class SlicedWaitClient(NotebookClient):
    """nbclient's ``NotebookClient`` whose shell and IOPub waits use :func:`wait_in_slices`."""

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        wait_in_slices(kc.shell_channel)
        wait_in_slices(kc.iopub_channel)
        return kc


def execute(nb: Any, cwd: str = ".", timeout: int = 900, kernel_name: str = "python3",
            allow_errors: bool = True, **kw: Any) -> Any:
    """Run every cell of ``nb`` (a ``NotebookNode``) in place from folder ``cwd``; return ``nb``."""
    SlicedWaitClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=allow_errors,
                     resources={"metadata": {"path": str(cwd)}}, **kw).execute()
    return nb
