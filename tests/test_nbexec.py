"""tools/nbexec.py: nbclient whose waits come back every second, so a missed reply cannot hang a run."""
import asyncio
import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import nbexec  # noqa: E402


def run(coro):
    """Run ``coro`` to the end in a thread of its own: an earlier test may have left this thread's loop running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Channel:
    """A channel whose message is only seen by a wait that *starts* after it arrived (a missed wake-up)."""

    def __init__(self, arrives_after: float | None) -> None:
        self.ready_at = None if arrives_after is None else time.monotonic() + arrives_after
        self.waits: list[float] = []

    async def get_msg(self, timeout=None):
        self.waits.append(timeout)
        if self.ready_at is not None and time.monotonic() >= self.ready_at:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout)  # never woken by the arrival: only a new wait sees it
        raise queue.Empty


def test_a_message_that_did_not_wake_the_wait_is_picked_up_by_the_next_slice():
    ch = Channel(arrives_after=0.05)
    nbexec.wait_in_slices(ch, slice_s=0.1)
    start = time.monotonic()
    assert run(ch.get_msg(timeout=30))["msg_type"] == "execute_reply"
    assert time.monotonic() - start < 1.0 and len(ch.waits) == 2  # not the 30 s of the timeout


def test_the_total_timeout_and_its_empty_are_kept():
    ch = Channel(arrives_after=None)
    nbexec.wait_in_slices(ch, slice_s=0.1)
    start = time.monotonic()
    with pytest.raises(queue.Empty):
        run(ch.get_msg(timeout=0.35))
    assert 0.3 <= time.monotonic() - start < 1.0 and all(w <= 0.1 for w in ch.waits)


def test_a_widget_notebook_runs_to_the_end():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import ipywidgets as W\n"
                                  "out = W.interactive_output(print, {'x': W.IntSlider(3)})\n"
                                  "display(out)"),
        nbformat.v4.new_code_cell("1 + 1")])
    nbexec.execute(nb, timeout=120)
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "2"
