"""``make test-gpu``: prove every lesson on a CUDA GPU, and record what it cost.

On a machine with a CUDA GPU, in order:

1. **precision**: the fit loop's GPU tests (``tests/test_precision.py``): bf16 where the GPU
   computes it natively, fp16 with a GradScaler (every GPU from compute capability 7.0).
2. **lessons**: every lesson in the full profile, one kernel each, through the executor CI
   uses (``tools/nbexec.py``, as ``benchmarks/run.py``). A probe cell appended to each lesson
   reads the kernel's peak GPU memory and ``tlcourse.infra.device.usage`` (the package's forward
   passes and training steps per device type). A lesson fails if a cell failed, if the package
   ran work on the CPU, or if it never touched the GPU (lessons in ``MAY_STAY_ON_CPU`` excepted).
3. **torchrun**: with 2 GPUs or more, the 2-process fit test (``tests/ddp_worker.py``, NCCL,
   every collective checked to be on the process's GPU) and ``tlcourse.labs.fine_tuning`` under
   ``torchrun --nproc_per_node=2``.
4. **record**: per-lesson wall time and peak GPU memory under ``gpu`` in
   ``benchmarks/recorded.json``, with the device's name (``--no-record`` skips it).

Without a CUDA GPU it prints each step it skips and why, and exits 0; with ``--require-gpu``
it exits 2 instead (for a CI job that must run on a GPU). Exit 1: a check failed.

Examples:
    make test-gpu                                    # all of the above
    python tools/test_gpu.py --lessons 01,02 --no-record
    python tools/test_gpu.py --require-gpu           # exit 2 on a machine without CUDA
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "benchmarks" / "recorded.json"
NOTEBOOKS = REPO / "notebooks"
EXIT_FAILED, EXIT_NO_GPU = 1, 2
#: Lessons that may finish without GPU work (lesson 00 reads features a cache may already hold).
MAY_STAY_ON_CPU = {"00"}
PROBE = "TLCOURSE_GPU_PROBE "
PROBE_CELL = f"""\
# appended by tools/test_gpu.py: where did this lesson's work run?
import json as _json, torch as _torch
from tlcourse.infra import device as _device
print({PROBE!r} + _json.dumps({{
    "cuda": _torch.cuda.is_available(),
    "peak_gpu_mb": _torch.cuda.max_memory_allocated() / 2**20 if _torch.cuda.is_available() else 0.0,
    "usage": dict(_device.usage)}}))
