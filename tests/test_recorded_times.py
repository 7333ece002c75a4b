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
