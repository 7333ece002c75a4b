"""Hosted notebooks (Colab, Kaggle, Binder): what each lesson's platform set-up cell does.

Every lesson's second code cell (written by ``tools/sync_setup_cells.py``) installs the
course on Colab or Kaggle if it is missing (a failed ``pip install`` shows pip's last lines
and the command to retry, and stops there), then calls :func:`setup` with the lesson's number:

* **Colab / Kaggle**: picks the profile (``quick`` on a CPU runtime, ``full`` on a GPU;
  an explicit ``TLCOURSE_PROFILE`` wins), then fetches what *this lesson* loads with the
  course's fetch command (``tlcourse-fetch --lesson NN``: its datasets, the text model for
  lesson 04, the ResNet weights where it builds the image backbone; :data:`tlcourse.infra.fetch.LESSONS`),
  so that a host that cannot be reached stops only the lessons that need its data: a few
  minutes the first time in a session, seconds after. ``TLCOURSE_FETCH_FROM=DIR`` copies a
  prepared data root instead of downloading (tests, classrooms).
* **Binder**: reminds the learner that the session's 1-2 GB of memory is shared by every
  open kernel (shut the previous lesson's down).
* **anywhere else** (your laptop, a JupyterHub): nothing.

Example:
    >>> platform(environ={})
    'local'
    >>> platform(environ={"KAGGLE_KERNEL_RUN_TYPE": "Interactive"})
    'kaggle'
    >>> profile_for(gpu=False, environ={})
    'quick'
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from . import fetch
from .. import config
from ..errors import FETCH_COMMAND

BINDER_TIP = ("On Binder every open notebook keeps its kernel, and all of them share 1-2 GB of memory: "
              "shut down the previous lesson's kernel first (Kernel → Shut Down Kernel there, or the "
              "Running Terminals and Kernels tab ■ on the left), or this one may die.")


def platform(environ: Mapping[str, str] | None = None, modules: Mapping | None = None) -> str:
    """``'colab'``, ``'kaggle'``, ``'binder'`` or ``'local'``."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if "google.colab" in modules or "COLAB_RELEASE_TAG" in environ:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in environ or "KAGGLE_URL_BASE" in environ:
        return "kaggle"
    if environ.get("TLCOURSE_PLATFORM") == "binder" or "BINDER_LAUNCH_HOST" in environ:
        return "binder"
    return "local"


def profile_for(gpu: bool, environ: Mapping[str, str] | None = None) -> str:
    """The profile for a hosted runtime: ``TLCOURSE_PROFILE`` if set, else full on a GPU, quick on a CPU.

    >>> profile_for(gpu=True, environ={})
    'full'
    >>> profile_for(gpu=True, environ={"TLCOURSE_PROFILE": "quick"})
    'quick'
    """
    environ = os.environ if environ is None else environ
    return environ.get("TLCOURSE_PROFILE") or ("full" if gpu else "quick")


def fetch_args(lesson: str | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The fetch command's arguments for ``lesson`` (copied from ``TLCOURSE_FETCH_FROM`` if set).

    Everything (``--all``) only when no lesson is named or this version of the course does not
    know it (a notebook newer than the installed course).

    >>> fetch_args("06", environ={"TLCOURSE_FETCH_FROM": "/mnt/data"})
    ['--lesson', '06', '--from-folder', '/mnt/data']
    >>> fetch_args(None, environ={}) == fetch_args("99", environ={}) == ['--all', '--weights', 'auto']
    True
    """
    environ = os.environ if environ is None else environ
    source = environ.get("TLCOURSE_FETCH_FROM")
    try:
        key = None if lesson is None else fetch.lesson_key(lesson)
    except ValueError:
        key = None
    what = ["--lesson", key] if key in fetch.LESSONS else ["--all", "--weights", "auto"]
    return what + (["--from-folder", source] if source else [])


def lesson_items(lesson: str) -> str:
    """What ``tlcourse-fetch --lesson`` brings for ``lesson``, in words.

    >>> lesson_items("04")
    'sst2, the text model'
    >>> print(lesson_items("07"))
    hymenoptera, mnist, the image backbone's weights
    """
    needs = fetch.LESSONS[fetch.lesson_key(lesson)]
    extra = (["the text model"] if set(needs.datasets) & set(fetch.TEXT_DATASETS) else []) + (
        ["the image backbone's weights"] if needs.image_weights else [])
    return ", ".join([*needs.datasets, *extra])


def setup(lesson: str | None = None) -> str:
    """Prepare a hosted runtime for ``lesson`` (its number; see the module docstring); return the platform."""
    where = platform()
    if where == "binder":
        print(BINDER_TIP)
    if where not in ("colab", "kaggle"):
        return where
    import torch

    gpu = torch.cuda.is_available()
    os.environ["TLCOURSE_PROFILE"] = profile_for(gpu)
    print(f"{where.capitalize()}: {'a GPU' if gpu else 'a CPU-only'} runtime, so the "
          f"{os.environ['TLCOURSE_PROFILE']} profile"
          + ("" if gpu else " (Runtime → Change runtime type → GPU gives the full one)") + ".")
    args = fetch_args(lesson)
    if "--lesson" in args:
        print(f"Fetching what lesson {args[1]} uses ({lesson_items(args[1])}): {FETCH_COMMAND} {' '.join(args)}",
              flush=True)
    else:
        print(("" if lesson is None else f"Lesson {lesson} is not in this version's list (infra.fetch.LESSONS), "
               "so everything is fetched. ") + f"Fetching the course's data: {FETCH_COMMAND} " + " ".join(args),
              flush=True)
    if fetch.main(args) != 0:
        raise RuntimeError(f"This lesson's data could not all be fetched (see the lines above); it needs it. "
                           f"Run this cell again to resume (what arrived is kept), or in a cell: "
                           f"!{FETCH_COMMAND} {' '.join(args)}")
    if config.language() == "zh":
        install_cjk_font()
    return where


def install_cjk_font() -> None:
    """The Chinese edition on Colab or Kaggle: a font with Chinese glyphs for the plots (Debian's and
    Ubuntu's ``fonts-noto-cjk``, a minute), unless one is there; a failure is said, not raised."""
    from .. import i18n

    if i18n.cjk_font():
        return
    print("中文版: installing a Chinese font for the plots: apt-get install fonts-noto-cjk", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    done = subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "fonts-noto-cjk"], capture_output=True, text=True)
    if done.returncode or not i18n.cjk_font():
        print(f"Could not install it ({(done.stderr or done.stdout).strip()[-300:]}). {i18n.NO_FONT}")
