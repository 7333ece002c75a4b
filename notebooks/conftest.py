"""Keep what nbval executed: each lesson, with its outputs, in ``artifacts/executed/``.

``make test`` runs every notebook through nbval (one kernel per notebook, one pytest item
per code cell). This plugin listens to the same kernel messages nbval reads and, when a
notebook's last cell has run, writes the notebook with its outputs -- figures, tables,
printed results, tracebacks if a cell failed -- so the course website (``make site``,
``tools/build_site.py``) is built from the run CI already does, never from a third one.

What it records that nbval itself drops: ``clear_output`` (progress lines, redrawn plots),
``update_display_data`` (a live training curve keeps its last frame), and the widgets'
state (Jupyter's ``widget-state+json`` notebook metadata, with each ``Output`` widget's
captured outputs, routed the way JupyterLab and nbclient route them), so the site can show
each widget's last state. The notebook metadata ``tlcourse`` says how it was run (profile,
backbone, seconds, whether every cell passed).

``TLCOURSE_EXECUTED_DIR`` chooses another folder; ``TLCOURSE_EXECUTED_DIR=off`` saves nothing.
"""
from __future__ import annotations

import copy
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error", "clear_output", "update_display_data"}


def executed_dir() -> Path | None:
    """Where executed notebooks go (None: saving is off)."""
    value = os.environ.get("TLCOURSE_EXECUTED_DIR", "")
    if value.lower() in {"off", "0", "no"}:
        return None
    return Path(value) if value else REPO / "artifacts" / "executed"


class Recorder:
    """The outputs and widget state of one notebook's kernel, rebuilt from its iopub messages."""

    def __init__(self) -> None:
        self.outputs: dict[int, list] = {}          # code cell number -> outputs
        self.counts: dict[int, int | None] = {}     # code cell number -> execution count
        self.widgets: dict[str, dict] = {}          # comm id -> widget state (model name, module, ...)
        self.captured: dict[str, list] = {}         # Output widget comm id -> its outputs
        self.capturing: dict[str, list[str]] = {}   # parent msg id -> Output widgets capturing it
        self.displays: dict[str, list] = {}         # display id -> outputs showing it
        self.clear_pending: set[int] = set()        # id() of output lists cleared at the next output
        self.failed: list[int] = []
        self.started = time.monotonic()

    # ---------------------------------------------------------------- messages
    def handle(self, msg: dict, cell_num: int, cell_msg_id: str | None) -> None:
        """Apply one iopub message read while cell ``cell_num`` (request ``cell_msg_id``) runs."""
        kind, content = msg["msg_type"], msg["content"]
        if kind.startswith("comm_"):
            self._comm(kind, content)
            return
        parent = msg.get("parent_header", {}).get("msg_id")
        if parent is None or parent != cell_msg_id:
            return  # late output of an earlier cell: nbval ignores it too
        if kind == "execute_input":  # nbval runs cells with store_history=False: count them here
            self.counts[cell_num] = len(self.counts) + 1
            return
        if kind not in OUTPUT_TYPES:
            return
        cell_outputs = self.outputs.setdefault(cell_num, [])
        stack = self.capturing.get(parent)
        target = self.captured.setdefault(stack[-1], []) if stack else cell_outputs
        if kind == "clear_output":
            if content.get("wait"):
                self.clear_pending.add(id(target))
            else:
                target.clear()
            return
        if id(target) in self.clear_pending:
            self.clear_pending.discard(id(target))
            target.clear()
        display_id = (content.get("transient") or {}).get("display_id")
        if kind == "update_display_data":
            for out in self.displays.get(display_id, []):
                out["data"], out["metadata"] = content["data"], content.get("metadata", {})
            return
        out = nbformat.v4.output_from_msg(msg)
        if display_id:
            self.displays.setdefault(display_id, []).append(out)
        if (out.output_type == "stream" and target and target[-1].get("output_type") == "stream"
                and target[-1].get("name") == out.name):
            target[-1]["text"] += out.text
        else:
            target.append(out)

    def _comm(self, kind: str, content: dict) -> None:
        comm_id, data = content.get("comm_id"), content.get("data") or {}
        if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.widgets[comm_id] = dict(data.get("state") or {})
        elif kind == "comm_msg" and comm_id in self.widgets and data.get("method") == "update":
            state = data.get("state") or {}
            self.widgets[comm_id].update(state)
            if "msg_id" in state and self.widgets[comm_id].get("_model_name") == "OutputModel":
                for stack in self.capturing.values():  # `with out:` ends (msg_id "") or moves on
                    if comm_id in stack:
                        stack.remove(comm_id)
                if state["msg_id"]:
                    self.capturing.setdefault(state["msg_id"], []).append(comm_id)

    # ---------------------------------------------------------------- result
    def widget_state(self) -> dict:
        """Jupyter's saved-widget-state metadata (what JupyterLab's "Save Widget State" writes)."""
        state = {}
        for comm_id, s in self.widgets.items():
            s = copy.deepcopy(s)
            if s.get("_model_name") == "OutputModel":
                s["outputs"] = copy.deepcopy(self.captured.get(comm_id, []))
            state[comm_id] = {"model_name": s.get("_model_name"), "model_module": s.get("_model_module"),
                              "model_module_version": s.get("_model_module_version"), "state": s}
        return {"version_major": 2, "version_minor": 0, "state": state}

    def notebook(self, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """``source`` with the recorded outputs, counts, widget state and run facts."""
        nb = copy.deepcopy(source)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        for num, cell in enumerate(code):
            cell.outputs = self.outputs.get(num, [])
            if ends_with_semicolon(cell.source):  # IPython hides the result; nbval's store_history=False
                cell.outputs = [o for o in cell.outputs if o.output_type != "execute_result"]  # defeats that
            cell.execution_count = self.counts.get(num)
        if self.widgets:
            nb.metadata["widgets"] = {WIDGET_STATE: self.widget_state()}
        nb.metadata["tlcourse"] = {
            "profile": os.environ.get("TLCOURSE_PROFILE", "full"),
            "backbone": os.environ.get("TLCOURSE_BACKBONE", ""),
            "executed": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - self.started, 1),
            "cells_run": len(self.counts), "code_cells": len(code),
            "failed_cells": list(self.failed), "passed": not self.failed and len(self.counts) == len(code),
        }
        return nb


