"""requirements.lock, the whole environment with hashes, agrees with the human-readable top level.

`make lock` writes it from requirements.txt and every requirements-*.txt; `make install`, CI
(`.ci/run` calls `make install`) and Binder (binder/requirements.lock, derived from it) install it.
A pin changed in a top-level file without `make lock` fails here, not on a learner's machine.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
    assert re.search(r"^lock:", makefile, re.M) and "pip-compile" in makefile and "--generate-hashes" in makefile
