"""The course website (``make site`` -> ``artifacts/site/``), read in a real browser.

Serves the built site from a local HTTP server and opens every lesson page in Debian's
Chromium (Playwright, the launch flags of tests/test_browser.py; no browser is downloaded).
Each lesson page must show its title and measured times, a table of contents, at least one
rendered figure, no error output, its solutions collapsed until clicked, launch links
(Binder, Colab, Kaggle, source) that point at this repository's copy of *that* notebook, and
internal links that resolve. Requests that leave the local server are blocked (the site must
work offline); only the MathJax CDN may be asked for, by pages with math.
One screenshot per page goes to ``artifacts/site-screenshots/``, with ``summary.txt``.

Skips with the reason when the site was not built, except where ``TLCOURSE_REQUIRE_SITE=1``
(.ci/run builds it first), where its absence fails.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


REPO = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("TLCOURSE_SITE_DIR") or REPO / "artifacts" / "site")
SHOTS = REPO / "artifacts" / "site-screenshots"
LESSONS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ZH_LESSONS = sorted((REPO / "notebooks" / "zh").glob("[0-9][0-9]_*.ipynb"))
#: Draws two Chinese characters in the page's own font; boxes ("tofu") would give equal pixels.
GLYPHS_DIFFER = """() => {
  const font = getComputedStyle(document.querySelector("main")).fontFamily;
  const draw = ch => { const c = document.createElement("canvas"); c.width = c.height = 40;
    const x = c.getContext("2d"); x.font = `32px ${font}`; x.fillText(ch, 2, 32);
    return Array.from(x.getImageData(0, 0, 40, 40).data).join(","); };
  const a = draw("迁"), b = draw("移"), blank = draw(" ");
  return a !== b && a !== blank && b !== blank;
}"""
#: The only hosts a page may ask for (and is refused, here): MathJax, for pages with math.
ALLOWED_EXTERNAL = ("cdn.jsdelivr.net/npm/mathjax",)
SUMMARY: dict[str, str] = {}

sys.path.insert(0, str(REPO / "tools"))
from set_repo_url import current as repo_from_readme  # noqa: E402

pytestmark = pytest.mark.browser


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def site() -> Path:
    """The built site; skip (fail in CI) if absent, skip locally if older than the executions."""
    required = os.environ.get("TLCOURSE_REQUIRE_SITE") == "1"
    stamp = SITE / ".built"  # tools/build_site.py writes it after a successful build
    if not (SITE / "index.html").exists() or not stamp.exists():
        (pytest.fail if required else pytest.skip)(
            f"no built site at {SITE}: run `make site` (or `make test` then `make site-build`)")
    executed = list((REPO / "artifacts" / "executed").glob("*.ipynb"))
    if not required and any(p.stat().st_mtime > stamp.stat().st_mtime for p in executed):
        pytest.skip("the site is older than artifacts/executed/: run `make site-build` to test it")
    return SITE


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """``python -m http.server`` on a free loopback port, serving the built site."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def page(browser, server: str) -> Iterator[Any]:
    """A tab that may only talk to the local server; what else it asked for is in ``page.external``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.external, tab.js_errors = [], []

    def route(r) -> None:
        if r.request.url.startswith(server):
            r.continue_()
        else:
            tab.external.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    tab.on("pageerror", lambda exc: tab.js_errors.append(str(exc)))
    yield tab
    context.close()


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    yield
    if SUMMARY:
        SHOTS.mkdir(parents=True, exist_ok=True)
        text = "\n".join(SUMMARY[k] for k in sorted(SUMMARY))
        (SHOTS / "summary.txt").write_text(text + "\n")
        print("\n" + text)


# ------------------------------------------------------------------------------ helpers
@functools.lru_cache(maxsize=None)
def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, ""


def internal_links(page, server: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    return sorted({h for h in hrefs if h.startswith(server)})


def broken_links(links: list[str]) -> list[str]:
    """Links whose page does not answer 200, or whose #fragment names no element there."""
    broken = []
    for link in links:
        url, _, fragment = link.partition("#")
        status, body = fetch(url)
        if status != 200:
            broken.append(f"{link} ({status})")
        elif fragment and not re.search(rf'id="{re.escape(urllib.parse.unquote(fragment))}"', body):
            broken.append(f"{link} (no #{fragment})")
    return broken


