"""The learner's path, in a real browser: open each lesson in JupyterLab, Run All, turn a knob.

nbval (``make test``) proves the code runs in a kernel; this proves what the learner
sees: the notebook opens in JupyterLab, "Run > Run All Cells" finishes with no error
output, the ipywidgets render, and moving the lesson's test slider changes its output.

Convention for lesson authors (``tlcourse.widgets.live`` applies it): one cheap slider
carries the CSS class ``tl-test-slider`` and the output it updates, placed after it on
the page, carries ``tl-test-output``.

Needs Debian's Chromium at /usr/bin/chromium and the ``playwright`` package (no
Playwright-managed browser is used or downloaded); skips with the reason otherwise.
``TLCOURSE_BROWSER_NOTEBOOKS`` points it at another folder of ``NN_*.ipynb`` notebooks;
``TLCOURSE_BROWSER_TIMEOUT`` (seconds, default 360) bounds one notebook's Run All.
Screenshots go to ``artifacts/screenshots/<notebook>.png``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_server import LabServer, running_lab

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = Path(os.environ.get("TLCOURSE_BROWSER_NOTEBOOKS") or REPO / "notebooks").resolve()
LESSONS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
#: The Chinese edition's first lesson (notebooks/zh/, tools/translate.py): the same code, Chinese prose
#: and messages; opened like the others (its page must show Chinese text and messages).
ZH_LESSONS = sorted(NOTEBOOK_DIR.glob("zh/00_*.ipynb"))
SCREENSHOTS = REPO / "artifacts" / "screenshots"

#: One lesson in the quick profile takes well under this on a 2-core CPU; Run All must finish in it.
RUN_TIMEOUT_S = float(os.environ.get("TLCOURSE_BROWSER_TIMEOUT", "360"))
#: A live preview is cheap by contract (CONTRIBUTING.md), but a plot can take a few seconds.
SLIDER_TIMEOUT_S = 60.0
TEST_SLIDER = ".tl-test-slider"
TEST_OUTPUT = "tl-test-output"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# What the page reports about the open notebook, read from JupyterLab's own model
# (window.jupyterapp, exposed by the server flag --LabApp.expose_app_in_browser).
NOTEBOOK_STATE_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code').map(c => ({
    count: c.model.executionCount,
    running: c.model.executionState === 'running',
    outputs: c.model.outputs.toJSON(),
  }));
  return {path: panel.context.path, kernel: kernel ? kernel.status : 'none', cells};
}"""


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def lab() -> Iterator[LabServer]:
    """One JupyterLab on the notebook folder for the whole session, in the quick profile."""
    with running_lab(NOTEBOOK_DIR, profile="quick") as server:
        yield server


@pytest.fixture
def js_errors() -> list[str]:
    """Uncaught JavaScript errors of the page, printed when a check fails (widgets fail there)."""
    return []


@pytest.fixture
def page(browser, lab: LabServer, js_errors: list[str]) -> Iterator[Any]:
    """A fresh browser tab; afterwards its kernels are shut down so lessons don't pile up in RAM."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.on("pageerror", lambda exc: js_errors.append(str(exc)))
    yield tab
    context.close()
    lab.shutdown_kernels()


# ------------------------------------------------------------------------ page actions
def notebook_state(page) -> dict[str, Any] | None:
    """Kernel status and every code cell's execution count, state and outputs (from the model)."""
    return page.evaluate(NOTEBOOK_STATE_JS)


