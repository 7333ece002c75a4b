"""The dataset registry: checksums that can be traced, clear errors, a CLI that respects a read-only root."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlcourse.infra import download as dl
from tlcourse.errors import DataMissingError
from tlcourse.infra.registry import DATASETS, MANIFEST_DIR, require

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "course-data"
FETCH = REPO / "data_scripts" / "fetch_data.py"
HEX = {"md5": re.compile(r"[0-9a-f]{32}"), "sha256": re.compile(r"[0-9a-f]{64}")}


def torchvision_source(rel: str) -> str:
    """A torchvision source file's text, read without importing torchvision (seconds saved)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.origin:
        pytest.skip("torchvision is not installed")
    return (Path(spec.origin).parent / rel).read_text()


def needs_shared() -> Path:
    if not (SHARED / "SHA256SUMS").is_file():
        pytest.skip(f"no prepared data root at {SHARED}")
    return SHARED


# --------------------------------------------------------------------------- the registry itself
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_can_be_checked(name):
    """Each download has a traceable checksum, or its content is checked by a manifest."""
    spec = DATASETS[name]
    assert spec.downloads and spec.integrity
    for item in spec.downloads:
        assert item.url.startswith("https://") and item.checksum_source
        for algo in ("md5", "sha256"):
            value = getattr(item, algo)
            assert value is None or HEX[algo].fullmatch(value), f"{item.filename}: bad {algo}"
        assert item.md5 or item.sha256 or spec.manifest, f"{item.filename} would go unchecked"
    optional_files = {d.filename for d in spec.downloads if d.optional}
    assert optional_files <= set(spec.optional)
    assert not set(spec.optional) & set(spec.required)


def test_mnist_and_usps_checksums_are_torchvisions():
    mnist, usps = torchvision_source("datasets/mnist.py"), torchvision_source("datasets/usps.py")
    for item in DATASETS["mnist"].downloads:
        assert f'("{item.filename}", "{item.md5}")' in mnist
        assert item.url.startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")
    for item in DATASETS["usps"].downloads:
        assert f'"{item.url}",\n            "{item.filename}",\n            "{item.md5}"' in usps


def test_weight_urls_are_torchvisions():
    resnet = torchvision_source("models/resnet.py")
    for name, url in dl.TORCHVISION_WEIGHTS.items():
        assert f'url="{url}"' in resnet, f"{name}: torchvision's URL changed; update TORCHVISION_WEIGHTS"


def test_weights_go_where_backbones_looks(tmp_path, monkeypatch):
    source = (REPO / "tlcourse" / "backbones.py").read_text()  # no torch import for a path
    assert 'config.data_root() / "torch" / "hub" / "checkpoints"' in source
    assert dl.weights_path("resnet18", tmp_path) == tmp_path / "torch/hub/checkpoints/resnet18-f37072fd.pth"


def test_manifests_are_small_and_complete():
    sizes = {p.name: p.stat().st_size for p in MANIFEST_DIR.iterdir()}
    assert sum(sizes.values()) < 600_000, sizes
    counts = {n: len(s.manifest_entries()) for n, s in DATASETS.items() if s.manifest}
    assert counts == {"hymenoptera": 398, "sst2": 2, "mnist_m": 9002}
    hymenoptera = DATASETS["hymenoptera"].manifest_entries()
    assert "train/ants/ant photos.jpg" in hymenoptera  # a name with a space survives the format


def test_manifests_match_the_published_sha256sums():
    root = needs_shared()
    published = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, _, path = line.partition("  ")
        published[path.removeprefix("./")] = digest
    for spec in DATASETS.values():
        for rel, entry in spec.manifest_entries().items():
            assert published[f"{spec.folder}/{rel}"] == entry.sha256
            assert (spec.path(root) / rel).stat().st_size == entry.size


