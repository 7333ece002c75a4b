"""Binder's configuration (binder/) is valid for repo2docker and pins what the course tests with.

Binder builds are slow and happen far from CI, so a drifted pin or a non-executable
script would only show up when a learner clicks the badge; these checks catch it here.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
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
LOCK = REPO / "requirements.lock"
BINDER_LOCK = BINDER / "requirements.lock"
TORCH_CPU = BINDER / "torch-cpu.txt"
NOT_FOR_LEARNERS = {"pytest", "nbval", "playwright", "sphinx", "myst-nb", "jupytext", "pip-tools"}


def load_binder_lock_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("binder_lock", REPO / "tools" / "binder_lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_binder_environment_parses_for_repo2docker():
    env = conda_env(ENV_FILE)
    deps = env["dependencies"]
    assert python_version(env) == "3.11"
    assert "pip" in deps
    assert not (BINDER / "Dockerfile").exists(), "a Dockerfile would make repo2docker ignore everything else"
    assert not (BINDER / "requirements.txt").exists(), "pip packages come from the lock, in postBuild"


def test_binder_leaves_the_server_stack_to_repo2docker_and_conda_forge():
    env = conda_env(ENV_FILE)
    assert not any(isinstance(d, dict) for d in env["dependencies"]), "no `- pip:` section: postBuild installs"
    assert env["channels"] == ["conda-forge"]
    kernel = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("ipykernel")]
    assert kernel and "<7" in kernel[0], "ipykernel from conda-forge, below 7 (see requirements.txt)"
    assert not any(isinstance(d, str) and d.startswith(("jupyterlab", "notebook", "jupyter_server"))
                   for d in env["dependencies"]), "JupyterLab is repo2docker's"
    locked = pins(BINDER_LOCK.read_text().splitlines())
    assert not {"jupyterlab", "ipykernel", "notebook", "jupyter-server"} & set(locked)


def test_binder_installs_learner_packages_only():
    locked = pins(BINDER_LOCK.read_text().splitlines())
    assert not NOT_FOR_LEARNERS & set(locked), NOT_FOR_LEARNERS & set(locked)
    assert not [n for n in locked if n.startswith(("nvidia-", "cuda-")) or n in ("triton", "torch", "torchvision")]
    wanted = set(pins((REPO / "requirements.txt").read_text().splitlines())) - {"jupyterlab", "ipykernel"}
    wanted = {re.sub(r"\[.*\]", "", n) for n in wanted} - {"torch", "torchvision"}
    assert wanted <= set(locked), f"requirements.txt packages missing from Binder's lock: {wanted - set(locked)}"


def test_binder_lock_is_the_main_lock_filtered_and_hashed():
    tool = load_binder_lock_tool()
    assert BINDER_LOCK.read_text() == tool.binder_lock(LOCK.read_text()), "run: make lock (or tools/binder_lock.py)"
    assert TORCH_CPU.read_text() == tool.torch_pins(LOCK.read_text())
    main = pins(LOCK.read_text().splitlines())
    binder = pins(BINDER_LOCK.read_text().splitlines())
    assert all(main[n] == v for n, v in binder.items()), "Binder gets the very versions CI tests"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", BINDER_LOCK.read_text().split("\n", 3)[3])
    assert all("--hash=sha256:" in b for b in blocks if "==" in b), "every Binder package is hashed"


def test_torch_comes_from_the_cpu_index_at_the_pinned_version():
    """Binder has no GPU: CPU wheels from PyTorch's index, the same `torch==X` (no `+cpu`)."""
    required = pins((REPO / "requirements.txt").read_text().splitlines())
    cpu = pins(TORCH_CPU.read_text().splitlines())
    assert cpu == {"torch": required["torch"], "torchvision": required["torchvision"]}
    post = " ".join(script_lines(POST_BUILD))
    assert "--index-url https://download.pytorch.org/whl/cpu" in post and "binder/torch-cpu.txt" in post
    assert "+cpu" not in TORCH_CPU.read_text(), "a +cpu pin would break where that index is absent"


def test_root_environment_yml_pins_match_requirements_txt():
    root = conda_env(REPO / "environment.yml")
    assert pins(pip_section(root)) == pins((REPO / "requirements.txt").read_text().splitlines())
    assert python_version(root) == "3.11"


# ----------------------------------------------------------------------------- scripts
@pytest.mark.parametrize("script", [POST_BUILD, START], ids=lambda p: p.name)
def test_script_is_executable_bash(script: Path):
    assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(REPO)} (repo2docker runs it directly)"
    assert script.read_text().startswith("#!/bin/bash"), "a bash shebang on the first line"
    if shutil.which("bash"):
        check = subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_post_build_installs_the_lock_and_fetches_everything_outside_home():
    lines = script_lines(POST_BUILD)
    assert lines[0].startswith("set -e"), "postBuild must start with `set -e` (a failed step fails the build)"
    text = "\n".join(lines)
    assert "python tools/binder_lock.py --missing binder/requirements.lock > /tmp/binder-missing.lock" in text
    assert "--require-hashes --no-deps -r /tmp/binder-missing.lock" in text
    assert re.search(r"pip install .*--no-deps \.$", text, re.M), "the course installed, not editable"
    assert "-e ." not in text, "an editable install points into $HOME, hidden on hubs with persistent homes"
    fetch = next((line for line in lines if line.startswith("tlcourse-fetch")), "")
    assert "--all" in fetch and "--weights auto" in fetch, "datasets, text model and weights into the image"
    assert '--root "${NB_PYTHON_PREFIX:-/srv/conda/envs/notebook}/share/tlcourse-data"' in fetch
    assert "$HOME" not in fetch