def launch_problems(hrefs: list[str], repo: str, notebook: str) -> list[str]:
    """What is wrong with the page's Binder, Colab, Kaggle and source links for ``notebook``."""
    path = f"notebooks/{notebook}"
    blob = re.compile(rf"^https://github\.com/{re.escape(repo)}/blob/[\w.-]+/{re.escape(path)}$")
    expected = {
        "Binder": lambda u: (u.netloc == "mybinder.org" and u.path.startswith(f"/v2/gh/{repo}/")
                             and urllib.parse.parse_qs(u.query).get("urlpath") == [f"lab/tree/{path}"]),
        "Colab": lambda u: (u.netloc == "colab.research.google.com"
                            and re.fullmatch(rf"/github/{re.escape(repo)}/blob/[\w.-]+/{re.escape(path)}", u.path)),
        "Kaggle": lambda u: (u.netloc.endswith("kaggle.com") and u.path == "/kernels/welcome"
                             and bool(blob.match(urllib.parse.parse_qs(u.query).get("src", [""])[0]))),
        "source": lambda u: bool(blob.match(u._replace(query="").geturl())),
    }
    parsed = [urllib.parse.urlparse(h) for h in hrefs]
    problems = [f"no {name} link to {repo}'s {path}" for name, ok in expected.items()
                if not any(ok(u) for u in parsed)]
    if not (REPO / path).exists():
        problems.append(f"{path} does not exist in the repository")
    return problems


def screenshot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1400, "height": min(height, 3200)})


