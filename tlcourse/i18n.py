"""The language of what the course prints: English, or Simplified Chinese in the Chinese edition.

Every learner-facing message the package prints (the exercise checks, the decision guide, the
widgets' buttons and status lines, plot titles and axis labels) goes through :func:`tr`. The
English text is the key; ``tlcourse/locale/zh.json`` maps it to its translation (a reviewable
file, one ``"English": "中文"`` pair per line). ``TLCOURSE_LANG=zh`` (see
:func:`tlcourse.config.language`; the Chinese lessons' set-up cell sets it) selects Chinese.
``tests/test_translations.py`` fails when a message has no translation, when a translation's
English text is no longer used (the English changed: translate it again), or when the two
disagree on their ``{placeholders}``.

Example:
    >>> import os
    >>> os.environ["TLCOURSE_LANG"] = "zh"
    >>> tr("epoch")
    '轮次'
    >>> _ = os.environ.pop("TLCOURSE_LANG")
    >>> tr("your code raised {error}", error="KeyError: 'x'")
    "your code raised KeyError: 'x'"
"""
from __future__ import annotations

import functools
import json
import re
import sys
import warnings
from pathlib import Path

from . import config

LOCALE = Path(__file__).resolve().parent / "locale"
#: Fonts with Simplified Chinese glyphs, best first: Debian/Ubuntu/Colab/Kaggle (fonts-noto-cjk,
#: fonts-wqy-microhei), Adobe's, macOS, Windows.
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "WenQuanYi Micro Hei",
                "WenQuanYi Zen Hei", "PingFang SC", "Heiti SC", "Microsoft YaHei", "SimHei")
NO_FONT = ("No font with Chinese glyphs was found, so Chinese plot labels would show as boxes. Install one "
           "and restart the kernel: Debian/Ubuntu/Colab/Kaggle `apt-get install fonts-noto-cjk`; macOS has "
           "PingFang SC; Windows has Microsoft YaHei; or set TLCOURSE_LANG=en.")


@functools.cache
def catalog(language: str) -> dict[str, str]:
    """Every translation into ``language`` (``{}`` for English, the source language)."""
    if language == "en":
        return {}
    return json.loads((LOCALE / f"{language}.json").read_text(encoding="utf-8"))


def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs that matplotlib can use, or None.

    Fonts installed after matplotlib built its font list (``apt-get`` in a running Colab session)
    are added from the system's font folders.
    """
    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((family for family in CJK_FAMILIES if family in names), None)

    if (found := known()) is None:
        for path in font_manager.findSystemFonts():
            if re.search(r"cjk|sourcehan|wqy|wenquan|yahei|msyh|simhei|pingfang", Path(path).name, re.I):
                try:
                    font_manager.fontManager.addfont(path)
                except Exception:  # an unreadable font file: skip it
                    continue
        found = known()
    return found


@functools.cache
def use_language_font(language: str) -> str | None:
    """Make matplotlib draw ``language``'s text: for ``zh``, put a Chinese font first (once per
    process) and return its name; warn, saying how to install one, when there is none."""
    if language != "zh":
        return None
    import matplotlib as mpl

    family = cjk_font()
    if family is None:
        warnings.warn(NO_FONT, stacklevel=3)
        return None
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["font.sans-serif"] = [family, *[f for f in mpl.rcParams["font.sans-serif"] if f != family]]
    mpl.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack U+2212, the minus sign matplotlib uses
    return family


def N_(text: str) -> str:
    """Mark ``text`` as a message that :func:`tr` will translate later (it is returned as it is).

    For messages kept in tables and translated where they are printed (the decision guide's
    advice): the tests read the marked texts from the source like those passed to :func:`tr`.
    """
    return text


def tr(text: str, /, **values: object) -> str:
    """``text`` in the course's current language, with ``{name}`` placeholders filled from ``values``.

    A message missing from the catalog is printed in English (the tests keep the catalog complete).
    """
    language = config.language()
    if language != "en" and "matplotlib" in sys.modules:  # the text may be drawn: a font for it first
        use_language_font(language)
    translated = catalog(language).get(text, text)
    return translated.format(**values) if values else translated
