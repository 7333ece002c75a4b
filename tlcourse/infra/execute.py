"""``tlcourse-execute``: run lessons headless, cell by cell, without hanging on a widget cell.

Usage:
    tlcourse-execute NOTEBOOK... [--profile quick|full|smoke] [--output DIR] [--timeout S]

(``python -m tlcourse.infra.execute`` is the same.) Each lesson runs top to bottom in a fresh kernel
from its own folder, one line per code cell as it finishes; the executed copy (outputs and
widget state) goes to ``DIR/<name>.ipynb`` (default ``executed/``). A failing cell does not stop
the run: the summary at the end lists every failed check (a cell tagged ``check`` whose assertion
failed, with the assertion's message) and every other error. Exit status 1 if any cell failed.

Examples:
    tlcourse-execute notebooks/05_data_augmentation.ipynb --profile quick
    tlcourse-execute notebooks/0*.ipynb --profile full --output /srv/class/executed

Why not ``jupyter nbconvert --to notebook --execute``: on the course's lessons it can wait for
ever on a widget cell (jupyter/nbclient#312, jupyter/nbconvert#2003, #2029). nbclient waits for
the cell's reply on an asyncio zmq socket; when the cell writes into an Output widget
(``widgets.live``, ``interact``), nbclient's Output-widget emulation sends a ``comm_msg`` on that
same shell socket for every output, and now and then the reply that arrives around such a send
never wakes the wait (pyzmq, edge-triggered ``zmq.FD``). The kernel is idle with the reply sent;
nbclient idles until the cell timeout (none by default: for ever), then its last poll finds the
reply. Measured on 2026-12-07 (nbclient 0.11.0, jupyter_client 8.10.0, pyzmq 27.3.0, ipykernel
6.31.0, tornado 6.6.1; smoke profile, 2 busy cores): nbconvert hung on lesson 05's live cell in 1
of 4 runs; lesson 05 up to that cell, the cell 8 times, missed 0-2 replies a run in 3 of 4 runs,
and 0 in 3 runs with nbclient's Output-widget sends switched off; with this module's client, 2-4
of those 8 cells a run waited exactly to a slice's end (misses caught) and no run hung. It waits in
slices of :data:`SLICE_S` and polls again after each; zmq's poll looks at the socket itself, so
a missed reply costs at most one slice. ``benchmarks/run.py`` and the tests use :func:`execute`;
nbconvert can use :class:`SlicedKernelClient`.

Example:
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    >>> execute(nb, timeout=60).cells[0].outputs[0]["data"]["text/plain"]  # doctest: +SKIP
    '2'
    >>> failures(nb)  # doctest: +SKIP
    []
"""
from __future__ import annotations

import argparse
import os
import queue
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from jupyter_client.asynchronous import AsyncKernelClient
from nbclient import NotebookClient

#: Longest wait before polling a channel again (seconds): the most a missed message costs.
SLICE_S = 1.0
# tlcourse.config.PROFILES, spelled out: this file imports nothing from the course, so that
# tests/overlay.py can run it in a venv where the course is not installed yet.
_PROFILES = ("quick", "full", "smoke")


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


def _sliced(channel: Any) -> Any:
    """``channel`` with :func:`wait_in_slices` applied, once."""
    if channel is not None and not getattr(channel, "_tl_sliced", False):
        wait_in_slices(channel)
        channel._tl_sliced = True
    return channel


class SlicedKernelClient(AsyncKernelClient):
    """jupyter_client's async kernel client whose shell and IOPub waits use :func:`wait_in_slices`.

    For the standard tools, which build their client from the kernel manager's ``client_class``:
    ``jupyter nbconvert --to notebook --execute
    --AsyncKernelManager.client_class=tlcourse.infra.execute.SlicedKernelClient NOTEBOOK``.
    """

    @property
    def shell_channel(self) -> Any:
        return _sliced(super().shell_channel)

    @property
    def iopub_channel(self) -> Any:
        return _sliced(super().iopub_channel)


class SlicedWaitClient(NotebookClient):
    """nbclient's ``NotebookClient`` whose shell and IOPub waits use :func:`wait_in_slices`."""

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        _sliced(kc.shell_channel)
        _sliced(kc.iopub_channel)
        return kc


def execute(nb: Any, cwd: str | Path = ".", timeout: int = 900, kernel_name: str = "python3",
            allow_errors: bool = True, progress: Callable[[str], None] | None = None, **kw: Any) -> Any:
    """Run every cell of ``nb`` (a ``NotebookNode``) in place from folder ``cwd``; return ``nb``.

    ``timeout`` is per cell (seconds). ``progress``, if given, gets one line per code cell
    as it finishes (see :func:`cell_line`). Other keywords go to nbclient's ``NotebookClient``.
    """
    if progress is not None:
        n_code = sum(c.cell_type == "code" for c in nb.cells)
        seen: list[float] = [time.monotonic()]

        def on_cell_start(cell: Any, cell_index: int, **_: Any) -> None:
            seen[0] = time.monotonic()

        def on_cell_executed(cell: Any, cell_index: int, **_: Any) -> None:
            k = sum(c.cell_type == "code" for c in nb.cells[:cell_index + 1])
            progress(cell_line(cell, cell_index, k, n_code, time.monotonic() - seen[0]))

        kw.setdefault("on_cell_start", on_cell_start)
        kw.setdefault("on_cell_executed", on_cell_executed)
    SlicedWaitClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=allow_errors,
                     resources={"metadata": {"path": str(cwd)}}, **kw).execute()
    return nb


