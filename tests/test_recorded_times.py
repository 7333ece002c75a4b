"""The times a lesson's title cell states are the times ``make benchmark`` last measured.

``benchmarks/run.py --only notebooks --record`` (and ``--profile full --record``) writes each
lesson's wall time to ``benchmarks/recorded.json``; a stated time that drifts more than 50 %
from the recorded one fails here, so a slower lesson cannot keep promising its old time.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
RECORDED = json.loads((REPO / "benchmarks" / "recorded.json").read_text())
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TOLERANCE = 0.5


def stated_seconds(title: str, profile: str) -> float | None:
    """'quick profile about 25 s' -> 25.0; '... full profile about 7.5 min' -> 450.0.

    >>> stated_seconds("quick profile about 25 s, full profile about 1.5 min", "full")
    90.0
    """
    m = re.search(rf"{profile} profile[^0-9]{{0,12}}(\d+(?:\.\d+)?)\s*(s|sec|min)\b", title)
    if not m:
        return None
    return float(m.group(1)) * (60 if m.group(2) == "min" else 1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.parametrize("profile", ["quick", "full"])
def test_title_cell_time_matches_the_last_benchmark(path, profile):
    record = RECORDED.get(profile, {}).get(path.name[:2])
    if record is None:
        if profile == "quick":
            pytest.fail(f"{path.name}: no quick-profile time recorded; run "
                        "`make benchmark BENCH_ARGS='--only notebooks --record'`")
        pytest.skip(f"{path.name}: the full profile has not been benchmarked since the lesson changed")
    title = nbformat.read(path, as_version=4).cells[0].source
    stated = stated_seconds(title, profile)
    assert stated is not None, f"{path.name}: the title cell states no {profile}-profile time"
    measured = record["wall_s"]
    assert abs(stated - measured) <= TOLERANCE * measured, (
        f"{path.name}: the title says {stated:.0f} s for the {profile} profile, "
        f"the benchmark of {record['date']} measured {measured:.0f} s")


def test_title_cells_and_readme_show_the_recorded_times():
    """``tools/sync_times.py`` has written every recorded time into the title cells and README."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(REPO / "tools" / "sync_times.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, f"run `python tools/sync_times.py`:\n{out.stdout}{out.stderr}"


def _sync_times():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_times", REPO / "tools" / "sync_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_gpu_record_adds_a_gpu_column_to_readme_and_its_absence_removes_it(tmp_path, monkeypatch):
    """With a ``gpu`` entry (``make test-gpu``) README's table gains "GPU (<device>): full"; without
    one the table is what it was, byte for byte. Runs on copies (the real record has no GPU run)."""
    import shutil

    sync_times = _sync_times()
    (tmp_path / "notebooks").mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / "notebooks" / path.name)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    lessons = [p.name[:2] for p in NOTEBOOKS]
    fake_gpu = {"device": "NVIDIA H100 80GB HBM3", "precision": "bf16", "date": "2026-12-07", "profile": "full",
                "lessons": {lesson: {"notebook": f"{lesson}_x.ipynb", "wall_s": 10.0 + i, "peak_gpu_mb": 900}
                            for i, lesson in enumerate(lessons[1:])}}  # the first lesson not measured
    record = tmp_path / "recorded.json"
    record.write_text(json.dumps({**RECORDED, "gpu": fake_gpu}))
    monkeypatch.setattr(sync_times, "REPO", tmp_path)
    monkeypatch.setattr(sync_times, "README", tmp_path / "README.md")
    monkeypatch.setattr(sync_times, "RECORDED", record)

    assert sync_times.sync(check=True) == ["README.md"]  # only README's table; no title cell changes
    sync_times.sync(check=False)
    lines = (tmp_path / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| # | notebook |"))
    table = lines[start:lines.index("", start)]
    assert table[0].endswith("| EfficientNet-Lite0 (offline, CI): quick / full | GPU (NVIDIA H100 80GB HBM3): full |")
    assert table[1] == "|---|" + "---|" * 6
    rows = {line[2:4]: line for line in table[2:]}
    assert sorted(rows) == lessons
    assert rows[lessons[0]].endswith(" | not measured yet |")
    for i, lesson in enumerate(lessons[1:]):
        assert rows[lesson].endswith(f" | {10 + i} s |") and rows[lesson].count(" | ") == 6, rows[lesson]
    assert sync_times.sync(check=True) == []  # written once, stable

    record.write_text(json.dumps(RECORDED))  # no GPU run: the column goes, the table is today's again
    assert sync_times.sync(check=True) == ["README.md"]
    sync_times.sync(check=False)
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == readme
