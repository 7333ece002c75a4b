"""A number the profile decides is printed by the lesson, never typed into its prose (issue 30).

Each lesson sets its profile-dependent settings in one call,
``P = config.by_profile(quick=dict(...), full=dict(...))``. A value that differs between the two
profiles (9 trials in quick, 16 in full; 4,000 phrases or all of them) is true in one profile only,
so the markdown must name it as ``P["..."]`` (or leave it to a cell's output) instead of typing it.
This test parses that call with ``ast`` and fails when such a value appears as a literal number
in the lesson's markdown: ``16,000``, ``0.9`` or ``90 %`` for 0.9, ``288-px``.

What it cannot see: a number spelled as a word ("three seeds"), a number derived from the
settings (15 grid trials from a budget of 16), a small count (0-4: classes, blocks and outputs
are everywhere), or a typed result that is no setting at all. Those are for review, by the rule of
issue 30: a number in markdown is a fact of the data, the method or a paper, or a cell prints it.

These read the notebooks as files; executing them is nbval's job (`make test`).
"""
from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Numbers that coincide with a profile-dependent value but say something else: {lesson: {phrase}},
# where the phrase, written as in the markdown, contains the number and its context. Keep it short.
FACTS: dict[str, set[str]] = {
    "02": {"momentum 0.9", "momentum=0.9"},  # SGD's momentum in the recipe, not the full profile's recipe_bar
    "04": {"about 60 %, 80 % or 90 %",  # a prediction's three choices, not a result
           "Compute it for the first 1,000 phrases"},  # exercise 5's own subset (its solution: [:1000])
    "06": {"MNIST's 60,000 training images",  # the datasets' sizes
           "(10,000 MNIST, 9,001 MNIST-M and", "2,007 USPS images"},
    "07": {"draws its line at about 1,000 images per class",  # guide.SMALL_BELOW
           "`ParameterSampler`, 12 trials"},  # exercise 5's own budget
    "08": {"into the right 8-bit values",  # a pixel format
           "in batches of 8 (open",  # exercise 3's own batch size
           "only the first 100 bytes"},  # exercise 4's truncated file
}

SMALL = 4  # integers up to this are not checked (see _numbers)

# "lesson 06", "section 7", "Exercise 3", "exercise 5": references, not quantities.
REFERENCE = re.compile(r"((lesson|section|exercise|item|cell)s?[\s\d,]*(and|or)?\s*|^#+\s*)$",
                       re.IGNORECASE)
# 67,349 / 20 000 (thousands), 0.9, 288 (in "288-px"), and "90 %" read as 0.9
NUMBER = re.compile(r"(?<![\w.\-/#])"
                    r"(\d{1,3}(?:[,\u202f\u00a0 ]\d{3})+(?![\d.])|\d+(?:\.\d+)?)"
                    r"(\s*%)?(?![\w]*\.\d)(?!\d)")


