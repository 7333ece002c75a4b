"""Write the times ``make benchmark`` recorded into each lesson's title cell and README's table.

``benchmarks/run.py --only notebooks --record`` (quick profile) and ``--profile full --record``
keep each lesson's wall time and peak memory in ``benchmarks/recorded.json``. This tool turns
them into the title cell's "**Time on a 2-core laptop CPU** ..." line and the time columns of
README's lesson table, so that no lesson states a time nobody measured. When ``make test-gpu``
(``tools/test_gpu.py``) has recorded a ``gpu`` entry, the table gains a last column,
"GPU (<device>): full", with each lesson's wall time there; without one the table has no GPU column.
``tests/test_recorded_times.py`` fails when a stated time drifts from the record.

Examples:
    python tools/sync_times.py            # rewrite the lines that differ
    python tools/sync_times.py --check    # exit 1 and name what is out of date
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "benchmarks" / "recorded.json"
README = REPO / "README.md"
MARK = "**Time on a 2-core laptop CPU**"
STANDIN_KEY = "resnet18-standin"  # benchmarks/run.py --standin: ResNet-18 timed with random weights
# README's lesson table: four fixed columns, then the time columns this tool writes
FIXED_COLUMNS = 4  # # | notebook | what you learn | open in
TIME_HEADERS = ("ResNet-18 (online default): quick / full", "EfficientNet-Lite0 (offline, CI): quick / full")
TABLE_HEADER = re.compile(r"^(\| # \| notebook \|[^\n]*)\n\|(?:-+\|)+$", re.M)  # the header and its |---| line


def human(seconds: float) -> str:
    """A wall time as a learner reads it.

    >>> human(19.5), human(118.7), human(452), human(1330)
    ('20 s', '119 s', '7.5 min', '22 min')
    """
    if seconds < 150:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{round(minutes * 2) / 2:g} min" if minutes < 10 else f"{minutes:.0f} min"


def title_line(records: dict[str, dict]) -> str:
    """The title cell's time line for one lesson from its records ({profile: record}).

    >>> title_line({"quick": {"wall_s": 20, "peak_mb": 1700, "date": "2026-11-30"}}).split(": ", 1)[1]
    'quick profile about 20 s (peak memory 1.7 GB); full profile not measured yet.'
    """
    parts = []
    for profile in ("quick", "full"):
        r = records.get(profile)
        parts.append(f"{profile} profile about {human(r['wall_s'])} (peak memory {r['peak_mb'] / 1024:.1f} GB)"
                     if r else f"{profile} profile not measured yet")
    dates = sorted(r["date"] for r in records.values())
    when = f" on {dates[-1]}" if dates else ""
    return (f"{MARK} (measured by `make benchmark`{when}, kept in `benchmarks/recorded.json`): "
            + "; ".join(parts) + ".")


def standin_line(records: dict[str, dict]) -> str:
    """The title cell's sentence on ResNet-18's time ("" for a lesson without the vision backbone).

    >>> standin_line({"quick": {"wall_s": 40}})
    ' With ResNet-18 (the default online): quick about 40 s, full not measured yet.'
    """
    if not records:
        return ""
    return (" With ResNet-18 (the default online): "
            + ", ".join(f"{p} about {human(records[p]['wall_s'])}" if p in records else f"{p} not measured yet"
                        for p in ("quick", "full")) + ".")


def readme_cell(records: dict[str, dict]) -> str:
    """README's "quick / full" column.

    >>> readme_cell({"quick": {"wall_s": 66.4}, "full": {"wall_s": 270}})
    '66 s / 4.5 min'
    """
    return " / ".join(human(records[p]["wall_s"]) if p in records else "not measured yet"
                      for p in ("quick", "full"))


def gpu_header(gpu: dict) -> str:
    """The GPU column's header, from ``recorded.json``'s ``gpu`` entry (``tools/test_gpu.py``).

    >>> gpu_header({"device": "NVIDIA H100 80GB HBM3", "profile": "full", "lessons": {}})
    'GPU (NVIDIA H100 80GB HBM3): full'
    """
    return f"GPU ({gpu['device'].replace('|', '/')}): {gpu.get('profile', 'full')}"


def gpu_cell(gpu: dict, lesson: str) -> str:
    """A lesson's cell in the GPU column: its wall time there, or "not measured yet".

    >>> gpu = {"device": "NVIDIA H100",
    ...        "lessons": {"02": {"notebook": "02_x.ipynb", "wall_s": 41.3, "peak_gpu_mb": 900}}}
    >>> gpu_cell(gpu, "02"), gpu_cell(gpu, "03")
    ('41 s', 'not measured yet')
    """
    record = gpu.get("lessons", {}).get(lesson)
    return human(record["wall_s"]) if record else "not measured yet"


def with_time_cells(line: str, cells: list[str]) -> str:
    """A row (or the header) of README's lesson table with its time columns replaced by ``cells``.

    The first :data:`FIXED_COLUMNS` cells stay as they are; whatever followed them (two time
    columns, or three with a GPU column) is replaced, so the table can gain or lose the GPU column.

    >>> with_time_cells("| 01 | [a](a.ipynb) | b, c | [Colab](x) · [Kaggle](y) | 1 s / 2 s | 3 s / 4 s |",
    ...                 ["5 s / 6 s", "7 s / 8 s", "9 s"])
    '| 01 | [a](a.ipynb) | b, c | [Colab](x) · [Kaggle](y) | 5 s / 6 s | 7 s / 8 s | 9 s |'
    """
    fixed = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]][:FIXED_COLUMNS]
    return "| " + " | ".join(fixed + list(cells)) + " |"


def lesson_table(readme: str, rows: dict[str, list[str]], gpu: dict | None) -> tuple[str, list[str]]:
    r"""README with its lesson table's header and rows rewritten; and what was wrong with the table.

    ``rows`` maps a lesson ("01") to its ResNet-18 and EfficientNet-Lite0 cells; with ``gpu``
    (``recorded.json``'s ``gpu`` entry) each row gets its GPU cell and the header its GPU column.

    >>> table = (
    ...     "| # | notebook | what you learn | open in | A: quick / full | B: quick / full |\n"
    ...     "|---|---|---|---|---|---|\n"
    ...     "| 01 | [x](x.ipynb) | y | z | 1 s / 2 s | 3 s / 4 s |\n")
    >>> gpu = {"device": "NVIDIA H100", "lessons": {"01": {"wall_s": 12.3}}}
    >>> with_gpu, problems = lesson_table(table, {"01": ["1 s / 2 s", "3 s / 4 s"]}, gpu)
    >>> header, rule, row = with_gpu.splitlines()
    >>> header.split(" | ")[-2:], rule
    (['EfficientNet-Lite0 (offline, CI): quick / full', 'GPU (NVIDIA H100): full |'], '|---|---|---|---|---|---|---|')
    >>> row
    '| 01 | [x](x.ipynb) | y | z | 1 s / 2 s | 3 s / 4 s | 12 s |'
    >>> lesson_table(with_gpu, {"01": ["1 s / 2 s", "3 s / 4 s"]}, None)[0].splitlines()[2]
    '| 01 | [x](x.ipynb) | y | z | 1 s / 2 s | 3 s / 4 s |'
    >>> problems, lesson_table(table, {"02": ["-", "-"]}, None)[1]
    ([], ['README.md: 0 rows for lesson 02'])
    """
    problems = []
    headers = list(TIME_HEADERS) + ([gpu_header(gpu)] if gpu else [])

    def header(m: re.Match) -> str:
        line = with_time_cells(m.group(1), headers)
        return line + "\n|" + "---|" * (FIXED_COLUMNS + len(headers))

    readme, n = TABLE_HEADER.subn(header, readme)
    if n != 1:
        problems.append(f"README.md: {n} lesson table headers")
    for lesson, cells in rows.items():
        cells = list(cells) + ([gpu_cell(gpu, lesson)] if gpu else [])
        readme, n = re.subn(rf"^\| {lesson} \|[^\n]*$", lambda m: with_time_cells(m.group(0), cells), readme,
                            flags=re.M)
        if n != 1:
            problems.append(f"README.md: {n} rows for lesson {lesson}")
    return readme, problems


def sync(check: bool) -> list[str]:
    """Update (or with ``check`` only list) the notebooks and README rows that differ."""
    recorded = json.loads(RECORDED.read_text())
    stale, readme, rows = [], README.read_text(encoding="utf-8"), {}
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        lesson = path.name[:2]
        records = {p: recorded[p][lesson] for p in ("quick", "full") if lesson in recorded.get(p, {})}
        standin = {p: r[lesson] for p, r in recorded.get(STANDIN_KEY, {}).items() if lesson in r}
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
        source = "".join(nb["cells"][0]["source"])
        if MARK not in source:
            stale.append(f"{path.name}: the title cell has no '{MARK}' line")
            continue
        new_source = re.sub(re.escape(MARK) + r"[^\n]*", lambda _: title_line(records) + standin_line(standin),
                            source, count=1)
        if new_source != source:
            stale.append(path.name)
            nb["cells"][0]["source"] = new_source.splitlines(keepends=True)
            if not check:
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        # the lessons that load the vision backbone (tests/test_resnet_standin.py lists them the same way)
        vision = re.search(r"backbones\.(get_spec|build)\(", raw)
        rows[lesson] = [readme_cell(standin) if vision else "no vision backbone", readme_cell(records)]
    readme, problems = lesson_table(readme, rows, recorded.get("gpu"))
    stale += problems
    if readme != README.read_text(encoding="utf-8"):
        stale.append("README.md")
        if not check:
            README.write_text(readme, encoding="utf-8")
    return stale


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    args = p.parse_args()
    stale = sync(args.check)
    for name in stale:
        print(("out of date: " if args.check else "updated: ") + name)
    sys.exit(1 if args.check and stale else 0)


if __name__ == "__main__":
    main()
