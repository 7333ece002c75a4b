"""Each public name of the package means one thing: it is defined in one module only.

``dann.accuracy`` beside ``probes.accuracy`` (images vs features), two ``setup`` and two
``plot_history`` made a newcomer read the import line to know which one a cell meant.
A module may *re-export* a name it imports (``text.count_params``); only definitions count.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tlcourse"
# The same meaning in every module that has one: a ``python -m tlcourse.X`` entry point,
# and the version of that module's own cached results.
SAME_MEANING = {"main", "VERSION"}


def definitions(source: str) -> set[str]:
    """Public top-level functions, classes and UPPER_CASE constants that ``source`` defines."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def test_definitions_sees_functions_classes_and_constants_not_imports():
    src = "from x import y\ndef f(): pass\nclass C: pass\nK = 1\n_private = 2\nasync def g(): pass\n"
    assert definitions(src) == {"f", "C", "K", "g"}


def test_every_public_name_is_defined_in_one_module():
    where = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in definitions(path.read_text(encoding="utf-8")):
            where[name].append(path.stem)
    twice = {name: mods for name, mods in where.items() if len(mods) > 1 and name not in SAME_MEANING}
    assert not twice, f"defined in more than one module (rename one, or import it): {twice}"
