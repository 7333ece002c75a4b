"""Give every lesson its launch badges, its platform set-up cell, and Colab-collapsible solutions.

For each ``notebooks/NN_*.ipynb`` this writes, right after the title cell (which stays first):

1. a markdown cell (tag ``platform-badges``) with *Open in Colab*, *Binder* and *Kaggle*
   badges that open THAT lesson, built from README.md's ``REPO_URL:`` line (the one place
   the repository is named; ``tools/set_repo_url.py`` changes it);
2. a code cell (tag ``platform-setup``) that does nothing on your own machine and, on
   Colab or Kaggle, installs the course from the repository (a failed ``pip install`` shows
   pip's last lines and the command to retry, and stops the notebook there) and calls
   :func:`tlcourse.infra.cloud.setup` with the lesson's number (profile by runtime; the data that
   lesson loads, ``tlcourse-fetch --lesson NN``, listed in ``tlcourse/infra/fetch.py``'s ``LESSONS``:
   a lesson without an entry there stops this tool); on Binder it prints the
   shut-down-the-previous-kernel tip.

and marks every solution cell (tag ``solution``) as a Colab form cell: first line
``#@title Solution`` and metadata ``cellView: form``, so it is collapsed in Colab as
``jupyter.source_hidden`` collapses it in JupyterLab (both are kept).

Running it again changes nothing (``--check`` exits 1 and names the notebooks that are
out of date; ``tests/test_colab_setup.py`` runs it that way).

Examples:
    python tools/sync_setup_cells.py              # update notebooks/ in place
    python tools/sync_setup_cells.py --check      # CI: is every notebook in sync?
    python tools/sync_setup_cells.py --notebooks /tmp/copy   # work on copies
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout, the course installed or not
from tlcourse.infra.fetch import LESSONS, lesson_key  # noqa: E402
BRANCH = "main"
BADGES_TAG, SETUP_TAG, SOLUTION_TAG = "platform-badges", "platform-setup", "solution"
FORM_TITLE = "#@title Solution"

BADGES = """\
[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) \
[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder}) \
[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({kaggle})

*Run it in the cloud:* the next cell installs the course and its data on Colab and Kaggle
(Kaggle: switch *Internet* on in the notebook's settings) and does nothing on your own machine."""

SETUP = """\
# Platform set-up: on Colab or Kaggle this installs the course and fetches this lesson's data (a few
# minutes, once per session; the quick profile on a CPU runtime, full on a GPU). On Binder it prints a
# tip; on your own machine it does nothing. Written by tools/sync_setup_cells.py: edit it there.
import importlib.util
import os
import subprocess
import sys

hosted = "google.colab" in sys.modules or "KAGGLE_KERNEL_RUN_TYPE" in os.environ
if hosted and importlib.util.find_spec("tlcourse") is None:
    source = os.environ.get("TLCOURSE_INSTALL_FROM", "git+{repo_url}")
    print(f"Installing the course: pip install {{source}} (a minute or two)", flush=True)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", source],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if pip.stdout.strip():  # pip's warnings; after a failure, its error
        print("\\n".join(pip.stdout.splitlines()[-40:]))
    if pip.returncode:
        raise RuntimeError(f"pip install {{source}} failed (exit {{pip.returncode}}, its last lines are above). "
                           "Fix what they say (Kaggle: is Internet on?), then run this cell again, or "
                           f"install it in a cell: %pip install {{source}}")
    importlib.invalidate_caches()
from tlcourse.infra import cloud

cloud.setup("{lesson}")  # what lesson {lesson} loads (tlcourse-fetch --lesson {lesson})"""


def repo_url(readme: Path = REPO / "README.md") -> str:
    """``https://github.com/<owner>/<name>`` from README.md's ``REPO_URL:`` line."""
    match = re.search(r"REPO_URL:\s*(https://github\.com/[\w.-]+/[\w.-]+?)/?\s", readme.read_text())
    if not match:
        raise SystemExit(f"{readme} has no `REPO_URL: https://github.com/<owner>/<repo>` line")
    return match[1]


def launch_links(url: str, notebook: str) -> dict[str, str]:
    """Colab, Binder and Kaggle links that open ``notebooks/<notebook>`` of the repository ``url``.

    >>> launch_links("https://github.com/a/b", "00_x.ipynb")["binder"]
    'https://mybinder.org/v2/gh/a/b/HEAD?urlpath=lab/tree/notebooks/00_x.ipynb'
    """
    owner_name = url.removeprefix("https://github.com/")
    blob = f"{url}/blob/{BRANCH}/notebooks/{notebook}"
    return {
        "colab": f"https://colab.research.google.com/github/{owner_name}/blob/{BRANCH}/notebooks/{notebook}",
        "binder": f"https://mybinder.org/v2/gh/{owner_name}/HEAD?urlpath=lab/tree/notebooks/{notebook}",
        "kaggle": f"https://kaggle.com/kernels/welcome?src={blob}",
    }


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def as_form(cell) -> bool:
    """Make a solution cell a Colab form cell (collapsed there); True if it changed."""
    source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
    changed = False
    if not source.lstrip().startswith("#@title"):
        cell.source = f"{FORM_TITLE}\n{source}"
        changed = True
    if cell.metadata.get("cellView") != "form":
        cell.metadata["cellView"] = "form"
        changed = True
    jupyter = cell.metadata.setdefault("jupyter", {})
    if not jupyter.get("source_hidden"):
        jupyter["source_hidden"] = True
        changed = True
    return changed


def setup_source(url: str, name: str) -> str:
    """The set-up cell of the lesson ``name`` (``NN_*.ipynb``): it fetches what ``LESSONS[NN]`` lists.

    >>> setup_source("https://github.com/a/b", "04_text.ipynb").splitlines()[-1]
    'cloud.setup("04")  # what lesson 04 loads (tlcourse-fetch --lesson 04)'
    """
    lesson = lesson_key(name)
    if lesson not in LESSONS:
        raise SystemExit(f"{name}: lesson {lesson} has no entry in LESSONS (tlcourse/infra/fetch.py), so its set-up "
                         "cell would not know what to fetch: add the datasets its code loads there")
    return SETUP.format(repo_url=url, lesson=lesson)


def synced(text: str, name: str, url: str) -> str:
    """The notebook ``text`` (file ``name``) with badges, set-up cell and form solutions in place."""
    nb = nbformat.reads(text, as_version=4)
    links = launch_links(url, name)
    badges = nbformat.v4.new_markdown_cell(BADGES.format(**links), metadata={"tags": [BADGES_TAG]})
    setup = nbformat.v4.new_code_cell(setup_source(url, name), metadata={"tags": [SETUP_TAG]})
    badges.id, setup.id = BADGES_TAG, SETUP_TAG
    rest = [c for c in nb.cells if not ({BADGES_TAG, SETUP_TAG} & set(tags(c)))]
    if not rest or rest[0].cell_type != "markdown":
        raise SystemExit(f"{name}: the first cell must be the lesson's title (markdown)")
    for cell in rest:
        if cell.cell_type == "code" and SOLUTION_TAG in tags(cell):
            as_form(cell)
    nb.cells = [rest[0], badges, setup, *rest[1:]]
    return nbformat.writes(nb) + "\n"


def sync(path: Path, url: str) -> bool:
    """Bring one notebook in line; write it only if something changed. Returns whether it did."""
    original = path.read_text(encoding="utf-8")
    text = synced(original, path.name, url)
    if text != original:
        path.write_text(text, encoding="utf-8")
    return text != original


def out_of_date(folder: Path, url: str) -> list[Path]:
    """The notebooks in ``folder`` that :func:`sync` would change (nothing is written)."""
    return [path for path in sorted(folder.glob("[0-9][0-9]_*.ipynb"))
            if synced(path.read_text(encoding="utf-8"), path.name, url) != path.read_text(encoding="utf-8")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    parser.add_argument("--notebooks", type=Path, default=REPO / "notebooks", help="the lessons' folder")
    args = parser.parse_args(argv)
    url = repo_url()
    paths = sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise SystemExit(f"no lesson notebooks (NN_*.ipynb) in {args.notebooks}")
    if args.check:
        stale = out_of_date(args.notebooks, url)
        for path in stale:
            print(f"out of date: {path} (run: python tools/sync_setup_cells.py)")
        return 1 if stale else 0
    for path in paths:
        print(f"{'updated' if sync(path, url) else 'in sync'}: {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
