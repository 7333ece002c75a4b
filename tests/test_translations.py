"""The Chinese edition (issue 33) cannot go stale silently.

- **Lessons**: every markdown cell of every English lesson has a translation in
  ``translations/zh/`` made from its current English text (the block's hash), and
  ``notebooks/zh/`` is exactly what ``tools/translate.py`` generates from them. A one-word change
  to an English cell fails here, naming the cell, until its translation is updated.
- **Messages**: every text the package prints through :func:`tlcourse.i18n.tr` (or marks with
  ``N_``), and every widget label a lesson passes, has a Chinese translation in
  ``tlcourse/locale/zh.json`` with the same ``{placeholders}``; a translation whose English is no
  longer used is reported too (the English changed: translate the new text).
- **Fonts**: a Chinese plot title renders as Chinese glyphs, not as boxes.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import string
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("translate", REPO / "tools" / "translate.py")
translate = importlib.util.module_from_spec(_spec)
sys.modules["translate"] = translate  # its dataclass looks itself up there
_spec.loader.exec_module(translate)
CATALOG = REPO / "tlcourse" / "locale" / "zh.json"


# ----------------------------------------------------------------------------------- lessons
def test_every_lesson_is_translated_from_its_current_english():
    found = [p for lesson in translate.lessons() for p in translate.problems(lesson)]
    assert not found, "translations to update (tools/translate.py --todo NN writes blocks):\n" + "\n".join(found)


def test_the_chinese_lessons_are_what_the_tool_generates():
    assert translate.main(["--check"]) == 0, "run: python tools/translate.py"


def test_a_one_word_change_in_english_is_caught_and_cleared_by_a_new_translation(tmp_path):
    notebooks, translations = tmp_path / "notebooks", tmp_path / "translations"
    notebooks.mkdir()
    shutil.copy(REPO / "notebooks" / "00_concepts.ipynb", notebooks)
    shutil.copytree(translate.TRANSLATIONS, translations)
    lesson = notebooks / "00_concepts.ipynb"
    assert translate.problems(lesson, translations) == []
    nb = nbformat.read(lesson, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Set-up"))
    old = translate.english_hash(cell.source)
    cell.source = cell.source.replace("One cell", "A single cell", 1)  # a one-word edit
    nbformat.write(nb, lesson)
    found = translate.problems(lesson, translations)
    new = translate.english_hash(cell.source)
    assert len(found) == 1 and cell.id in found[0] and f"en:{old} -> en:{new}" in found[0], found
    assert translate.main(["--check", "--notebooks", str(notebooks), "--translations", str(translations)]) == 1
    path = translations / "00_concepts.md"  # the translator updates the block: new text, new hash
    path.write_text(path.read_text(encoding="utf-8").replace(f"<!-- cell {cell.id} en:{old} -->",
                                                             f"<!-- cell {cell.id} en:{new} -->"), encoding="utf-8")
    assert translate.problems(lesson, translations) == []


def test_a_generated_lesson_keeps_every_code_cell_and_speaks_chinese():
    for lesson in translate.lessons():
        en = nbformat.read(lesson, as_version=4)
        zh = nbformat.read(REPO / "notebooks" / "zh" / lesson.name, as_version=4)
        assert [c.id for c in en.cells] == [c.id for c in zh.cells]
        for a, b in zip(en.cells, zh.cells):
            if a.cell_type == "code" and "platform-setup" not in a.metadata.get("tags", []):
                assert a.source == b.source, f"{lesson.name}: code cell {a.id} differs"
            if a.cell_type == "markdown":
                assert re.search(r"[\u4e00-\u9fff]", b.source), f"{lesson.name}: cell {a.id} is not in Chinese"
        setup = next(c for c in zh.cells if "platform-setup" in c.metadata.get("tags", []))
        assert translate.LANGUAGE_LINE in setup.source
        assert "<!-- time line -->" not in zh.cells[0].source and "运行时间" in zh.cells[0].source


# ----------------------------------------------------------------------------------- messages
def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def package_messages() -> set[str]:
    """Every literal the package passes to ``tr`` or ``N_``."""
    found = set()
    for path in (REPO / "tlcourse").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args:
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in ("tr", "N_") and (text := _literal(node.args[0])) is not None:
                    found.add(text)
    return found


def lesson_labels() -> set[str]:
    """The widget labels the lessons pass (``widgets.log_slider("...", ...)``, ``button_text="..."``)."""
    found = set()
    for lesson in translate.lessons():
        for cell in nbformat.read(lesson, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in cell.source.splitlines())
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("log_slider", "int_slider"):
                    if node.args and (text := _literal(node.args[0])) is not None:
                        found.add(text)
                if isinstance(node, ast.Call):
                    found |= {t for k in node.keywords if k.arg == "button_text" and (t := _literal(k.value))}
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_message_has_a_chinese_translation_and_none_is_stale():
    catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
    used = package_messages() | lesson_labels()
    missing = sorted(used - set(catalog))
    assert not missing, "add to tlcourse/locale/zh.json:\n" + "\n".join(json.dumps(m, ensure_ascii=False)
                                                                         for m in missing)
    unused = sorted(set(catalog) - used)
    assert not unused, ("no longer printed (the English changed? translate the new text):\n"
                        + "\n".join(json.dumps(m, ensure_ascii=False) for m in unused))
    wrong = [k for k, v in catalog.items() if placeholders(k) != placeholders(v)]
    assert not wrong, f"placeholders differ between English and Chinese: {wrong}"
    assert all(re.search(r"[\u4e00-\u9fff]", v) or not re.search("[a-z]{3}", k) for k, v in catalog.items()), \
        [k for k, v in catalog.items() if not re.search(r"[\u4e00-\u9fff]", v)]


def test_tr_follows_the_language_setting(monkeypatch):
    from tlcourse.exercises import grade
    from tlcourse.i18n import tr

    monkeypatch.setenv("TLCOURSE_LANG", "zh")
    assert tr("epoch") == "轮次"
    assert str(grade("00.5", None)).startswith("○ 练习 00.5：")
    monkeypatch.setenv("TLCOURSE_LANG", "en")
    assert tr("epoch") == "epoch"
    monkeypatch.setenv("TLCOURSE_LANG", "fr")
    with pytest.raises(ValueError, match="TLCOURSE_LANG='fr' is not a course language"):
        tr("epoch")


# ----------------------------------------------------------------------------------- fonts
def _glyphs(text: str, family: str):
    """Each character of ``text`` drawn alone in ``family``, as a small grey bitmap."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bitmaps = []
    for char in text:
        fig = Figure(figsize=(0.6, 0.6), dpi=50)
        fig.text(0.5, 0.5, char, family=family, fontsize=20, ha="center", va="center")
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        bitmaps.append(np.asarray(canvas.buffer_rgba())[..., 0].copy())
    return bitmaps


def test_chinese_plot_text_renders_as_glyphs_not_boxes(monkeypatch):
    """Boxes ("tofu") look the same for every character; real glyphs differ. Checked first on a
    font without Chinese glyphs, to show the check would catch boxes."""
    import warnings

    import numpy as np
    from tlcourse import guide, i18n

    chars = "迁移学习微调"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Glyph ... missing from font(s) DejaVu Sans": expected here
        tofu = _glyphs(chars, "DejaVu Sans")
    assert all(np.array_equal(tofu[0], b) for b in tofu[1:]), "DejaVu Sans should draw boxes for Chinese"
    family = i18n.cjk_font()
    assert family, i18n.NO_FONT
    drawn = _glyphs(chars, family)
    assert len({b.tobytes() for b in drawn}) == len(chars), f"{family} draws some Chinese characters alike"
    monkeypatch.setenv("TLCOURSE_LANG", "zh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph warns: fail on it
        fig = guide.plot_guide(100, 0.8)
        fig.canvas.draw()
    assert fig.axes[0].get_title() == "决策指南"
