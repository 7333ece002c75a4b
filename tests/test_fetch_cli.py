"""``tlcourse-fetch`` (tlcourse/infra/fetch.py): the text model in ``<root>/models/<hub id>``, the
console script, the thin ``data_scripts/fetch_data.py`` wrapper, each lesson's own data
(``--lesson NN``: ``LESSONS`` against what the lesson's code loads), and the command that
messages name where the course is pip-installed (``tlcourse-fetch``).

The hub is not reachable here, so ``snapshot_download`` is replaced by a fake that writes what
the real one would (and, in one test, fails half-way): what matters is where files go and that
nothing half-done is ever left in the data root.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tlcourse.infra import download as dl  # noqa: E402
from tlcourse.infra import fetch  # noqa: E402

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
    from tlcourse.labs import text_classification

    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    assert text_classification.resolve_model(MODEL) == str(tmp_path / "models" / MODEL)


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
    assert project["scripts"]["tlcourse-fetch"] == "tlcourse.infra.fetch:run"
    wrapper = (REPO / "data_scripts" / "fetch_data.py").read_text()
    assert "from tlcourse.infra.fetch import main" in wrapper and len(wrapper.splitlines()) < 25, "a thin wrapper"
    helps = [subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO).stdout for cmd in (
        [sys.executable, "data_scripts/fetch_data.py", "--help"], [sys.executable, "-m", "tlcourse.infra.fetch",
                                                               "--help"])]
    assert helps[0] == helps[1] and "--text-model" in helps[0]


# ----------------------------------------------------------------------------- one lesson's data
# What a lesson's code cells read, recognised in their text -> the dataset (tlcourse.infra.registry) it loads.
READS = {
    "hymenoptera": [r"""["']hymenoptera["']""", r"\bimages\.hymenoptera\(", r"\bhymenoptera_(?:features|by_depth)\(",
                    r"""demo_folder\(["']photos["']"""],
    "sst2": [r"""["']sst2["']""", r"\bload_sst2\("],
    "mnist": [r"""["']mnist["']""", r"\bdigit_splits\.make_task\("],  # a digit task's source domain is MNIST
    "usps": [r"""["']usps["']"""],
    "mnist_m": [r"""["']mnist_m["']""", r"""demo_folder\(["']digits["']"""],
}
IMAGE_BACKBONE = r"\bbackbones\.\w+\("  # builds, describes or loads the pretrained image model
LESSON_FILES = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def lesson_code(path: Path) -> str:
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    return "\n".join(c.source for c in cells if c.cell_type == "code"
                     and "platform-setup" not in c.metadata.get("tags", []))


def test_every_lesson_has_a_fetch_entry():
    numbers = [p.name[:2] for p in LESSON_FILES]
    assert numbers, "no lesson notebooks"
    missing = [p.name for p in LESSON_FILES if p.name[:2] not in fetch.LESSONS]
    assert not missing, f"add what these lessons load to LESSONS in tlcourse/infra/fetch.py: {missing}"
    orphans = sorted(set(fetch.LESSONS) - set(numbers))
    assert not orphans, f"LESSONS lists lessons that have no notebook (renumbered?): {orphans}"
    for entry in fetch.LESSONS.values():
        assert entry.datasets and set(entry.datasets) <= set(fetch.DATASETS)


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
def test_the_fetch_entry_is_what_the_lesson_loads(path):
    code = lesson_code(path)
    loads = tuple(name for name, patterns in READS.items() if any(re.search(p, code) for p in patterns))
    entry = fetch.LESSONS[path.name[:2]]
    assert sorted(entry.datasets) == sorted(loads), (
        f"{path.name} loads {loads}, LESSONS['{path.name[:2]}'] fetches {entry.datasets}")
    assert entry.image_weights == bool(re.search(IMAGE_BACKBONE, code)), (
        f"{path.name}: image_weights={entry.image_weights}, but its code "
        f"{'uses' if not entry.image_weights else 'never uses'} tlcourse.backbones")


def summary_items(out: str) -> dict[str, str]:
    """``{item: status}`` from the summary table of a fetch run."""
    table = out.split("\nSummary", 1)[1].splitlines()[2:]
    return {line.split()[0]: line.split()[1] for line in table if line.startswith("  ")}


