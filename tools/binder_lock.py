"""Derive Binder's lock (binder/requirements.lock) from the course's lock (requirements.lock).

``make lock`` runs ``uv pip compile --universal`` once, for everything (requirements.txt +
requirements-dev.txt + requirements-docs.txt), then this script keeps what a *learner* on Binder
needs: the packages reachable from requirements.txt's top-level pins (the lock's ``# via`` notes
give the graph; an entry's environment marker stays with it, pip applies it), minus

* the server stack (``jupyterlab``, ``ipykernel`` and what only they pull in): repo2docker
  brings its own JupyterLab, and binder/environment.yml takes ipykernel from conda-forge;
* torch and torchvision, installed by binder/postBuild from PyTorch's CPU index at the same
  versions (PyPI's Linux build is CUDA's, gigabytes of NVIDIA libraries Binder cannot use),
  and the GPU-only packages of PyPI's build (``nvidia-*``, ``cuda-*``, ``triton``).

Every kept entry keeps its hashes, so ``pip install --require-hashes --no-deps -r`` of it
installs exactly these files.

At build time (binder/postBuild), ``--missing`` keeps only the entries the image does not have
yet: packages repo2docker's Jupyter server already brings (traitlets, jinja2, ipython, pygments,
...) stay at the image's versions, never replaced or downgraded under the server; ``pip check``
then proves the course's packages accept them.

Example:
    python tools/binder_lock.py            # requirements.lock -> binder/requirements.lock
    python tools/binder_lock.py --missing binder/requirements.lock > /tmp/missing.lock   # postBuild
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVER = {"jupyterlab", "ipykernel"}
CPU_INDEX = {"torch", "torchvision"}
GPU_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")
TOP = "-r requirements.txt"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(text: str) -> dict[str, tuple[str, set[str]]]:
    """``{package: (its block of lines, the packages or files it comes 'via')}``."""
    entries: dict[str, tuple[str, set[str]]] = {}
    name, block, vias = None, [], set()
    for line in text.splitlines():
        start = re.match(r"^([A-Za-z0-9][\w.-]*)==", line)
        if start or not line.startswith(" "):
            if name:
                entries[name] = ("\n".join(block), vias)
            name, block, vias = (canonical(start[1]), [line], set()) if start else (None, [], set())
            continue
        block.append(line)
        via = re.sub(r"^\s*#\s*(via\s+)?", "", line) if line.lstrip().startswith("#") else ""
        if via and via != "via":
            vias.add(via if via.startswith("-r ") else canonical(via))
    if name:
        entries[name] = ("\n".join(block), vias)
    return entries


def learner_packages(entries: dict[str, tuple[str, set[str]]]) -> list[str]:
    """The packages reachable from requirements.txt without going through the server stack."""
    needed = {n for n, (_, vias) in entries.items() if TOP in vias and n not in SERVER}
    changed = True
    while changed:
        changed = False
        for n, (_, vias) in entries.items():
            if n not in needed and n not in SERVER and vias & needed:
                needed.add(n)
                changed = True
    return sorted(n for n in needed if n not in CPU_INDEX and not GPU_ONLY.match(n))


def binder_lock(text: str) -> str:
    entries = parse(text)
    kept = learner_packages(entries)
    header = ("# Binder's lock: made from ../requirements.lock by tools/binder_lock.py (`make lock`); do not edit.\n"
              "# The learner's packages only, hashed; torch and torchvision come from PyTorch's CPU index\n"
              "# (binder/postBuild), JupyterLab from repo2docker, ipykernel from conda-forge (environment.yml).\n")
    return header + "\n".join(entries[n][0] for n in kept) + "\n"


def torch_pins(text: str) -> str:
    """binder/torch-cpu.txt: the locked torch and torchvision versions, for PyTorch's CPU index."""
    entries = parse(text)
    pins = [entries[n][0].split()[0] for n in sorted(CPU_INDEX)]
    return ("# Made by tools/binder_lock.py from ../requirements.lock; binder/postBuild installs these\n"
            "# from https://download.pytorch.org/whl/cpu (CPU builds of the very same versions).\n"
            + "\n".join(pins) + "\n")


def installed() -> dict[str, str]:
    """``{package: version}`` of every distribution this Python already has (the image's)."""
    from importlib.metadata import distributions

    return {canonical(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}


def missing(text: str, present: dict[str, str]) -> tuple[str, dict[str, tuple[str, str]]]:
    """The entries of a lock whose package is not in ``present`` (hashes and markers kept), and
    ``{package: (present version, locked version)}`` for those left as they are."""
    entries = parse(text)
    kept = {n: (present[n], entries[n][0].split()[0].split("==", 1)[1]) for n in entries if n in present}
    install = [block for n, (block, _) in entries.items() if n not in present]
    header = "# The learner's packages the image lacks (tools/binder_lock.py --missing): install with --no-deps.\n"
    return header + "\n".join(install) + "\n", kept


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--missing"] and len(argv) == 2:
        text, kept = missing(Path(argv[1]).read_text(), installed())
        sys.stdout.write(text)
        other = sorted(f"{n} {have} (locked {want})" for n, (have, want) in kept.items() if have != want)
        print(f"binder: {len(parse(text))} locked entries to install (pip skips those whose marker does not "
              f"match); {len(kept)} packages already in the image kept as they are, {len(other)} of them at "
              f"another version than locked: {', '.join(other) or '-'}", file=sys.stderr)
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = REPO / "requirements.lock", REPO / "binder" / "requirements.lock"
    target.write_text(binder_lock(source.read_text()))
    (REPO / "binder" / "torch-cpu.txt").write_text(torch_pins(source.read_text()))
    print(f"{target.relative_to(REPO)}: {len(parse(target.read_text()))} packages (of "
          f"{len(parse(source.read_text()))} in {source.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