def test_prepared_root_lacks_only_the_optional_parts():
    root = needs_shared()
    started = time.perf_counter()
    checks = {name: dl.check_dataset(name, root) for name in DATASETS}
    assert time.perf_counter() - started < 2  # presence + sizes, 9,400 files: no hashing
    assert all(c.ok for c in checks.values()), {n: c.problems[:3] for n, c in checks.items()}
    assert {n: c.missing_optional for n, c in checks.items() if c.missing_optional} == {
        "mnist": ["train-images-idx3-ubyte.gz"],
        "usps": ["usps.bz2"],
        "mnist_m": ["mnist_m_train", "mnist_m_train_labels.txt"],
    }


# --------------------------------------------------------------------------- require()
def test_require_names_the_folder_and_the_command_when_the_root_is_absent(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataMissingError) as err:
        require("sst2", root)
    text = str(err.value)
    assert str(root / "SST-2") in text and "does not exist" in text
    assert f"fetch_data.py sst2 --root {root}" in text


def test_require_names_the_missing_files(tmp_path):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(DataMissingError) as err:
        require("mnist", tmp_path)
    text = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in text and "t10k-images-idx3-ubyte.gz" in text
    assert "fetch_data.py mnist" in text and "--from-folder" in text


def test_require_returns_the_folder_when_ready():
    root = needs_shared()
    assert require("usps", root) == root / "USPS"


# --------------------------------------------------------------------------- the CLI
def run_fetch(*args: str, data: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("TLCOURSE_DATA", None)
    if data is not None:
        env["TLCOURSE_DATA"] = str(data)
    return subprocess.run([sys.executable, str(FETCH), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def listing(root: Path) -> list[tuple[str, int, int]]:
    """Every path under root with its size and modification time: any write shows."""
    entries = [(str(p.relative_to(root)), p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")]
    return sorted(entries + [(".", 0, root.stat().st_mtime_ns)])


def test_cli_on_the_prepared_root_reports_present_and_writes_nothing():
    root = needs_shared()
    before = listing(root)
    started = time.perf_counter()
    result = run_fetch("--all", "--weights", "auto", data=root)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert listing(root) == before
    out = result.stdout
    for name in DATASETS:
        assert re.search(rf"^\s+{name}\s+present\b", out, re.MULTILINE), out
    assert "optional, not here: train-images-idx3-ubyte.gz" in out
    assert "optional, not here: usps.bz2" in out and "mnist_m_train" in out
    assert "efficientnet_lite0" in out and "will be used instead" in out
    assert elapsed < 5, f"took {elapsed:.1f} s"


def test_cli_verify_compares_checksums_on_a_read_only_root():
    root = needs_shared()
    before = listing(root)
    result = run_fetch("usps", "sst2", "--verify", "--weights", "none", data=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"usps\s+verified\s+1 file checksummed", result.stdout), result.stdout
    assert listing(root) == before


def test_cli_missing_dataset_asked_for_fails_with_a_clear_line(tmp_path):
    result = run_fetch("sst2", "--verify-only", "--weights", "none", "--root", str(tmp_path))
    assert result.returncode == 1
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("sst2: MISSING"))
    assert str(tmp_path / "SST-2") in line and "train.tsv" in line
    assert f"fetch_data.py sst2 --root {tmp_path}" in result.stdout and "--from-folder" in result.stdout
    assert listing(tmp_path) == [(".", 0, tmp_path.stat().st_mtime_ns)]


def test_cli_copies_from_a_prepared_folder(tmp_path):
    source = needs_shared()
    result = run_fetch("usps", "--from-folder", str(source), "--root", str(tmp_path), "--weights", "none")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"usps\s+copied", result.stdout)
    assert (tmp_path / "USPS" / "usps.t.bz2").read_bytes() == (source / "USPS" / "usps.t.bz2").read_bytes()


def test_cli_rejects_unknown_names():
    result = run_fetch("imagenet", "--verify-only")
    assert result.returncode == 2 and "unknown dataset" in result.stderr
