"""The course's own exceptions: each message says what, where and what to do.

Example:
    >>> err = DataMissingError("hymenoptera", "/data/hymenoptera_data")
    >>> "fetch_data.py hymenoptera" in str(err)
    True
"""
from __future__ import annotations

from pathlib import Path

# The course's fetch command, as every message that says how to get data or weights types it.
FETCH_COMMAND = "python data_scripts/fetch_data.py"


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