def _error(cell: Any) -> dict | None:
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def _first_line(cell: Any, width: int = 60) -> str:
    line = next((s for s in cell.source.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[:width - 1] + "…"


def cell_line(cell: Any, index: int, k: int, n: int, seconds: float) -> str:
    """One progress line: ``[ 7/29] cell 13   1.0 s  ok     widgets.live(knobs, show_pipeline);``.

    >>> import nbformat
    >>> cell_line(nbformat.v4.new_code_cell("x = 1"), 3, 2, 29, 0.04)
    '[ 2/29] cell 3     0.0 s  ok     x = 1'
    """
    err = _error(cell)
    status = "ok" if err is None else "CHECK" if "check" in cell.metadata.get("tags", []) else "ERROR"
    return f"[{k:>{len(str(n))}}/{n}] cell {index:<3} {seconds:6.1f} s  {status:<6} {_first_line(cell)}"


@dataclass
class Failure:
    """A cell that ended in an error: a failed check (tag ``check``) or any other error."""

    index: int
    check: bool
    ename: str
    message: str
    first_line: str

    def describe(self, max_lines: int = 12) -> str:
        """``cell 21 (check): AssertionError: <message>``, the message indented below if long."""
        lines = (self.message or "(no message)").splitlines() or [""]
        if len(lines) > max_lines:
            lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
        head = f"cell {self.index} ({'check' if self.check else 'error'}): {self.ename}: "
        return head + lines[0] + "".join(f"\n      {s}" for s in lines[1:]) + f"\n      in: {self.first_line}"


def failures(nb: Any) -> list[Failure]:
    """Every code cell of an executed ``nb`` whose outputs hold an error, in order.

    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell("assert x > 1, 'x too small'", metadata={"tags": ["check"]})
    >>> cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="x too small",
    ...                                        traceback=[])]
    >>> failures(nbformat.v4.new_notebook(cells=[cell]))[0].describe()
    "cell 0 (check): AssertionError: x too small\\n      in: assert x > 1, 'x too small'"
    """
    found = []
    for i, cell in enumerate(nb.cells):
        err = _error(cell) if cell.cell_type == "code" else None
        if err is not None:
            found.append(Failure(i, "check" in cell.metadata.get("tags", []), err.get("ename", ""),
                                 err.get("evalue", ""), _first_line(cell, 80)))
    return found


def run_lesson(path: Path, output: Path | None, timeout: int = 1800,
               kernel_name: str = "python3") -> list[Failure]:
    """Execute one notebook file with progress lines; write it to ``output``; its failures."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    print(f"{path.name}: {sum(c.cell_type == 'code' for c in nb.cells)} code cells, "
          f"profile {os.environ.get('TLCOURSE_PROFILE', 'full (default)')}", flush=True)
    error = None
    try:
        execute(nb, cwd=path.parent, timeout=timeout, kernel_name=kernel_name,
                progress=lambda line: print("  " + line, flush=True))
    except Exception as exc:  # a cell timeout or a dead kernel: report it, keep what ran
        error = Failure(-1, False, type(exc).__name__, str(exc).strip().splitlines()[-1] if str(exc) else "",
                        "(the run stopped here)")
    if output is not None:
        nbformat.write(nb, output)
    found = failures(nb) + ([error] if error else [])
    checks = sum("check" in c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code")
    print(f"{path.name}: {'FAILED' if found else 'passed'} in {time.monotonic() - start:.0f} s; "
          f"{sum(f.check for f in found)} of {checks} checks failed, "
          f"{sum(not f.check for f in found)} other errors" + (f"; written to {output}" if output else ""),
          flush=True)
    return found


def main(argv: list[str] | None = None) -> int:
    """The ``tlcourse-execute`` console script; returns the exit status (0: every cell passed)."""
    p = argparse.ArgumentParser(prog="tlcourse-execute", description=__doc__.split("\nUsage:")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit status: 0 if every cell of every notebook ran without error, else 1.")
    p.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    p.add_argument("--profile", choices=_PROFILES,
                   help="TLCOURSE_PROFILE for the kernel (default: the environment's, else full)")
    p.add_argument("--output", type=Path, default=Path("executed"), metavar="DIR",
                   help="folder for the executed copies (default: ./executed)")
    p.add_argument("--timeout", type=int, default=1800, metavar="S", help="per-cell limit, seconds (1800)")
    p.add_argument("--kernel", default="python3", help="kernel name (python3)")
    args = p.parse_args(argv)
    if args.profile:
        os.environ["TLCOURSE_PROFILE"] = args.profile  # the kernel inherits this process's environment
    missing = [str(nb) for nb in args.notebooks if not nb.is_file()]
    if missing:
        p.error(f"no such notebook: {', '.join(missing)}")
    args.output.mkdir(parents=True, exist_ok=True)
    report: dict[str, list[Failure]] = {}
    for nb_path in args.notebooks:
        out = args.output / nb_path.name
        if out.resolve() == nb_path.resolve():
            p.error(f"--output {args.output} would overwrite {nb_path}; choose another folder")
        report[nb_path.name] = run_lesson(nb_path, out, args.timeout, args.kernel)
    print("\nSummary")
    for name, found in report.items():
        print(f"  {name}: {'FAILED' if found else 'passed'}")
        for f in found:
            print("    " + f.describe().replace("\n", "\n    "))
    return 1 if any(report.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
