"""The path a learner *online* takes: every vision lesson runs with ResNet-18.

CI's lessons use EfficientNet-Lite0 (torchvision's ResNet weights cannot be had here), so this
test runs each vision lesson with ``TLCOURSE_BACKBONE=resnet18`` and a seeded random ResNet-18
state dict under torchvision's file name (see ``tests/standin.py``), in the ``smoke`` profile
(the smallest settings that still run every cell). It asserts that every cell runs except the
``check`` cells, and that every ``check`` cell fails with an ``AssertionError``: the checks
catch random weights. Checks tagged ``any-weights`` (toy problems) must pass.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import data_root

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
#: The lessons that load the pretrained vision backbone (kept true by the test below).
VISION_LESSONS = ["00", "01", "02", "03", "05", "07", "08"]


def lesson(prefix: str) -> Path:
    return next(NOTEBOOKS.glob(f"{prefix}_*.ipynb"))


def test_every_lesson_that_loads_the_backbone_is_covered():
    uses_backbone = sorted(p.name[:2] for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
                           if re.search(r"backbones\.(get_spec|build)\(", p.read_text()))
    assert uses_backbone == VISION_LESSONS


@pytest.mark.slow
@pytest.mark.parametrize("prefix", VISION_LESSONS)
def test_lesson_runs_with_resnet18_and_its_checks_catch_random_weights(prefix, tmp_path):
    if not (data_root() / "hymenoptera_data").is_dir():
        pytest.skip(f"no prepared data root at {data_root()}")
    report = tmp_path / "report.json"
    run = subprocess.run([sys.executable, str(REPO / "tests" / "standin.py"), str(lesson(prefix)),
                          "--data", str(data_root()), "--json", str(report)],
                         capture_output=True, text=True, cwd=REPO)
    print(run.stdout[-4000:], run.stderr[-2000:])
    cells = next(iter(json.loads(report.read_text()).values()))["cells"]
    checks = [c for c in cells if "check" in c["tags"] and "any-weights" not in c["tags"]]
    assert checks, "a vision lesson has check cells that depend on the pretrained weights"
    assert run.returncode == 0, f"cells not as expected with ResNet-18 stand-in weights:\n{run.stdout[-3000:]}"
