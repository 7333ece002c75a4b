"""Download, unpack, copy and verify the course's datasets, safely.

Rules this module keeps, so that a data root is either right or visibly incomplete:

* A download goes to ``<file>.part`` and is renamed into place only after its
  MD5/SHA-256 matched; a mismatch deletes the part and raises
  :class:`~tlcourse.errors.ChecksumError`. An interrupted download keeps its
  ``.part`` and the next call resumes it with an HTTP ``Range`` request.
* An archive is unpacked into a temporary folder beside the dataset folder,
  checked, then renamed into place: an interrupted extraction never leaves a
  folder that :meth:`~tlcourse.infra.registry.DatasetSpec.missing` accepts.
* Archive members that would land outside the target (``../x``, absolute
  paths, links pointing out) are refused with :class:`UnsafeArchiveError`.

Only the standard library (urllib) and tqdm are used: no extra dependency.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_bytes(b"abc")
    >>> file_hash(folder / "a.txt", "md5")
    '900150983cd24fb0d6963f7d28e17f72'
    >>> check_folder(DATASETS["usps"], folder).missing
    ['usps.t.bz2']
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import http.client
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm.auto import tqdm

from .. import config
from ..errors import ChecksumError, CourseError, DataMissingError
from .registry import DATASETS, FETCH_COMMAND, DatasetSpec, Download, FileCheck, get

CHUNK = 1 << 20
USER_AGENT = "tlcourse-fetch/1.0 (+urllib)"
DOWNLOADS_DIR = ".downloads"  # archives wait here (resumable) until they are unpacked


class UnsafeArchiveError(CourseError, ValueError):
    """An archive member would be written outside the target folder."""


class IncompleteDownloadError(CourseError, ConnectionError):
    """The connection ended early; the ``.part`` file is kept so the next call resumes."""


# --------------------------------------------------------------------------- hashing
def file_hash(path: Path, algo: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (large files never sit in memory)."""
    digest = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, *, sha256: str | None = None, md5: str | None = None,
                label: str | None = None, advice: str = "") -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the given checksum(s).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> verify_file(p, md5="900150983cd24fb0d6963f7d28e17f72")  # silent when it matches
    """
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_hash(path, algo)
            if actual != expected.lower():
                raise checksum_error(label or str(path), algo, expected, actual, advice)


def checksum_error(label: str, algo: str, expected: str, actual: str, advice: str = "") -> ChecksumError:
    """A :class:`ChecksumError` that names the file, both hashes and what to do."""
    return ChecksumError(
        f"Checksum mismatch for {label}: {algo} is {actual}, expected {expected}.\n"
        + (advice or "The file is corrupt or incomplete: delete it and fetch it again "
           f"({FETCH_COMMAND} NAME, or --from-folder with a prepared copy).")
    )


# --------------------------------------------------------------------------- download
def part_path(dest: Path) -> Path:
    """Where ``dest`` is written while it downloads: ``<dest>.part``."""
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: Path, *, sha256: str | None = None, md5: str | None = None,
             progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming and verifying; return ``dest``.

    An existing ``dest`` is only verified. A resumed download whose checksum
    fails is retried once from zero, because the old ``.part`` may be the
    corrupt bit; a fresh download that fails raises :class:`ChecksumError`.
    Without a checksum (hymenoptera's zip) the caller must check the content.

    Example (not run: needs the network)::

        download("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
                 Path("t10k-labels-idx1-ubyte.gz"), md5="ec29112dd5afa0611ce80d1b7f02629c")
    """
    dest = Path(dest)
    advice = (f"The partial download was deleted; run the same command again to download "
              f"{url} afresh. If it fails again, the file on the server has changed: please report it.")
    if dest.exists():
        verify_file(dest, sha256=sha256, md5=md5, label=str(dest))
        return dest
    part = part_path(dest)
    for attempt in (1, 2):
        resumed_from = _transfer(url, part, progress=progress, timeout=timeout)
        try:
            verify_file(part, sha256=sha256, md5=md5, label=f"{dest} (from {url})", advice=advice)
        except ChecksumError:
            part.unlink(missing_ok=True)  # never keep, never accept, a part that failed
            if resumed_from and attempt == 1:
                continue
            raise
        os.replace(part, dest)  # atomic: dest appears complete or not at all
        return dest
    raise AssertionError("unreachable")


