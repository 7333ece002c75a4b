"""Graders of lesson text_classification's exercises (see :mod:`tlcourse.exercises.grading`)."""
from __future__ import annotations

from .grading import Wrong, case, grades  # noqa: F401
