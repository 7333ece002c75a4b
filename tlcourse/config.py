"""Course-wide settings, all read from environment variables.

One variable per decision, so that a learner, an offline classroom and CI
can each point the same notebooks at their own set-up:

====================  ==========================================  =====================
variable              meaning                                     default
====================  ==========================================  =====================
``TLCOURSE_DATA``     data root: every dataset and weight file    ``~/.cache/tlcourse``
``TLCOURSE_CACHE``    writable cache (decoded images, results)    ``~/.cache/tlcourse/derived``
``TLCOURSE_PROFILE``  ``quick`` (CI, minutes) or ``full``         ``full``
``TLCOURSE_BACKBONE`` vision backbone of the lessons              ``resnet18``
``TLCOURSE_TEXT_MODEL`` text encoder (hub id or folder)           MiniLM-L6-v2
``TLCOURSE_LANG``     language of printed messages: ``en``, ``zh``  ``en``
====================  ==========================================  =====================

Example:
    >>> by_profile(quick=3, full=25, active="quick")
    3
    >>> profile() in PROFILES
    True
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

#: ``smoke`` exists for one CI test only (tests/test_resnet_standin.py): the smallest settings
#: that still run every cell, with results that mean nothing. Lessons give it with ``smoke=``.
PROFILES = ("quick", "full", "smoke")
DEFAULT_BACKBONE = "resnet18"
DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def data_root() -> Path:
    """The folder that holds every dataset and downloaded weight file.

    Made absolute but **not** resolved: a data root reached through a symlink
    (``/srv/course-data`` -> a mounted share) keeps the path the learner gave,
    so printed and stored paths match ``ImageFolder``'s and the learner's own.
    Only :mod:`tlcourse.infra.cache` resolves symlinks, for its keys.
    """
    env = os.environ.get("TLCOURSE_DATA")
    if env:
        return Path(os.path.abspath(Path(env).expanduser()))
    return Path.home() / ".cache" / "tlcourse"


def cache_dir() -> Path:
    """A writable folder for derived files (decoded images, features, results).

    Kept apart from the data root, which may be a read-only classroom copy:
    ``TLCOURSE_CACHE`` or ``~/.cache/tlcourse/derived``.
    """
    path = Path(os.environ.get("TLCOURSE_CACHE") or Path.home() / ".cache" / "tlcourse" / "derived")
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


LANGUAGES = ("en", "zh")


def language() -> str:
    """``'en'`` (the default) or ``'zh'`` (Simplified Chinese), from ``TLCOURSE_LANG``.

    The Chinese lessons (``notebooks/zh/``) set it in their set-up cell; ``zh-CN``, ``zh_CN`` and
    ``zh-Hans`` mean ``zh``. What it changes: :func:`tlcourse.i18n.tr`.

    >>> language() in LANGUAGES
    True
    """
    value = os.environ.get("TLCOURSE_LANG", "en").strip().lower().replace("_", "-") or "en"
    value = "zh" if value in ("zh-cn", "zh-hans", "zh-sg") else value
    if value not in LANGUAGES:
        raise ValueError(f"TLCOURSE_LANG={value!r} is not a course language; use one of {LANGUAGES}.")
    return value


def profile() -> str:
    """``'quick'`` or ``'full'`` (the default), from ``TLCOURSE_PROFILE``."""
    value = os.environ.get("TLCOURSE_PROFILE", "full").strip().lower()
    if value not in PROFILES:
        raise ValueError(
            f"TLCOURSE_PROFILE={value!r} is not a profile; use one of {PROFILES}."
        )
    return value


def by_profile(quick: _T, full: _T, active: str | None = None, smoke: _T | None = None) -> _T:
    """Pick the value for the active profile (or for ``active`` if given).

    ``smoke`` (CI's stand-in run only) falls back to ``quick`` when a lesson gives none.

    >>> by_profile(quick=1, full=2, active="full")
    2
    >>> by_profile(quick=1, full=2, active="smoke"), by_profile(quick=1, full=2, smoke=0, active="smoke")
    (1, 0)
    """
    active = active or profile()
    if active == "smoke":
        return quick if smoke is None else smoke
    return quick if active == "quick" else full


def backbone_name() -> str:
    """The vision backbone chosen by ``TLCOURSE_BACKBONE`` (CI: efficientnet_lite0)."""
    return os.environ.get("TLCOURSE_BACKBONE", DEFAULT_BACKBONE).strip()


def text_model_name() -> str:
    """The text encoder chosen by ``TLCOURSE_TEXT_MODEL`` (hub id or local folder)."""
    return os.environ.get("TLCOURSE_TEXT_MODEL", DEFAULT_TEXT_MODEL).strip()


def summary() -> str:
    """One line that a lesson prints so the learner sees its set-up.

    >>> "profile=" in summary()
    True
    """
    return (
        f"profile={profile()} | backbone={backbone_name()} | "
        f"text model={text_model_name()} | data root={data_root()}"
    )