"""


# --------------------------------------------------------------------------- pure logic
def parse_probe(nb: Any) -> dict | None:
    """The probe cell's report from an executed notebook (a dict-like ``NotebookNode``), or None.

    >>> out = {"output_type": "stream", "name": "stdout", "text": PROBE + '{"peak_gpu_mb": 5.0}\\n'}
    >>> parse_probe({"cells": [{"cell_type": "code", "outputs": [out]}]})
    {'peak_gpu_mb': 5.0}
    """
    for cell in reversed(nb["cells"]):
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            for line in text.splitlines():
                if line.startswith(PROBE):
                    return json.loads(line[len(PROBE):])
    return None


def lesson_problems(lesson: str, errors: list[str], probe: dict | None) -> list[str]:
    """Why a lesson's GPU run does not count (empty: it passed).

    >>> lesson_problems("02", [], {"cuda": True, "peak_gpu_mb": 812.0, "usage": {"step:cuda": 90}})
    []
    >>> lesson_problems("02", [], {"cuda": True, "peak_gpu_mb": 0.0, "usage": {"step:cpu": 90}})
    ['tlcourse ran 90 step(s) on the CPU (step:cpu): a model or batch was left there',
     'no GPU memory was ever allocated: the lesson ran on the CPU']
    """
    problems = [f"cell error: {e}" for e in errors]
    if probe is None:
        return problems + ["the probe cell did not report (the kernel died, or a cell before it hung)"]
    if not probe.get("cuda"):
        return problems + ["the kernel saw no CUDA device"]
    for key, count in sorted(probe.get("usage", {}).items()):
        if not key.endswith(":cuda"):
            problems.append(f"tlcourse ran {count} {key.split(':')[0]}(s) on the {key.split(':')[1].upper()} "
                            f"({key}): a model or batch was left there")
    if probe.get("peak_gpu_mb", 0) <= 0 and lesson not in MAY_STAY_ON_CPU:
        problems.append("no GPU memory was ever allocated: the lesson ran on the CPU")
    return problems


def gpu_record(device: dict, rows: list[dict], torchrun: dict, date: str | None = None) -> dict:
    """The ``gpu`` entry of ``benchmarks/recorded.json``: the device and each passed lesson's cost.

    >>> r = gpu_record({"name": "NVIDIA H100", "precision": "bf16"},
    ...                [{"lesson": "01", "notebook": "01_x.ipynb", "ok": True, "wall_s": 12.34,
    ...                  "peak_gpu_mb": 900.4, "problems": []},
    ...                 {"lesson": "02", "notebook": "02_y.ipynb", "ok": False, "wall_s": 3.0,
    ...                  "peak_gpu_mb": 0.0, "problems": ["..."]}], {"skipped": "1 GPU"}, date="2026-12-07")
    >>> r["device"], sorted(r["lessons"]), r["lessons"]["01"]["wall_s"], r["lessons"]["01"]["peak_gpu_mb"]
    ('NVIDIA H100', ['01'], 12.3, 900)
    """
    return {"device": device["name"], **{k: v for k, v in device.items() if k != "name"},
            "date": date or datetime.date.today().isoformat(), "profile": "full", "torchrun": torchrun,
            "lessons": {r["lesson"]: {"notebook": r["notebook"], "wall_s": round(r["wall_s"], 1),
                                      "peak_gpu_mb": round(r["peak_gpu_mb"])}
                        for r in rows if r["ok"]}}


def merge_record(recorded: dict, gpu: dict) -> dict:
    """``recorded`` with its ``gpu`` entry replaced by ``gpu``, lessons of an earlier GPU run kept
    when this run did not measure them (``--lessons``), only if both runs used the same device.

    >>> old = {"full": {}, "gpu": {"device": "A", "lessons": {"01": 1, "02": 2}}}
    >>> merge_record(old, {"device": "A", "lessons": {"02": 3}})["gpu"]["lessons"]
    {'01': 1, '02': 3}
    >>> merge_record(old, {"device": "B", "lessons": {"02": 3}})["gpu"]["lessons"]
    {'02': 3}
    """
    earlier = recorded.get("gpu", {})
    lessons = dict(earlier.get("lessons", {})) if earlier.get("device") == gpu["device"] else {}
    lessons.update(gpu["lessons"])
    return {**recorded, "gpu": {**gpu, "lessons": dict(sorted(lessons.items()))}}


def skip_plan(cuda: bool, gpus: int) -> list[str]:
    """What a run on this machine skips, and why (one line each).

    >>> skip_plan(True, 2)
    []
    >>> skip_plan(True, 1)
    ['SKIP torchrun with 2 processes: 1 CUDA GPU here, it needs 2 (NCCL gives each process its own GPU)']
    >>> len(skip_plan(False, 0))
    5
    """
    if cuda:
        return [] if gpus >= 2 else [
            f"SKIP torchrun with 2 processes: {gpus} CUDA GPU here, it needs 2 (NCCL gives each process its own GPU)"]
    why = "no CUDA GPU on this machine (torch.cuda.is_available() is False)"
    return [f"SKIP precision tests on the GPU (bf16 / fp16 + GradScaler): {why}",
            f"SKIP every lesson in the full profile on the GPU, with the device-use probe: {why}",
            f"SKIP torchrun with 2 processes (NCCL, finetune_job): {why}",
            f"SKIP recording wall time and peak GPU memory in {RECORDED.relative_to(REPO)} under 'gpu': {why}",
            "      (the CPU runs: `make test`, `make benchmark`)"]


# --------------------------------------------------------------------------- steps
def device_info() -> dict:
    """Name, compute capability and the precision the course trains in on GPU 0."""
    import torch

    from tlcourse.infra import device as dev

    gpu = torch.device("cuda", 0)
    dtype = dev.amp_dtype(gpu)
    return {"name": torch.cuda.get_device_name(0), "capability": "%d.%d" % torch.cuda.get_device_capability(0),
            "precision": {v: k for k, v in dev.PRECISIONS.items()}[dtype], "gpus": torch.cuda.device_count(),
            "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}, CUDA {torch.version.cuda}"}


def run_lesson(path: Path, cell_timeout: int) -> dict:
    """Execute one lesson (full profile) with the probe cell in a child process; time it."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", str(path), str(report), str(cell_timeout)],
                              env={**os.environ, "TLCOURSE_PROFILE": "full"}, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        child = json.loads(report.read_text()) if report.exists() else {"errors": [], "probe": None}
    errors = child["errors"] + ([f"executor exited {proc.returncode}: {proc.stderr[-500:]}"]
                                if proc.returncode else [])
    probe = child["probe"]
    problems = lesson_problems(path.name[:2], errors, probe)
    return {"lesson": path.name[:2], "notebook": path.name, "ok": not problems, "wall_s": wall,
            "peak_gpu_mb": (probe or {}).get("peak_gpu_mb", 0.0), "usage": (probe or {}).get("usage", {}),
            "problems": problems}


