"""Hosted notebooks (Colab, Kaggle, Binder): what each lesson's platform set-up cell does.

Every lesson's second code cell (written by ``tools/sync_setup_cells.py``) installs the
course on Colab or Kaggle if it is missing, then calls :func:`setup`:

* **Colab / Kaggle**: picks the profile (``quick`` on a CPU runtime, ``full`` on a GPU;
  an explicit ``TLCOURSE_PROFILE`` wins), then fetches the datasets, the text model and
  the ResNet weights with the course's fetch command (``tlcourse-fetch --all``): a few
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
import sys
from collections.abc import Mapping

from . import fetch

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


def fetch_args(environ: Mapping[str, str] | None = None) -> list[str]:
    """The fetch command's arguments: everything, copied from ``TLCOURSE_FETCH_FROM`` if set.

    >>> fetch_args(environ={"TLCOURSE_FETCH_FROM": "/mnt/data"})
    ['--all', '--weights', 'auto', '--from-folder', '/mnt/data']
    """
    environ = os.environ if environ is None else environ
    source = environ.get("TLCOURSE_FETCH_FROM")
    return ["--all", "--weights", "auto"] + (["--from-folder", source] if source else [])


def setup() -> str:
    """Prepare a hosted runtime for a lesson (see the module docstring); return the platform."""
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
    args = fetch_args()
    print("Fetching the course's data: tlcourse-fetch " + " ".join(args), flush=True)
    if fetch.main(args) != 0:
        raise RuntimeError("The data could not all be fetched (see the lines above); the lessons need it. "
                           "Run this cell again to resume.")
    return where
