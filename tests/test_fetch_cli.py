"""``tlcourse-fetch`` (tlcourse/fetch.py): the text model in ``<root>/models/<hub id>``, the
console script, and the thin ``data_scripts/fetch_data.py`` wrapper.

The hub is not reachable here, so ``snapshot_download`` is replaced by a fake that writes what
the real one would (and, in one test, fails half-way): what matters is where files go and that
nothing half-done is ever left in the data root.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tlcourse import download as dl
from tlcourse import fetch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "course-data"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def fake_hub(monkeypatch, fail: bool = False) -> list[dict]:
    """Replace huggingface_hub.snapshot_download; return the list of calls it received."""
    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, local_dir, allow_patterns=None, ignore_patterns=None, **kw):
        calls.append(dict(repo_id=repo_id, local_dir=Path(local_dir), allow=allow_patterns, ignore=ignore_patterns))
        folder = Path(local_dir)
        (folder / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text('{"model_type": "bert"}')
        if fail:
            raise OSError("connection reset by peer")
        (folder / "tokenizer.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"\0" * 64)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_text_model_is_fetched_into_the_data_root(tmp_path, monkeypatch, capsys):
    calls = fake_hub(monkeypatch)
    assert fetch.main(["--text-model", MODEL, "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^\s+{re.escape(MODEL)}\s+fetched\b", out, re.M), out
    target = tmp_path / "models" / MODEL
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert calls[0]["repo_id"] == MODEL and "model.safetensors" in calls[0]["allow"]
    assert "onnx/*" in calls[0]["ignore"], "MiniLM's ONNX/OpenVINO/TF copies are not downloaded"
    assert not (tmp_path / "hymenoptera_data").exists(), "--text-model alone fetches the model only"
    assert fetch.main(["--text-model", MODEL, "--root", str(tmp_path)]) == 0
    assert len(calls) == 1 and "present" in capsys.readouterr().out, "a present model is not fetched again"


def test_text_model_resolves_from_where_fetch_put_it(tmp_path, monkeypatch):
    fake_hub(monkeypatch)
    fetch.main(["--text-model", MODEL, "--root", str(tmp_path)])
    from tlcourse import text

    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    assert text.resolve_model(MODEL) == str(tmp_path / "models" / MODEL)


def test_failed_model_download_leaves_nothing(tmp_path, monkeypatch, capsys):
    fake_hub(monkeypatch, fail=True)
    assert fetch.main(["--text-model", MODEL, "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"text model {MODEL}: MISSING" in out and "connection reset" in out
    assert f"hf download {MODEL} --local-dir {tmp_path / 'models' / MODEL}" in out
    assert files(tmp_path) == [], "no half-downloaded model, no empty folders"


def test_sst2_brings_the_text_model_and_none_skips_it(tmp_path, monkeypatch, capsys):
    calls = fake_hub(monkeypatch)
    fetch.main(["sst2", "--verify-only", "--weights", "none", "--root", str(tmp_path)])
    assert f"text model {MODEL}: MISSING" in capsys.readouterr().out and calls == []
    fetch.main(["sst2", "--verify-only", "--weights", "none", "--text-model", "none", "--root", str(tmp_path)])
    assert MODEL not in capsys.readouterr().out
    fetch.main(["usps", "--verify-only", "--weights", "none", "--root", str(tmp_path)])
    assert MODEL not in capsys.readouterr().out, "lessons without text need no text model"


def test_model_ids_cannot_escape_the_data_root(tmp_path):
    for bad in ("../evil", "/etc", "a/b/c", ""):
        with pytest.raises(dl.CourseError):
            dl.model_path(bad, tmp_path)


def test_text_model_is_copied_from_a_prepared_root_and_checked(tmp_path):
    if not (SHARED / "models" / MODEL).is_dir():
        pytest.skip(f"no prepared data root at {SHARED}")
    folder = dl.copy_model(MODEL, SHARED, tmp_path / "a")
    assert (folder / "model.safetensors").read_bytes() == (SHARED / "models" / MODEL / "model.safetensors").read_bytes()
    bad = tmp_path / "bad"
    (bad / "models").mkdir(parents=True)
    import shutil

    shutil.copytree(SHARED / "models" / MODEL, bad / "models" / MODEL, copy_function=shutil.copyfile)
    (bad / "models" / MODEL / "vocab.txt").write_text("tampered")
    shutil.copyfile(SHARED / "SHA256SUMS", bad / "SHA256SUMS")
    with pytest.raises(dl.ChecksumError, match="vocab.txt"):
        dl.copy_model(MODEL, bad, tmp_path / "b")
    assert not (tmp_path / "b" / "models" / MODEL).exists()


def test_console_script_and_wrapper_are_the_same_tool():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["tlcourse-fetch"] == "tlcourse.fetch:run"
    wrapper = (REPO / "data_scripts" / "fetch_data.py").read_text()
    assert "from tlcourse.fetch import main" in wrapper and len(wrapper.splitlines()) < 25, "a thin wrapper"
    helps = [subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO).stdout for cmd in (
        [sys.executable, "data_scripts/fetch_data.py", "--help"], [sys.executable, "-m", "tlcourse.fetch", "--help"])]
    assert helps[0] == helps[1] and "--text-model" in helps[0]