# ------------------------------------------------------------------------------- tests
def test_landing_page(server: str, page):
    """What the course teaches, every lesson with its measured times, how to run it, offline use."""
    reply = page.goto(f"{server}/index.html")
    assert reply.status == 200
    text = page.inner_text("main")
    for needed in ("make start", "make test", "Binder", "Colab", "Offline and classrooms", "quick"):
        assert needed in text, f"the landing page does not mention {needed!r}"
    # the lesson table (the page has others, e.g. platforms x Pythons)
    rows = page.locator("main table", has_text="what you learn").locator("tbody tr")
    assert rows.count() == len(LESSONS), "the lesson table should have one row per lesson"
    for lesson in LESSONS:
        assert page.locator(f'main table a[href$="notebooks/{lesson.stem}.html"]').count() == 1, lesson.name
    links = internal_links(page, server)
    assert not broken_links(links), broken_links(links)
    screenshot(page, "index")
    assert not page.js_errors, page.js_errors
    SUMMARY["index"] = f"index: {rows.count()} lessons in the table, {len(links)} internal links ok"


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.stem)
def test_lesson_page(server: str, page, notebook: Path):
    reply = page.goto(f"{server}/notebooks/{notebook.stem}.html")
    assert reply is not None and reply.status == 200, f"no page for {notebook.name}"
    page.wait_for_load_state("load")
    screenshot(page, notebook.stem)  # what a reader sees first, before any click
    try:
        # title and measured times (the title cell), a table of contents
        title = page.inner_text("main h1").strip()
        assert title.startswith(notebook.name[:2]), f"page title {title!r}"
        intro = page.inner_text("main section")[:4000].lower()
        assert "quick" in intro and "full" in intro, "the title cell's measured times are not shown"
        toc = page.locator(".bd-sidebar-secondary nav a")
        assert toc.count() >= 2, "no table of contents on the page"
        # outputs: rendered figures, no error output
        figures = page.eval_on_selector_all(
            ".cell_output img", "els => els.filter(e => e.complete && e.naturalWidth > 0).length")
        assert figures >= 1, "no rendered figure in the outputs"
        errors = page.locator(".cell_output .traceback, .cell_output .output.error")
        assert errors.count() == 0, "error output on the page:\n" + "\n".join(errors.all_inner_texts())[:2000]
        assert "Traceback (most recent call last)" not in page.inner_text("main")
        # solutions collapsed, open on click
        solutions = page.locator(".cell.tag_solution")
        assert solutions.count() >= 1, "no solution cells (tag `solution`) on the page"
        for i in range(solutions.count()):
            details = solutions.nth(i).locator("details").first
            assert details.count() == 1 and not details.evaluate("d => d.open"), f"solution {i + 1} is not collapsed"
            code = solutions.nth(i).locator(".cell_input").first
            assert not code.is_visible(), f"solution {i + 1}'s code is visible before a click"
            details.locator("summary").click()
            code.wait_for(state="visible", timeout=5_000)
        # graded exercises: the stub and its check call visible, with the check's verdict; the
        # solution (collapsed, opened above) graded ✔ by the same check
        stubs = page.locator(".cell.tag_exercise")
        assert stubs.count() >= 1, "no graded exercise (tag `exercise`) on the page"
        for i in range(stubs.count()):
            stub = stubs.nth(i)
            assert stub.locator(".cell_input").first.is_visible(), f"exercise stub {i + 1} is hidden"
            assert "exercises.check(" in stub.locator(".cell_input").first.inner_text()
            assert "○ Exercise" in stub.locator(".cell_output").first.inner_text(), f"stub {i + 1}: no verdict shown"
        graded = [t for t in solutions.all_inner_texts() if "exercises.check(" in t]
        assert len(graded) == stubs.count() and all("✔ Exercise" in t for t in graded), graded
        # check cells visible, and they ran without error (errors were looked for above)
        checks = page.locator(".cell.tag_check")
        for i in range(checks.count()):
            assert checks.nth(i).locator(".cell_input").first.is_visible(), f"check cell {i + 1} is hidden"
        # launch and source links for this notebook in this repository; internal links
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        problems = launch_problems(hrefs, repo_from_readme(), notebook.name)
        assert not problems, problems
        links = internal_links(page, server)
        assert not broken_links(links), broken_links(links)
        refused = [u for u in page.external if not any(a in u for a in ALLOWED_EXTERNAL)]
        assert not refused, f"the page asked for outside resources: {refused}"
        assert not page.js_errors, page.js_errors
    except Exception:
        screenshot(page, notebook.stem)  # where it failed
        raise
    SUMMARY[notebook.stem] = (f"{notebook.stem}: {figures} figures, {solutions.count()} solutions collapsed "
                              f"and opened, {stubs.count()} graded exercise(s) shown with their verdicts, "
                              f"{checks.count()} check cells, {len(links)} internal links ok")


@pytest.mark.parametrize("notebook", ZH_LESSONS, ids=lambda p: f"zh-{p.stem}")
def test_chinese_lesson_page(server: str, page, notebook: Path):
    """The Chinese edition: its pages, the 中文 / English switch both ways, Chinese glyphs drawn."""
    reply = page.goto(f"{server}/notebooks/zh/{notebook.stem}.html")
    assert reply is not None and reply.status == 200, f"no page for zh/{notebook.name}"
    page.wait_for_load_state("load")
    screenshot(page, f"zh-{notebook.stem}")
    title = page.inner_text("main h1").strip()
    assert title.startswith(notebook.name[:2]) and re.search(r"[\u4e00-\u9fff]", title), title
    assert page.evaluate(GLYPHS_DIFFER), "Chinese characters render as boxes: no CJK font for the page"
    english = page.locator(f'main a[href$="{notebook.stem}.html"]', has_text="English")
    assert english.count() >= 1, "no link to the English page"
    errors = page.locator(".cell_output .traceback, .cell_output .output.error")
    assert errors.count() == 0, "error output on the page"
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    problems = launch_problems(hrefs, repo_from_readme(), f"zh/{notebook.name}")
    assert not problems, problems
    links = internal_links(page, server)
    assert not broken_links(links), broken_links(links)
    english.first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/notebooks/{notebook.stem}.html"), page.url
    assert page.locator(f'main a[href$="zh/{notebook.stem}.html"]', has_text="中文").count() >= 1, \
        "the English page has no link to its Chinese version"
    assert not page.js_errors, page.js_errors
    SUMMARY[f"zh-{notebook.stem}"] = f"zh/{notebook.stem}: Chinese title and glyphs, switch both ways, launch links ok"


