"""The course's own exceptions: each message says what, where and what to do.

Example:
    >>> err = DataMissingError("hymenoptera", "/data/hymenoptera_data")
    >>> f"{FETCH_COMMAND} hymenoptera --root /data" in str(err)
    True
"""
from __future__ import annotations

from pathlib import Path


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