def _transfer(url: str, part: Path, *, progress: bool, timeout: float) -> int:
    """Append the rest of ``url`` to ``part``; return the byte offset it resumed from."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the part already holds every byte: let the checksum judge
            return offset
        raise
    with response:
        start = _resume_point(response, offset)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        part.parent.mkdir(parents=True, exist_ok=True)  # only now: offline, nothing is created
        received = _stream(response, part, start, total, progress)
    if total is not None and start + received < total:
        raise IncompleteDownloadError(
            f"The connection to {url} closed after {start + received:,} of {total:,} bytes. "
            f"The partial file {part} is kept: run the same command again to resume."
        )
    return start


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _resume_point(response: http.client.HTTPResponse, offset: int) -> int:
    """``offset`` if the server honoured the Range request, else 0 (start over)."""
    if not offset or response.status != 206:
        return 0  # 200: the server ignored Range and sends the whole file
    content_range = response.headers.get("Content-Range", "")  # "bytes 100-999/1000"
    try:
        first = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        first = -1
    if first != offset:
        raise IncompleteDownloadError(
            f"The server answered a resume request with the wrong range ({content_range!r}); "
            "delete the .part file and try again."
        )
    return offset


def _stream(response: http.client.HTTPResponse, part: Path, start: int, total: int | None,
            progress: bool) -> int:
    """Copy the body into ``part`` (appending after ``start`` bytes); return the bytes received."""
    received = 0
    bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
               desc=part.name.removesuffix(".part"), disable=not progress, leave=False)
    with open(part, "ab" if start else "wb") as out, bar:
        try:
            while chunk := response.read(CHUNK // 4):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
            raise IncompleteDownloadError(
                f"The download of {part.name} stopped after {start + received:,} bytes "
                f"({type(exc).__name__}: {exc}). The partial file {part} is kept: "
                "run the same command again to resume."
            ) from exc
    return received


# --------------------------------------------------------------------------- extraction
def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    """The member's path if it stays inside the target, else :class:`UnsafeArchiveError`."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if not name or posix.is_absolute() or PureWindowsPath(name).drive or ".." in posix.parts:
        raise UnsafeArchiveError(
            f"{archive} contains the member {name!r}, whose path leaves the target folder "
            "(absolute or with '..'). Nothing was extracted: the archive is corrupt or "
            "malicious; delete it and download it again from the registry's URL."
        )
    return posix


