"""The course on a hosted platform's own package versions (issue 28): Colab's, from its pip freeze.

CI tests the newest pins (requirements.lock). A learner on Colab gets Colab's packages instead:
the lesson's set-up cell runs ``pip install <the course>``, which keeps every installed package
that satisfies pyproject.toml's floors and adds only what is missing. This script rebuilds that
situation here and runs every lesson in it:

``constraints``
    writes ``constraints/colab.txt`` from ``../shared/platforms/colab-pip-freeze.txt``: every
    package the course touches (the closure of its dependencies, plus the kernel and nbclient
    that run a notebook) at Colab's version. Colab's torch and torchvision are ``+cpu`` builds
    from PyTorch's index; the constraints name PyPI's build of the same version.
``build``
    a venv (default ``/tmp/tlcourse-colab``, Python 3.13 like Colab when there is one) with
    those packages installed (by uv: its cache keeps the wheels, so a rebuild downloads none),
    then the course installed as the set-up cell does (``pip install -e .``: only-if-needed,
    under the constraints, so nothing of Colab's can move); ``pip check``; and a check that
    every constrained package is at Colab's version.
``widgets``
    the widget tests (tests/test_widgets_floor.py, tests/test_config_widgets.py) with that
    venv's Python, on Colab's ipywidgets 7.7.1 (Colab's pytest added if missing; ``pip check``).
``run``
    every ``notebooks/NN_*.ipynb`` (or ``--lessons 00 04``) through tlcourse.infra.execute (the
    executor of benchmarks/run.py) in that venv's kernel, in the ``smoke`` profile; one line a
    lesson (cells run, wall and CPU seconds), and for a failed one each error. A ``check``
    cell's AssertionError is expected there (smoke results mean nothing); any other error, a
    cell that did not run or a dead kernel fails the run (exit status 1).

``make test-colab`` runs the three; CI runs it last (.ci/run).

Kaggle's set is not run: it would add little that these two runs do not. Its list
(``kaggle-requirements.txt``) names requirements, not the installed versions: Python 3.12 and
ipywidgets 8.1.5 lie between CI's run (3.11, 8.1.9) and this one (3.13, 7.7.1), on the widget
API that both pass, and ``transformers>=5.0`` admits the versions those two run. What could
differ is older than Colab's, not newer: it builds on a Colab image of 2026-05, and its
``torchcodec==0.10.0`` pin goes with torch 2.10 (torchcodec's compatibility table), below the
``torch>=2.11`` floor, so there the set-up cell's pip would likely upgrade torch (a download)
rather than break. Only Kaggle's own ``pip freeze`` (not in ../shared/platforms/) could prove it.

Example:
    python tools/platform_env.py constraints
    python tools/platform_env.py build --python python3.13
    python tools/platform_env.py widgets
    TLCOURSE_DATA=../shared/course-data TLCOURSE_BACKBONE=efficientnet_lite0 \\
        python tools/platform_env.py run --lessons 00 04
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FREEZE = REPO.parent / "shared" / "platforms" / "colab-pip-freeze.txt"
CONSTRAINTS = REPO / "constraints" / "colab.txt"
VENV = Path("/tmp/tlcourse-colab")
#: What runs a notebook besides the course: the kernel and the executor (tlcourse.infra.execute).
EXECUTOR = {"ipykernel", "nbclient", "nbformat"}


GPU_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_versions(text: str) -> dict[str, str]:
    """``{package: version}`` of a pip freeze; ``torch @ https://.../torch-2.11.0%2Bcpu-...`` -> 2.11.0."""
    found = {}
    for line in text.splitlines():
        pinned = re.match(r"^([A-Za-z0-9][\w.-]*)==([^\s;]+)", line)
        url = re.match(r"^([A-Za-z0-9][\w.-]*) @ \S+/[\w.]+?-(\d[\w.]*?)(?:%2B|\+)\w+-", line)
        match = pinned or url
        if match:
            found[canonical(match[1])] = match[2]
    return found


def lock_uv() -> Path:
    """The repository's uv (``.lock-tools``, the one ``make lock`` uses), installed with hashes if missing."""
    uv = REPO / ".lock-tools" / "bin" / "uv"
    if not uv.exists():
        sh(sys.executable, "-m", "venv", str(uv.parents[1]))
        sh(str(uv.parents[1] / "bin" / "python"), "-m", "pip", "install", "--quiet", "--require-hashes",
           "-r", str(REPO / "constraints" / "lock-tools.txt"))
    return uv


