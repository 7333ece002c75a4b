"""The package's import graph: no circle, and the three tiers that ``tlcourse/__init__.py`` describes.

- **core** (``tlcourse/*.py``) never imports a lab;
- **labs** (``tlcourse/labs/``) import core and infrastructure, never another lab;
- **infrastructure** (``tlcourse/infra/``) never imports a lab; ``infra.device`` imports nothing;
- **exercises** (``tlcourse/exercises/``, the graders of the "write the code" exercises) import core
  and infrastructure, never a lab, and one lesson's graders never another's; nothing else imports them;
- only ``widgets`` (and ``plots``, which draws them) import ipywidgets, so that a core computation
  such as ``guide.recommend`` never needs a widget library to refuse a bad value.

The graph is built from the source with ``ast``: every ``import tlcourse.x``, ``from tlcourse import
x``, ``from . import x``, ``from ..x import y`` in a module, at top level or inside a function (a
deferred import hides a circle or a layer leak, it does not remove it). Modules are named below
the package: ``"training"``, ``"labs.concepts"``, ``"infra.cache"``.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tlcourse"
_spec = importlib.util.spec_from_file_location("lesson_fingerprint", REPO / "tools" / "lesson_fingerprint.py")
graph_reader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(graph_reader)  # the one reader of tlcourse imports (lesson fingerprints use it too)
modules = graph_reader.package_modules


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(root)
    return {name: graph_reader.imports_in(ast.parse(path.read_text(encoding="utf-8")), name, set(known))
            for name, path in sorted(known.items())}


def tier(name: str) -> str:
    return {"labs": "lab", "infra": "infra", "exercises": "exercise"}.get(name.split(".")[0], "core")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle ``[a, b, ..., a]`` in ``graph``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node], _ = 2, path.pop()
        return None

    for node in graph:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def leaks(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a tier rule, as ``"a -> b (why)"``."""
    found = []
    for src, targets in graph.items():
        for dst in sorted(targets):
            if tier(dst) == "lab" and tier(src) != "lab":
                found.append(f"{src} -> {dst} (only a lab's own lesson uses a lab)")
            elif tier(dst) == "lab" and tier(src) == "lab":
                found.append(f"{src} -> {dst} (labs never import each other: move what both need to the core)")
            elif tier(dst) == "exercise" and tier(src) != "exercise":
                found.append(f"{src} -> {dst} (only a lesson's exercise cells use the graders)")
            elif (tier(src) == tier(dst) == "exercise" and src != "exercises"
                  and dst not in ("exercises.grading",)):
                found.append(f"{src} -> {dst} (a lesson's graders import only exercises.grading)")
            elif tier(src) == "exercise" and tier(dst) == "lab":
                found.append(f"{src} -> {dst} (graders build their own small cases, never a lab's)")
    return found


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_every_import_form(tmp_path):
    for sub in ("labs", "infra"):
        (tmp_path / sub).mkdir()
    for name in ["a", "b", "c", "d", "e", "h", "labs/x", "labs/y", "infra/z"]:
        (tmp_path / f"{name}.py").write_text("")
    (tmp_path / "labs" / "x.py").write_text(
        "from .. import a, b\nfrom ..c import f\nimport tlcourse.d\nfrom tlcourse import e\n"
        "from . import y\nfrom ..infra import z\ndef g():\n    from ..h import k\n")
    graph = import_graph(tmp_path)
    assert graph["labs.x"] == {"a", "b", "c", "d", "e", "h", "labs.y", "infra.z"}
    assert leaks(graph) == ["labs.x -> labs.y (labs never import each other: move what both need to the core)"]
    assert leaks({"training": {"labs.concepts"}}) == ["training -> labs.concepts (only a lab's own lesson uses a lab)"]


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert graph["training"] >= {"infra.device", "infra.distributed"}, "the graph is read from the source"
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph))}"


def test_the_three_tiers_hold():
    graph = import_graph()
    assert {tier(n) for n in graph} == {"core", "lab", "infra", "exercise"}
    assert leaks(graph) == [], "\n".join(leaks(graph))


def test_device_imports_nothing_from_the_package():
    assert import_graph()["infra.device"] == set(), "device is the bottom layer: any module may import it"


def test_only_the_widget_modules_import_ipywidgets():
    users = sorted(name for name, path in modules().items()
                   if any(isinstance(n, (ast.Import, ast.ImportFrom))
                          and any((a.name if isinstance(n, ast.Import) else (n.module or "")).startswith("ipywidgets")
                                  for a in n.names)
                          for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))))
    assert set(users) <= {"widgets", "plots"}, f"import ipywidgets only in widgets.py: {users}"
    core = [n for n, deps in import_graph().items() if tier(n) == "core" and "widgets" in deps]
    assert core == [], f"core modules that need the widgets: {core} (check_range lives in errors)"
