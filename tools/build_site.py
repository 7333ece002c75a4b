"""Build the course website from the lessons that ``make test`` executed.

``make test`` runs every lesson through nbval, and ``notebooks/conftest.py`` saves each one,
with its outputs, to ``artifacts/executed/``. This script turns those into a website with
Sphinx + MyST-NB (execution off: no lesson runs a third time) and the book theme:

1. stage ``artifacts/site-src/``: the landing page (``docs/index.md`` filled in from the
   README's sections and the lessons' title cells) and each executed lesson under its
   repository path ``notebooks/NN_x.ipynb`` (so the theme's Binder/Colab/source buttons open
   that notebook; docs/conf.py adds Kaggle to that menu), with small transforms that leave
   the notebooks themselves untouched: cells tagged ``solution`` get MyST-NB's ``hide-cell`` tag
   (collapsed, click to open), widget outputs become a static snapshot of their last state, and a line under the title
   says how the page was executed;
2. ``sphinx-build -c docs artifacts/site-src artifacts/site``.

Usage::

    python tools/build_site.py               # stage + build (what `make site-build` runs)
    python tools/build_site.py --list-stale  # lessons to (re)execute first (what `make site` asks)
"""
from __future__ import annotations

import argparse
import html
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from set_repo_url import current as repo_from_readme  # noqa: E402

DOCS = REPO / "docs"
EXECUTED = REPO / "artifacts" / "executed"
STAGE = REPO / "artifacts" / "site-src"
SITE = REPO / "artifacts" / "site"
README = REPO / "README.md"
BRANCH = "main"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CONTROLS = ("Slider", "Button", "Dropdown", "Checkbox", "Text", "Toggle", "Select", "RadioButtons",
            "Picker", "Combobox")


def lessons() -> list[Path]:
    return sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# ------------------------------------------------------------------------ freshness
def stale() -> list[Path]:
    """Lessons with no saved execution, one older than the notebook, or one that failed."""
    out = []
    for lesson in lessons():
        saved = EXECUTED / lesson.name
        if not saved.exists() or saved.stat().st_mtime < lesson.stat().st_mtime:
            out.append(lesson)
            continue
        facts = nbformat.read(saved, as_version=4).metadata.get("tlcourse", {})
        if not facts.get("passed"):
            out.append(lesson)
    return out


# --------------------------------------------------------------------- landing page
BADGE_LINE = re.compile(r"^\s*(\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)\s*)+$")


def readme_section(text: str, heading: str) -> str:
    """The README's section whose ``## `` heading starts with ``heading``, heading included
    ("intro": the text before the first ``##``, without the badges: the theme has buttons)."""
    if heading == "intro":
        body = text.split("\n## ", 1)[0].split("\n", 1)[1]
        body = "\n".join(ln for ln in body.splitlines() if not BADGE_LINE.match(ln))
    else:
        match = re.search(rf"^(## {re.escape(heading)}.*?\n)(.*?)(?=^## |\Z)", text, re.S | re.M)
        if not match:
            raise SystemExit(f"README.md has no section '## {heading}...' (docs/index.md asks for it)")
        body = match[1] + "\n" + match[2]
    body = re.sub(r"<!--.*?-->\n?", "", body, flags=re.S)
    body = re.sub(r"^REPO_URL:.*\n?", "", body, flags=re.M)
    return link_for_site(body.strip())


def link_for_site(markdown: str) -> str:
    """README links as the site needs them: lessons -> their pages, other files -> GitHub."""
    blob = f"https://github.com/{repo_from_readme()}/blob/{BRANCH}"

    def fix(match: re.Match) -> str:
        target = match[2]
        if re.match(r"^[a-z]+:|^#", target):
            return match[0]
        if re.fullmatch(r"notebooks/\d\d_[\w-]+\.ipynb", target):
            return f"]({target})"
        return f"]({blob}/{target})"

    return re.sub(r"\]\(()([^)\s]+)\)", fix, markdown)


def measured_times(title: str) -> tuple[str, str]:
    """(quick, full) as the title cell states them, e.g. ("about 110 s", "about 7.5 min")."""
    para = next((p for p in re.split(r"\n\s*\n", title) if "time" in p.lower() and "quick" in p.lower()), "")
    found = []
    for profile in ("quick", "full"):
        m = re.search(rf"{profile}(?: profile)?\W*?((?:about|≈|~)?\s*[\d.,]+(?:\s*[–-]\s*[\d.,]+)?"
                      rf"\s*(?:s|sec|seconds|min|minutes|h|hours)\b)", para, re.I)
        found.append(" ".join(m[1].split()) if m else "see the lesson")
    return found[0], found[1]