def _text(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _literal(node: ast.AST, names: dict[str, ast.AST]):
    """The value of a literal, of ``dict(a=..., ...)`` or of a name assigned one in the same cell.

    Raises ValueError for anything else (an expression: not a typed setting)."""
    if isinstance(node, ast.Name) and node.id in names:
        return _literal(names[node.id], names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        out = {}
        for kw in node.keywords:
            if kw.arg:
                try:
                    out[kw.arg] = _literal(kw.value, names)
                except ValueError:
                    pass
        return out
    if isinstance(node, ast.Dict):
        out = {}
        for k, v in zip(node.keys, node.values):
            if isinstance(k, ast.Constant):
                try:
                    out[k.value] = _literal(v, names)
                except ValueError:
                    pass
        return out
    return ast.literal_eval(node)


def _flat(value, prefix: str = "") -> dict[str, object]:
    """{'sizes.source': 3000, ...}: nested settings, one entry per leaf."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _numbers(value) -> set[float]:
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, (int, float)):
        # 0-4 count classes, outputs, blocks, layers and bytes in every other sentence: too common to tell apart
        return set() if float(value).is_integer() and 0 <= value <= SMALL else {float(value)}
    return set()  # a list of sizes or seeds: its points are read off the printed P, not typed as one number


def _every_number(value) -> set[float]:
    if isinstance(value, (tuple, list, set)):
        return set().union(set(), *map(_every_number, value))
    if isinstance(value, dict):
        return set().union(set(), *map(_every_number, value.values()))
    return _numbers(value)


def profile_dependent(path: Path) -> dict[float, str]:
    """{number: the setting it comes from} for every ``by_profile`` value that differs quick vs full."""
    found: dict[float, str] = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or "by_profile(" not in _text(cell):
            continue
        source = "\n".join(line for line in _text(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(source)
        names = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                 if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                    == "by_profile"):
                continue
            try:
                arms = {kw.arg: _flat(_literal(kw.value, names)) for kw in node.keywords if kw.arg in ("quick", "full")}
            except ValueError:
                continue
            if len(arms) != 2:
                continue
            quick, full = arms["quick"], arms["full"]
            # a number that both profiles use somewhere (8 pictures per class in both, 8 views in
            # quick only) is true in both: a sentence cannot be told apart by its number alone
            both = _every_number(list(quick.values())) & _every_number(list(full.values()))
            for key in set(quick) & set(full):
                if quick[key] == full[key]:
                    continue
                a, b = _numbers(quick[key]), _numbers(full[key])
                for number in (a ^ b) - both:
                    name = "".join(f'["{part}"]' for part in key.split(".")) if key else "(...)"
                    found.setdefault(number, f"P{name}" if key else "by_profile(...)")
    return found


def markdown_numbers(path: Path):
    """(number, the words before it, the text around it, the cell's index) for every number in the prose."""
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "markdown" or "platform-badges" in cell.metadata.get("tags", []):
            continue
        text = _text(cell)
        text = re.sub(r"\]\([^)]*\)|https?://\S+", "", text)  # link targets and addresses
        text = re.sub(r"^\*\*Time on .*$", "", text, flags=re.M)  # recorded times: test_recorded_times
        for match in NUMBER.finditer(text):
            raw, percent = match.group(1), match.group(2)
            if re.fullmatch(r"0\d+", raw):  # "05": a lesson's number
                continue
            before = text[max(0, match.start() - 40):match.start()].split("\n")[-1]
            if REFERENCE.search(before):
                continue
            number = float(re.sub(r"[,\u202f\u00a0 ]", "", raw))
            around = " ".join(text[max(0, match.start() - 60):match.end() + 40].split())
            yield (number / 100 if percent else number), before.strip(), around, index


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def typed_profile_numbers(path: Path) -> list[str]:
    settings = profile_dependent(path)
    allowed = FACTS.get(path.name[:2], set())
    problems = []
    for number, before, around, index in markdown_numbers(path):
        for value, name in settings.items():
            if _same(number, value) and not any(phrase in around for phrase in allowed):
                problems.append(f"cell {index}: {number:g} (= {name}, which the profile decides) after "
                                f"'{before[-30:]}'")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_sets_its_profile_in_one_parsable_call(path):
    assert profile_dependent(path), "no quick/full difference found: is P still set by config.by_profile?"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_types_no_profile_dependent_number(path):
    problems = typed_profile_numbers(path)
    assert not problems, ("numbers that hold in one profile only; name the setting (P[...]) or let a cell "
                          "print it:\n" + "\n".join(problems))


def test_the_parser_sees_what_it_should():
    """The two halves on a made-up lesson: a differing value is found, and found again in prose."""
    source = 'P = config.by_profile(quick=dict(budget=9, size=160, bar=0.9, seeds=(0,)),\n' \
             '                      full=dict(budget=16, size=160, bar=0.95, seeds=(0, 1, 2)))'
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(source),
        nbformat.v4.new_markdown_cell("With 9 trials at 160 px (lesson 09, exercise 16) we need 95 %."),
    ])
    tmp = Path(__file__).resolve().parent / ".numbers-selftest.ipynb"
    try:
        nbformat.write(nb, tmp)
        assert profile_dependent(tmp) == {9.0: 'P["budget"]', 16.0: 'P["budget"]', 0.9: 'P["bar"]',
                                          0.95: 'P["bar"]'}
        problems = typed_profile_numbers(tmp)
        assert [p.split(" (")[0] for p in problems] == ["cell 1: 9", "cell 1: 0.95"], problems
    finally:
        tmp.unlink(missing_ok=True)
