"""Grading a learner's answer to a "write the code" exercise: run it on small cases, say what is wrong.

Each lesson's exercise cell holds a stub the learner fills in and one check call::

    def freeze_all_but_last_block(net, spec):
        raise NotImplementedError("freeze everything, then unfreeze spec.blocks[-1] and the head")

    exercises.check("00.5", freeze_all_but_last_block)

A grader (one per exercise, in the lesson's module of this package, registered with
:func:`grades`) calls the answer on small, fast cases it builds itself (a random ResNet, a batch of
noise, a temporary folder: no data, no download) and either returns what it verified or raises
:class:`Wrong` with the first concrete difference, written for the learner. It checks behaviour,
not text: any correct answer passes. :func:`grade` turns that into a :class:`Verdict`:

- ``passed``: ✔ and what was verified;
- ``failed``: ✘ and the difference; an exception in the learner's code is reported by its type,
  message and the learner's line, without a traceback;
- ``not attempted``: the stub still raises ``NotImplementedError``; a lesson run top to bottom
  with untouched stubs goes on (the check cells at the end never look at exercises).

Grading runs under :func:`tlcourse.infra.cache.rng_neutral`: the grader's cases are the same on
every run, and the lesson's random state after a check call is the one before it, so checking an
exercise never changes a number the lesson prints later.

Example:
    >>> @grades("99.1", "double")
    ... def _double(answer):
    ...     if answer(2) != 4:
    ...         raise Wrong(f"double(2) returned {answer(2)!r}, expected 4")
    ...     return "double(2) == 4"
    >>> grade("99.1", lambda x: 2 * x).status
    'passed'
    >>> print(grade("99.1", lambda x: x + 1))
    ✘ Exercise 99.1: double(2) returned 3, expected 4
    >>> def double(x):
    ...     raise NotImplementedError("multiply by two")
    >>> print(grade("99.1", double))
    ○ Exercise 99.1: not attempted yet. Write `double` and run the cell again. Hint: multiply by two
    >>> del REGISTRY["99.1"]
"""
from __future__ import annotations

import contextlib
import linecache
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..i18n import tr
from ..infra.cache import rng_neutral

Status = Literal["passed", "failed", "not attempted"]
SYMBOL: dict[str, str] = {"passed": "✔", "failed": "✘", "not attempted": "○"}
PACKAGE_DIR = Path(__file__).resolve().parents[1]


class Wrong(Exception):
    """The answer does not do what the exercise asks; the message says how, for the learner."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``status``, and ``message`` (what was verified, or what differs)."""

    key: str
    status: Status
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        return f"{SYMBOL[self.status]} " + tr("Exercise {key}: {message}", key=self.key, message=self.message)


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: its key ``"NN.k"`` (lesson, exercise number), the name the lesson's stub
    defines, and the grader that runs an answer and returns what it verified."""

    key: str
    name: str
    grader: Callable[[Any], str]


REGISTRY: dict[str, Exercise] = {}


def grades(key: str, name: str) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
    """Register the decorated function as the grader of exercise ``key`` (whose stub is ``name``)."""
    def register(grader: Callable[[Any], str]) -> Callable[[Any], str]:
        if key in REGISTRY and REGISTRY[key].grader.__qualname__ != grader.__qualname__:
            raise ValueError(f"exercise {key} has two graders")
        REGISTRY[key] = Exercise(key, name, grader)
        return grader
    return register


def _learner_line(err: BaseException) -> str:
    """Where in the learner's code ``err`` was raised: the last frame outside tlcourse, Python and
    its libraries (a notebook cell), as ``" (line 4: x = net.fc)"``; empty when there is none."""
    library_roots = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    where = ""
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        filename = frame.f_code.co_filename
        resolved = str(Path(filename).resolve()) if not filename.startswith("<") else filename
        if resolved.startswith(str(PACKAGE_DIR)) or resolved.startswith(library_roots):
            continue
        code = linecache.getline(filename, lineno, frame.f_globals).strip()
        where = f" (line {lineno}: {code})" if code else f" (line {lineno})"
    return where


def _crash(err: Exception) -> str:
    return tr("your code raised {error}", error=f"{type(err).__name__}: {err}{_learner_line(err)}")


@contextlib.contextmanager
def case(description: str) -> Iterator[None]:
    """Name the case a grader is trying, in front of any difference or crash found inside it:
    ``with case("on a random EfficientNet-Lite0"):`` turns "fc.weight is frozen" into
    "on a random EfficientNet-Lite0: fc.weight is frozen". ``NotImplementedError`` passes through
    (the stub is still there)."""
    try:
        yield
    except (NotImplementedError, Wrong) as err:
        if isinstance(err, NotImplementedError):
            raise
        raise Wrong(f"{tr(description)}: {err}") from None
    except Exception as err:
        raise Wrong(f"{tr(description)}: {_crash(err)}") from None


def grade(key: str, answer: Any) -> Verdict:
    """Run exercise ``key``'s grader on ``answer`` and return the verdict (nothing printed).

    ``answer`` is what the learner wrote: usually a function, sometimes a class or a value. A stub
    (it raises ``NotImplementedError``; or ``None`` / ``...``) is "not attempted".
    """
    if key not in REGISTRY:
        raise KeyError(f"no graded exercise {key!r}; the graded ones are {', '.join(sorted(REGISTRY))}")
    exercise = REGISTRY[key]
    not_yet = tr("not attempted yet. Write `{name}` and run the cell again.", name=exercise.name)
    if answer is None or answer is Ellipsis:
        return Verdict(key, "not attempted", not_yet)
    try:
        with rng_neutral(0):
            verified = exercise.grader(answer)
    except NotImplementedError as err:
        hint = " " + tr("Hint: {hint}", hint=err) if str(err) else ""
        return Verdict(key, "not attempted", not_yet + hint)
    except Wrong as err:
        return Verdict(key, "failed", str(err))
    except Exception as err:  # the learner's code crashed: say what and where, no traceback
        return Verdict(key, "failed", _crash(err))
    return Verdict(key, "passed", verified)


def check(key: str, answer: Any) -> None:
    """Grade ``answer`` and print the verdict: ✔ what was verified, ✘ the first difference, or
    ○ not attempted. Never raises for a wrong answer, so a lesson runs on with any answer."""
    print(grade(key, answer))
