"""The Chinese edition (中文版): ``notebooks/zh/`` generated from the English lessons and their translations.

One code base. Each Chinese lesson is its English lesson with

- every **markdown cell** replaced by its translation from ``translations/zh/NN_slug.md``;
- every **code cell** identical (comments stay English), except the platform set-up cell,
  generated like the English one by ``tools/sync_setup_cells.py``, which also sets
  ``TLCOURSE_LANG=zh`` so that what the course prints comes in Chinese (:mod:`tlcourse.i18n`);
- the launch badges pointing at the Chinese notebook, and the title cell's measured times
  (``tools/sync_times.py`` writes them into the English title) in Chinese.

A translation file is plain Markdown: one block per English markdown cell, opened by a line that
names the cell's id and a hash of the English source it translates::

    <!-- cell bc936881 en:5d41402abc4b -->
    ## 准备工作
    ...

The hash covers the English text (not the title cell's time line, which this tool fills in).
When an English cell changes, its block's hash no longer matches and ``--check`` names it with
both versions' hashes: translate the new English, then put the new hash in the block's line
(``--todo`` writes a block for every missing or stale cell, the English text quoted below it).
``tests/test_translations.py`` runs ``--check``: it fails on a missing, stale or orphaned
translation and on a generated notebook that is not what this tool writes.

Examples:
    python tools/translate.py                  # write notebooks/zh/*.ipynb
    python tools/translate.py --check          # exit 1 and say what to update
    python tools/translate.py --todo 03        # append blocks to fill in to translations/zh/03_*.md
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))
import sync_setup_cells as setup_cells  # noqa: E402  (one place writes badges and set-up cells)

NOTEBOOKS = REPO / "notebooks"
TRANSLATIONS = REPO / "translations" / "zh"
OUTPUT = NOTEBOOKS / "zh"
HEADER = re.compile(r"^<!-- cell (\S+) en:([0-9a-f]{12}) -->$", re.M)
TIME_MARK = "**Time on a 2-core laptop CPU**"
TIME_SLOT = "<!-- time line -->"  # where a translated title cell takes the measured times
LANGUAGE_LINE = 'os.environ.setdefault("TLCOURSE_LANG", "zh")  # 中文版: the course prints its messages in Chinese'
BADGES_ZH = """\
[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) \
[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder}) \
[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({kaggle})

*在云端运行：* 下一个单元格会在 Colab 和 Kaggle 上安装本课程及其数据（Kaggle：请在笔记本设置中打开
*Internet*），在你自己的电脑上则什么也不做。English version: [{english_name}]({english})"""


def english_hash(source: str) -> str:
    """The hash a translation block records: of the English cell without its time line.

    >>> a, b = TIME_MARK + " (measured ...): quick 1 s.", TIME_MARK + " 2 s"
    >>> english_hash("# T\\n" + a) == english_hash("# T\\n" + b)
    True
    """
    kept = "\n".join(line for line in source.splitlines() if not line.startswith(TIME_MARK))
    return hashlib.sha256(kept.strip().encode()).hexdigest()[:12]


def translatable(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The English markdown cells a translation covers (the badges cell is generated)."""
    return [c for c in nb.cells if c.cell_type == "markdown"
            and setup_cells.BADGES_TAG not in c.metadata.get("tags", [])]


@dataclass(frozen=True)
class Block:
    cell_id: str
    en_hash: str
    text: str


def read_blocks(path: Path) -> dict[str, Block]:
    """The blocks of one translation file, by cell id (a repeated id is an error)."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    heads = list(HEADER.finditer(text))
    blocks: dict[str, Block] = {}
    for head, nxt in zip(heads, heads[1:] + [None]):
        body = text[head.end():nxt.start() if nxt else len(text)].strip("\n")
        if head[1] in blocks:
            raise SystemExit(f"{path}: cell {head[1]} is translated twice")
        blocks[head[1]] = Block(head[1], head[2], body.strip())
    return blocks


def translation_file(lesson: Path, folder: Path = TRANSLATIONS) -> Path:
    return folder / f"{lesson.stem}.md"


def problems(lesson: Path, folder: Path = TRANSLATIONS) -> list[str]:
    """What keeps ``lesson``'s translation from being complete and current, one line each."""
    nb = nbformat.read(lesson, as_version=4)
    path = translation_file(lesson, folder)
    blocks = read_blocks(path)
    found = []
    cells = translatable(nb)
    for cell in cells:
        block, now = blocks.get(cell.id), english_hash(cell.source)
        first = cell.source.strip().splitlines()[0][:70] if cell.source.strip() else ""
        if block is None:
            found.append(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: cell {cell.id} "
                         f"({first!r}) has no translation")
        elif block.en_hash != now:
            found.append(f"{path.name}: cell {cell.id} ({first!r}) changed in English since it was translated "
                         f"(en:{block.en_hash} -> en:{now}): translate it again and write en:{now}")
        elif not block.text or "TODO" in block.text.splitlines()[0]:
            found.append(f"{path.name}: cell {cell.id} ({first!r}) is still to be translated")
        elif TIME_MARK in cell.source and TIME_SLOT not in block.text:
            found.append(f"{path.name}: cell {cell.id} (the title) needs the line {TIME_SLOT} for the measured times")
    for cell_id in sorted(set(blocks) - {c.id for c in cells}):
        found.append(f"{path.name}: cell {cell_id} is no longer in the English lesson: delete its block")
    return found


def zh_time_line(line: str) -> str:
    """The title cell's time line (``tools/sync_times.py``'s English) in Chinese.

    >>> zh_time_line("**Time on a 2-core laptop CPU** (measured by `make benchmark` on 2026-12-07, kept in "
    ...              "`benchmarks/recorded.json`): quick profile about 17 s (peak memory 1.4 GB); full profile "
    ...              "about 4.5 min (peak memory 1.7 GB). With ResNet-18 (the default online): quick about 16 s, "
    ...              "full not measured yet.")
    ... # doctest: +NORMALIZE_WHITESPACE
    '**在双核笔记本 CPU 上的运行时间**（由 `make benchmark` 于 2026-12-07 测得，记录在
    `benchmarks/recorded.json`）：quick 配置约 17 秒（内存峰值 1.4 GB）；full 配置约 4.5 分钟（内存峰值 1.7 GB）。使用
    ResNet-18（联网时的默认模型）：quick 约 16 秒，full 尚未测量。'
    """
    rules = [
        (re.escape(TIME_MARK), "**在双核笔记本 CPU 上的运行时间**"),
        (r" \(measured by `make benchmark`(?: on ([\d-]+))?, kept in `benchmarks/recorded.json`\)",
         lambda m: f"（由 `make benchmark`{' 于 ' + m[1] if m[1] else ''} 测得，记录在 `benchmarks/recorded.json`）"),
        (r"(quick|full) profile about", r"\1 配置约"),
        (r"(quick|full) profile not measured yet", r"\1 配置尚未测量"),
        (r" \(peak memory ([\d.]+ GB)\)", r"（内存峰值 \1）"),
        (r"With ResNet-18 \(the default online\): ", "使用 ResNet-18（联网时的默认模型）："),
        (r"(quick|full) about", r"\1 约"),
        (r"(quick|full) not measured yet", r"\1 尚未测量"),
        (r"([\d.]+) s\b", r"\1 秒"), (r"([\d.]+) min\b", r"\1 分钟"),
        (r"[)）]:\s*", "）："), (r";\s*", "；"), (r",\s*", "，"), (r"\.(\s+|$)", "。"),
    ]
    for pattern, repl in rules:
        line = re.sub(pattern, repl, line)
    return line


def generated(lesson: Path, folder: Path = TRANSLATIONS, url: str | None = None) -> str:
    """The Chinese notebook of ``lesson`` as this tool writes it (raises if a translation is missing)."""
    nb = nbformat.read(lesson, as_version=4)
    if missing := problems(lesson, folder):
        raise SystemExit("translations are missing or stale:\n" + "\n".join(missing))
    blocks = read_blocks(translation_file(lesson, folder))
    url = url or setup_cells.repo_url()
    name = f"zh/{lesson.name}"
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and setup_cells.BADGES_TAG in tags:
            links = setup_cells.launch_links(url, name)
            cell.source = BADGES_ZH.format(**links, english=f"../{lesson.name}", english_name=lesson.name)
        elif cell.cell_type == "markdown":
            text = blocks[cell.id].text
            times = [line for line in cell.source.splitlines() if line.startswith(TIME_MARK)]
            cell.source = text.replace(TIME_SLOT, zh_time_line(times[0]) if times else "")
        elif setup_cells.SETUP_TAG in tags:
            cell.source = cell.source.replace("from tlcourse.infra import cloud",
                                              f"{LANGUAGE_LINE}\nfrom tlcourse.infra import cloud", 1)
            assert LANGUAGE_LINE in cell.source, "the set-up cell no longer imports cloud: update translate.py"
    nb.metadata["language"] = "zh-CN"
    nb.metadata["tlcourse_source"] = {"english": f"notebooks/{lesson.name}",
                                      "translation": f"translations/zh/{lesson.stem}.md"}
    return nbformat.writes(nb) + "\n"


def lessons(notebooks: Path = NOTEBOOKS) -> list[Path]:
    return sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))


