"""Shared fixtures: the prepared data root, a private cache, small synthetic image folders."""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "course-data"


def data_root() -> Path:
    """The data root the suite runs on: TLCOURSE_DATA, else ../shared/course-data."""
    env = os.environ.get("TLCOURSE_DATA")
    return Path(env) if env else SHARED


@pytest.fixture
def real_root(monkeypatch) -> Path:
    """Point the course at the real data root; skip (with the reason) if it is absent."""
    root = data_root()
    if not (root / "hymenoptera_data").is_dir():
        pytest.skip(f"no prepared data root at {root} (set TLCOURSE_DATA or run data_scripts/fetch_data.py)")
    monkeypatch.setenv("TLCOURSE_DATA", str(root))
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    """Each test gets an empty cache, so no test passes on another test's leftovers."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("TLCOURSE_CACHE", str(cache))
    return cache


@pytest.fixture
def host_reads(monkeypatch):
    """Spy on the host reads (``.cpu()``, ``.item()``, ...) that one module makes; a GPU waits at each.

    ``reads = host_reads("tlcourse.training")`` returns a list that every later read made from that
    module's own code appends its name to (``reads.clear()`` between runs).
    """
    import sys

    import torch

    def start(module: str, names: tuple[str, ...] = ("cpu", "item", "tolist", "numpy", "__float__",
                                                     "__int__", "__bool__")) -> list[str]:
        reads: list[str] = []
        for name in names:
            real = getattr(torch.Tensor, name)

            def spy(self, *args, _real=real, _name=name, **kwargs):
                if sys._getframe(1).f_globals.get("__name__") == module:
                    reads.append(_name)
                return _real(self, *args, **kwargs)
            monkeypatch.setattr(torch.Tensor, name, spy)
        return reads
    return start


def make_image_folder(root: Path, counts: dict[str, int], size=(40, 30), mode="RGB") -> Path:
    """root/<class>/<i>.jpg with ``counts[class]`` small images of distinct colours."""
    for c, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            colour = (40 * c + 20, 10 * i % 255, 200 - 40 * c)
            img = Image.new("RGB", size, colour)
            img = img.convert(mode) if mode != "RGB" else img
            img.save(root / name / f"{i}.{'png' if mode in ('RGBA', 'P', 'LA') else 'jpg'}")
    return root


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "imgs", {"cats": 3, "dogs": 2})


@pytest.fixture
def fake_root(tmp_path, monkeypatch) -> Path:
    """A tiny data root (hymenoptera_data with 3+3 train and 2+2 val pictures), set as TLCOURSE_DATA."""
    root = tmp_path / "fake-root"
    make_image_folder(root / "hymenoptera_data" / "train", {"ants": 3, "bees": 3})
    make_image_folder(root / "hymenoptera_data" / "val", {"ants": 2, "bees": 2})
    monkeypatch.setenv("TLCOURSE_DATA", str(root))
    return root


@pytest.fixture
def linked_root(tmp_path, monkeypatch) -> Path:
    """The real data root reached through a symlink (a classroom's /srv/course-data -> share)."""
    real = data_root()
    if not (real / "hymenoptera_data").is_dir():
        pytest.skip(f"no prepared data root at {real} (set TLCOURSE_DATA or run data_scripts/fetch_data.py)")
    link = tmp_path / "course-data-link"
    link.symlink_to(real.resolve(), target_is_directory=True)
    monkeypatch.setenv("TLCOURSE_DATA", str(link))
    return link


# --------------------------------------------------------------------------- browser
# Debian's Chromium, driven by Playwright (never a Playwright-downloaded browser). One instance per
# session: the lesson test (test_browser.py) and the site test (test_site.py) share it, since a second
# sync Playwright cannot start while the first runs.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright; skip with the reason if either is missing."""
    # CI installs both and sets TLCOURSE_REQUIRE_BROWSER=1, so there a missing browser fails.
    missing = pytest.fail if os.environ.get("TLCOURSE_REQUIRE_BROWSER") == "1" else pytest.skip
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright import sync_api
    except ImportError:
        missing("the playwright package is missing: pip install -r requirements.txt "
                "(never `playwright install`: the test uses Debian's Chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
