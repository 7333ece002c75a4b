"""Cheap fresh virtual environments for install tests: a new venv that sees .venv's packages.

A real fresh venv with torch costs a minute and 5.5 GB; CI cannot afford several. An
*overlay* is a new venv (``--without-pip``, a second) whose ``.pth`` file adds a folder of
symbolic links to the packages of the running interpreter's site-packages, minus the ones
named in ``hide`` and minus the course itself (its editable install from the checkout).
So an install test starts where a learner's fresh machine does for the course (no
``tlcourse``, no ``tlcourse-fetch``, the package versions we choose), while torch and
friends are reused. pip runs from the overlay's interpreter and installs into the overlay;
it counts the linked packages as installed, so nothing is downloaded that is not missing.

Example (not run: creates a venv)::

    python = make_overlay(tmp_path / "venv", hide={"ipywidgets"})
    pip_install(python, "ipywidgets==7.7.1")
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

ALWAYS_HIDDEN = {"tlcourse", "__editable__", "__pycache__", "_virtualenv"}


def canonical(name: str) -> str:
    """``Jupyterlab_Widgets-3.0.dist-info`` -> ``jupyterlab-widgets`` (the distribution's name)."""
    stem = re.split(r"-\d", name, maxsplit=1)[0].removesuffix(".py").removesuffix(".pth")
    return re.sub(r"[-_.]+", "-", stem).lower()


def make_overlay(target: Path, hide: Iterable[str] = ()) -> Path:
    """Create the overlay venv at ``target``; return its python."""
    hidden = {canonical(h) for h in hide} | ALWAYS_HIDDEN
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    python = target / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    farm = target / "base-packages"
    farm.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = canonical(entry.name)
        if name in hidden or any(name.startswith(h) for h in ("--editable", "editable")) \
                or entry.name.startswith("__editable__") or entry.suffix == ".pth":
            continue
        os.symlink(entry, farm / entry.name)
    (site / "_base_packages.pth").write_text(f"{farm}\n")
    return python


def pip_install(python: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m pip install -q ARGS`` in the overlay; raises with pip's output on failure."""
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


DRIVER = r'''
import json, sys
import nbformat
# tlcourse/infra/execute.py, copied beside this driver (the course may not be installed here yet):
# nbclient that cannot miss a reply
from tlcourse_execute import execute
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    execute(nb, cwd=sys.argv[4], timeout=900, kernel_name=sys.argv[3], allow_errors=False)
finally:
    nbformat.write(nb, sys.argv[2])
'''


def run_notebook(python: Path, notebook: Path, workdir: Path, env: dict[str, str],
                 timeout: float = 1500) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Execute ``notebook`` with nbclient in a kernel of the overlay's ``python``, from ``workdir``.

    Returns the driver's result and each code cell's text output (stdout, errors), in order.
    The kernel spec is written into ``workdir`` so no user or system spec can stand in for it.
    """
    spec = workdir / "jupyter" / "kernels" / "overlay"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"], '
        '"display_name": "overlay", "language": "python"}' % python)
    driver = workdir / "run_notebook.py"
    driver.write_text(DRIVER)
    executor = Path(__file__).resolve().parents[1] / "tlcourse" / "infra" / "execute.py"
    shutil.copy(executor, workdir / "tlcourse_execute.py")
    executed = workdir / f"{notebook.stem}.out.ipynb"
    env = {**env, "JUPYTER_PATH": str(workdir / "jupyter"), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([str(python), str(driver), str(notebook), str(executed), "overlay", str(workdir)],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    texts = []
    if executed.exists():
        import nbformat

        for cell in nbformat.read(executed, as_version=4).cells:
            if cell.cell_type == "code":
                texts.append("".join(o.get("text", "") if o.output_type == "stream" else
                                     f"{o.get('ename', '')}: {o.get('evalue', '')}" if o.output_type == "error"
                                     else "" for o in cell.get("outputs", [])))
    return result, texts


def package_source(repo: Path, target: Path) -> Path:
    """A copy of what building the package reads (no notebooks, tests, caches): ``target``."""
    import shutil

    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(repo / name, target / name)
    shutil.copytree(repo / "tlcourse", target / "tlcourse",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return target


def site_packages(python: Path) -> Path:
    """The overlay's own site-packages folder."""
    return Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment: no TLCOURSE_*, Colab, Kaggle or Binder variables from the caller."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_",
            "MALLOC_ARENA_MAX", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "HF_HUB_OFFLINE",
            "SSL_CERT_FILE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(extra)
    return env