def todo(lesson: Path, folder: Path = TRANSLATIONS) -> int:
    """Append a block to fill in for every untranslated or stale cell; returns how many."""
    nb = nbformat.read(lesson, as_version=4)
    blocks = read_blocks(translation_file(lesson, folder))
    added = []
    for cell in translatable(nb):
        block = blocks.get(cell.id)
        if block is None or block.en_hash != english_hash(cell.source):
            quoted = "\n".join(f"    {line}" for line in cell.source.splitlines())
            added.append(f"<!-- cell {cell.id} en:{english_hash(cell.source)} -->\nTODO translate:\n{quoted}\n")
    if added:
        path = translation_file(lesson, folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(added))
    return len(added)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming what is out of date")
    parser.add_argument("--todo", metavar="NN", nargs="*", help="append blocks to fill in for these lessons")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="the English lessons' folder")
    parser.add_argument("--translations", type=Path, default=TRANSLATIONS)
    parser.add_argument("--output", type=Path, default=None, help="where the Chinese lessons go (default notebooks/zh)")
    args = parser.parse_args(argv)
    output = args.output or args.notebooks / "zh"
    if args.todo is not None:
        for lesson in lessons(args.notebooks):
            if not args.todo or lesson.name[:2] in args.todo:
                print(f"{lesson.name}: {todo(lesson, args.translations)} block(s) to translate")
        return 0
    found = [p for lesson in lessons(args.notebooks) for p in problems(lesson, args.translations)]
    if found:
        print("Translations to update (tools/translate.py --todo NN writes blocks to fill in):")
        print("\n".join(f"  {p}" for p in found))
        return 1
    stale = []
    for lesson in lessons(args.notebooks):
        text, target = generated(lesson, args.translations), output / lesson.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(target)
            if not args.check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("Chinese lessons out of date (run python tools/translate.py): " + ", ".join(str(p) for p in stale))
        return 1
    print(f"{len(lessons(args.notebooks))} Chinese lessons {'checked' if args.check else 'written'}"
          f" ({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
