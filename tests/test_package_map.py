"""The lesson -> modules map (``tlcourse/__init__.py``'s docstring and the README) is true.

Each lesson's modules are read from the notebook itself: every ``from tlcourse import a, b``,
``from tlcourse.x import y`` and ``import tlcourse.x`` in its code cells. A new lesson, a new
import or a renamed module fails here until both maps say so; ``python tests/test_package_map.py``
prints the lines to paste.
"""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SETUP = {"infra.cloud"}  # every lesson's platform set-up cell; said once above the map
SUBPACKAGES = ("labs", "infra")
LINE = re.compile(r"^\s*-\s+(\d\d_\w+):\s+(.*?)\s*$")


def modules_in(source: str) -> set[str]:
    """The tlcourse modules one cell's code imports (IPython magics and shell lines skipped), named
    below the package: ``"plots"``, ``"labs.concepts"``, ``"infra.cloud"``."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module == "tlcourse":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tlcourse."):
            sub = node.module.removeprefix("tlcourse.")
            found.update(f"{sub}.{a.name}" for a in node.names) if sub in SUBPACKAGES else found.add(sub)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("tlcourse.") for a in node.names if a.name.startswith("tlcourse."))
    return found


def lesson_modules(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    found = set().union(*(modules_in(c.source) for c in nb.cells if c.cell_type == "code"))
    return sorted(found - SETUP)


def expected_lines() -> dict[str, str]:
    return {p.stem: ", ".join(lesson_modules(p)) for p in NOTEBOOKS}


def map_in(text: str) -> dict[str, str]:
    """The ``- 00_concepts: a, b`` items of a text (the map block); an item may go on over
    indented lines."""
    found: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if match := LINE.match(line):
            current, found[match[1]] = match[1], match[2]
        elif current and line.startswith("  ") and line.strip():
            found[current] += " " + line.strip()
        else:
            current = None
    return found


def map_text(width: int = 100) -> str:
    """The map as both places write it: one item per lesson, wrapped at ``width``."""
    return "\n".join(textwrap.fill(f"- {stem}: {names}", width, subsequent_indent="  ", break_on_hyphens=False)
                     for stem, names in expected_lines().items())


def test_modules_in_reads_every_import_form():
    src = ("%matplotlib inline\nfrom tlcourse import (a,\n    b as c)\nfrom tlcourse.d import e\n"
           "import tlcourse.f\nimport torch\nfrom tlcourse.labs import g as lab\nfrom tlcourse.labs.h import k")
    assert modules_in(src) == {"a", "b", "d", "f", "labs.g", "labs.h"}
    assert map_in("x\n- 00_a: b, c,\n  d\n- 01_e: f\n\n  g") == {"00_a": "b, c, d", "01_e": "f"}


def test_the_package_docstring_maps_every_lesson_to_its_modules():
    import tlcourse

    assert map_in(tlcourse.__doc__) == expected_lines(), \
        "update tlcourse/__init__.py (print: python tests/test_package_map.py)"


def test_the_readme_maps_every_lesson_to_its_modules():
    assert map_in((REPO / "README.md").read_text(encoding="utf-8")) == expected_lines(), \
        "update the README's map (print: python tests/test_package_map.py)"


def test_every_mapped_module_exists_and_is_described():
    import tlcourse

    for names in expected_lines().values():
        for name in filter(None, names.split(", ")):
            path = REPO / "tlcourse" / name.replace(".", "/")
            assert path.with_suffix(".py").exists() or (path / "__init__.py").exists(), name
            assert f":mod:`tlcourse.{name}`" in tlcourse.__doc__, f"tlcourse/__init__.py does not describe {name}"


def test_a_lesson_imports_only_its_own_lab_and_no_infrastructure():
    """The three tiers as a lesson sees them: core modules, its own lab (named after the notebook,
    ``07_choosing_a_strategy`` -> ``tlcourse.labs.choosing_a_strategy``), nothing of ``tlcourse.infra``
    but the set-up cell's ``cloud``."""
    for path in NOTEBOOKS:
        names = lesson_modules(path)
        own = f"labs.{path.stem[3:]}"
        assert set(n for n in names if n.startswith("labs.")) <= {own}, f"{path.name} imports another lesson's lab"
        assert not [n for n in names if n.startswith("infra.")], f"{path.name} imports the infrastructure"


def test_every_lab_belongs_to_a_lesson():
    stems = {p.stem[3:] for p in NOTEBOOKS}
    labs = {p.stem for p in (REPO / "tlcourse" / "labs").glob("*.py")} - {"__init__"}
    assert labs <= stems, f"labs without a lesson: {sorted(labs - stems)}"


if __name__ == "__main__":
    print(map_text())
