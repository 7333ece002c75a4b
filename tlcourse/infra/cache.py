"""The one disk cache behind every cache in the course (decoded images, features, results).

Every cached helper in ``tlcourse`` (decoded image folders, backbone features,
sentence vectors, digit tensors, experiment results) stores its entries
through this module, so all of them share the same four guarantees:

* **Right key.** An entry's file name is a hash of the helper's *settings*,
  the *identity of the data* it was built from (the data root's resolved
  path, and for each dataset folder or file it reads: the resolved path plus
  a listing of every file's name, size and modification time) and a *format
  version* (``FORMAT`` for the layout of this module, plus the helper's own
  ``version``, bumped whenever its preprocessing changes). Change any of
  them and the old entry is simply not found: it is rebuilt, never reused.
  The same settings are also stored *inside* the entry and compared on
  reading, so a file that does not match is ignored, not trusted.
* **Atomic writes.** An entry is written to a private temporary file in the
  same folder and moved into place with :func:`os.replace`: readers see the
  whole entry or nothing, even if the writer is interrupted.
* **Safe when shared.** Two kernels that fill the same entry at once (two
  learners on one JupyterHub, two lessons open together) take turns through
  a file lock (``filelock``, which PyTorch itself installs): the first builds,
  the second waits and then reads the finished entry.
* **RNG-neutral.** A build runs inside :func:`rng_neutral`: with Python's,
  NumPy's and PyTorch's generators seeded to 0, and the caller's states put
  back afterwards. A cold call (which builds) and a warm call (which reads)
  therefore leave the caller's random state exactly as they found it, and
  return the same values whoever built the entry first.

Where paths are resolved: :func:`tlcourse.config.data_root` returns the data
root as the learner gave it (made absolute, symlinks kept), so the paths the
course prints and stores are the ones the learner typed. Symlinks are
resolved only here, for the cache keys: a data root reached through a link
and the folder it points to share their entries.

Example:
    >>> import torch
    >>> def build():
    ...     return {"x": torch.randn(3)}        # random, but seeded inside the cache
    >>> state = torch.get_rng_state()
    >>> a = cached("doctest", {"n": 3}, build)   # cold: builds and stores
    >>> b = cached("doctest", {"n": 3}, build)   # warm: reads
    >>> torch.equal(a["x"], b["x"]), torch.equal(state, torch.get_rng_state())
    (True, True)
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, TypeVar

import numpy as np
import torch

from .. import config

_T = TypeVar("_T")

FORMAT = 2
"""Layout of the entries written by this module (1: the hand-written caches it replaced)."""

MISSING: Any = object()
"""Returned by :meth:`Entry.load` when there is no valid entry."""


# --------------------------------------------------------------------------- identity of the data
def fingerprint(path: str | Path) -> dict[str, Any]:
    """Identity of a file or folder: its resolved path and a hash of its file listing.

    The listing holds every file's relative path, size and modification time
    (folders are walked, following symlinks), so adding, removing, replacing or
    editing a file changes the fingerprint, while a path that reaches the same
    files through a symlink gives the same one. A path that does not exist has
    the fingerprint ``"absent"``.

    >>> fingerprint("/no/such/place")["files"]
    'absent'
    """
    path = Path(path).expanduser()
    resolved = path.resolve()
    if not resolved.exists():
        return {"path": str(resolved), "files": "absent"}
    h = hashlib.sha256()
    if resolved.is_file():
        st = resolved.stat()
        h.update(f"{st.st_size}|{st.st_mtime_ns}".encode())
        return {"path": str(resolved), "files": h.hexdigest()[:20]}
    n = 0
    for folder, dirs, files in os.walk(resolved, followlinks=True):
        dirs.sort()
        rel = os.path.relpath(folder, resolved)
        for name in sorted(files):
            try:
                st = os.stat(os.path.join(folder, name))
            except FileNotFoundError:  # a dangling link: part of the identity too
                h.update(f"{rel}/{name}|dangling\n".encode())
                continue
            h.update(f"{rel}/{name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            n += 1
    return {"path": str(resolved), "files": f"{n}:{h.hexdigest()[:20]}"}


def data_identity(*paths: str | Path) -> dict[str, Any]:
    """The data root's resolved path and the :func:`fingerprint` of each of ``paths``."""
    return {"root": str(config.data_root().resolve()), "inputs": [fingerprint(p) for p in paths]}


# --------------------------------------------------------------------------- random state
@contextmanager
def rng_neutral(seed: int | None = 0) -> Iterator[None]:
    """Run a block with Python's, NumPy's and PyTorch's generators seeded, then restore them.

    The caller's random state after the block is exactly the one before it,
    whatever the block draws; ``seed=None`` leaves the generators as they are
    inside the block (still restored afterwards). CUDA generators are saved and
    restored when CUDA is already in use; only the CPU generator is seeded.

    >>> import torch
    >>> before = torch.get_rng_state()
    >>> with rng_neutral():
    ...     _ = torch.randn(5)
    >>> torch.equal(before, torch.get_rng_state())
    True
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    try:
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                random.seed(seed)
                np.random.seed(seed)
                torch.random.default_generator.manual_seed(seed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


# --------------------------------------------------------------------------- atomic files
def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Create or replace the file ``path`` atomically: ``write(f)`` fills a binary file ``f``.

    ``f`` is a new temporary file in the same folder (created with the permissions a plain
    ``open(path, "wb")`` gives); once ``write`` returns it is flushed to disk and moved onto
    ``path`` with :func:`os.replace`. Readers therefore see the old file or the whole new
    one, never half of one, even if the writer is interrupted; if ``write`` raises, ``path``
    is left as it was and the temporary file is removed. Missing folders are created. The
    one atomic write of the course: cache entries (:meth:`Entry.save`) and training
    checkpoints (:func:`tlcourse.training.save_checkpoint`) go through it.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "new" / "hello.txt"
    >>> atomic_write(target, lambda f: f.write(b"hello"))
    >>> target.read_text()
    'hello'
    >>> atomic_write(target, lambda f: torch.save({"w": torch.ones(2)}, f))
    >>> torch.load(target, weights_only=True)
    {'w': tensor([1., 1.])}
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # a fresh private name; O_EXCL: never an existing file, mode 0o666 minus the umask
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see all of the file or none of it
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- entries
def _canonical(value: Any) -> Any:
    """``value`` as plain JSON data (paths and other objects by their ``str``)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-80:]