def _check_link(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse a link whose target lies outside the extraction folder."""
    here = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
    target = PurePosixPath(member.linkname.replace("\\", "/"))
    depth = 0
    for part in (here / target).parts if not target.is_absolute() else ("..",):
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise UnsafeArchiveError(
                f"{archive} contains the link {member.name!r} -> {member.linkname!r}, which points "
                "outside the target folder. Nothing was extracted; delete the archive."
            )


def _extract_zip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _check_member_name(info.filename, archive)
            if stat.S_ISLNK(info.external_attr >> 16):  # zipfile would write it as a plain file
                raise UnsafeArchiveError(f"{archive} contains the symbolic link {info.filename!r}; refused.")
        zf.extractall(target)


def _extract_tar(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            _check_member_name(member.name, archive)
            if member.issym() or member.islnk():
                _check_link(member, archive)
            elif not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(f"{archive} contains the special file {member.name!r}; refused.")
        try:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: a second guard
                tf.extractall(target, members=members, filter="data")
            else:
                tf.extractall(target, members=members)
        except tarfile.TarError as exc:  # FilterError and friends
            raise UnsafeArchiveError(f"{archive}: {exc}. Nothing usable was extracted.") from exc


_SINGLE_FILE = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def safe_extract(archive: Path, target: Path) -> None:
    """Unpack a zip, a tar (.tar.gz/.tgz/.tar.bz2/.tar.xz) or a single .gz/.bz2/.xz file into ``target``.

    Every member is checked before anything is written.

    >>> import io, tempfile
    >>> tmp = Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(tmp / "evil.zip", "w") as zf:
    ...     zf.writestr("../evil.txt", "x")
    >>> safe_extract(tmp / "evil.zip", tmp / "out")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    tlcourse.infra.download.UnsafeArchiveError: ... '../evil.txt' ...
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, target)
    elif tarfile.is_tarfile(archive):
        _extract_tar(archive, target)
    elif archive.suffix in _SINGLE_FILE:
        with _SINGLE_FILE[archive.suffix](archive, "rb") as src, open(target / archive.stem, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    else:
        raise CourseError(f"{archive} is not a zip, tar, .gz, .bz2 or .xz file; cannot unpack it.")


def extract_into_place(archive: Path, dest: Path, *, subdir: str = "",
                       check: Callable[[Path], None] | None = None) -> Path:
    """Unpack ``archive`` (its ``subdir`` folder) as ``dest``, atomically; return ``dest``.

    Unpacks into ``.<dest>.extract-XXXX`` beside ``dest`` (same file system,
    so the final rename is atomic), runs ``check`` on the unpacked folder, and
    only then renames it to ``dest``. An existing ``dest`` is replaced.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        safe_extract(archive, tmp)
        content = tmp / subdir if subdir else tmp
        if not content.is_dir():
            raise CourseError(f"{archive} has no folder {subdir!r}: the file is not the expected archive.")
        if check is not None:
            check(content)
        swap_into_place(content, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def swap_into_place(new: Path, dest: Path) -> None:
    """Rename the folder ``new`` to ``dest``, moving an old ``dest`` aside first.

    Between the two renames ``dest`` does not exist, so a crash leaves either
    the old folder, the new one, or none, never a half-written one.
    """
    old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
    if dest.exists():
        os.rename(dest, old)
    os.rename(new, dest)
    shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(dest: Path) -> None:
    """Delete temporary folders an interrupted extraction or copy left beside ``dest``."""
    for pattern in (f".{dest.name}.extract-*", f".{dest.name}.copy-*", f".{dest.name}.old-*"):
        for leftover in dest.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


# --------------------------------------------------------------------------- verification
@dataclass
class DatasetCheck:
    """What a look at one dataset folder found."""

    name: str
    folder: Path
    full: bool  # checksums compared (True) or sizes only (False)
    missing: list[str] = field(default_factory=list)  # required parts absent
    missing_optional: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # wrong size or checksum, files absent
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        """Every required part there and every known file right."""
        return not self.missing and not self.problems


def check_folder(spec: DatasetSpec, folder: Path, full: bool = False) -> DatasetCheck:
    """Check ``folder`` against ``spec``: presence and sizes, plus checksums if ``full``.

    The quick check (sizes) takes a few milliseconds even for MNIST-M's 9,001
    files; ``full`` reads every byte.
    """
    folder = Path(folder)
    result = DatasetCheck(spec.name, folder, full)
    result.missing = [rel for rel in spec.required if not (folder / rel).exists()]
    result.missing_optional = [rel for rel in spec.optional if not (folder / rel).exists()]
    for rel, expect in spec.expected().items():
        problem = _check_file(folder / rel, expect, full)
        if problem == "missing":
            # with a required part absent the dataset is simply missing; otherwise it is incomplete
            if not expect.optional and not result.missing:
                result.problems.append(f"{rel}: missing")
        elif problem:
            result.problems.append(f"{rel}: {problem}")
        else:
            result.files_checked += 1
    return result


def _check_file(path: Path, expect: FileCheck, full: bool) -> str:
    """'' if the file is right, 'missing', or what is wrong with it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if expect.size is not None and size != expect.size:
        return f"{size:,} bytes, expected {expect.size:,}"
    if full:
        for algo, expected in (("sha256", expect.sha256), ("md5", expect.md5)):
            if expected and (actual := file_hash(path, algo)) != expected:
                return f"{algo} is {actual}, expected {expected}"
    return ""


def check_dataset(name: str | DatasetSpec, root: Path | None = None, full: bool = False) -> DatasetCheck:
    """Check the dataset ``name`` in the data root ``root`` (see :func:`check_folder`)."""
    spec = name if isinstance(name, DatasetSpec) else get(name)
    return check_folder(spec, spec.path(root or config.data_root()), full)


def _raise_if_bad(spec: DatasetSpec, folder: Path, source: str) -> None:
    """Full check of a folder about to be put in place; :class:`ChecksumError` if wrong."""
    result = check_folder(spec, folder, full=True)
    if result.missing or result.problems:
        details = (["missing: " + ", ".join(result.missing)] if result.missing else []) + result.problems
        raise ChecksumError(
            f"{spec.name} from {source} failed verification ({spec.integrity}):\n  "
            + "\n  ".join(details[:10])
            + ("\n  ..." if len(result.problems) > 10 else "")
            + "\nNothing was put in place. Fetch it again; if this repeats, the source has changed."
        )


# --------------------------------------------------------------------------- fetching
def is_writable(path: Path) -> bool:
    """True if files can be created at ``path`` (judged on its nearest existing folder).

    The write bits are honoured even for root, who could write anyway: a
    prepared data root made read-only (``chmod -R a-w``) must stay untouched.
    """
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return os.access(existing, os.W_OK) and bool(existing.stat().st_mode & stat.S_IWUSR)


def needs(spec: DatasetSpec, item: Download, root: Path) -> bool:
    """True if the registry entry ``item`` would add something that is not yet in ``root``."""
    if item.extract:
        return bool(spec.missing(root))
    return not (spec.path(root) / item.filename).exists()


def fetch_download(spec: DatasetSpec, item: Download, root: Path, *, progress: bool = True) -> Path:
    """Download one registry entry into ``root`` (unpacking an archive); return what it made."""
    folder = spec.path(root)
    if not item.extract:  # download() creates the folder once the server answers
        return download(item.url, folder / item.filename, sha256=item.sha256, md5=item.md5, progress=progress)
    archive = root / DOWNLOADS_DIR / item.filename
    download(item.url, archive, sha256=item.sha256, md5=item.md5, progress=progress)
    try:
        extract_into_place(archive, folder, subdir=item.subdir,
                           check=lambda tmp: _raise_if_bad(spec, tmp, item.url))
    except Exception:
        if not (item.sha256 or item.md5):  # unverified archive: it may be the culprit, fetch it anew
            archive.unlink(missing_ok=True)
        raise
    archive.unlink()  # unpacked and verified: the archive is not needed any more
    _rmdir_if_empty(archive.parent)
    return folder


def fetch_dataset(name: str | DatasetSpec, root: Path | None = None, *, include_optional: bool = False,
                  progress: bool = True) -> Path:
    """Download whatever of the dataset is missing from ``root``; return its folder.

    Raises ``urllib.error.URLError`` (offline), :class:`ChecksumError`,
    :class:`IncompleteDownloadError` or :class:`UnsafeArchiveError`; a failure
    leaves the data root as it was, apart from a resumable ``.part``.

    Example (not run: needs the network)::

        fetch_dataset("usps", Path("~/.cache/tlcourse").expanduser())
    """
    spec = name if isinstance(name, DatasetSpec) else get(name)
    root = Path(root or config.data_root())
    for item in spec.downloads:
        if (include_optional or not item.optional) and needs(spec, item, root):
            fetch_download(spec, item, root, progress=progress)
    return spec.path(root)


def copy_from_folder(name: str | DatasetSpec, src_root: Path, dst_root: Path) -> Path:
    """Copy a dataset from a prepared data root into ``dst_root``, verified; return its folder.

    A dataset that comes as one archive is copied whole into a temporary
    folder, fully checked, then renamed into place. Single-file datasets
    (MNIST, USPS) are copied file by file, each through a ``.part`` and checked
    before its rename. Files already in ``dst_root`` are kept.

    Example (not run: needs a prepared root)::

        copy_from_folder("usps", Path("/mnt/usb/course-data"), Path("~/.cache/tlcourse").expanduser())
    """
    spec = name if isinstance(name, DatasetSpec) else get(name)
    src, dst = spec.path(Path(src_root)), spec.path(Path(dst_root))
    found = check_folder(spec, src)
    if found.missing:
        raise DataMissingError(spec.name, src, "missing: " + ", ".join(found.missing), src_root)
    if spec.archive is not None:
        _copy_tree(spec, src, dst)
    else:
        _copy_files(spec, src, dst)
    return dst


def _copy_tree(spec: DatasetSpec, src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(dst)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.copy-", dir=dst.parent))
    try:
        content = tmp / dst.name
        shutil.copytree(src, content, copy_function=shutil.copyfile)  # not the read-only modes
        _raise_if_bad(spec, content, str(src))
        swap_into_place(content, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_files(spec: DatasetSpec, src: Path, dst: Path) -> None:
    expected = spec.expected()
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in src.iterdir() if p.is_file()):
        target = dst / path.name
        if target.exists():
            continue
        part = part_path(target)
        shutil.copyfile(path, part)
        expect = expected.get(path.name)
        try:
            if expect is not None:
                verify_file(part, sha256=expect.sha256, md5=expect.md5, label=f"{path} (copied)",
                            advice=f"The source copy in {src} is damaged; nothing was put in place.")
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, target)


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# --------------------------------------------------------------------------- weights
# torchvision's own URLs (``get_model_weights(arch).DEFAULT.url``), written out so that
# checking for the files needs no torch import (4-8 s here); a test keeps them in step.
TORCHVISION_WEIGHTS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
}


