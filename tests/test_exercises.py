"""Graded exercises (issue 32): every "write the code" exercise is graded, its hidden solution
passes, its untouched stub reports "not attempted" without a trace, and the checker's machinery
works. The typical mistakes each grader catches are tested beside it, in
``tests/test_exercises_<lesson>.py``.
"""
from __future__ import annotations

import re

import pytest

from notebook_answers import NOTEBOOKS, answer, graded_cells, notebook
from tlcourse import exercises
from tlcourse.exercises.grading import grade

LESSONS = [p.name[:2] for p in NOTEBOOKS]
HEADING = re.compile(r"^###\s*Exercise\s+(\d+)\b.*write the code", re.M | re.I)


def write_the_code_exercises(lesson: str) -> list[str]:
    """The keys ``"NN.k"`` of the lesson's exercises whose heading says "write the code"."""
    md = "\n".join(c.source for c in notebook(lesson).cells if c.cell_type == "markdown")
    return [f"{lesson}.{n}" for n in HEADING.findall(md)]


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_write_the_code_exercise_is_graded_in_its_lesson(lesson):
    expected = write_the_code_exercises(lesson)
    assert expected, f"lesson {lesson} has no 'write the code' exercise"
    cells = graded_cells(lesson)
    assert sorted(cells) == sorted(expected), f"check calls {sorted(cells)}, 'write the code' exercises {expected}"
    registered = sorted(k for k in exercises.REGISTRY if k.startswith(lesson + "."))
    assert registered == sorted(expected), f"graders {registered}, exercises {expected}"
    for key, entry in cells.items():
        assert {"stub", "solution"} <= set(entry), f"exercise {key} needs a stub (tag exercise) and a solution cell"
        assert "elsewhere" not in entry, f"exercise {key} is checked outside its stub and solution cells"
        assert exercises.REGISTRY[key].name == entry["name"], (exercises.REGISTRY[key].name, entry["name"])
        stub = entry["stub"].source
        assert "NotImplementedError(" in stub, f"exercise {key}'s stub should raise NotImplementedError with a hint"
        assert stub.rstrip().endswith(f'exercises.check("{key}", {entry["name"]})'), \
            f"exercise {key}'s stub cell should end with its check call"


def _keys() -> list[str]:
    return sorted(k for lesson in LESSONS for k in write_the_code_exercises(lesson))


@pytest.mark.parametrize("key", _keys())
def test_the_hidden_solution_passes(key):
    verdict = grade(key, answer(key, "solution"))
    assert verdict.status == "passed", str(verdict)
    assert str(verdict).startswith(f"✔ Exercise {key}: ")


@pytest.mark.parametrize("key", _keys())
def test_the_untouched_stub_is_not_attempted_without_a_trace(key, capsys):
    exercises.check(key, answer(key, "stub"))
    out = capsys.readouterr().out
    assert out.startswith(f"○ Exercise {key}: not attempted yet"), out
    assert "Traceback" not in out and out.count("\n") == 1, out


def test_a_crash_in_the_answer_is_reported_with_the_learners_line():
    from tlcourse.exercises.grading import REGISTRY, grades

    @grades("99.9", "f")
    def _grader(answer):
        return f"{answer(1)}"

    namespace: dict = {}
    exec(compile("def f(x):\n    y = x + 1\n    return y / 0\n", "/tmp/ipykernel_1/cell.py", "exec"), namespace)
    try:
        verdict = grade("99.9", namespace["f"])
    finally:
        del REGISTRY["99.9"]
    assert verdict.status == "failed"
    assert verdict.message.startswith("your code raised ZeroDivisionError: division by zero (line 3"), verdict.message


def test_an_unknown_key_names_the_graded_ones():
    with pytest.raises(KeyError, match="00.5"):
        grade("42.1", print)


def test_grading_leaves_the_lessons_random_state_alone():
    import numpy as np
    import torch

    torch.manual_seed(1)
    np.random.seed(1)
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(1)
    np.random.seed(1)
    for key in _keys():
        grade(key, answer(key, "solution"))
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
