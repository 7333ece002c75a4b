"""pyproject.toml lets ipywidgets be as old as 7.7: Colab ships 7.7.1, and upgrading it to 8.x
breaks Colab's widget manager (googlecolab/colabtools#4525). This runs the widget tests
against 7.7.1 in a fresh venv (an overlay of .venv with ipywidgets 8 hidden), so the floor is
a measured fact, not a hope. (Lesson 00 also runs under 7.7.1 in tests/test_colab_setup.py.)
In the Colab-versions venv (`make test-colab`, CI's last step), where ipywidgets already is 7.7.1,
the widget tests run on that venv's own interpreter instead: Colab's ipykernel, traitlets, Python.
"""
from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from overlay import make_overlay, pip_install

REPO = Path(__file__).resolve().parents[1]
FLOOR_TESTED = "7.7.1"
WIDGET_TESTS = ["tests/test_config_widgets.py", "tlcourse/widgets.py"]


def declared_floor() -> str:
    match = re.search(r'"ipywidgets>=([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert match, "pyproject.toml declares ipywidgets>=X.Y"
    return match[1]


def test_declared_floor_is_the_tested_one():
    floor = declared_floor()
    assert FLOOR_TESTED.startswith(floor + "."), f"pyproject says >= {floor}; this file tests {FLOOR_TESTED}"


@pytest.mark.slow
def test_widget_tests_pass_on_the_oldest_allowed_ipywidgets(tmp_path):
    if importlib.metadata.version("ipywidgets") == FLOOR_TESTED:   # already on the floor: Colab's venv
        python = Path(sys.executable)
    else:
        python = make_overlay(tmp_path / "venv", hide={"ipywidgets", "widgetsnbextension", "jupyterlab-widgets"})
        pip_install(python, f"ipywidgets=={FLOOR_TESTED}")
    result = subprocess.run(
        [str(python), "-c", "import ipywidgets, sys; print(ipywidgets.__version__); "
         "import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-o', 'addopts=', "
         f"'--doctest-modules', *{WIDGET_TESTS!r}]))"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    print(result.stdout[-1500:])
    assert result.stdout.startswith(FLOOR_TESTED + "\n"), result.stdout[:200] + result.stderr[-1000:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", result.stdout) and " failed" not in result.stdout