def child(path: str, report: str, cell_timeout: str) -> None:
    """In a fresh interpreter: run the notebook plus the probe cell, write errors and the probe."""
    import nbformat

    sys.path.insert(0, str(REPO / "tools"))
    import nbexec

    nb = nbformat.read(path, 4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE_CELL))
    nbexec.execute(nb, cwd=str(Path(path).parent), timeout=int(cell_timeout))
    errors = [f"{o.get('ename')}: {o.get('evalue', '')[:300]}" for cell in nb.cells
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    Path(report).write_text(json.dumps({"errors": errors, "probe": parse_probe(nb)}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_torchrun(epochs: int) -> dict:
    """The 2-process fit test and finetune_job under torchrun (NCCL); what each printed, pass or fail."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"]
        jobs = {"ddp_worker": [str(REPO / "tests" / "ddp_worker.py"), tmp],
                "finetune_job": ["-m", "tlcourse.labs.fine_tuning", "--epochs", str(epochs)]}
        for name, args in jobs.items():
            t0 = time.perf_counter()
            proc = subprocess.run([*launch, f"--master_port={free_port()}", *args], cwd=REPO,
                                  capture_output=True, text=True, timeout=3600)
            ok = proc.returncode == 0
            if name == "ddp_worker" and ok:
                import torch

                r0 = torch.load(Path(tmp) / "rank0.pt", weights_only=True)
                ok = bool(r0["collectives"]) and all(d.startswith("cuda") for d in r0["collectives"])
            elif name == "finetune_job" and ok:
                ok = "backend nccl" in proc.stdout
            tail = (proc.stdout + proc.stderr)[-600:]
            results[name] = {"ok": ok, "wall_s": round(time.perf_counter() - t0, 1),
                             **({} if ok else {"output": tail})}
            print(f"  torchrun {name}: {'ok' if ok else 'FAILED'} ({results[name]['wall_s']} s)")
            if not ok:
                print(tail)
    return results


def select(lessons: str | None) -> list[Path]:
    """The lesson notebooks, all or those named (``"01,02"``).

    >>> [p.name[:2] for p in select("01,03")]
    ['01', '03']
    """
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    wanted = set(re.split(r"[,\s]+", lessons.strip())) if lessons else None
    return [p for p in paths if wanted is None or p.name[:2] in wanted]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--require-gpu", action="store_true", help=f"exit {EXIT_NO_GPU} when there is no CUDA GPU")
    p.add_argument("--lessons", default=None, help="comma-separated lesson numbers (default: all)")
    p.add_argument("--no-record", action="store_true", help=f"do not write {RECORDED.name}")
    p.add_argument("--cell-timeout", type=int, default=3600, help="seconds per cell")
    p.add_argument("--finetune-epochs", type=int, default=2, help="epochs of finetune_job under torchrun")
    args = p.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    skips = skip_plan(cuda, torch.cuda.device_count() if cuda else 0)
    if not cuda:
        print("make test-gpu: " + "\n".join(["nothing run on this machine:", *skips]))
        if args.require_gpu:
            print(f"--require-gpu: exit {EXIT_NO_GPU}")
            return EXIT_NO_GPU
        return 0

    info = device_info()
    print(f"GPU: {info['name']} (compute capability {info['capability']}, {info['gpus']} GPU(s)); "
          f"the course trains in {info['precision']} on it")
    failed = []
    print("== precision tests on the GPU (bf16 where native, fp16 with a GradScaler)")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q",
                            "tests/test_precision.py"], cwd=REPO)
    if tests.returncode:
        failed.append("precision tests on the GPU")

    print("== lessons, full profile, on the GPU")
    rows = []
    for path in select(args.lessons):
        row = run_lesson(path, args.cell_timeout)
        rows.append(row)
        status = "ok" if row["ok"] else "FAILED: " + "; ".join(row["problems"])
        print(f"  {path.name:36} {row['wall_s']:7.1f} s  peak GPU {row['peak_gpu_mb']:8.0f} MB  {status}")
        if not row["ok"]:
            failed.append(path.name)

    print("== torchrun with 2 processes")
    for line in skips:
        print("  " + line)
    torchrun = run_torchrun(args.finetune_epochs) if info["gpus"] >= 2 else {"skipped": f"{info['gpus']} GPU"}
    failed += [f"torchrun {k}" for k, v in torchrun.items() if isinstance(v, dict) and not v["ok"]]

    if not args.no_record:
        recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
        RECORDED.write_text(json.dumps(merge_record(recorded, gpu_record(info, rows, torchrun)),
                                       indent=1, sort_keys=True) + "\n")
        print(f"recorded the passed lessons under 'gpu' in {RECORDED}")
    if failed:
        print("FAILED: " + ", ".join(failed))
        return EXIT_FAILED
    print("all GPU checks passed")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
    else:
        sys.exit(main())