def lesson_table(readme: str) -> str:
    """The README's lesson table, with each lesson's measured times read from its title cell."""
    rows = {m[1]: (m[2], m[3].strip()) for m in re.finditer(
        r"^\|\s*(\d\d)\s*\|\s*\[([^\]]+)\]\([^)]*\)\s*\|([^|]*)\|", readme, re.M)}
    lines = ["| # | lesson | what you learn | quick / full (2-core CPU, measured) |", "|---|---|---|---|"]
    for lesson in lessons():
        num = lesson.name[:2]
        nb = nbformat.read(lesson, as_version=4)
        title = nb.cells[0].source if nb.cells else ""
        heading = re.sub(r"^#\s*\d\d\s*·\s*", "", title.splitlines()[0]) if title else lesson.stem
        name, learn = rows.get(num, (heading, ""))
        quick, full = measured_times(title)
        lines.append(f"| {num} | [{name}](notebooks/{lesson.name}) | {learn} | {quick} / {full} |")
    return "\n".join(lines)


def landing_page() -> str:
    readme = README.read_text()
    page = (DOCS / "index.md").read_text()
    page = re.sub(r"<!--.*?-->\n?", "", page, flags=re.S)
    toctree = "```{toctree}\n:hidden:\n:caption: Lessons\n\n" + "\n".join(
        f"notebooks/{p.stem}" for p in lessons()) + "\n```"
    page = page.replace("@@lessons@@", lesson_table(readme)).replace("@@toctree@@", toctree)
    return re.sub(r"@@readme:([^@]+)@@", lambda m: readme_section(readme, m[1]), page)