def ends_with_semicolon(source: str) -> bool:
    """IPython's rule for a quiet cell: its last code line ends with ``;`` (comments aside).

    >>> ends_with_semicolon("x = 1\\nshow(x);  # quiet"), ends_with_semicolon("show(x)")
    (True, False)
    """
    import io
    import tokenize

    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
                  if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER,
                                    tokenize.INDENT, tokenize.DEDENT)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    return bool(tokens) and tokens[-1].string == ";"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The Chinese lessons (``notebooks/zh/``) run the English lessons' code with Chinese prose and
    messages, so a test run executes one of them end to end: ``TLCOURSE_ZH_LESSONS`` (default
    ``00``; ``all``, or numbers such as ``00,04``) chooses which."""
    if collection_path.parent.name == "zh" and collection_path.suffix == ".ipynb":
        wanted = os.environ.get("TLCOURSE_ZH_LESSONS", "00").replace(" ", "")
        return not (wanted == "all" or collection_path.name[:2] in wanted.split(","))
    return None


def _is_nbval_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell" and hasattr(item.parent, "kernel")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Run the nbval cell as usual, with its kernel's messages copied to the notebook's Recorder."""
    if not _is_nbval_cell(item) or executed_dir() is None:
        yield
        return
    notebook = item.parent
    recorder = notebook.__dict__.setdefault("_tlcourse_recorder", Recorder())
    _UNSAVED[Path(str(notebook.fspath))] = (recorder, notebook.nb)
    kernel, request = notebook.kernel, {}
    run_cell, get_message = kernel.execute_cell_input, notebook.get_kernel_message

    def execute_cell_input(*args: Any, **kwargs: Any) -> str:
        request["msg_id"] = run_cell(*args, **kwargs)
        return request["msg_id"]

    def get_kernel_message(*args: Any, **kwargs: Any) -> dict:
        msg = get_message(*args, **kwargs)
        recorder.handle(msg, item.cell_num, request.get("msg_id"))
        return msg

    kernel.execute_cell_input, notebook.get_kernel_message = execute_cell_input, get_kernel_message
    try:
        outcome = yield
    finally:
        del kernel.execute_cell_input, notebook.get_kernel_message  # the class methods again
    if outcome.excinfo is not None:
        recorder.failed.append(item.cell_num)


#: Notebooks whose cells ran but which are not written yet (a run stopped early writes them at the end).
_UNSAVED: dict[Path, tuple[Recorder, nbformat.NotebookNode]] = {}


def _save(path: Path) -> None:
    recorder, source = _UNSAVED.pop(path)
    folder = executed_dir()
    if folder is None:
        return
    if path.parent.name == "zh":  # the Chinese edition's lesson of the same name
        folder = folder / "zh"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.tmp"
    nbformat.write(recorder.notebook(source), str(tmp))
    os.replace(tmp, folder / path.name)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a notebook's last cell, write it with its outputs (atomically)."""
    if not _is_nbval_cell(item) or (nextitem is not None and nextitem.parent is item.parent):
        return
    path = Path(str(item.parent.fspath))
    if path in _UNSAVED:
        _save(path)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run stopped early (-x, Ctrl-C) still leaves what ran; its metadata says ``passed: false``."""
    for path in list(_UNSAVED):
        _save(path)
