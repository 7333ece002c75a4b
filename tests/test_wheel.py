"""The course as a package: a wheel built from this checkout, installed into a fresh venv, can
fetch its data with ``tlcourse-fetch`` (from the prepared root) and run lesson 00's core cells.

The venv is an overlay (tests/overlay.py): new, without the course, reusing .venv's torch & co.
The wheel is built with ``pip wheel --no-deps --no-build-isolation`` from a copy of the files
the build reads, with the setuptools the lock pins (>= 77, for ``license = "MIT"``).
"""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from overlay import clean_env, make_overlay, package_source, pip_install, run_notebook

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "course-data"
LESSON = REPO / "notebooks" / "00_concepts.ipynb"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def build_wheel(tmp_path: Path) -> Path:
    source = package_source(REPO, tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("tlcourse-*.whl")
    return wheel


def core_prefix(notebook: Path) -> nbformat.NotebookNode:
    """The lesson up to its last ``core`` cell (what the core cells need runs before them)."""
    nb = nbformat.read(notebook, as_version=4)
    last = max(i for i, c in enumerate(nb.cells) if "core" in c.metadata.get("tags", []))
    nb.cells = nb.cells[:last + 1]
    nb.cells.append(nbformat.v4.new_code_cell('import tlcourse\nprint("TLCOURSE_FROM", tlcourse.__file__)'))
    return nb


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_fetches_and_runs_lesson_00_core(tmp_path):
    if not (SHARED / "SHA256SUMS").is_file():
        pytest.skip(f"no prepared data root at {SHARED}")
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "tlcourse/infra/fetch.py" in names and any(n.startswith("tlcourse/infra/manifests/") for n in names)
    assert re.search(r"^tlcourse-fetch\s*=\s*tlcourse\.infra\.fetch:run$", entry_points, re.M)
    assert "License-Expression: MIT" in meta and "Requires-Dist: ipywidgets>=7.7" in meta

    python = make_overlay(tmp_path / "venv")
    pip_install(python, "--no-deps", str(wheel))
    fetch = tmp_path / "venv" / "bin" / "tlcourse-fetch"
    data = tmp_path / "data"
    result = subprocess.run([str(fetch), "hymenoptera", "--text-model", MODEL, "--weights", "none",
                             "--from-folder", str(SHARED), "--root", str(data)],
                            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^\s+hymenoptera\s+copied\b", result.stdout, re.M)
    assert re.search(rf"^\s+{re.escape(MODEL)}\s+copied\b", result.stdout, re.M)
    assert (data / "models" / MODEL / "model.safetensors").is_file()

    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "home").mkdir()
    nbformat.write(core_prefix(LESSON), work / LESSON.name)
    env = clean_env(TLCOURSE_DATA=str(data), TLCOURSE_PROFILE="quick", TLCOURSE_BACKBONE="efficientnet_lite0",
                    TLCOURSE_CACHE=str(tmp_path / "cache"), HOME=str(tmp_path / "home"))
    result, outputs = run_notebook(python, work / LESSON.name, work, env)
    assert result.returncode == 0, result.stderr[-3000:]
    where = outputs[-1].split("TLCOURSE_FROM", 1)[1].strip()
    assert where.startswith(str(tmp_path / "venv")), f"tlcourse was imported from {where}, not the wheel"