@pytest.mark.parametrize("lesson, items", [
    ("04", {"sst2": "MISSING", MODEL: "MISSING"}),  # the text model comes with SST-2; no image weights
    ("6", {"mnist": "MISSING", "usps": "MISSING", "mnist_m": "MISSING"}),
    ("00_concepts.ipynb", {"hymenoptera": "MISSING", "resnet18": "fallback"}),
    ("07", {"hymenoptera": "MISSING", "mnist": "MISSING", "resnet18": "fallback"}),
])
def test_lesson_asks_for_only_what_it_loads(lesson, items, tmp_path, monkeypatch, capsys):
    calls = fake_hub(monkeypatch)
    assert fetch.main(["--lesson", lesson, "--verify-only", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert summary_items(out) == items, out
    assert calls == [] and files(tmp_path) == [], "--verify-only writes nothing"


def test_lessons_combine_with_names_and_options(tmp_path, monkeypatch, capsys):
    fake_hub(monkeypatch)
    fetch.main(["--lesson", "06", "--lesson", "04", "usps", "--weights", "none", "--text-model", "none",
                "--verify-only", "--root", str(tmp_path)])
    assert list(summary_items(capsys.readouterr().out)) == ["sst2", "mnist", "usps", "mnist_m"]
    for bad in ("42", "x"):
        with pytest.raises(SystemExit) as exc:
            fetch.main(["--lesson", bad])
        assert exc.value.code == 2
    assert "unknown lesson(s) 42; known: 00, 01" in capsys.readouterr().err


def test_setup_fetches_the_lesson_and_says_how_to_retry(tmp_path, monkeypatch, capsys):
    from tlcourse.infra import cloud

    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TLCOURSE_FETCH_FROM", str(tmp_path / "empty"))  # nothing to copy: the fetch fails
    monkeypatch.delenv("TLCOURSE_PROFILE", raising=False)
    (tmp_path / "empty").mkdir()
    fake_hub(monkeypatch, fail=True)
    with pytest.raises(RuntimeError) as exc:
        cloud.setup("06")
    out = capsys.readouterr().out
    assert (f"Fetching what lesson 06 uses (mnist, usps, mnist_m): {fetch.FETCH_COMMAND} --lesson 06 --from-folder"
            in out)
    assert "hymenoptera" not in out and "sst2" not in out, "other lessons' data is not fetched"
    assert f"!{fetch.FETCH_COMMAND} --lesson 06 --from-folder {tmp_path / 'empty'}" in str(exc.value)


# ----------------------------------------------------------------------------- the command messages name
def test_pip_installed_messages_name_the_console_script(tmp_path):
    """The package outside a checkout (as pip installs it): every message says ``tlcourse-fetch``."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "tlcourse", site / "tlcourse", ignore=shutil.ignore_patterns("__pycache__"))
    code = (f"import sys; sys.path.insert(0, {str(site)!r})\n"
            # (images, backbones, ...: torch, slow to import)
            "from tlcourse import errors\nfrom tlcourse.infra import fetch, download\n"
            "assert errors.__file__.startswith(sys.path[0]), errors.__file__\n"
            "print({m.__name__: m.FETCH_COMMAND for m in (errors, fetch, download)})\n"
            f"fetch.main(['hymenoptera', '--weights', 'resnet50', '--verify-only', '--root', {str(tmp_path)!r}])\n"
            "print(errors.DataMissingError('usps', '/data/USPS'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path).stdout
    assert "fetch_data.py" not in out, out
    assert out.count("'tlcourse-fetch'") == 3
    assert f"tlcourse-fetch hymenoptera --root {tmp_path}" in out
    assert f"tlcourse-fetch --weights resnet50 --root {tmp_path}" in out
    assert "Fetch it with:  tlcourse-fetch usps --root /data" in out
    assert fetch.FETCH_COMMAND == "python data_scripts/fetch_data.py", "a checkout keeps its own command"


def test_no_message_hard_codes_the_checkout_command():
    """Messages take FETCH_COMMAND (errors.py); only docstrings may name data_scripts/fetch_data.py."""
    import ast

    for path in sorted((REPO / "tlcourse").rglob("*.py")):
        if path.name == "errors.py":
            continue
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                assert "data_scripts/fetch_data.py" not in node.value, f"{path.name}:{node.lineno}: use FETCH_COMMAND"