# ------------------------------------------------------------------ lesson transforms
def _strip_tags(value: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", str(value))).strip()


def widget_snapshot(model_id: str, widgets: dict) -> list:
    """Outputs that show a widget's last state without JavaScript: its controls as text
    (description: value), progress bars drawn with blocks, ``Output`` widgets' captured outputs."""
    items: list[tuple[str, str]] = []   # ("control" | "text", line)
    outputs: list = []

    def leaf(state: dict, name: str) -> tuple[str, str] | None:
        desc = _strip_tags(state.get("description", ""))
        if name in ("HTMLModel", "HTMLMathModel", "LabelModel"):
            text = _strip_tags(state.get("value", ""))
            return ("text", text) if text else None
        if "Progress" in name:
            lo, hi, val = state.get("min", 0), state.get("max", 1) or 1, state.get("value", 0)
            filled = int(round(10 * (val - lo) / max(hi - lo, 1e-9)))
            return ("text", f"{desc} ▕{'█' * filled}{' ' * (10 - filled)}▏".strip())
        if name == "ButtonModel":
            return ("control", f"[{desc or 'button'}]")
        if "_options_labels" in state and state.get("index") is not None:
            index = state["index"]
            labels = state["_options_labels"]
            value = ", ".join(labels[i] for i in index) if isinstance(index, list) else labels[index]
            return ("control", f"{desc or name}: {value}")
        if "value" in state and any(c in name for c in CONTROLS):
            return ("control", f"{desc or name}: {state['value']}")
        return None

    def flush(line_parts: list[tuple[str, str]]) -> None:
        if line_parts:
            kind = "control" if any(k == "control" for k, _ in line_parts) else "text"
            items.append((kind, "  ".join(t for _, t in line_parts)))

    def walk(mid: str) -> None:
        widget = widgets.get(mid)
        if widget is None:
            return
        state, name = widget.get("state", {}), widget.get("model_name") or ""
        if name == "OutputModel":
            if items:
                outputs.append(_snapshot_block(items[:]))
                items.clear()
            outputs.extend(state.get("outputs", []))
            return
        children = [c.removeprefix("IPY_MODEL_") for c in state.get("children", [])]
        if children:
            simple = all("children" not in widgets.get(c, {}).get("state", {}) and
                         widgets.get(c, {}).get("model_name") != "OutputModel" for c in children)
            if simple:  # one row: a progress bar with its labels, a few controls side by side
                flush([p for c in children if (p := leaf(widgets.get(c, {}).get("state", {}),
                                                            widgets.get(c, {}).get("model_name") or ""))])
            else:
                for child in children:
                    walk(child)
            return
        flush([p] if (p := leaf(state, name)) else [])

    walk(model_id)
    if items:
        outputs.append(_snapshot_block(items))
    return outputs


def _snapshot_block(items: list[tuple[str, str]]) -> nbformat.NotebookNode:
    lines = [t for _, t in items]
    if not any(k == "control" for k, _ in items):  # e.g. a finished progress bar: plain text
        return nbformat.v4.new_output("display_data", data={"text/plain": "\n".join(lines)})
    body = "".join(f"<li><code>{html.escape(t)}</code></li>" for t in lines)
    return nbformat.v4.new_output("display_data", data={
        "text/html": ('<div class="tl-widget-snapshot"><p class="tl-widget-note">Interactive widget, '
                      'shown in its last state: open this lesson on Binder or Colab (buttons at the top) '
                      f'to use it.</p><ul>{body}</ul></div>'),
        "text/plain": "\n".join(lines)})


def _clean_stream(text: str) -> str:
    """What a terminal shows: each line as its last carriage return left it."""
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


def stage_lesson(executed: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The executed lesson as the site shows it (a copy; the notebooks are never edited)."""
    nb = executed
    facts = nb.metadata.pop("tlcourse", {})
    widgets = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type == "markdown":  # badges: the theme's launch menu; the page stays offline
            cell.source = "\n".join(ln for ln in cell.source.splitlines() if not BADGE_LINE.match(ln))
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if "solution" in tags and "hide-cell" not in tags:
            tags.append("hide-cell")
        outputs = []
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                outputs.extend(widget_snapshot(out["data"][WIDGET_VIEW]["model_id"], widgets))
            elif out.get("output_type") == "stream":
                out["text"] = _clean_stream(out["text"])
                outputs.append(out)
            else:
                outputs.append(out)
        cell.outputs = outputs
    source = f"https://github.com/{repo_from_readme()}/blob/{BRANCH}/notebooks/{name}"
    run = (f"executed by `make test` in the **{facts.get('profile', '?')}** profile "
           f"(backbone `{facts.get('backbone') or 'default'}`, {facts.get('executed', '?')[:10]})")
    if facts and not facts.get("passed"):
        failed = facts.get("failed_cells") or []
        run += (f"; **{len(failed)} of its {facts.get('code_cells', '?')} code cells failed in that run"
                f"{f' (the first: code cell {failed[0] + 1})' if failed else ''}**")
    if not facts:
        run = "**no saved execution: the notebook is shown without outputs** (`make site` runs it)"
    note = nbformat.v4.new_markdown_cell(
        f"*This page is the lesson as CI ran it: {run}. To run it and turn its knobs, open it "
        f"with the rocket button at the top (Binder, Colab, Kaggle); "
        f"the notebook's source: [notebooks/{name}]({source}).*")
    note.metadata["tags"] = ["tl-site-note"]
    at = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
    nb.cells.insert(at, note)
    return nb


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def stage() -> list[str]:
    """Fill artifacts/site-src; returns warnings (missing or failed executions)."""
    warnings = []
    _write_if_changed(STAGE / "index.md", landing_page())
    for lesson in lessons():
        saved = EXECUTED / lesson.name
        if not saved.exists():
            warnings.append(f"{lesson.name}: no executed copy in {EXECUTED} (run `make test-notebooks`); "
                            "the page shows the notebook without outputs")
            nb = nbformat.read(lesson, as_version=4)
        else:
            nb = nbformat.read(saved, as_version=4)
            if not nb.metadata.get("tlcourse", {}).get("passed"):
                warnings.append(f"{lesson.name}: its saved execution did not pass every cell")
        _write_if_changed(STAGE / "notebooks" / lesson.name, nbformat.writes(stage_lesson(nb, lesson.name)))
    for extra in sorted((STAGE / "notebooks").glob("*.ipynb")):  # a lesson that was renamed
        if not (REPO / "notebooks" / extra.name).exists():
            extra.unlink()
    return warnings


def build() -> int:
    start = time.monotonic()
    for warning in stage():
        print(f"build_site: WARNING {warning}")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(DOCS), str(STAGE), str(SITE)]
    code = subprocess.call(cmd, cwd=REPO)
    if code == 0:
        (SITE / ".built").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))  # tests/test_site.py reads its age
    print(f"build_site: {'built' if code == 0 else 'FAILED'} {SITE.relative_to(REPO)}/index.html "
          f"in {time.monotonic() - start:.1f} s ({len(lessons())} lessons)")
    return code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list-stale", action="store_true",
                        help="print the lessons whose saved execution is missing, old or failed")
    args = parser.parse_args(argv)
    if args.list_stale:
        print(" ".join(str(p.relative_to(REPO)) for p in stale()))
        return 0
    return build()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
