"""The course's own exceptions, and the one range check every setting goes through.

Each message says what, where and what to do. :func:`check_range` is how a widget's knob and a
function's argument are validated alike (it needs no ipywidgets).

Example:
    >>> err = DataMissingError("hymenoptera", "/data/hymenoptera_data")
    >>> f"{FETCH_COMMAND} hymenoptera --root /data" in str(err)
    True
    >>> check_range("epochs", 3, 1, 50, kind=int)
    3
"""
from __future__ import annotations

import math
from numbers import Real
from pathlib import Path
from typing import Any


def fetch_command(package: Path = Path(__file__).resolve().parent) -> str:
    """The course's fetch command as the learner can type it where this package runs.

    Installed by pip (Colab, Kaggle, Binder, ``pip install git+...``): its console script,
    ``tlcourse-fetch``. Run from a checkout (``data_scripts/`` beside the package: ``make start``
    and the tests): ``python data_scripts/fetch_data.py``, the same tool, as ``make data`` runs it.

    >>> fetch_command(Path("/usr/lib/python3/site-packages/tlcourse"))
    'tlcourse-fetch'
    """
    in_checkout = (package.parent / "data_scripts" / "fetch_data.py").is_file()
    return "python data_scripts/fetch_data.py" if in_checkout else "tlcourse-fetch"


# As every message that says how to get data or weights types it.
FETCH_COMMAND = fetch_command()


class CourseError(Exception):
    """Base class: a problem the learner can fix, with the fix in the message."""


class DataMissingError(CourseError, FileNotFoundError):
    """A dataset is not in the data root."""

    def __init__(
        self, name: str, looked_in: str | Path, detail: str = "", root: str | Path | None = None
    ) -> None:
        self.name, self.looked_in = name, Path(looked_in)
        root = Path(root) if root else self.looked_in.parent
        msg = (
            f"Dataset '{name}' is missing: looked in {self.looked_in}"
            + (f" ({detail})" if detail else "")
            + f".\nFetch it with:  {FETCH_COMMAND} "
            + f"{name} --root {root}\n"
            "or point TLCOURSE_DATA at a prepared data root that has it "
            "(offline classrooms: --from-folder PATH copies a prepared copy)."
        )
        super().__init__(msg)


class ModelUnavailableError(CourseError, RuntimeError):
    """Pretrained weights cannot be found locally nor downloaded."""


class ChecksumError(CourseError, ValueError):
    """A file's checksum does not match the registry."""


class InvalidSettingError(CourseError, ValueError):
    """A setting (a widget's knob or a function's argument) is out of range or of the wrong type."""


def check_range(name: str, value: Any, low: Real, high: Real, kind: type = float) -> Any:
    """Return ``value`` if it is a number of ``kind`` in [low, high], else a clear error."""
    if isinstance(value, bool) or not isinstance(value, Real) or (kind is int and not float(value).is_integer()):
        raise InvalidSettingError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                                  f"got {value!r} ({type(value).__name__}).")
    if not low <= value <= high or (isinstance(value, float) and math.isnan(value)):
        raise InvalidSettingError(f"{name}={value!r} is out of range: choose a value in [{low}, {high}].")
    return kind(value)
