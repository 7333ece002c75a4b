"""The one cache module: keys, versions, data roots, atomic and concurrent writes, RNG neutrality.

Every cached helper is called cold (it builds) and warm (it reads) from the same
random state: the results must be identical and the caller's random state after
the call must be the one it had before, in both cases.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import random
import time

import numpy as np
import pytest
import torch
from torch import nn

from tlcourse.infra import cache
from tlcourse import config


# --------------------------------------------------------------------------- helpers
def rng_snapshot() -> tuple:
    """What the next draws of Python, NumPy and PyTorch would be (compares the whole state)."""
    return (random.getstate(), np.random.get_state()[1].tobytes(), np.random.get_state()[2],
            torch.get_rng_state())


def same_state(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and a[1] == b[1] and a[2] == b[2] and torch.equal(a[3], b[3])


def equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if hasattr(a, "equals"):  # pandas
        return a.equals(b)
    return a == b


def cold_then_warm(call, expect_build=True):
    """Call twice from the same seeded state; both leave the state untouched and agree."""
    results = []
    for _ in range(2):
        random.seed(7), np.random.seed(7), torch.manual_seed(7)
        before = rng_snapshot()
        results.append(call())
        assert same_state(before, rng_snapshot()), "the call changed the caller's random state"
    assert equal(*results), "cold and warm calls gave different results"
    return results


def random_build():
    return {"x": torch.randn(4), "np": float(np.random.rand()), "py": random.random()}


# --------------------------------------------------------------------------- the module itself
def test_cold_and_warm_agree_and_leave_the_random_state_alone(private_cache):
    cold, warm = cold_then_warm(lambda: cache.cached("t", {"a": 1}, random_build))
    assert len(list((private_cache / "t").glob("*.pt"))) == 1
    with cache.rng_neutral(seed=0):  # the build ran with every generator seeded to 0
        assert equal(cold, random_build())


def test_the_key_holds_settings_version_and_data(tmp_path, private_cache):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("1")
    e = cache.Entry("t", {"a": 1}, data=[tmp_path / "d"])
    assert e.key == cache.Entry("t", {"a": 1}, data=[tmp_path / "d"]).key
    assert e.key != cache.Entry("t", {"a": 2}, data=[tmp_path / "d"]).key
    assert e.key != cache.Entry("t", {"a": 1}, data=[tmp_path / "d"], version=2).key
    (tmp_path / "d" / "b.txt").write_text("2")  # a new file in the data: a new key
    assert e.key != cache.Entry("t", {"a": 1}, data=[tmp_path / "d"]).key


def test_an_older_format_version_is_ignored_and_rebuilt(private_cache, monkeypatch):
    calls = []

    def build():
        calls.append(1)
        return torch.tensor([len(calls)])

    assert cache.cached("t", {"a": 1}, build, version=1).item() == 1
    assert cache.cached("t", {"a": 1}, build, version=1).item() == 1 and len(calls) == 1
    assert cache.cached("t", {"a": 1}, build, version=2).item() == 2  # the helper's version bumped
    monkeypatch.setattr(cache, "FORMAT", cache.FORMAT + 1)  # the module's layout changed
    assert cache.cached("t", {"a": 1}, build, version=2).item() == 3


def test_an_entry_whose_stored_settings_do_not_match_is_not_trusted(private_cache):
    old = cache.Entry("t", {"a": 1}, version=1)
    old.save(torch.tensor([1]))
    new = cache.Entry("t", {"a": 1}, version=2)
    os.replace(old.path, new.path)  # an old file under the new name (say, copied by hand)
    assert new.load() is cache.MISSING
    assert cache.cached("t", {"a": 1}, lambda: torch.tensor([2]), version=2).item() == 2


def test_a_truncated_entry_is_rebuilt_with_a_warning(private_cache):
    e = cache.Entry("t", {"a": 1})
    e.save(torch.arange(1000))
    e.path.write_bytes(e.path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable cache entry"):
        assert torch.equal(cache.cached("t", {"a": 1}, lambda: torch.arange(3)), torch.arange(3))


def test_another_data_root_is_not_used(tmp_path, monkeypatch, private_cache):
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "root-a"))
    cache.cached("t", {"a": 1}, lambda: torch.tensor([1]))
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "root-b"))
    assert cache.cached("t", {"a": 1}, lambda: torch.tensor([2])).item() == 2


def test_a_symlinked_data_root_shares_entries_but_keeps_its_path(tmp_path, monkeypatch, private_cache):
    (tmp_path / "share" / "set").mkdir(parents=True)
    (tmp_path / "share" / "set" / "f.txt").write_text("x")
    (tmp_path / "srv").symlink_to(tmp_path / "share", target_is_directory=True)
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "share"))
    cache.cached("t", {"a": 1}, lambda: torch.tensor([1]), data=[config.data_root() / "set"])
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "srv"))
    assert config.data_root() == tmp_path / "srv"  # printed and stored as given ...
    hit = cache.cached("t", {"a": 1}, lambda: torch.tensor([2]), data=[config.data_root() / "set"])
    assert hit.item() == 1  # ... and keyed by what it points to


def test_data_root_is_absolute_but_not_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    monkeypatch.setenv("TLCOURSE_DATA", "link")
    assert config.data_root() == tmp_path / "link"


def test_json_entries_keep_the_callers_layout(private_cache):
    e = cache.Entry("res", {"a": 1}, suffix=".json", name="experiment")
    e.save({"rows": [1, 2]})
    assert e.path.name.startswith("experiment-") and e.load() == {"rows": [1, 2]}
    assert '"rows"' in e.path.read_text()
    with pytest.raises(TypeError):
        e.save([1, 2])


# --------------------------------------------------------------------------- two processes at once
def _fill(cache_dir: str, log: str, queue, barrier) -> None:
    os.environ["TLCOURSE_CACHE"] = cache_dir

    def slow_build():
        with open(log, "a") as f:
            f.write(f"build {os.getpid()}\n")
        time.sleep(3)  # the other process arrives meanwhile and must wait (it says so after 2 s)
        return {"x": torch.arange(100_000), "who": os.getpid()}

    barrier.wait()  # both processes ask for the entry at the same moment
    value = cache.cached("race", {"a": 1}, slow_build)
    queue.put((os.getpid(), int(value["x"].sum()), value["who"]))


def _save_often(cache_dir: str, n: int) -> None:
    os.environ["TLCOURSE_CACHE"] = cache_dir
    entry = cache.Entry("race", {"b": 1})
    for _ in range(n):
        entry.save({"x": torch.arange(200_000), "who": os.getpid()})


def test_two_processes_filling_one_entry_both_succeed(private_cache, tmp_path, capfd):
    ctx = mp.get_context("spawn")
    queue, log, barrier = ctx.Queue(), tmp_path / "builds.log", ctx.Barrier(2)
    procs = [ctx.Process(target=_fill, args=(str(private_cache), str(log), queue, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    results = [queue.get(timeout=5) for _ in procs]
    builds, out = log.read_text().splitlines(), capfd.readouterr().out
    print(f"processes (pid, sum of x, built by): {results}\nbuild log: {builds}\nprinted: {out.strip()!r}")
    assert all(r[1] == sum(range(100_000)) for r in results)
    assert len(builds) == 1 and results[0][2] == results[1][2]  # one built, the other waited and read
    assert cache.Entry("race", {"a": 1}).load()["x"].sum() == sum(range(100_000))
    assert "Waiting for another process" in out


def test_concurrent_writes_never_leave_a_broken_entry(private_cache):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_save_often, args=(str(private_cache), 15)) for _ in range(2)]
    for p in procs:
        p.start()
    entry = cache.Entry("race", {"b": 1})
    seen = 0
    while any(p.is_alive() for p in procs):  # read while both write
        value = entry.load()
        if value is not cache.MISSING:
            assert value["x"].shape == (200_000,)
            seen += 1
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0] and entry.load()["x"].shape == (200_000,)
    assert not list((private_cache / "race").glob("*.tmp"))  # no temporary file left behind
    print(f"valid entry read {seen} times while two processes rewrote it 15 times each")


# --------------------------------------------------------------------------- every cached helper
def test_cached_image_folder_cold_equals_warm(tiny_folder):
    from tlcourse import images

    cold, warm = cold_then_warm(lambda: images.CachedImageFolder(tiny_folder).images)
    assert len(cold) == 5


def test_image_cache_follows_the_decoder_version(tiny_folder, monkeypatch, private_cache):
    from tlcourse import images

    images.CachedImageFolder(tiny_folder)
    monkeypatch.setattr(images, "DECODER_VERSION", images.DECODER_VERSION + 1)
    monkeypatch.setattr(images, "read_image",
                        lambda path, short_side: (torch.zeros(3, 2, 2, dtype=torch.uint8), (2, 2), "RGB"))
    assert images.CachedImageFolder(tiny_folder)[0][0].shape == (3, 2, 2)  # re-decoded, not the old entry
    assert len(list((private_cache / "images").glob("*.pt"))) == 2


@pytest.mark.parametrize("depth", [None, 2])
def test_hymenoptera_features_cold_equals_warm(fake_root, depth):
    from tlcourse import backbones, features

    spec = backbones.get_spec("efficientnet_lite0")
    cold, warm = cold_then_warm(lambda: features.hymenoptera_features(spec, "val", size=32, depth=depth,
                                                                      pretrained=False, progress=False))
    assert cold[0].shape[0] == 4 and cold[1].tolist() == [0, 0, 1, 1]


def test_features_by_depth_cold_equals_warm_and_match_full_depth(fake_root):
    from tlcourse import backbones, features

    spec = backbones.get_spec("efficientnet_lite0")
    (by_depth, y), _ = cold_then_warm(lambda: features.hymenoptera_by_depth(spec, "val", 32, pretrained=False,
                                                                          progress=False))
    full, y2 = features.hymenoptera_features(spec, "val", size=32, pretrained=False, progress=False)
    assert torch.equal(y, y2) and torch.allclose(by_depth[spec.num_blocks], full, atol=1e-5)


def test_feature_cache_is_per_data_root(fake_root, tmp_path, monkeypatch):
    from tlcourse import backbones, features
    from conftest import make_image_folder

    spec = backbones.get_spec("efficientnet_lite0")
    a = features.hymenoptera_features(spec, "val", size=32, pretrained=False, progress=False)[0]
    other = tmp_path / "other-root"
    make_image_folder(other / "hymenoptera_data" / "train", {"ants": 1, "bees": 1})
    make_image_folder(other / "hymenoptera_data" / "val", {"ants": 3, "bees": 1}, size=(30, 40))
    monkeypatch.setenv("TLCOURSE_DATA", str(other))
    b = features.hymenoptera_features(spec, "val", size=32, pretrained=False, progress=False)[0]
    assert a.shape[0] == 4 and b.shape[0] == 4 and not torch.equal(a, b)


def test_digits_cold_equals_warm(real_root):
    from tlcourse import digits

    (x, y), _ = cold_then_warm(lambda: digits.load_digits("usps", "test", 16))
    assert x.shape == (2007, 3, 16, 16)


def test_sentence_vectors_cold_equal_warm(real_root):
    from tlcourse.labs import text_classification

    if not (real_root / "models" / text_classification.config.DEFAULT_TEXT_MODEL / "config.json").is_file():
        pytest.skip("the text model is not in the data root")
    for pretrained in (True, False):
        (f, y, rows), _ = cold_then_warm(lambda: text_classification.sst2_embeddings("dev", n=6, pretrained=pretrained,
                                                                      progress=False))
        assert f.shape[0] == 6


def test_mixing_runs_cold_equal_warm():
    from tlcourse.labs import data_augmentation

    g = torch.Generator().manual_seed(0)
    pictures = [torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=g) for _ in range(8)]
    targets = [0, 1] * 4
    frozen = nn.Sequential(nn.Flatten())
    tail = nn.Linear(3 * 64, 2)
    val_x, val_y = torch.randn(6, 3 * 64, generator=g), torch.tensor([0, 1] * 3)
    to_float = lambda x: x.float() / 255  # noqa: E731
    run = lambda: data_augmentation.mixing_runs(frozen, tail, pictures, targets, val_x, val_y,  # noqa: E731
                                      {"none": (to_float, None)}, per_class=2, seeds=[0, 1], epochs=2,
                                      key="test", progress=False)
    df, _ = cold_then_warm(run)
    assert len(df) == 2


# --------------------------------------------------------------------------- atomic_write
def test_atomic_write_creates_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "a" / "b" / "x.pt"
    cache.atomic_write(target, lambda f: torch.save({"w": torch.ones(3)}, f))
    cache.atomic_write(target, lambda f: torch.save({"w": torch.zeros(3)}, f))
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.zeros(3))
    assert [p.name for p in target.parent.iterdir()] == ["x.pt"]


def test_atomic_write_that_fails_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.txt"
    cache.atomic_write(target, lambda f: f.write(b"old"))

    def half(f):
        f.write(b"half a fi")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.atomic_write(target, half)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    cache.atomic_write(tmp_path / "atomic", lambda f: f.write(b"1"))
    (tmp_path / "plain").write_bytes(b"1")
    assert (tmp_path / "atomic").stat().st_mode == (tmp_path / "plain").stat().st_mode
