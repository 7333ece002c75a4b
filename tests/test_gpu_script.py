"""tools/test_gpu.py (``make test-gpu``) as far as a CPU allows: what it skips, its probe, its record."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))
import test_gpu as gpu  # noqa: E402

NO_GPU = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOLS / "test_gpu.py"), *args], env=NO_GPU,
                          capture_output=True, text=True, timeout=120)


def test_without_a_gpu_it_says_what_it_skips_and_exits_0(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main([]) == 0
    out = capsys.readouterr().out
    for step in ("precision tests", "every lesson", "torchrun", "recording"):
        assert f"SKIP {step}" in out, out
    assert "no CUDA GPU on this machine" in out


def test_require_gpu_makes_a_missing_gpu_an_error():
    """The script itself, as `make test-gpu GPU_ARGS=--require-gpu` runs it, in a process that sees no GPU."""
    done = run_script("--require-gpu")
    assert done.returncode == gpu.EXIT_NO_GPU == 2, done.stdout + done.stderr
    assert "SKIP every lesson" in done.stdout and "--require-gpu: exit 2" in done.stdout


def probe_outputs(usage: dict[str, int]) -> dict:
    """What the probe cell reports in a kernel whose package recorded ``usage``."""
    from tlcourse.infra import device

    saved = device.usage.copy()
    device.usage.clear()
    device.usage.update(usage)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(gpu.PROBE_CELL, {})
    finally:
        device.usage.clear()
        device.usage.update(saved)
    cell = nbformat.v4.new_code_cell(gpu.PROBE_CELL)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=out.getvalue())]
    return gpu.parse_probe(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1"), cell]))


def test_the_probe_cell_reports_where_the_work_ran():
    probe = probe_outputs({"step:cpu": 3, "forward:cpu": 4})
    assert probe == {"cuda": torch.cuda.is_available(), "peak_gpu_mb": probe["peak_gpu_mb"],
                     "usage": {"step:cpu": 3, "forward:cpu": 4}}
    problems = gpu.lesson_problems("02", [], {**probe, "cuda": True})
    assert any("3 step(s) on the CPU" in p for p in problems) and any("4 forward(s)" in p for p in problems)
    assert gpu.parse_probe(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])) is None


@pytest.mark.parametrize("lesson, errors, probe, expected", [
    ("03", [], {"cuda": True, "peak_gpu_mb": 2100.0, "usage": {"step:cuda": 9, "forward:cuda": 12}}, []),
    ("00", [], {"cuda": True, "peak_gpu_mb": 0.0, "usage": {}}, []),           # may read cached features
    ("01", [], {"cuda": True, "peak_gpu_mb": 0.0, "usage": {}}, ["no GPU memory"]),
    ("01", ["ValueError: x"], {"cuda": True, "peak_gpu_mb": 5.0, "usage": {}}, ["cell error"]),
    ("01", [], None, ["the probe cell did not report"]),
    ("01", [], {"cuda": False, "peak_gpu_mb": 0.0, "usage": {}}, ["the kernel saw no CUDA"]),
])
def test_a_lesson_passes_only_with_its_work_on_the_gpu(lesson, errors, probe, expected):
    problems = gpu.lesson_problems(lesson, errors, probe)
    assert len(problems) == len(expected) and all(p.startswith(e) for p, e in zip(problems, expected)), problems


def test_the_record_goes_under_gpu_and_leaves_the_cpu_records_alone(tmp_path):
    rows = [{"lesson": "01", "notebook": "01_a.ipynb", "ok": True, "wall_s": 20.04, "peak_gpu_mb": 1500.6,
             "problems": []},
            {"lesson": "02", "notebook": "02_b.ipynb", "ok": False, "wall_s": 1.0, "peak_gpu_mb": 0.0,
             "problems": ["x"]}]
    info = {"name": "NVIDIA H100 80GB HBM3", "capability": "9.0", "precision": "bf16", "gpus": 1, "machine": "m"}
    cpu = {"full": {"01": {"wall_s": 50.0}}, "quick": {"01": {"wall_s": 20.0}}}
    merged = gpu.merge_record(cpu, gpu.gpu_record(info, rows, {"skipped": "1 GPU"}, date="2026-12-07"))
    assert merged["full"] == cpu["full"] and merged["quick"] == cpu["quick"]
    assert merged["gpu"] == {"device": "NVIDIA H100 80GB HBM3", "capability": "9.0", "precision": "bf16",
                             "gpus": 1, "machine": "m", "date": "2026-12-07", "profile": "full",
                             "torchrun": {"skipped": "1 GPU"},
                             "lessons": {"01": {"notebook": "01_a.ipynb", "wall_s": 20.0, "peak_gpu_mb": 1501}}}
    json.dumps(merged)  # what main() writes


def test_lessons_are_selected_by_number():
    assert [p.name[:2] for p in gpu.select("02, 05")] == ["02", "05"]
    assert len(gpu.select(None)) == len(list(gpu.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))) >= 8


@pytest.mark.slow  # starts a kernel: about 12 s on 2 cores
def test_a_lesson_runs_through_the_ci_executor_with_the_probe(tmp_path, monkeypatch):
    """The GPU path's lesson runner on a one-cell notebook, in a kernel that sees no CUDA device."""
    path = tmp_path / "09_tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from tlcourse.infra import device\nwith device.autocast(device.pick_device('cpu')):\n    pass")]), path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the kernel inherits it
    row = gpu.run_lesson(path, cell_timeout=120)
    assert (row["lesson"], row["usage"], row["ok"]) == ("09", {"forward:cpu": 1}, False), row
    assert row["problems"] == ["the kernel saw no CUDA device"], row


def test_on_a_gpu_machine_the_steps_run_in_order_and_failures_count(monkeypatch, tmp_path, capsys):
    """main()'s GPU path with the GPU work faked: what it prints, returns and records."""
    recorded = tmp_path / "recorded.json"
    recorded.write_text(json.dumps({"full": {"01": {"wall_s": 50.0}}}))
    monkeypatch.setattr(gpu, "RECORDED", recorded)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(gpu, "device_info", lambda: {"name": "Fake GPU", "capability": "7.5", "precision": "fp16",
                                                     "gpus": 1, "machine": "m"})
    monkeypatch.setattr(gpu.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0))  # the pytest run

    def lesson(path, cell_timeout):
        ok = path.name[:2] != "02"
        return {"lesson": path.name[:2], "notebook": path.name, "ok": ok, "wall_s": 10.0, "usage": {},
                "peak_gpu_mb": 800.0 if ok else 0.0, "problems": [] if ok else ["no GPU memory was ever allocated"]}
    monkeypatch.setattr(gpu, "run_lesson", lesson)
    monkeypatch.setattr(gpu, "run_torchrun", lambda epochs: pytest.fail("1 GPU: torchrun must be skipped"))
    assert gpu.main(["--lessons", "01,02"]) == gpu.EXIT_FAILED
    out = capsys.readouterr().out
    assert "Fake GPU" in out and "SKIP torchrun with 2 processes: 1 CUDA GPU" in out and "FAILED: 02_" in out
    written = json.loads(recorded.read_text())
    assert written["full"] == {"01": {"wall_s": 50.0}}, "the CPU records are kept"
    assert written["gpu"]["device"] == "Fake GPU" and list(written["gpu"]["lessons"]) == ["01"]
    assert written["gpu"]["torchrun"] == {"skipped": "1 GPU"}