def weights_path(name: str, root: Path | None = None) -> Path:
    """Where the torchvision weights of ``name`` live: ``<root>/torch/hub/checkpoints/<file>``.

    The same folder as :func:`tlcourse.backbones.torch_hub_dir` for that root.

    >>> weights_path("resnet18", Path("/data")).as_posix()
    '/data/torch/hub/checkpoints/resnet18-f37072fd.pth'
    """
    root = Path(root or config.data_root())
    return root / "torch" / "hub" / "checkpoints" / Path(TORCHVISION_WEIGHTS[name]).name


def weights_hash_ok(path: Path) -> bool:
    """True if the file's SHA-256 starts with the prefix in its name (torch.hub's check)."""
    prefix = path.stem.rsplit("-", 1)[-1]
    return file_hash(path).startswith(prefix)


def fetch_weights(name: str, root: Path | None = None, *, progress: bool = True) -> Path:
    """Download torchvision's ImageNet weights for ``name`` into the root's hub folder.

    Uses ``torch.hub.download_url_to_file`` with torchvision's URL and its hash
    prefix. A cheap request first makes an offline run fail in milliseconds,
    before torch is imported, and nothing is created unless the server answers.

    Example (not run: needs the network)::

        fetch_weights("resnet18", Path("~/.cache/tlcourse").expanduser())
    """
    target = weights_path(name, root)
    if target.exists():
        return target
    _open(TORCHVISION_WEIGHTS[name], 0, timeout=15).close()  # URLError when offline
    import torch.hub
    import torchvision.models as tvm

    from ..backbones import BACKBONES

    url = tvm.get_model_weights(BACKBONES[name].arch).DEFAULT.url
    target = target.with_name(Path(url).name)
    created = [p for p in reversed(target.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=torch.hub.HASH_REGEX.search(url).group(1),
                                       progress=progress)
    except BaseException:
        for folder in reversed(created):  # leave the root as it was
            _rmdir_if_empty(folder)
        raise
    return target


# --------------------------------------------------------------------------- text model
#: What a Hugging Face model folder must hold to load offline (one of each tuple).
MODEL_FILES = (("config.json",), ("model.safetensors", "pytorch_model.bin"), ("tokenizer.json", "vocab.txt"))
#: What is downloaded of a hub repository: the PyTorch weights, tokenizer and config files
#: (MiniLM's repository also holds ONNX, OpenVINO, TF and Rust copies: 10x the bytes, unused).
MODEL_PATTERNS = ["*.json", "*.txt", "*.model", "model.safetensors", "README.md"]
MODEL_SKIP = ["onnx/*", "openvino/*", "tf_*", "flax_*", "rust_*", "*.h5", "*.msgpack", "*.ot"]


def model_path(name: str, root: Path | None = None) -> Path:
    """Where the text model ``name`` (a hub id) lives: ``<root>/models/<hub id>``.

    The folder :func:`tlcourse.labs.text_classification.resolve_model` looks in before the hub.

    >>> model_path("sentence-transformers/all-MiniLM-L6-v2", Path("/data")).as_posix()
    '/data/models/sentence-transformers/all-MiniLM-L6-v2'
    """
    if not name or name.startswith(("/", ".")) or ".." in Path(name).parts or name.count("/") > 1:
        raise CourseError(f"{name!r} is not a Hugging Face hub id (owner/name); cannot place it in a data root.")
    return Path(root or config.data_root()) / "models" / name


def model_missing(folder: Path) -> list[str]:
    """The files a model folder lacks to load offline (``[]``: complete).

    >>> model_missing(Path("/no/such/folder"))
    ['config.json', 'model.safetensors or pytorch_model.bin', 'tokenizer.json or vocab.txt']
    """
    return [" or ".join(names) for names in MODEL_FILES
            if not any((Path(folder) / n).is_file() and (Path(folder) / n).stat().st_size for n in names)]


def _published_sums(src_root: Path, prefix: str) -> dict[str, str]:
    """``{path under prefix: sha256}`` from a prepared root's ``SHA256SUMS`` (``{}`` if it has none)."""
    sums = Path(src_root) / "SHA256SUMS"
    if not sums.is_file():
        return {}
    found = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, path = line.partition("  ")
        path = path.removeprefix("./")
        if path.startswith(prefix + "/"):
            found[path[len(prefix) + 1:]] = digest
    return found


def copy_model(name: str, src_root: Path, dst_root: Path) -> Path:
    """Copy ``<src_root>/models/<name>`` into ``dst_root``, checked, atomically; return the folder.

    Files listed in the source's ``SHA256SUMS`` are compared with their published hash;
    the copy is put in place only when it is complete.
    """
    src, dst = model_path(name, src_root), model_path(name, dst_root)
    lacking = model_missing(src)
    if lacking:
        raise CourseError(f"The text model {name} is not in the prepared root {src_root}: looked in {src} "
                          f"(missing: {', '.join(lacking)}).")
    sums = _published_sums(src_root, f"models/{name}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(dst)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.copy-", dir=dst.parent))
    try:
        content = tmp / dst.name
        shutil.copytree(src, content, copy_function=shutil.copyfile)
        for rel, digest in sums.items():
            verify_file(content / rel, sha256=digest, label=f"{src / rel} (copied)",
                        advice=f"The source copy in {src} is damaged; nothing was put in place.")
        swap_into_place(content, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dst


def fetch_model(name: str, root: Path | None = None) -> Path:
    """Download the hub model ``name`` into ``<root>/models/<name>`` with ``snapshot_download``.

    Only the files the course loads (:data:`MODEL_PATTERNS`); the hub client checks
    each large file's SHA-256. The snapshot goes to a temporary folder beside the
    target and is renamed into place once complete, so a failed download leaves nothing.

    Example (not run: needs the network)::

        fetch_model("sentence-transformers/all-MiniLM-L6-v2", Path("~/.cache/tlcourse").expanduser())
    """
    from huggingface_hub import snapshot_download

    dst = model_path(name, root)
    if not model_missing(dst):
        return dst
    created = [p for p in reversed(dst.parents) if not p.exists()]
    dst.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(dst)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.extract-", dir=dst.parent))
    try:
        snapshot_download(repo_id=name, local_dir=tmp, allow_patterns=MODEL_PATTERNS, ignore_patterns=MODEL_SKIP)
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # the hub client's bookkeeping
        lacking = model_missing(tmp)
        if lacking:
            raise CourseError(f"The hub repository {name} has no {', '.join(lacking)}: not a model the course "
                              "can load (it needs a PyTorch/safetensors checkpoint with its tokenizer).")
        swap_into_place(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(created):  # leave the root as it was
            _rmdir_if_empty(folder)
        raise
    return dst


# --------------------------------------------------------------------------- manifests
def manifest_lines(sums_file: Path, src_root: Path, spec: DatasetSpec) -> list[str]:
    """``sha256<TAB>size<TAB>path`` lines for ``spec``'s files, taken from a ``SHA256SUMS`` file.

    The hashes are the published ones from ``SHA256SUMS``; the sizes come
    from the files themselves (the quick check compares them).
    """
    prefix = f"./{spec.folder}/"
    rows = []
    for line in Path(sums_file).read_text(encoding="utf-8").splitlines():
        digest, _, path = line.partition("  ")
        path = path if path.startswith("./") else "./" + path
        if path.startswith(prefix):
            rel = path[len(prefix):]
            rows.append(f"{digest}\t{(spec.path(src_root) / rel).stat().st_size}\t{rel}")
    return sorted(rows, key=lambda r: r.split("\t", 2)[2])


def write_manifest(lines: list[str], out: Path, header: str) -> Path:
    """Write a gzipped manifest with a fixed timestamp, so regenerating it changes no byte."""
    text = "".join(f"# {h}\n" for h in header.splitlines()) + "".join(f"{line}\n" for line in lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return out


__all__ = [
    "DATASETS", "DatasetCheck", "IncompleteDownloadError", "UnsafeArchiveError", "check_dataset",
    "check_folder", "copy_from_folder", "copy_model", "download", "extract_into_place", "fetch_dataset",
    "fetch_model", "file_hash", "is_writable", "model_missing", "model_path", "safe_extract", "verify_file",
]
