"""tools/platform_env.py's verdicts (CI's Colab-versions step), without building its 6 GB venv.

What decides whether CI passes: which lessons run (every notebooks/NN_*.ipynb, renumbered or new)
and which errors fail a lesson (only a ``check`` cell's AssertionError in the smoke profile is
expected). The run itself is `make test-colab`, CI's last step.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import platform_env  # noqa: E402


def error(tags, ename="AssertionError", cell=3):
    return {"code_cell": cell, "tags": tags, "ename": ename, "evalue": "x", "source": ""}


def test_every_numbered_lesson_is_run_and_lessons_pick_by_prefix():
    every = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb") if re.match(r"\d\d_", p.name))
    assert [p.name for p in platform_env.lessons([])] == every and len(every) >= 8
    assert [p.name[:2] for p in platform_env.lessons(["00", "04"])] == ["00", "04"]


@pytest.mark.parametrize("errors, profile, fails", [
    ([], "smoke", False),
    ([error(["check"])], "smoke", False),                       # smoke results mean nothing
    ([error(["check"])], "quick", True),                        # ... but quick ones do
    ([error(["check"], ename="RuntimeError")], "smoke", True),  # a check that crashed
    ([error(["core"])], "smoke", True),                         # an assertion outside a check
])
def test_only_a_check_cell_assertion_in_smoke_is_expected(errors, profile, fails):
    result = {"cells": 5, "ran": 5, "errors": errors, "crash": None}
    assert bool(platform_env.verdict(result, profile, 0)) is fails


def test_a_cell_that_did_not_run_a_dead_kernel_or_a_failed_runner_fails():
    assert platform_env.verdict({"cells": 5, "ran": 4, "errors": [], "crash": None}, "smoke", 0)
    assert platform_env.verdict({"cells": 5, "ran": 5, "errors": [], "crash": "DeadKernelError: x"}, "smoke", 0)
    assert platform_env.verdict({"cells": 5, "ran": 5, "errors": [], "crash": None}, "smoke", 1)


def test_one_line_per_lesson():
    result = {"cells": 5, "ran": 5, "errors": [error(["check"])], "crash": None}
    line = platform_env.summary("00_concepts.ipynb", result, 12.3, 20.1, [], "smoke")
    assert "\n" not in line and " ok " in line and "5/5 cells" in line and "1 check(s) failed" in line


def test_ci_runs_the_colab_step_with_the_widget_tests():
    assert "make test-colab" in (REPO / ".ci" / "run").read_text()
    target = (REPO / "Makefile").read_text().split("\ntest-colab:")[1].split("\n\n")[0]
    assert "platform_env.py build" in target and "platform_env.py widgets" in target
    assert "platform_env.py run" in target