def resolve_on_colab(colab: dict[str, str]) -> dict[str, str]:
    """What ``pip install <course>`` ends with on Colab: uv resolves the course and the executor
    for Colab's Python (3.13, Linux x86-64) with every Colab package constrained to Colab's version."""
    import tempfile

    uv = lock_uv()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "colab.txt").write_text("".join(f"{n}=={v}\n" for n, v in colab.items()))
        (Path(tmp) / "in.txt").write_text(f"-e {REPO}\n" + "".join(f"{n}\n" for n in sorted(EXECUTOR)))
        out = subprocess.run([str(uv), "pip", "compile", str(Path(tmp) / "in.txt"), "-c", str(Path(tmp) / "colab.txt"),
                              "--python-version", "3.13", "--python-platform", "x86_64-manylinux_2_28",
                              "--no-header", "--no-annotate", "--quiet"],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    return {canonical(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9][\w.-]*)==(\S+)", out.stdout, re.M)}


def constraints_text() -> str:
    # CUDA's wheels: Colab's torch is the +cpu build, which needs none; PyPI's build of the same
    # version brings the ones it was built with (Colab's nvidia-nccl, for JAX, would clash).
    colab = {n: v for n, v in colab_versions(FREEZE.read_text()).items() if not GPU_ONLY.match(n)}
    resolved = resolve_on_colab(colab)
    wanted = sorted(n for n in resolved if n in colab)
    added = sorted(f"{n} {v}" for n, v in resolved.items() if n not in colab and not GPU_ONLY.match(n))
    assert all(resolved[n] == colab[n] for n in wanted), "uv moved a Colab package"
    return ("# Colab's versions of every package the course touches: what `pip install <the course>` (the\n"
            "# set-up cell) plus the kernel and nbclient need on Colab, resolved with every package of\n"
            "# ../shared/platforms/colab-pip-freeze.txt held at Colab's version. torch and torchvision:\n"
            "# PyPI's build of Colab's +cpu version (with the CUDA wheels it needs, unpinned here).\n"
            "# Made by `python tools/platform_env.py constraints`; do not edit.\n"
            f"# Not on Colab, so the set-up cell's pip adds them: {', '.join(added)}\n"
            + "".join(f"{n}=={colab[n]}\n" for n in wanted))


def pinned(path: Path) -> dict[str, str]:
    return {canonical(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9][\w.-]*)==(\S+)", path.read_text(), re.M)}


def default_python() -> str:
    """Colab's Python (3.13) if this machine has one that runs, else this one. ``python3.13`` on
    PATH can be a pyenv shim that exits 127 when 3.13 is not pyenv's selected version: try it."""
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    for candidate in [*map(str, pyenv), "python3.13"]:
        try:
            ok = subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 13)"],
                                capture_output=True).returncode == 0
        except OSError:
            ok = False
        if ok:
            return candidate
    return sys.executable


