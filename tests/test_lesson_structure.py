"""Every lesson has the shape the syllabus asks for (CONTRIBUTING.md, "How a lesson is written").

These read the notebooks as files; executing them is nbval's job (`make test`).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00", "01", "02", "03", "04", "05", "06"]


def test_all_seven_lessons_are_there_in_order():
    assert [p.name[:2] for p in NOTEBOOKS] == EXPECTED


def cells(path: Path):
    return nbformat.read(path, as_version=4).cells


def text(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_title_cell_states_objectives_time_and_profile(path):
    first = cells(path)[0]
    assert first.cell_type == "markdown" and text(first).startswith("# ")
    body = text(first).lower()
    assert "objective" in body or "you will" in body
    assert "quick" in body and "full" in body and re.search(r"\d+\s*(s|sec|min)", body)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_has_predict_widgets_exercises_recap_checks(path):
    cs = cells(path)
    md = "\n".join(text(c) for c in cs if c.cell_type == "markdown")
    code = "\n".join(text(c) for c in cs if c.cell_type == "code")
    assert "Predict" in md, "a 'predict, then run' moment"
    assert "widgets.live(" in code and "widgets.control_panel(" in code
    assert len(re.findall(r"^###\s*Exercise", md, flags=re.M)) >= 3
    solutions = [c for c in cs if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) >= 3
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in solutions)
    assert re.search(r"^#+\s*Recap", md, flags=re.M)
    checks = [c for c in cs if c.cell_type == "code" and text(c).lstrip().startswith("# Check")]
    assert checks and all("assert" in text(c) for c in checks)
    assert "config.summary()" in code, "the profile in use is printed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    for c in cells(path):
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, "clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_long_helper_code_in_notebooks(path):
    for c in cells(path):
        if c.cell_type == "code" and "solution" not in c.metadata.get("tags", []):
            src = text(c)
            assert src.count("\ndef ") + src.startswith("def ") <= 1, "helpers belong in tlcourse/"
            assert len(src.splitlines()) <= 30, f"cell too long:\n{src[:200]}"