def open_notebook(page, lab: LabServer, name: str) -> None:
    """Open the notebook by URL and wait until it is the current tab and its kernel is idle."""
    page.goto(lab.page_url(name), wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
    ready = (f"() => {{ const s = ({NOTEBOOK_STATE_JS})(); "
             f"return s && s.path === {json.dumps(name)} && s.kernel === 'idle'; }}")
    page.wait_for_function(ready, timeout=90_000)


def run_all_cells(page) -> None:
    """What the learner does: the Run menu, then "Run All Cells"; fail fast if nothing starts."""
    page.locator(".lm-MenuBar").get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu").get_by_role("menuitem", name="Run All Cells", exact=True).click()
    started = f"() => ({NOTEBOOK_STATE_JS})().cells.some(c => c.running || c.count !== null)"
    page.wait_for_function(started, timeout=30_000)


def is_finished(state: dict[str, Any] | None) -> bool:
    """Idle kernel, nothing queued, and every code cell ran (or one failed, which stops the rest)."""
    if not state or state["kernel"] != "idle" or any(c["running"] for c in state["cells"]):
        return False
    return all(c["count"] is not None for c in state["cells"]) or bool(error_outputs(state))


def wait_until_finished(page, timeout: float) -> dict[str, Any]:
    """Poll the model until :func:`is_finished` holds twice in a row (the kernel blinks idle)."""
    deadline, streak, state = time.monotonic() + timeout, 0, None
    while time.monotonic() < deadline:
        state = notebook_state(page)
        streak = streak + 1 if is_finished(state) else 0
        if streak == 2:
            return state
        page.wait_for_timeout(500)
    pending = sum(c["count"] is None for c in (state or {"cells": []})["cells"])
    pytest.fail(f"Run All did not finish in {timeout:.0f} s ({pending} code cells not run yet)")


def error_outputs(state: dict[str, Any]) -> list[str]:
    """``ename: evalue`` of every error output in the notebook."""
    return [f"cell {i}: {out['ename']}: {out['evalue']}"
            for i, cell in enumerate(state["cells"]) for out in cell["outputs"]
            if out.get("output_type") == "error"]


def widget_views(state: dict[str, Any]) -> list[str]:
    """The model id of every ipywidget shown in an output, in order."""
    return [out["data"][WIDGET_MIME]["model_id"] for cell in state["cells"] for out in cell["outputs"]
            if WIDGET_MIME in out.get("data", {})]


def shown_twice(views: list[str]) -> set[str]:
    """Widgets displayed more than once: ``live(...)`` / ``control_panel(...)`` as a cell's last
    line shows the widget and then its return value again (write ``_ = widgets.live(...)``)."""
    return {model for model in views if views.count(model) > 1}


def wait_for_widgets(page, timeout_ms: float = 30_000) -> None:
    """Wait until at least one widget rendered and none is still "Loading widget..."."""
    page.wait_for_selector(".jp-OutputArea-output .jupyter-widgets", timeout=timeout_ms)
    page.wait_for_function("() => !document.body.innerText.includes('Loading widget...')", timeout=timeout_ms)


def widget_errors(page) -> list[str]:
    """Texts of widget outputs that failed to render (e.g. "Error displaying widget")."""
    texts = page.locator(".jp-OutputArea-output").all_inner_texts()
    return [t.strip()[:200] for t in texts if "Error displaying widget" in t]


def move_slider(page, slider) -> None:
    """Drag the slider's handle most of the way to the farther end, as a learner would."""
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle").first.bounding_box()
    track = slider.locator(".noUi-target").first.bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    target = track["x"] + track["width"] * (0.9 if x < track["x"] + track["width"] / 2 else 0.1)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(target, y, steps=10)
    page.mouse.up()  # continuous_update=False sliders send their value on release


def output_after(slider):
    """The first ``tl-test-output`` after the slider on the page (the one it updates)."""
    return slider.locator(f"xpath=following::*[contains(concat(' ', @class, ' '), ' {TEST_OUTPUT} ')][1]")


def wait_for_change(locator, before: str, timeout: float) -> None:
    """Poll the element's HTML until it differs from ``before`` (new text and new plots both count)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if locator.inner_html() != before:
            return
        locator.page.wait_for_timeout(250)
    pytest.fail(f"moving the {TEST_SLIDER} slider did not change its output within {timeout:.0f} s")


def check_test_slider(page) -> None:
    """Move the lesson's test slider and check its output changed and shows no traceback."""
    sliders = page.locator(TEST_SLIDER)
    assert sliders.count() > 0, (f"the notebook shows widgets but none has the class "
                                 f"{TEST_SLIDER[1:]} (use tlcourse.widgets.live)")
    slider = sliders.first
    output = output_after(slider)
    assert output.count() == 1, f"no element with class {TEST_OUTPUT} after the {TEST_SLIDER} slider"
    output.locator(".jp-OutputArea-output").first.wait_for()  # the first preview is on the page
    before = output.inner_html()
    move_slider(page, slider)
    wait_for_change(output, before, SLIDER_TIMEOUT_S)
    page.wait_for_timeout(500)  # let the callback finish printing before reading it
    text = output.inner_text()
    assert "Traceback" not in text, f"the preview raised an error:\n{text[-1500:]}"


def save_screenshot(page, notebook: Path) -> None:
    """Keep what the learner would have seen, for the CI artifacts."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    prefix = "zh-" if notebook.parent.name == "zh" else ""
    page.screenshot(path=str(SCREENSHOTS / f"{prefix}{notebook.stem}.png"))


# ------------------------------------------------------------------------------- tests
def test_lab_serves_the_notebook_tree(lab: LabServer):
    """The server lists the lessons and serves the JupyterLab page for them (no browser needed)."""
    listed = {item["name"] for item in lab.api("/api/contents")["content"]}
    assert {p.name for p in LESSONS} <= listed
    with urllib.request.urlopen(f"{lab.url}/lab/tree?token={lab.token}", timeout=10) as reply:
        assert reply.status == 200 and b"jupyter-config-data" in reply.read()


def test_widgets_lab_extension_is_installed():
    """Without the ipywidgets lab extension every knob in the course is a line of text."""
    # This interpreter's jupyter: the one `make lab` runs, whatever else is on PATH.
    listing = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                             check=False, capture_output=True, text=True, timeout=120)
    text = listing.stdout + listing.stderr  # jupyter prints the list on stderr
    line = next((ln for ln in text.splitlines() if "@jupyter-widgets/jupyterlab-manager" in ln), "")
    assert line, f"@jupyter-widgets/jupyterlab-manager is not installed:\n{text}"
    assert "enabled" in line and "OK" in line, f"the widgets extension is not usable: {line.strip()}"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", LESSONS + ZH_LESSONS,
                         ids=lambda p: f"zh-{p.stem}" if p.parent.name == "zh" else p.stem)
def test_lesson_runs_in_the_browser(lab: LabServer, page, js_errors: list[str], notebook: Path):
    """Open, Run All, no error output, widgets rendered, the test slider updates its output; a
    Chinese lesson also shows its prose and the course's messages in Chinese."""
    saved = notebook.read_bytes()
    open_notebook(page, lab, notebook.relative_to(NOTEBOOK_DIR).as_posix())
    try:
        run_all_cells(page)
        state = wait_until_finished(page, RUN_TIMEOUT_S)
        errors = error_outputs(state)
        assert not errors, "cells raised errors:\n" + "\n".join(errors)
        views = widget_views(state)
        assert not shown_twice(views), "a widget is shown twice: write `_ = widgets.live(...)`"
        if views:
            wait_for_widgets(page)
            broken = widget_errors(page)
            assert not broken, f"widgets failed to render: {broken}"
            check_test_slider(page)
        if notebook.parent.name == "zh":
            text = page.locator(".jp-NotebookPanel").first.inner_text()
            assert "源任务" in text, "the Chinese lesson's prose is not shown"
            assert "○ 练习" in text, "the exercise check did not speak Chinese (TLCOURSE_LANG from the set-up cell)"
    except Exception:
        if js_errors:
            print("JavaScript errors on the page:", *js_errors, sep="\n  ")
        raise
    finally:
        save_screenshot(page, notebook)
    assert notebook.read_bytes() == saved, "the browser test saved the lesson (autosave must stay off)"