# ------------------------------------------------- the pipeline's pieces, without a browser
def _load(path: Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _msg(kind: str, parent: str = "run-1", **content: Any) -> dict:
    return {"msg_type": kind, "content": content, "parent_header": {"msg_id": parent},
            "header": {"msg_type": kind}}


def test_recorder_keeps_what_jupyterlab_would_show():
    """clear_output(wait), display updates and Output-widget capture, as the saving hook records them."""
    rec = _load(REPO / "notebooks" / "conftest.py", "tl_nb_conftest").Recorder()
    png = {"image/png": "iVBOR", "text/plain": "<Figure>"}
    for msg in [
        _msg("execute_input", code="...", execution_count=None),
        _msg("stream", name="stdout", text="epoch 1\n"),
        _msg("clear_output", wait=True),
        _msg("stream", name="stdout", text="epoch 2\n"),
        _msg("display_data", data=png, metadata={}, transient={"display_id": "curve"}),
        _msg("update_display_data", data={"image/png": "LAST", "text/plain": "<Figure>"}, metadata={},
             transient={"display_id": "curve"}),
        _msg("comm_open", comm_id="out1", target_name="jupyter.widget",
             data={"state": {"_model_name": "OutputModel", "msg_id": ""}}),
        _msg("comm_msg", comm_id="out1", data={"method": "update", "state": {"msg_id": "run-1"}}),
        _msg("stream", name="stdout", text="inside the widget\n"),
        _msg("comm_msg", comm_id="out1", data={"method": "update", "state": {"msg_id": ""}}),
        _msg("stream", name="stdout", text="from another cell\n", parent="old"),
    ]:
        rec.handle(msg, 0, "run-1")
    outs = rec.outputs[0]
    assert [o["output_type"] for o in outs] == ["stream", "display_data"]
    assert outs[0]["text"] == "epoch 2\n" and outs[1]["data"]["image/png"] == "LAST"
    state = rec.widget_state()["state"]["out1"]
    assert state["model_name"] == "OutputModel"
    assert [o["text"] for o in state["state"]["outputs"]] == ["inside the widget\n"]


def test_widget_snapshot_and_title_times():
    """Widgets become text + their Output's outputs; the landing page reads the title cell's times."""
    build = _load(REPO / "tools" / "build_site.py", "tl_build_site")
    widgets = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_s", "IPY_MODEL_o"]}},
        "s": {"model_name": "IntSliderModel", "state": {"description": "epochs", "value": 3}},
        "o": {"model_name": "OutputModel", "state": {"outputs": [{"output_type": "stream", "name": "stdout",
                                                                  "text": "acc 0.9\n"}]}},
        "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p"]}},
        "l": {"model_name": "HTMLModel", "state": {"value": "features: 100%"}},
        "p": {"model_name": "FloatProgressModel", "state": {"value": 31, "min": 0, "max": 31}},
    }
    shown = build.widget_snapshot("box", widgets)
    assert "epochs: 3" in shown[0]["data"]["text/html"] and shown[1]["text"] == "acc 0.9\n"
    assert build.widget_snapshot("bar", widgets)[0]["data"]["text/plain"] == "features: 100%  ▕██████████▏"
    title = ("# 02 · Fine-tuning\n\n**Time on a 2-core laptop CPU (measured):** quick profile about 110 s "
             "(104–112 s); full profile about 7.5 min.\n\n**Prerequisites:** lesson 01")
    assert build.measured_times(title) == ("about 110 s", "about 7.5 min")
    assert build.measured_times("# 06 · x\n\n**Time (measured):** quick ≈ 1.5 min. Full ≈ 20 min") == (
        "≈ 1.5 min", "≈ 20 min")