def sh(*cmd: str, **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def not_at_colab(py: str) -> dict[str, tuple[str, str | None]]:
    """``{package: (Colab's version, the venv's)}`` for every constrained package that differs."""
    have = json.loads(subprocess.run(
        [py, "-c", "import json, importlib.metadata as m; print(json.dumps({d.metadata['Name']: d.version "
         "for d in m.distributions()}))"], capture_output=True, text=True, check=True).stdout)
    have = {canonical(n): v for n, v in have.items()}
    return {n: (v, have.get(n)) for n, v in pinned(CONSTRAINTS).items() if have.get(n) != v}


def build(venv: Path, python: str) -> int:
    t0 = time.perf_counter()
    if venv.exists():
        shutil.rmtree(venv)
    sh(python, "-m", "venv", str(venv))
    py = str(venv / "bin" / "python")
    sh(py, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # 1. The platform: Colab's packages, exactly (what the runtime has before the set-up cell).
    #    uv installs them: its cache keeps every wheel it has downloaded, so a second build (CI's,
    #    on the same machine) downloads none of the ~3 GB again and links the files instead of
    #    unpacking 6 GB. pip's own cache cannot do that here: the registry's answers carry no
    #    caching headers, so pip stores nothing (seen with pip 26.3).
    sh(str(lock_uv()), "pip", "install", "--quiet", "--python", py, "-r", str(CONSTRAINTS),
       env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    # 2. The set-up cell's `pip install <course>`: only-if-needed, and under the constraints, so
    #    pip fails rather than move a Colab package (a floor above Colab's version would do that).
    sh(py, "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS), "-e", str(REPO))
    sh(py, "-m", "pip", "check")
    moved = not_at_colab(py)
    print(f"platform_env: built {venv} in {time.perf_counter() - t0:.0f} s "
          f"({subprocess.run([py, '--version'], capture_output=True, text=True).stdout.strip()}); "
          f"not at Colab's version: {moved or 'none'}", flush=True)
    return 1 if moved else 0


RUNNER = """
import json, os, sys, time, nbformat
from tlcourse.infra.execute import execute
path, save = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, 4)
t0 = time.perf_counter()
try:
    execute(nb, cwd=os.path.dirname(path), timeout=int(os.environ.get("CELL_TIMEOUT", "900")))
    crash = None
except Exception as exc:   # the kernel died or a cell timed out
    crash = f"{type(exc).__name__}: {str(exc)[-300:]}"
seconds = round(time.perf_counter() - t0, 1)
if save:
    nbformat.write(nb, os.path.join(save, os.path.basename(path)))
code = [c for c in nb.cells if c.cell_type == "code"]
errors = [{"code_cell": i, "tags": c.metadata.get("tags", []), "ename": o["ename"], "evalue": o["evalue"][:400],
           "source": c.source[:160]}
          for i, c in enumerate(code) for o in c.get("outputs", []) if o.get("output_type") == "error"]
print("RESULT " + json.dumps({"cells": len(code), "ran": sum(1 for c in code if c.get("execution_count")),
                              "seconds": seconds, "errors": errors, "crash": crash}))
"""


def broken(result: dict, profile: str) -> list[dict]:
    """The errors that mean the lesson broke. In the smoke profile the results mean nothing
    (tlcourse/config.py), so a ``check`` cell's AssertionError there is not one."""
    return [e for e in result.get("errors", [])
            if not (profile == "smoke" and "check" in e["tags"] and e["ename"] == "AssertionError")]


def verdict(result: dict, profile: str, returncode: int) -> list[str]:
    """Why the lesson failed, one reason a line; empty if it passed."""
    why = [f"code cell {e['code_cell']} {e['tags']}: {e['ename']}: {e['evalue'][:300]}"
           for e in broken(result, profile)]
    if result.get("crash"):
        why.append(f"crash: {result['crash']}")
    elif result.get("ran", 0) < result.get("cells", 0):
        why.append(f"only {result['ran']} of {result['cells']} code cells ran")
    if returncode and not why:
        why.append(f"the runner exited {returncode}")
    return why


def summary(name: str, result: dict, wall: float, cpu: float, why: list[str], profile: str) -> str:
    """One line a lesson: verdict, cells run, wall and CPU seconds, and the checks that failed."""
    expected = len(result.get("errors", [])) - len(broken(result, profile))
    checks = f", {expected} check(s) failed (expected in {profile})" if expected else ""
    return (f"platform_env: {name:34} {'FAIL' if why else 'ok':4} {result.get('ran', 0)}/{result.get('cells', '?')} "
            f"cells, {wall:.0f} s (CPU {cpu:.0f} s){checks}")


KERNEL_PROBE = """
import os, sys, nbformat
from tlcourse.infra.execute import execute
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    "import sys, torch, torchvision, transformers, ipywidgets, ipykernel\\n"
    "print(sys.executable, sys.version.split()[0], torch.__version__, torchvision.__version__, "
    "transformers.__version__, ipywidgets.__version__, ipykernel.__version__)")])
execute(nb, timeout=300)
print(nb.cells[0].outputs[0]["text"].strip())
"""


def lessons(only: list[str]) -> list[Path]:
    """Every ``notebooks/NN_*.ipynb`` (a lesson added or renumbered is picked up), or those named."""
    found = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not only or any(p.name.startswith(o) for o in only)]


def run(venv: Path, profile: str, only: list[str], save: Path | None = None) -> int:
    py = str(venv / "bin" / "python")
    env = {**os.environ, "TLCOURSE_PROFILE": profile}
    # The kernel nbclient starts must be this venv's, with Colab's versions: ask it.
    probe = subprocess.run([py, "-c", KERNEL_PROBE], capture_output=True, text=True, env=env)
    print("platform_env: the kernel's python, torch, torchvision, transformers, ipywidgets, ipykernel:",
          probe.stdout.strip() or probe.stderr[-1000:], flush=True)
    if not probe.stdout.strip().startswith(py):
        return 1
    todo = lessons(only)
    if not todo:
        print(f"platform_env: no lesson matches {only or 'notebooks/NN_*.ipynb'}", flush=True)
        return 1
    if save:
        save.mkdir(parents=True, exist_ok=True)
    failed, t_all = [], time.perf_counter()
    for path in todo:
        t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([py, "-c", RUNNER, str(path), str(save or "")], capture_output=True, text=True,
                              env=env)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)   # the runner and the kernel it reaped
        cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        result = json.loads(line[7:]) if line else {"crash": proc.stderr[-1500:]}
        why = verdict(result, profile, proc.returncode)
        print(summary(path.name, result, time.perf_counter() - t0, cpu, why, profile), flush=True)
        for reason in why:
            print(f"    {reason}", flush=True)
        if why:
            failed.append(path.name)
    print(f"platform_env: {len(todo) - len(failed)} of {len(todo)} lessons passed ({profile} profile) "
          f"in {time.perf_counter() - t_all:.0f} s{'; FAILED: ' + ', '.join(failed) if failed else ''}",
          flush=True)
    print(f"lessons: {len(todo) - len(failed)} passed, {len(failed)} failed", flush=True)   # CI's closing line
    return 1 if failed else 0


#: The widget tests: test_widgets_floor.py runs test_config_widgets.py and widgets.py's doctests on
#: the interpreter it finds at ipywidgets 7.7.1 (here: this venv, Colab's own kernel and traitlets).
WIDGET_TESTS = ["tests/test_widgets_floor.py", "tests/test_config_widgets.py"]


def widget_tests(venv: Path) -> int:
    """The widget tests in the venv, on Colab's ipywidgets 7.7.1. Colab has pytest too (its freeze
    pins it); a venv without it gets Colab's pytest, pluggy and iniconfig, installed under the
    constraints, then ``pip check`` and the version check prove that none of Colab's pins moved."""
    py = str(venv / "bin" / "python")
    t0 = time.perf_counter()
    if subprocess.run([py, "-c", "import pytest"], capture_output=True).returncode:
        colab = colab_versions(FREEZE.read_text()) if FREEZE.exists() else {}
        sh(py, "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS),
           *(f"{n}=={colab[n]}" if n in colab else n for n in ("pytest", "pluggy", "iniconfig")))
    sh(py, "-m", "pip", "check")
    moved = not_at_colab(py)
    if moved:
        print(f"platform_env: installing pytest moved Colab's versions: {moved}", flush=True)
        return 1
    # pyproject's addopts name CI's plugins (nbval), which Colab does not have: none here.
    code = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-ra",
                           *WIDGET_TESTS], cwd=REPO).returncode
    print(f"platform_env: widget tests on Colab's versions: {'ok' if code == 0 else 'FAIL'} "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["constraints", "build", "widgets", "run"])
    parser.add_argument("--venv", type=Path, default=VENV)
    parser.add_argument("--python", default=None, help="the venv's Python (default: 3.13 if found)")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--lessons", "--only", nargs="*", default=[], dest="only",
                        help="run: these lessons only, by number prefix, e.g. 00 04 (default: every one)")
    parser.add_argument("--save", type=Path, default=None, help="write the executed lessons here")
    args = parser.parse_args(argv)
    if args.command == "constraints":
        CONSTRAINTS.write_text(constraints_text())
        print(f"{CONSTRAINTS.relative_to(REPO)}: {len(pinned(CONSTRAINTS))} packages at Colab's versions")
        return 0
    if args.command == "build":
        return build(args.venv, args.python or default_python())
    if args.command == "widgets":
        return widget_tests(args.venv)
    return run(args.venv, args.profile, args.only, args.save)


if __name__ == "__main__":
    sys.exit(main())
