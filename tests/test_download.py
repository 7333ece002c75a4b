"""Downloads, resumes, checksums, safe extraction and copies: offline, against a local HTTP server."""
from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import threading
import urllib.error
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tlcourse.infra import download as dl
from tlcourse.errors import ChecksumError, DataMissingError
from tlcourse.infra.registry import DATASETS, DatasetSpec, Download

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "course-data"
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every byte value: a wrong offset shows at once


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------- a local server
class Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours Range unless told not to; can drop a connection once."""

    def do_GET(self) -> None:
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = self._range_start(len(data))
        if start is None:
            return
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        drop = server.drop_after.pop(0) if server.drop_after else None
        self.wfile.write(body if drop is None else body[:drop])
        if drop is not None:  # announce the whole body, send part of it, hang up
            self.close_connection = True

    def _range_start(self, size: int) -> int | None:
        header = self.headers.get("Range")
        if not header or self.server.ignore_range:
            self.send_response(200)
            return 0
        start = int(header.removeprefix("bytes=").split("-")[0])
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        return start

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.files, srv.ranges, srv.drop_after, srv.ignore_range = {}, [], [], False
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def serve(srv, name: str, data: bytes) -> str:
    srv.files[f"/{name}"] = data
    return f"{srv.url}/{name}"


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------- download
def test_download_verifies_then_renames(server, tmp_path):
    url = serve(server, "data.bin", PAYLOAD)
    dest = dl.download(url, tmp_path / "data.bin", sha256=sha256(PAYLOAD), md5=md5(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert files_under(tmp_path) == ["data.bin"]  # no .part left behind


def test_checksum_mismatch_deletes_the_part_and_says_what_to_do(server, tmp_path):
    url = serve(server, "data.bin", PAYLOAD)
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        dl.download(url, tmp_path / "data.bin", sha256=wrong, progress=False)
    text = str(err.value)
    assert "data.bin" in text and wrong in text and sha256(PAYLOAD) in text
    assert "run the same command again" in text
    assert files_under(tmp_path) == []


def test_interrupted_download_keeps_only_the_part_then_resumes(server, tmp_path):
    url = serve(server, "data.bin", PAYLOAD)
    dest, half = tmp_path / "data.bin", len(PAYLOAD) // 2
    server.drop_after.append(half)
    with pytest.raises(dl.IncompleteDownloadError, match="resume"):
        dl.download(url, dest, sha256=sha256(PAYLOAD), progress=False)
    assert files_under(tmp_path) == ["data.bin.part"]
    assert dl.part_path(dest).stat().st_size == half

    dl.download(url, dest, sha256=sha256(PAYLOAD), progress=False)
    assert server.ranges == [None, f"bytes={half}-"]  # the second request asked for the rest only
    assert dest.read_bytes() == PAYLOAD and files_under(tmp_path) == ["data.bin"]


def test_server_that_ignores_range_restarts_from_zero(server, tmp_path):
    url = serve(server, "data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    dl.part_path(dest).write_bytes(PAYLOAD[:1000])
    server.ignore_range = True
    dl.download(url, dest, md5=md5(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD  # not 1000 bytes twice


@pytest.mark.parametrize("part_size", [1000, len(PAYLOAD)], ids=["short", "full-length"])
def test_a_corrupt_part_is_never_accepted(server, tmp_path, part_size):
    url = serve(server, "data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    dl.part_path(dest).write_bytes(b"\xff" * part_size)  # garbage from an earlier, broken run
    dl.download(url, dest, sha256=sha256(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges[-1] is None  # verified, rejected, then fetched again from zero


def test_a_corrupt_part_with_a_changed_server_file_fails_cleanly(server, tmp_path):
    url = serve(server, "data.bin", b"something else entirely")
    dest = tmp_path / "data.bin"
    dl.part_path(dest).write_bytes(b"\xff" * 5)
    with pytest.raises(ChecksumError):
        dl.download(url, dest, sha256=sha256(PAYLOAD), progress=False)
    assert files_under(tmp_path) == []


def test_offline_download_creates_nothing(tmp_path):
    with pytest.raises(urllib.error.URLError):
        dl.download("http://127.0.0.1:9/nothing", tmp_path / "deep" / "x.bin", md5="0" * 32, progress=False)
    assert files_under(tmp_path) == []


# --------------------------------------------------------------------------- extraction
def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize("bad", ["../evil.txt", "ok/../../evil.txt", "/tmp/tlcourse-evil.txt"])
def test_zip_members_leaving_the_target_are_refused(tmp_path, bad):
    archive = make_zip(tmp_path / "a.zip", {"good.txt": b"fine", bad: b"gotcha"})
    with pytest.raises(dl.UnsafeArchiveError, match="leaves the target"):
        dl.safe_extract(archive, tmp_path / "out")
    assert files_under(tmp_path / "out") == []  # checked before anything was written
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/tlcourse-evil.txt").exists()


@pytest.mark.parametrize("bad", [
    ("../evil.txt", b"x"),
    ("/tmp/tlcourse-evil.txt", b"x"),
    link("escape", "../../etc/passwd"),
    link("abs", "/etc/passwd"),
    link("hard", "../outside.txt", tarfile.LNKTYPE),
], ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out"])
def test_tar_members_leaving_the_target_are_refused(tmp_path, bad):
    archive = make_tar(tmp_path / "a.tar.gz", [("good.txt", b"fine"), bad])
    with pytest.raises(dl.UnsafeArchiveError):
        dl.safe_extract(archive, tmp_path / "out")
    assert files_under(tmp_path / "out") == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/tlcourse-evil.txt").exists()


def test_tar_link_inside_the_target_is_fine(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", [("d/real.txt", b"data"), link("d/alias.txt", "real.txt")])
    dl.safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "alias.txt").read_bytes() == b"data"


def test_single_gz_and_bz2_files_are_unpacked(tmp_path):
    import bz2
    import gzip

    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(b"gz data"))
    (tmp_path / "b.txt.bz2").write_bytes(bz2.compress(b"bz2 data"))
    dl.safe_extract(tmp_path / "a.txt.gz", tmp_path / "out")
    dl.safe_extract(tmp_path / "b.txt.bz2", tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"gz data"
    assert (tmp_path / "out" / "b.txt").read_bytes() == b"bz2 data"


def test_failed_extraction_leaves_no_folder_and_no_leftovers(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"toy/x.txt": b"x"})
    dest = tmp_path / "root" / "toy"

    def refuse(folder: Path) -> None:
        assert (folder / "x.txt").exists()  # the check sees the unpacked content ...
        raise ChecksumError("wrong")

    with pytest.raises(ChecksumError):
        dl.extract_into_place(archive, dest, subdir="toy", check=refuse)
    assert files_under(tmp_path / "root") == []  # ... but nothing is put in place


def test_extraction_replaces_an_incomplete_folder_atomically(tmp_path):
    dest = tmp_path / "root" / "toy"
    (dest / "stale").mkdir(parents=True)
    archive = make_zip(tmp_path / "a.zip", {"toy/x.txt": b"x"})
    dl.extract_into_place(archive, dest, subdir="toy")
    assert files_under(tmp_path / "root") == ["toy", "toy/x.txt"]


# --------------------------------------------------------------------------- whole datasets
def toy_spec(tmp_path: Path, url: str, files: dict[str, bytes], **download) -> DatasetSpec:
    """An archive dataset like hymenoptera: a zip with a top folder and a per-file manifest."""
    lines = [f"{sha256(data)}\t{len(data)}\t{rel}" for rel, data in sorted(files.items())]
    manifest = dl.write_manifest(lines, tmp_path / "toy.sha256.gz", "toy")
    return DatasetSpec(
        name="toy", folder="Toy", required=("a",), description="test", source=url,
        downloads=(Download(url, "toy.zip", extract=True, subdir="toy", **download),),
        manifest=str(manifest), integrity="per-file manifest",
    )


def test_fetch_dataset_unpacks_verifies_and_cleans_up(server, tmp_path):
    files = {"a/1.txt": b"one", "a/b/2.txt": b"two", "name with space.txt": b"3"}
    zipped = make_zip(tmp_path / "toy.zip", {f"toy/{k}": v for k, v in files.items()}).read_bytes()
    spec = toy_spec(tmp_path, serve(server, "toy.zip", zipped), files, md5=md5(zipped))
    root = tmp_path / "root"
    folder = dl.fetch_dataset(spec, root, progress=False)
    assert folder == root / "Toy" and spec.missing(root) == []
    assert dl.check_dataset(spec, root, full=True).ok
    assert files_under(root) == ["Toy", "Toy/a", "Toy/a/1.txt", "Toy/a/b", "Toy/a/b/2.txt",
                                 "Toy/name with space.txt"]  # the archive is gone once unpacked


def test_archive_whose_files_differ_from_the_manifest_is_not_put_in_place(server, tmp_path):
    files = {"a/1.txt": b"one"}
    zipped = make_zip(tmp_path / "toy.zip", {"toy/a/1.txt": b"ONE"}).read_bytes()  # same size, other bytes
    # no archive checksum: like hymenoptera
    spec = toy_spec(tmp_path, serve(server, "toy.zip", zipped), files)
    root = tmp_path / "root"
    with pytest.raises(ChecksumError, match="a/1.txt"):
        dl.fetch_dataset(spec, root, progress=False)
    assert spec.missing(root) == ["a"] and files_under(root) == [".downloads"]


def test_single_file_dataset_fetches_required_then_optional(server, tmp_path):
    required, optional = b"test split", b"train split"
    spec = DatasetSpec(
        name="digits", folder="D/raw", required=("test.bin",), description="", source="",
        downloads=(Download(serve(server, "test.bin", required), "test.bin", md5=md5(required)),
                   Download(serve(server, "train.bin", optional), "train.bin", md5=md5(optional), optional=True)),
        optional=("train.bin",),
    )
    root = tmp_path / "root"
    dl.fetch_dataset(spec, root, progress=False)
    assert spec.missing(root) == [] and spec.missing_optional(root) == ["train.bin"]
    dl.fetch_dataset(spec, root, include_optional=True, progress=False)
    assert files_under(root / "D" / "raw") == ["test.bin", "train.bin"]


def test_quick_check_sees_sizes_full_check_sees_bytes(tmp_path):
    if not (SHARED / "USPS").is_dir():
        pytest.skip(f"no prepared data root at {SHARED}")
    folder = dl.copy_from_folder("usps", SHARED, tmp_path)
    data = bytearray((folder / "usps.t.bz2").read_bytes())
    data[100] ^= 0xFF
    (folder / "usps.t.bz2").write_bytes(bytes(data))  # same size, one byte flipped
    assert dl.check_dataset("usps", tmp_path).ok
    full = dl.check_dataset("usps", tmp_path, full=True)
    assert not full.ok and "md5" in full.problems[0]
    (folder / "usps.t.bz2").write_bytes(bytes(data[:-10]))  # truncated
    assert "bytes, expected" in dl.check_dataset("usps", tmp_path).problems[0]


@pytest.mark.parametrize("name", ["usps", "sst2"])
def test_copy_from_the_prepared_root(tmp_path, name):
    if not DATASETS[name].path(SHARED).is_dir():
        pytest.skip(f"no prepared data root at {SHARED}")
    folder = dl.copy_from_folder(name, SHARED, tmp_path)
    spec = DATASETS[name]
    assert folder == spec.path(tmp_path) and spec.missing(tmp_path) == []
    assert dl.check_dataset(name, tmp_path, full=True).ok
    for rel in spec.required:
        assert (folder / rel).read_bytes() == (spec.path(SHARED) / rel).read_bytes()
    assert not any(p.name.endswith(".part") or p.name.startswith(".") for p in tmp_path.rglob("*"))
    assert os.stat(folder / spec.required[0]).st_mode & stat.S_IWUSR  # a copy is writable again


def test_copy_of_a_damaged_source_is_refused(tmp_path):
    src = tmp_path / "src"
    (src / "SST-2").mkdir(parents=True)
    for rel, entry in DATASETS["sst2"].manifest_entries().items():
        (src / "SST-2" / rel).write_bytes(b"x" * entry.size)  # right names and sizes, wrong bytes
    with pytest.raises(ChecksumError, match="train.tsv"):
        dl.copy_from_folder("sst2", src, tmp_path / "dst")
    assert DATASETS["sst2"].missing(tmp_path / "dst") == ["train.tsv", "dev.tsv"]
    assert files_under(tmp_path / "dst") == []


def test_copy_from_a_root_without_the_dataset_names_it(tmp_path):
    with pytest.raises(DataMissingError, match="USPS"):
        dl.copy_from_folder("usps", tmp_path / "empty", tmp_path / "dst")


# --------------------------------------------------------------------------- weights, permissions
def test_weights_fetch_offline_leaves_the_root_untouched(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(dl, "_open", offline)
    with pytest.raises(urllib.error.URLError):
        dl.fetch_weights("resnet18", tmp_path)
    assert files_under(tmp_path) == []


def test_read_only_folder_counts_as_read_only_even_for_root(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    assert dl.is_writable(folder / "sub" / "file")
    folder.chmod(0o555)
    try:
        assert not dl.is_writable(folder / "sub" / "file")
    finally:
        folder.chmod(0o755)