def test_post_build_never_replaces_the_image_s_packages():
    """Only missing packages are installed, all with --no-deps, nothing upgraded or reinstalled."""
    lines = script_lines(POST_BUILD)
    installs = [line for line in lines if "pip install" in line]
    assert len(installs) == 3, installs   # the missing learner packages, torch + torchvision, the course
    assert all("--no-deps" in line for line in installs), "pip must resolve nothing: it would upgrade the server"
    text = " ".join(lines)
    for flag in ("--upgrade", " -U ", "--force-reinstall", "--ignore-installed", "-r binder/requirements.lock"):
        assert flag not in text, f"postBuild must not install over the image's packages ({flag.strip()})"
    assert lines.index("python -m pip check") > max(lines.index(line) for line in installs)


def test_missing_keeps_what_the_image_has():
    """An image with a server's packages at other versions: they are kept, the rest installed hashed."""
    tool = load_binder_lock_tool()
    lock = BINDER_LOCK.read_text()
    image = {"traitlets": "5.9.0", "jinja2": "3.1.2", "ipython": "8.12.3", "pygments": "2.17.2",
             "tornado": "6.4", "jupyterlab-widgets": "3.0.16"}
    text, kept = tool.missing(lock, image)
    wanted = pins(text.splitlines())
    locked = pins(lock.splitlines())
    assert not set(image) & set(wanted), "an image package would be replaced"
    assert set(wanted) == set(locked) - set(image) and all(locked[n] == v for n, v in wanted.items())
    assert kept["traitlets"] == ("5.9.0", locked["traitlets"]) and "tornado" not in kept
    blocks = [b for b in re.split(r"\n(?=[A-Za-z0-9])", text) if PIN.match(b)]
    assert blocks and all("--hash=sha256:" in b for b in blocks), "still hashed: --require-hashes"
    assert "colorama==0.4.6 ; sys_platform == 'win32'" in text, "markers kept: pip skips other platforms'"


def test_missing_in_a_full_environment_installs_nothing():
    """Run in this venv, which has every locked package: only other platforms' entries are left."""
    run = subprocess.run([sys.executable, str(REPO / "tools" / "binder_lock.py"), "--missing", str(BINDER_LOCK)],
                         capture_output=True, text=True, check=True)
    left = [b for b in re.split(r"\n(?=[A-Za-z0-9])", run.stdout) if PIN.match(b)]
    assert all(" ; " in b.splitlines()[0] for b in left), [b.split()[0] for b in left]
    assert "packages already in the image kept as they are" in run.stderr


def test_start_ends_by_exec_ing_the_server():
    assert script_lines(START)[-1] == 'exec "$@"', 'start must end with exec "$@" (or Binder never starts)'


def test_start_sets_the_course_environment(tmp_path):
    """Run start on `env`: what a kernel on Binder will see."""
    if not shutil.which("bash"):
        pytest.skip("no bash")
    clean = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
             "NB_PYTHON_PREFIX": "/srv/conda/envs/notebook"}
    shown = subprocess.run(["bash", str(START), "env"], env=clean, capture_output=True, text=True, check=True)
    env = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    assert env["TLCOURSE_DATA"] == "/srv/conda/envs/notebook/share/tlcourse-data", "where postBuild put the data"
    assert not env["TLCOURSE_DATA"].startswith(str(tmp_path)), "outside $HOME"
    assert env["TLCOURSE_PROFILE"] == "quick" and env["TLCOURSE_PLATFORM"] == "binder"
    assert env["MALLOC_MMAP_MAX_"] == "0" and env["MALLOC_TRIM_THRESHOLD_"] == "17179869184"
    assert env["MALLOC_ARENA_MAX"] == "1", "one heap for all threads: lower peak memory"


def test_a_workflow_builds_the_binder_image_with_repo2docker():
    workflow = REPO / ".github" / "workflows" / "binder.yml"
    assert workflow.is_file(), "a CI job that builds binder/ with repo2docker"
    job = yaml.safe_load(workflow.read_text())
    text = workflow.read_text()
    assert "repo2docker" in text and "00_concepts.ipynb" in text, "builds the image and runs a lesson in it"
    assert job["jobs"], "at least one job"


# ------------------------------------------------------------------------------ README
def test_readme_badges_use_the_one_repo_url():
    """Every Binder, Colab and Kaggle link points at the repository named once, in README's REPO_URL line."""
    readme = (REPO / "README.md").read_text()
    declared = re.search(r"REPO_URL:\s*https://github\.com/([\w.-]+/[\w.-]+?)/?\s", readme)
    if not declared:
        pytest.skip("README.md has no `REPO_URL: https://github.com/<owner>/<repo>` line yet")
    repo = declared[1]
    badge = (r"https://(?:mybinder\.org/v2/gh|colab\.research\.google\.com/github|"
             r"kaggle\.com/kernels/welcome\?src=https://github\.com)/([\w.-]+/[\w.-]+)")
    links = re.findall(badge, readme)
    assert links, "README names REPO_URL but has no Binder or Colab badge"
    assert set(links) == {repo}, f"badges point elsewhere than REPO_URL ({repo}): {sorted(set(links))}"
