"""tlcourse.infra.execute (``tlcourse-execute``, formerly tools/nbexec.py): nbclient whose waits come back
every second, so a missed reply cannot hang a run; its per-cell progress and its failure summary."""
import asyncio
import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from tlcourse.infra import execute as nbexec

REPO = Path(__file__).resolve().parents[1]


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


def test_tools_nbexec_is_the_package_executor():
    sys.path.insert(0, str(REPO / "tools"))
    import nbexec as old

    assert old.execute is nbexec.execute and old.SlicedWaitClient is nbexec.SlicedWaitClient


def test_profiles_match_the_config():
    from tlcourse import config

    assert nbexec._PROFILES == config.PROFILES


def test_the_command_reports_progress_and_failed_checks(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROFILE", "quick")  # restored afterwards: --profile sets it in os.environ
    check = nbformat.v4.new_code_cell("assert x > 1, f'x is {x}, the bar is 1'", metadata={"tags": ["check"]})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nx = 0"), check,
                                         nbformat.v4.new_code_cell("print(os.environ['TLCOURSE_PROFILE'])")])
    nbformat.write(nb, tmp_path / "lesson.ipynb")
    status = nbexec.main([str(tmp_path / "lesson.ipynb"), "--profile", "smoke", "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == 1
    assert "[1/3] cell 0" in out and "[2/3] cell 1" in out and "CHECK" in out
    assert "1 of 1 checks failed, 0 other errors" in out
    assert "cell 1 (check): AssertionError: x is 0, the bar is 1" in out
    executed = nbformat.read(tmp_path / "out" / "lesson.ipynb", as_version=4)
    assert executed.cells[2].outputs[0]["text"] == "smoke\n"  # ran past the failed check, profile given


def test_the_command_exits_0_when_every_cell_passes(tmp_path, capsys):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), tmp_path / "a.ipynb")
    assert nbexec.main([str(tmp_path / "a.ipynb"), "--output", str(tmp_path / "out")]) == 0
    assert "a.ipynb: passed" in capsys.readouterr().out


def test_the_command_will_not_overwrite_a_lesson(tmp_path):
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    with pytest.raises(SystemExit):
        nbexec.main([str(tmp_path / "a.ipynb"), "--output", str(tmp_path)])
