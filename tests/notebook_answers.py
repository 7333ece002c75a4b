"""The answers a lesson's notebook holds for its graded exercises, as live objects for the tests.

A graded exercise is two cells (CONTRIBUTING.md, "Graded exercises"): the **stub** (tag
``exercise``), which defines the answer's name with a body that raises ``NotImplementedError`` and
ends with ``exercises.check("NN.k", name)``; and the hidden **solution** (tag ``solution``), which
defines the same name and calls the same check. ``answer(key, "solution")`` executes, in a fresh
namespace, every import of the lesson's code cells and then the solution cell's function and class
definitions (not the lines that run them on the lesson's data), and returns the object; the check
is then run on it like the learner's. The graders pass everything an answer needs as arguments, so
an answer that reads a lesson variable instead fails here with a NameError.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Literal

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK_CALL = re.compile(r"""^exercises\.check\(\s*["'](\d\d\.\d+)["']\s*,\s*([A-Za-z_]\w*)\s*\)\s*$""", re.M)


def _python(source: str) -> str:
    """A cell without IPython's ``%magic`` and ``!shell`` lines."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def notebook(lesson: str) -> nbformat.NotebookNode:
    (path,) = [p for p in NOTEBOOKS if p.name.startswith(lesson)]
    return nbformat.read(path, as_version=4)


def graded_cells(lesson: str) -> dict[str, dict[str, Any]]:
    """``{key: {"name": ..., "stub": cell, "solution": cell}}`` for every check call in lesson ``lesson``."""
    found: dict[str, dict[str, Any]] = {}
    for cell in notebook(lesson).cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        for key, name in CHECK_CALL.findall(cell.source):
            kind = "stub" if "exercise" in tags else "solution" if "solution" in tags else "elsewhere"
            entry = found.setdefault(key, {"name": name})
            assert entry["name"] == name, f"exercise {key} checks {entry['name']!r} and {name!r}"
            assert kind not in entry, f"exercise {key}: two {kind} cells"
            entry[kind] = cell
    return found


def lesson_imports(lesson: str) -> str:
    """Every top-level import statement of the lesson's code cells, in order."""
    lines = []
    for cell in notebook(lesson).cells:
        if cell.cell_type == "code":
            source = _python(cell.source)
            tree = ast.parse(source)
            lines += [ast.get_source_segment(source, n) for n in tree.body
                      if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


def answer(key: str, kind: Literal["stub", "solution"]) -> Any:
    """The object named by exercise ``key``'s check call, as the lesson's ``kind`` cell defines it."""
    lesson = key[:2]
    entry = graded_cells(lesson)[key]
    source = _python(entry[kind].source)
    tree = ast.parse(source)
    defs = [ast.get_source_segment(source, n) for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))]
    namespace: dict[str, Any] = {"__name__": f"lesson_{lesson}"}
    exec(compile(lesson_imports(lesson), f"<lesson {lesson} imports>", "exec"), namespace)
    exec(compile("\n\n".join(defs), f"<lesson {lesson} {kind} of {key}>", "exec"), namespace)
    return namespace[entry["name"]]


def assert_mistakes_fail(key: str, cases: dict, prefix: str = "") -> None:
    """Each wrong answer in ``cases`` (answer -> words its message must contain) fails exercise
    ``key``'s check with those words (and, if given, a message that starts with ``prefix``)."""
    from tlcourse.exercises.grading import grade

    for wrong, expected in cases.items():
        verdict = grade(key, wrong)
        assert verdict.status == "failed", (wrong.__name__, str(verdict))
        assert expected in verdict.message and verdict.message.startswith(prefix), (wrong.__name__, verdict.message)
