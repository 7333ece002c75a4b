"""Binder's configuration (binder/) is valid for repo2docker and pins what the course tests with.

Binder builds are slow and happen far from CI, so a drifted pin or a non-executable
script would only show up when a learner clicks the badge; these checks catch it here.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
ENV_FILE = BINDER / "environment.yml"
POST_BUILD = BINDER / "postBuild"
START = BINDER / "start"
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    """PEP 503 name (extras kept): ``Scikit_Learn`` and ``scikit-learn`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    """``{package: version}`` for every ``name==version`` line; options and comments skipped."""
    found = {}
    for line in lines:
        match = PIN.match(line.split("#", 1)[0])
        if match:
            found[canonical(match[1])] = match[2]
    return found


def conda_env(path: Path) -> dict:
    """A conda environment file, parsed."""
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and isinstance(env.get("dependencies"), list), f"{path} is not a conda env"
    return env


def pip_section(env: dict) -> list[str]:
    """The entries of the ``- pip:`` list of a conda environment."""
    sections = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict) and "pip" in dep]
    assert len(sections) == 1, "exactly one `- pip:` section"
    return sections[0]


def python_version(env: dict) -> str:
    """The ``python=X.Y`` a conda environment asks for."""
    specs = [dep for dep in env["dependencies"] if isinstance(dep, str) and re.match(r"python\s*[=<>]", dep)]
    assert len(specs) == 1, "the environment pins python once"
    return re.sub(r"^python\s*=+\s*", "", specs[0]).strip()


def script_lines(path: Path) -> list[str]:
    """A shell script's lines without blanks and comments (the shebang is dropped too)."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# ------------------------------------------------------------------------- environment
def test_binder_environment_parses_for_repo2docker():
    env = conda_env(ENV_FILE)
    deps = env["dependencies"]
    assert python_version(env) == "3.11"
    assert "pip" in deps and deps.index("pip") < next(i for i, d in enumerate(deps) if isinstance(d, dict)), \
        "micromamba (repo2docker) needs `pip` listed before the `- pip:` options"
    assert not (BINDER / "Dockerfile").exists(), "a Dockerfile would make repo2docker ignore everything else"


def test_binder_pins_match_requirements_txt():
    required = pins((REPO / "requirements.txt").read_text().splitlines())
    assert required, "requirements.txt has no pins"
    assert pins(pip_section(conda_env(ENV_FILE))) == required


def test_binder_pins_match_root_environment_yml():
    root = REPO / "environment.yml"
    if not root.exists():
        pytest.skip("environment.yml (conda users) does not exist yet")
    root_env, binder_env = conda_env(root), conda_env(ENV_FILE)
    assert pins(pip_section(binder_env)) == pins(pip_section(root_env))
    assert python_version(binder_env) == python_version(root_env)


def test_torch_comes_from_the_cpu_index_without_changing_its_pin():
    """Binder has no GPU: CPU wheels via an extra index, but the same `torch==X` pin (no `+cpu`)."""
    section = pip_section(conda_env(ENV_FILE))
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in section
    assert not any("+cpu" in line for line in section), "a +cpu pin would break where that index is absent"


# ----------------------------------------------------------------------------- scripts
@pytest.mark.parametrize("script", [POST_BUILD, START], ids=lambda p: p.name)
def test_script_is_executable_bash(script: Path):
    assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(REPO)} (repo2docker runs it directly)"
    assert script.read_text().startswith("#!/bin/bash"), "a bash shebang on the first line"
    if shutil.which("bash"):
        check = subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_post_build_stops_at_the_first_failure_and_fetches_the_data():
    lines = script_lines(POST_BUILD)
    assert lines[0].startswith("set -e"), "postBuild must start with `set -e` (a failed step fails the build)"
    fetch = next((line for line in lines if "data_scripts/fetch_data.py" in line), "")
    for flag in ("--all", "--weights auto", '--root "$HOME/tlcourse-data"'):
        assert flag in fetch, f"postBuild's fetch_data.py call lacks {flag}"


def test_start_ends_by_exec_ing_the_server():
    assert script_lines(START)[-1] == 'exec "$@"', 'start must end with exec "$@" (or Binder never starts)'


def test_start_sets_the_course_environment(tmp_path):
    """Run start on `env`: what a kernel on Binder will see."""
    if not shutil.which("bash"):
        pytest.skip("no bash")
    clean = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    shown = subprocess.run(["bash", str(START), "env"], env=clean, capture_output=True, text=True, check=True)
    env = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    assert env["TLCOURSE_DATA"] == f"{tmp_path}/tlcourse-data"
    assert env["TLCOURSE_PROFILE"] == "quick"
    assert env["MALLOC_MMAP_MAX_"] == "0" and env["MALLOC_TRIM_THRESHOLD_"] == "17179869184"


# ------------------------------------------------------------------------------ README
def test_readme_badges_use_the_one_repo_url():
    """Every Binder and Colab link points at the repository named once, in README's REPO_URL line."""
    readme = (REPO / "README.md").read_text()
    declared = re.search(r"REPO_URL:\s*https://github\.com/([\w.-]+/[\w.-]+?)/?\s", readme)
    if not declared:
        pytest.skip("README.md has no `REPO_URL: https://github.com/<owner>/<repo>` line yet")
    repo = declared[1]
    badge = r"https://(?:mybinder\.org/v2/gh|colab\.research\.google\.com/github)/([\w.-]+/[\w.-]+)"
    links = re.findall(badge, readme)
    assert links, "README names REPO_URL but has no Binder or Colab badge"
    assert set(links) == {repo}, f"badges point elsewhere than REPO_URL ({repo}): {sorted(set(links))}"
