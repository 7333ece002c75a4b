"""Every lesson has the shape the syllabus asks for (CONTRIBUTING.md, "How a lesson is written").

These read the notebooks as files; executing them is nbval's job (`make test`).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00", "01", "02", "03", "04", "05", "06", "07", "08"]


def test_all_eight_lessons_are_there_in_order():
    assert [p.name[:2] for p in NOTEBOOKS] == EXPECTED


def cells(path: Path):
    return nbformat.read(path, as_version=4).cells


def text(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_title_cell_states_objectives_time_and_profile(path):
    first = cells(path)[0]
    assert first.cell_type == "markdown" and text(first).startswith("# ")
    body = text(first).lower()
    assert "objective" in body or "you will" in body
    assert "quick" in body and "full" in body and re.search(r"\d+\s*(s|sec|min)", body)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_has_predict_widgets_exercises_recap_checks(path):
    cs = cells(path)
    md = "\n".join(text(c) for c in cs if c.cell_type == "markdown")
    code = "\n".join(text(c) for c in cs if c.cell_type == "code")
    assert "Predict" in md, "a 'predict, then run' moment"
    assert "widgets.live(" in code and "widgets.control_panel(" in code
    assert len(re.findall(r"^###\s*Exercise", md, flags=re.M)) >= 3
    solutions = [c for c in cs if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) >= 3
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in solutions)
    assert re.search(r"^#+\s*Recap", md, flags=re.M)
    checks = [c for c in cs if c.cell_type == "code" and text(c).lstrip().startswith("# Check")]
    assert checks and all("assert" in text(c) for c in checks)
    assert "config.summary()" in code, "the profile in use is printed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    for c in cells(path):
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, "clear outputs before committing"


#: "Show the mechanism, hide the scaffolding" (CONTRIBUTING.md): the code a learner must be able
#: to write after a lesson is in the lesson's own cells tagged ``core``, in plain PyTorch /
#: torchvision / timm / transformers. Each lesson's core cells must contain these idioms
#: (regular expressions); extend the list when a lesson teaches more.
IDIOMS: dict[str, list[str]] = {
    "00": [r"weights=\w*\.?ResNet18_Weights\.DEFAULT", r"requires_grad_?\(?", r"\.numel\(\)",
           r"\.(fc|classifier)\s*=\s*(nn|torch\.nn)\.Linear\(", r"children\(\)",
           r"def load_pretrained\(", r"\+\s*lam\s*\*\s*loss_tgt", r"zero_grad", r"\.backward\(\)"],
    "01": [r"nn\.Identity\(\)|reset_classifier\(0\)", r"requires_grad", r"\.eval\(\)",
           r"inference_mode|no_grad", r"zero_grad", r"\.backward\(\)", r"\.step\(\)", r"LogisticRegression",
           r"nn\.Sequential\(", r"nn\.Dropout\("],
    "02": [r"requires_grad", r"\.backward\(\)", r"\.step\(\)", r"zero_grad",
           r"\.(fc|classifier)\s*=\s*(nn|torch\.nn)\.Linear\(", r"set_grad_enabled|no_grad|inference_mode",
           r"state_dict", r"CrossEntropyLoss", r"SGD\(", r"StepLR", r"\.train\(\)", r"\.eval\(\)",
           r"strict=False", r"ImageOps\.exif_transpose", r"softmax"],
    "03": [r"requires_grad_\(False\)", r"requires_grad_\(True\)", r"add_param_group\(",
           r"\"params\"\s*:|'params'\s*:", r"SGD\(", r"StepLR", r"\.backward\(\)", r"\.step\(\)",
           r"zero_grad", r"\.eval\(\)", r"set_grad_enabled|no_grad|inference_mode"],
    "04": [r"AutoTokenizer\.from_pretrained", r"AutoModel\.from_pretrained", r"last_hidden_state",
           r"class \w*Dataset\(.*Dataset\)", r"class \w*Classifier\(.*Module\)", r"AdamW",
           r"get_linear_schedule_with_warmup", r"clip_grad_norm_", r"\.backward\(\)", r"zero_grad",
           r"Trainer\(", r"TrainingArguments\(", r"DataCollatorWithPadding", r"save_pretrained"],
    "05": [r"v2\.Compose", r"RandAugment|TrivialAugmentWide", r"MixUp|CutMix", r"\.backward\(\)",
           r"\.step\(\)", r"zero_grad"],
    "06": [r"torch\.autograd\.Function", r"def backward", r"\.backward\(\)", r"\.step\(\)", r"zero_grad"],
    "07": [r"list_models\(", r"ParameterSampler", r"ParameterGrid"],
    "08": [r"train_test_split\(", r"stratify=", r"cross_val_score", r"LogisticRegression",
           r"nn\.Identity\(\)|reset_classifier\(0\)", r"requires_grad", r"\.eval\(\)", r"inference_mode|no_grad",
           r"zero_grad", r"\.backward\(\)", r"\.step\(\)", r"\"params\"\s*:|'params'\s*:",
           r"torch\.save\(", r"torch\.load\(", r"load_state_dict", r"softmax"],
}
CORE_MAX_LINES = 45
SHORT_MAX_LINES = 30


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_shows_its_mechanism_in_core_cells(path):
    core = [text(c) for c in cells(path) if c.cell_type == "code" and "core" in tags(c)]
    assert len(core) >= 3, "a lesson writes its mechanism out in cells tagged 'core'"
    code = "\n".join(core)
    missing = [idiom for idiom in IDIOMS[path.name[:2]] if not re.search(idiom, code)]
    assert not missing, f"the core cells lack these idioms: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_check_cells_are_tagged(path):
    for c in cells(path):
        if c.cell_type != "code":
            continue
        starts = text(c).lstrip().startswith("# Check")
        assert starts == ("check" in tags(c)), f"'# Check' cells and the 'check' tag go together:\n{text(c)[:200]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_long_helper_code_in_notebooks(path):
    """Scaffolding belongs in tlcourse/; only core cells (the lesson's mechanism) may be longer."""
    for c in cells(path):
        if c.cell_type != "code" or "solution" in tags(c):
            continue
        src = text(c)
        n_defs = len(re.findall(r"^(def|class) ", src, flags=re.M))
        if "core" in tags(c):
            assert len(src.splitlines()) <= CORE_MAX_LINES, f"core cell too long:\n{src[:200]}"
        else:
            assert n_defs <= 1, f"helpers belong in tlcourse/:\n{src[:200]}"
            assert len(src.splitlines()) <= SHORT_MAX_LINES, f"cell too long:\n{src[:200]}"
