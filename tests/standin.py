"""Run a vision lesson the way a learner *online* runs it: ResNet-18, here with random weights.

CI uses EfficientNet-Lite0 because torchvision's ImageNet ResNet weights cannot be downloaded
here, but a learner with internet gets ResNet-18, and the lessons' core cells touch family-specific
names (``model.fc``, ``layer4``, 512 features). This runner builds a temporary data root that holds
the real datasets (symlinked) and, under torchvision's own file name in
``<root>/torch/hub/checkpoints/``, a *seeded random* ResNet-18 state dict, then executes the
notebook with ``TLCOURSE_BACKBONE=resnet18`` and reports, per code cell, whether it raised.

The contract (tests/test_resnet_standin.py): every cell that is not tagged ``check`` runs, and
every ``check`` cell fails with an ``AssertionError`` -- which also proves that the checks catch
random weights. A check that cannot depend on the weights carries the extra tag ``any-weights``
and must pass.

Example::

    .venv/bin/python tests/standin.py notebooks/02_fine_tuning.ipynb           # report
    .venv/bin/python tests/standin.py notebooks/02_fine_tuning.ipynb --profile quick
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "course-data"


@dataclass
class CellResult:
    index: int
    tags: list[str]
    first_line: str
    error: str | None  # "AssertionError: ..." or None

    @property
    def expected_to_fail(self) -> bool:
        return "check" in self.tags and "any-weights" not in self.tags

    @property
    def ok(self) -> bool:
        if self.expected_to_fail:
            return self.error is not None and self.error.startswith("AssertionError")
        return self.error is None


def make_standin_root(real_root: Path, target: Path, seed: int = 0) -> Path:
    """``target`` with the real datasets (symlinks) and a random ResNet-18 as its 'download'."""
    import torch
    import torchvision.models as tvm

    target.mkdir(parents=True, exist_ok=True)
    for entry in real_root.iterdir():
        if entry.name != "torch" and not (target / entry.name).exists():
            (target / entry.name).symlink_to(entry.resolve())
    url = tvm.ResNet18_Weights.DEFAULT.url
    weights = target / "torch" / "hub" / "checkpoints" / Path(url).name
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(tvm.resnet18(weights=None).state_dict(), weights)
    return target


def run_notebook(path: Path, root: Path, cache: Path, profile: str = "smoke",
                 timeout: int = 900) -> list[CellResult]:
    """Execute ``path`` in stand-in mode; one :class:`CellResult` per code cell."""
    import nbformat

    from tlcourse.infra.execute import execute

    os.environ.update(TLCOURSE_BACKBONE="resnet18", TLCOURSE_PROFILE=profile,
                      TLCOURSE_DATA=str(root), TLCOURSE_CACHE=str(cache))
    nb = nbformat.read(path, as_version=4)
    execute(nb, cwd=path.parent, timeout=timeout)
    results = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        error = f"{errors[0]['ename']}: {errors[0]['evalue']}"[:300] if errors else None
        results.append(CellResult(i, list(cell.metadata.get("tags", [])),
                                  cell.source.strip().splitlines()[0] if cell.source.strip() else "", error))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--profile", default="smoke", choices=["smoke", "quick", "full"])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TLCOURSE_DATA") or SHARED))
    parser.add_argument("--json", type=Path, help="write the per-cell results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tlcourse-standin-") as tmp:
        root = make_standin_root(args.data.resolve(), Path(tmp) / "data")
        report, bad = {}, 0
        for nb in args.notebooks:
            start = time.perf_counter()
            results = run_notebook(nb.resolve(), root, Path(tmp) / "cache", args.profile)
            seconds = time.perf_counter() - start
            report[nb.name] = {"seconds": round(seconds, 1), "cells": [asdict(r) for r in results]}
            wrong = [r for r in results if not r.ok]
            bad += len(wrong)
            checks = [r for r in results if r.expected_to_fail]
            print(f"{nb.name}: {len(results)} code cells in {seconds:.0f} s; "
                  f"{len(checks)} check cells expected to fail; {len(wrong)} cells not as expected")
            for r in wrong:
                want = "should FAIL with AssertionError" if r.expected_to_fail else "should run"
                print(f"  cell {r.index} {r.tags} {want}: {r.first_line!r} -> {r.error}")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
