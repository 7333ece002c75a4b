"""requirements.lock installs on every platform and Python the README names, not only on CI's.

The lock is universal (``make lock``: ``uv pip compile --universal``): one file, environment
markers choose the entries of each platform. For each platform x Python this asks uv to resolve
the lock *for that target* (``--python-platform``, ``--python-version``: no such machine or
Python is needed) and checks that

* uv finds, for every pinned package the markers select there, a wheel for that platform and
  Python or an sdist (otherwise it fails with "has no wheels with a matching platform tag"), and
* what it resolves is exactly the lock's entries for that target: no dependency missing from the
  lock (uv would add it at whatever version is newest), none extra, every version the locked one.

uv reads the registry's file lists (its cache makes a second run fast); it runs from .lock-tools,
the venv `make lock` uses, at the version of constraints/lock-tools.txt (made here if missing).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
LOCK_TOOLS = REPO / ".lock-tools"
ENTRY = re.compile(r"^([A-Za-z0-9][\w.-]*)==([^\s;\\]+)(?:\s*;\s*([^\\\n]+?))?\s*\\?$", re.M)

# README, "Platforms and Pythons". uv's target triple, what the markers see there.
PLATFORMS = {
    "linux-x86_64": ("x86_64-manylinux_2_28", {"sys_platform": "linux", "platform_system": "Linux",
                                               "os_name": "posix", "platform_machine": "x86_64"}),
    "linux-aarch64": ("aarch64-manylinux_2_28", {"sys_platform": "linux", "platform_system": "Linux",
                                                 "os_name": "posix", "platform_machine": "aarch64"}),
    "macos-arm64": ("aarch64-apple-darwin", {"sys_platform": "darwin", "platform_system": "Darwin",
                                             "os_name": "posix", "platform_machine": "arm64"}),
    "windows-x86_64": ("x86_64-pc-windows-msvc", {"sys_platform": "win32", "platform_system": "Windows",
                                                  "os_name": "nt", "platform_machine": "AMD64"}),
}
# The oldest release of each supported minor version that the lock admits (soupsieve, a docs
# tool, needs 3.11.5); `make install` refuses anything else (Makefile, python-version).
PYTHONS = ["3.11.5", "3.12", "3.13"]
MACOS = "14.0"   # torch's macOS wheels are macosx_14_0_arm64: macOS 14 (Sonoma) or newer


def locked_entries(text: str) -> list[tuple[str, str, str | None]]:
    """``(name, version, marker or None)`` of every entry of a uv/pip-tools lock."""
    return [(re.sub(r"[-_.]+", "-", m[1]).lower(), m[2], m[3]) for m in ENTRY.finditer(text)]


def marker_env(platform: str, python: str) -> dict[str, str]:
    full = python if python.count(".") == 2 else python + ".0"
    return {**PLATFORMS[platform][1], "python_version": ".".join(full.split(".")[:2]),
            "python_full_version": full, "implementation_name": "cpython",
            "platform_python_implementation": "CPython"}


def expected(platform: str, python: str) -> dict[str, str]:
    env = marker_env(platform, python)
    return {name: version for name, version, marker in locked_entries(LOCK.read_text())
            if marker is None or Marker(marker).evaluate(env)}


@pytest.fixture(scope="module")
def uv() -> Path:
    binary = LOCK_TOOLS / ("Scripts/uv.exe" if os.name == "nt" else "bin/uv")
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LOCK_TOOLS)], check=True)
        pip = LOCK_TOOLS / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        subprocess.run([str(pip), "-m", "pip", "install", "--quiet", "--require-hashes", "-r",
                        str(REPO / "constraints" / "lock-tools.txt")], check=True)
    return binary


def test_the_lock_is_universal_and_hashed():
    text = LOCK.read_text()
    assert "uv pip compile --universal" in text.split("\n", 3)[1], "made by `make lock`"
    entries = locked_entries(text)
    names = [name for name, _, _ in entries]
    assert len(names) == len(set(names)), "one version per package: every platform tests the same versions"
    cuda = [(n, m) for n, _, m in entries if n.startswith(("nvidia-", "cuda-")) or n == "triton"]
    assert cuda, "PyPI's Linux torch needs CUDA's wheels: the lock must still carry them for Linux"
    assert all(m and "sys_platform == 'linux'" in m for _, m in cuda), [n for n, m in cuda if not m]


def test_linux_x86_64_is_the_environment_ci_tests():
    """On CI's platform the markers select every entry but the other platforms' extras."""
    chosen = expected("linux-x86_64", "3.11.7")
    others = {name for name, _, _ in locked_entries(LOCK.read_text())} - set(chosen)
    assert {"torch", "triton", "nvidia-cublas", "jupyterlab", "pytest"} <= set(chosen)
    assert "pywinpty" in others and "appnope" in others


@pytest.mark.slow
@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_the_lock_resolves_on(platform: str, python: str, uv: Path):
    target, _ = PLATFORMS[platform]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "MACOSX_DEPLOYMENT_TARGET": MACOS}
    run = subprocess.run(
        [str(uv), "pip", "compile", str(LOCK), "--python-platform", target, "--python-version", python,
         "--no-header", "--no-annotate", "--quiet"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False)
    errors = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("warning:"))
    assert run.returncode == 0, f"requirements.lock does not install on {platform}, Python {python}:\n{errors}"
    resolved = {name: version for name, version, _ in locked_entries(run.stdout)}
    wanted = expected(platform, python)
    missing = {n: v for n, v in resolved.items() if n not in wanted}
    assert not missing, f"{platform}/{python} needs packages the lock lacks (run `make lock`): {missing}"
    assert resolved == wanted, {n: (v, resolved.get(n)) for n, v in wanted.items() if resolved.get(n) != v}


# ------------------------------------------------- the floors: Colab's versions, run by make test-colab
COLAB = REPO / "constraints" / "colab.txt"
FREEZE = REPO.parent / "shared" / "platforms" / "colab-pip-freeze.txt"


def floors() -> dict[str, str]:
    import tomllib

    found = {}
    for requirement in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        match = re.match(r"^([A-Za-z0-9][\w.-]*)(?:\[[^\]]*\])?>=([\d.]+)", requirement)
        assert match, f"{requirement}: every dependency has a floor (>=)"
        found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


def test_every_floor_is_a_version_make_test_colab_installs():
    """`make test-colab` installs constraints/colab.txt and runs every lesson: each floor is that version."""
    from packaging.version import Version

    colab = {name: version for name, version, _ in locked_entries(COLAB.read_text())}
    locked = {name: version for name, version, _ in locked_entries(LOCK.read_text())}
    for name, floor in floors().items():
        tested = colab.get(name) or locked[name]   # not on Colab: the set-up cell installs the locked one
        assert Version(tested) >= Version(floor) and tested.startswith(floor), (
            f"pyproject.toml: {name}>={floor}, but the oldest version a test runs is {tested}")


@pytest.mark.skipif(not FREEZE.exists(), reason="../shared/platforms/ is not beside the checkout")
def test_colab_constraints_are_colab_s_own_versions():
    sys.path.insert(0, str(REPO / "tools"))
    import platform_env

    colab = platform_env.colab_versions(FREEZE.read_text())
    pinned = {name: version for name, version, _ in locked_entries(COLAB.read_text())}
    assert {"torch", "torchvision", "transformers", "ipywidgets", "ipykernel", "nbclient"} <= set(pinned)
    assert {n: v for n, v in pinned.items() if colab.get(n) != v} == {}, "run: python tools/platform_env.py constraints"
    assert (pinned["torch"], pinned["ipywidgets"]) == ("2.11.0", "7.7.1")
