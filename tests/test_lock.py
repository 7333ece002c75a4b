"""requirements.lock, the whole environment with hashes, agrees with the human-readable top level.

`make lock` writes it (uv, one universal lock: markers per platform, tests/test_lock_platforms.py)
from requirements.txt and every requirements-*.txt; `make install`, CI
(`.ci/run` calls `make install`) and Binder (binder/requirements.lock, derived from it) install it.
A pin changed in a top-level file without `make lock` fails here, not on a learner's machine.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.split("#", 1)[0])
        if match:
            found[canonical(match[1])] = match[2]
    return found


def top_level_files() -> list[Path]:
    return [REPO / "requirements.txt", *sorted(REPO.glob("requirements-*.txt"))]


def test_every_top_level_pin_is_locked_at_its_version():
    locked = pins(LOCK)
    for path in top_level_files():
        for name, version in pins(path).items():
            assert locked.get(name) == version, (
                f"{path.name} pins {name}=={version}, requirements.lock has {locked.get(name)}: run `make lock`")


def test_every_top_level_file_is_an_input_of_the_lock():
    header = LOCK.read_text().split("\n\n", 1)[0] + LOCK.read_text()[:2000]
    for path in top_level_files()[1:]:
        assert path.name in header, f"`make lock` did not read {path.name}: run `make lock`"


def test_the_package_dependencies_are_all_in_the_lock():
    """`make install` installs the package with --no-deps after the lock: the lock must hold its deps."""
    locked = pins(LOCK)
    for requirement in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        name = canonical(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0])
        assert name in locked, f"pyproject.toml needs {name}, which requirements.lock lacks: run `make lock`"


def test_every_locked_package_has_hashes():
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    unhashed = [b.split()[0] for b in blocks if PIN.match(b) and "--hash=sha256:" not in b]
    assert not unhashed, unhashed
    assert len(pins(LOCK)) > 50, "the whole environment, not only the top level"


def test_make_install_installs_the_lock_with_hashes():
    makefile = (REPO / "Makefile").read_text()
    assert "--require-hashes --no-deps -r requirements.lock" in makefile
    assert re.search(r"^lock:", makefile, re.M) and "uv pip compile --quiet --universal" in makefile
    assert "--generate-hashes" in makefile and "constraints/lock-tools.txt" in makefile


FAKE_PYTHON = """#!/bin/sh
# A Python {version} stand-in: answers --version, fails the version check like the real one.
[ "$1" = --version ] && echo "Python {version}" && exit 0
exit 1
"""


@pytest.mark.skipif(not shutil.which("make"), reason="no make")
@pytest.mark.parametrize("version", ["3.9.18", "3.11.2", "3.14.0"])
def test_make_install_stops_on_a_python_the_lock_does_not_install_on(tmp_path, version):
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON.format(version=version))
    fake.chmod(0o755)
    run = subprocess.run(["make", "-s", "--no-print-directory", "python-version", f"PYTHON={fake}"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert f"is Python {version}" in run.stdout and "3.11 (3.11.5 or newer), 3.12 or 3.13" in run.stdout
    assert "make start PYTHON=python3.12" in run.stdout, run.stdout


@pytest.mark.skipif(not shutil.which("make"), reason="no make")
def test_make_install_accepts_this_python():
    run = subprocess.run(["make", "-s", "python-version", f"PYTHON={sys.executable}"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    assert run.returncode == 0 and not run.stdout, run.stdout
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("$(VENV)/.installed: requirements.lock pyproject.toml\n", 1)[1]
    assert recipe.lstrip("\t@").startswith("$(MAKE) --no-print-directory python-version"), "checked first"