class Entry:
    """One cache entry: a file under ``config.cache_dir()/<kind>/`` named by its key.

    Args:
        kind: the cache's folder (``"features"``, ``"images"``, ...).
        settings: everything that decides the value (JSON-able; other objects by ``str``).
        data: files or folders the value is built from; their :func:`fingerprint` is in the key.
        version: the helper's own format version: bump it when its output changes.
        name: a readable start of the file name (the key's hash follows it).
        suffix: ``".pt"`` (``torch.save``, read with ``weights_only=True``) or ``".json"``
            (the value must be a dict; the entry's metadata is stored in it under ``"_cache"``).
    """

    def __init__(self, kind: str, settings: Mapping[str, Any], *, data: Iterable[str | Path] = (),
                 version: int = 1, name: str = "", suffix: str = ".pt") -> None:
        if suffix not in (".pt", ".json"):
            raise ValueError(f"suffix must be '.pt' or '.json', got {suffix!r}")
        self.kind, self.suffix = kind, suffix
        self.meta = _canonical({"format": FORMAT, "kind": kind, "version": version,
                                "settings": dict(settings), "data": data_identity(*data)})
        self.key = hashlib.sha256(json.dumps(self.meta, sort_keys=True).encode()).hexdigest()[:20]
        stem = f"{_slug(name)}-{self.key}" if name else self.key
        self.path = config.cache_dir() / kind / f"{stem}{suffix}"

    # reading and writing ---------------------------------------------------------------
    def load(self) -> Any:
        """The stored value, or :data:`MISSING` if there is no entry or it does not match."""
        if not self.path.exists():
            return MISSING
        try:
            if self.suffix == ".json":
                stored = json.loads(self.path.read_text())
                meta, value = stored.pop("_cache", None), stored
            else:
                stored = torch.load(self.path, map_location="cpu", weights_only=True)
                meta, value = stored.get("meta"), stored.get("value", MISSING)
        except Exception as exc:  # truncated by a crash of an old writer, another format ...
            warnings.warn(f"Ignoring unreadable cache entry {self.path} ({type(exc).__name__}); "
                          "it will be rebuilt.", stacklevel=3)
            return MISSING
        return value if meta == self.meta else MISSING

    def exists(self) -> bool:
        """True when a valid entry is stored (it is read to check)."""
        return self.load() is not MISSING

    def save(self, value: Any) -> None:
        """Write ``value`` atomically (:func:`atomic_write`): readers see all of the entry or none of it."""
        if self.suffix == ".json" and not isinstance(value, dict):
            raise TypeError(f"a JSON cache entry must be a dict, got {type(value).__name__}")

        def write(f: BinaryIO) -> None:
            if self.suffix == ".json":
                f.write(json.dumps({**value, "_cache": self.meta}, indent=1).encode())
            else:
                torch.save({"meta": self.meta, "value": value}, f)

        atomic_write(self.path, write)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this entry's file lock (says so when it has to wait for another process)."""
        from filelock import FileLock, Timeout

        locks = config.cache_dir() / ".locks"  # apart from the entries: globs over them see no lock files
        locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(locks / f"{self.kind}-{self.path.name}.lock"))
        try:
            lock.acquire(timeout=2)
        except Timeout:
            print(f"Waiting for another process to finish the cache entry {self.path.name} ...", flush=True)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def get_or_build(self, build: Callable[[], _T], use_cache: bool = True, seed: int | None = 0) -> _T:
        """The stored value, or ``build()`` run under :func:`rng_neutral` and stored.

        ``use_cache=False`` builds (and stores) even if an entry exists.
        """
        if use_cache:
            value = self.load()
            if value is not MISSING:
                return value
        with self.lock():
            if use_cache:
                value = self.load()  # another process may have built it while we waited
                if value is not MISSING:
                    return value
            with rng_neutral(seed):
                value = build()
            self.save(value)
        return value


def cached(kind: str, settings: Mapping[str, Any], build: Callable[[], _T], *,
           data: Iterable[str | Path] = (), version: int = 1, name: str = "", suffix: str = ".pt",
           use_cache: bool = True, seed: int | None = 0) -> _T:
    """``build()``'s value, computed once per key and then read from the cache.

    See :class:`Entry` for the arguments; the build runs under :func:`rng_neutral`.
    """
    return Entry(kind, settings, data=data, version=version, name=name,
                 suffix=suffix).get_or_build(build, use_cache=use_cache, seed=seed)
