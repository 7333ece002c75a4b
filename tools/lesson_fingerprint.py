"""What a recorded lesson run depends on: its code cells and the ``tlcourse`` modules they reach.

A benchmark entry in ``benchmarks/recorded.json`` says "this lesson ran to the end, every check
passing, in so many seconds". That is only true of the code that ran. ``fingerprint`` names that
code: a hash of the lesson's code cells (not outputs, not markdown: prose and the title cell's
time line may change without a new run) and a hash of every ``tlcourse`` module the lesson
imports, followed through the package's own imports (a change to ``training.py`` can break
lesson 06 although lesson 06 never names it). ``benchmarks/run.py --record`` stores it with each
entry; ``tests/test_recorded_fingerprints.py`` fails when a lesson no longer matches its full run;
``make benchmark-full`` (``benchmarks/run.py --stale``) re-runs exactly those lessons.

Example:
    >>> fp = fingerprint(REPO / "notebooks" / "00_concepts.ipynb")
    >>> sorted(fp) == ["code", "modules"] and "__init__" in fp["modules"]
    True
    >>> stale_parts(fp, fp)
    []
    >>> stale_parts({**fp, "code": "0"}, fp)
    ['code cells']
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tlcourse"


def _sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:16]


def _python(cell_source: str) -> str:
    """A code cell as plain Python (IPython's ``%magic`` and ``!shell`` lines translated)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


def package_modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name below it: ``"training"``, ``"labs.concepts"``; a
    subpackage's ``__init__.py`` by the subpackage's name (``"exercises"``: a lesson imports it whole).
    The package's own ``__init__.py`` is not in the list: any import runs it (``modules_reached``)."""
    found = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found[".".join(parts)] = p
    return found


def imports_in(tree: ast.AST, here: str | None, known: set[str]) -> set[str]:
    """The package modules ``tree`` imports, at any depth of its code (a deferred import counts).

    ``here`` is the dotted name of the module ``tree`` is (relative imports resolve against it), or
    None for code outside the package (a notebook cell).

    >>> code = ast.parse("from ..infra import cache; from .. import plots")
    >>> sorted(imports_in(code, "labs.x", {"infra.cache", "plots"}))
    ['infra.cache', 'plots']
    """
    package = here.split(".")[:-1] if here else []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("tlcourse.") for a in node.names if a.name.startswith("tlcourse.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level and here is not None:
                parts = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                base = ".".join(parts + ([node.module] if node.module else []))
            elif node.module == "tlcourse" or (node.module or "").startswith("tlcourse."):
                base = node.module.removeprefix("tlcourse").lstrip(".")
            else:
                continue
            for alias in node.names:  # from X import a: a is a module of X, or a name defined in X
                full = f"{base}.{alias.name}" if base else alias.name
                found.add(full if full in known else base)
    return found & known - {here}


def modules_reached(start: set[str]) -> set[str]:
    """``start`` and every ``tlcourse`` module they import, directly or through each other.

    >>> "infra.device" in modules_reached({"training"})
    True
    """
    known = package_modules()
    seen: set[str] = set()
    todo = set(start) | {"__init__"}  # any import of tlcourse runs its __init__
    while todo:
        name = todo.pop()
        seen.add(name)
        path = PACKAGE / "__init__.py" if name == "__init__" else known[name]
        todo |= imports_in(ast.parse(path.read_text()), name, set(known)) - seen
    return seen


def fingerprint(notebook: Path) -> dict:
    """``{"code": hash of the code cells, "modules": {module: hash of its source}}``."""
    nb = nbformat.read(notebook, as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    direct: set[str] = set()
    known = package_modules()
    for src in sources:
        try:
            direct |= imports_in(ast.parse(_python(src)), None, set(known))
        except SyntaxError:  # an exercise stub may not parse; the hash still covers its text
            continue
    modules = {m: _sha((PACKAGE / "__init__.py" if m == "__init__" else known[m]).read_bytes())
               for m in sorted(modules_reached(direct))}
    return {"code": _sha("\n\x1e\n".join(sources)), "modules": modules}


def stale_parts(recorded: dict | None, current: dict) -> list[str]:
    """What differs between a recorded fingerprint and the current one, for a message.

    >>> stale_parts({"code": "a", "modules": {"x": "1", "y": "2"}}, {"code": "a", "modules": {"x": "9", "z": "3"}})
    ['tlcourse.x', 'tlcourse.y', 'tlcourse.z']
    >>> stale_parts(None, {"code": "a", "modules": {}})
    ['no fingerprint recorded']
    """
    if not recorded:
        return ["no fingerprint recorded"]
    parts = ["code cells"] if recorded.get("code") != current["code"] else []
    old, new = recorded.get("modules", {}), current["modules"]
    parts += [f"tlcourse.{m}" for m in sorted(set(old) | set(new)) if old.get(m) != new.get(m)]
    return parts


if __name__ == "__main__":
    import json
    import sys

    for arg in sys.argv[1:] or sorted(str(p) for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        print(Path(arg).name, json.dumps(fingerprint(Path(arg))))
