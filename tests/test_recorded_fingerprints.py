"""Every lesson has a recorded full-profile run of the code that stands in it now.

A learner who sets nothing runs the full profile; CI runs the quick one. So the full run is proven
only by ``benchmarks/recorded.json``: ``benchmarks/run.py --record`` writes an entry only for a run
in which every cell passed, with the fingerprint of the code that ran (the lesson's code cells
and every ``tlcourse`` module it reaches, ``tools/lesson_fingerprint.py``). A lesson or module
changed after that run fails here until ``make benchmark-full`` has re-run the stale lessons.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from lesson_fingerprint import fingerprint, stale_parts  # noqa: E402

RECORDED = json.loads((REPO / "benchmarks" / "recorded.json").read_text())
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RERECORD = "make benchmark-full   (re-runs and records only the lessons that changed)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_full_profile_run_on_record_is_of_the_current_code(path):
    entry = RECORDED.get("full", {}).get(path.name[:2])
    assert entry, f"{path.name}: no full-profile run recorded; run `{RERECORD}`"
    changed = stale_parts(entry.get("fingerprint"), fingerprint(path))
    assert not changed, (f"{path.name} changed since its full-profile run of {entry['date']} "
                         f"({', '.join(changed)}); run `{RERECORD}`")


def test_every_recorded_entry_comes_from_a_run():
    """run.py writes backbone and fingerprint; an entry typed by hand (or with a 'note') has neither."""
    sections = {p: RECORDED.get(p, {}) for p in ("quick", "full")}
    sections |= {f"resnet18-standin/{p}": s for p, s in RECORDED.get("resnet18-standin", {}).items()}
    for name, lessons in sections.items():
        for lesson, entry in lessons.items():
            if name == "quick" and "fingerprint" not in entry:
                continue  # quick entries from before fingerprints; CI re-proves the quick profile anyway
            assert {"fingerprint", "backbone", "wall_s", "peak_mb"} <= set(entry), (name, lesson, sorted(entry))
            assert "note" not in entry, f"{name} {lesson}: an entry with a note was edited by hand"


def test_a_one_character_change_to_a_code_cell_makes_the_lesson_stale(tmp_path):
    import nbformat

    path = NOTEBOOKS[0]
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "core" in c.metadata.get("tags", []))
    cell.source += " "
    changed = tmp_path / path.name
    nbformat.write(nb, changed)
    assert stale_parts(fingerprint(path), fingerprint(changed)) == ["code cells"]
    md = next(c for c in nb.cells if c.cell_type == "markdown")
    cell.source = cell.source[:-1]
    md.source += " (reworded)"  # prose is not part of the fingerprint
    nbformat.write(nb, changed)
    assert stale_parts(fingerprint(path), fingerprint(changed)) == []
