"""The package's import graph has no circle: every ``tlcourse`` module can be read (and
imported) after the modules it needs, never in the middle of itself.

The graph is built from the source with ``ast``: every ``import tlcourse.x``,
``from tlcourse import x``, ``from . import x`` and ``from .x import y`` in a module, at
top level or inside a function (a deferred import hides a circle, it does not remove it).
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tlcourse"


def modules() -> set[str]:
    return {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports (at any depth of its code)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tlcourse" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == "tlcourse" or (node.module or "").startswith("tlcourse."):
                module = (node.module or "").removeprefix("tlcourse").lstrip(".") if node.level == 0 else node.module
                if module:
                    found.add(module.split(".")[0])
                else:  # from . import a, b  /  from tlcourse import a, b
                    found.update(alias.name for alias in node.names)
    return found & known - {path.stem}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(PACKAGE / f"{name}.py", known) for name in sorted(known)}


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


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_every_import_form(tmp_path):
    src = tmp_path / "x.py"
    src.write_text("from . import a, b\nfrom .c import f\nimport tlcourse.d\nfrom tlcourse import e\n"
                   "def g():\n    from .h import k\n")
    assert imports_of(src, set("abcdefgh") | {"x"}) == set("abcdeh")


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert graph["training"] >= {"device", "distributed"}, "the graph is read from the source"
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph))}"


def test_device_imports_nothing_from_the_package():
    assert import_graph()["device"] == set(), "device is the bottom layer: any module may import it"
