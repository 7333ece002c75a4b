"""How fast the course runs, and how close it is to what the hardware can do.

    make benchmark                      # everything below (about 15 minutes on 2 cores)
    python benchmarks/run.py --only loop,cache
    python benchmarks/run.py --only notebooks --notebooks 00,01
    python benchmarks/run.py --only notebooks --profile full      # the lessons as designed
    python benchmarks/run.py --only notebooks --record             # also write benchmarks/recorded.json
    python benchmarks/run.py --only notebooks --profile full --stale --record   # make benchmark-full
    python benchmarks/run.py --only notebooks --standin --record   # ResNet-18 (random stand-in) times

Sections (each prints a small table):
  notebooks  wall time and peak memory of every notebook, quick (or --profile full), in order;
             --record keeps them in benchmarks/recorded.json, which the title cells must match
             (tests/test_recorded_times.py), each with the fingerprint of the code that ran
             (tools/lesson_fingerprint.py); --stale runs only the lessons whose recorded
             fingerprint no longer matches (tests/test_recorded_fingerprints.py); --standin runs
             the vision lessons with ResNet-18, the backbone a learner online gets, from seeded
             random weights (tests/standin.py): its times, not its accuracies
  loop       training throughput: the course's fit loop vs a bare forward+backward loop
  peer       the PyTorch tutorial's train_model loop vs training.fit, same model and recipe
  cache      one head-training epoch on cached features vs recomputing the backbone
  malloc     the same training step with glibc's default allocator vs the course's settings
  levers     channels_last, inference_mode, input resolution, decode-once caching, workers
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

RECORDED = REPO / "benchmarks" / "recorded.json"
#: recorded.json's section for the ResNet-18 stand-in runs ({profile: {lesson: entry}}).
STANDIN_KEY = "resnet18-standin"
TARGETS = {"notebooks_total_s": 600, "loop_ratio": 0.80, "cache_speedup": 50, "peak_gb": 2.0}


# --------------------------------------------------------------------------- helpers
def timed(fn, repeat: int = 3, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def table(title: str, rows: list[dict]) -> None:
    """Print rows as an aligned text table."""
    print(f"\n== {title}")
    if not rows:
        return
    cols = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(str(c).ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))


def in_subprocess(section: str, env: dict | None = None) -> dict:
    """Run one measurement in a fresh interpreter (fresh allocator, fresh caches)."""
    out = subprocess.run([sys.executable, __file__, "--child", section], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- notebooks
def run_notebook(path: Path, profile: str = "quick") -> dict:
    """Execute one notebook in a child process; wall time and the kernel's peak memory."""
    # tlcourse.infra.execute: nbclient waiting in 1 s slices (it missed a reply in lesson 05 and hung)
    code = ("import os, sys, nbformat; from tlcourse.infra.execute import execute; "
            "nb = nbformat.read(sys.argv[1], 4); "
            "execute(nb, cwd=sys.argv[2], timeout=int(os.environ.get('BENCH_CELL_TIMEOUT', '3600'))); "
            "import os; d = os.environ.get('BENCH_SAVE_DIR'); "
            "d and nbformat.write(nb, os.path.join(d, os.path.basename(sys.argv[1]))); "
            "errs = [o for cell in nb.cells for o in cell.get('outputs', []) if o.get('output_type') == 'error']; "
            "sys.exit(1 if errs else 0)")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(path), str(path.parent)],
                          capture_output=True, text=True, env={**os.environ, "TLCOURSE_PROFILE": profile})
    wall = time.perf_counter() - t0
    # ru_maxrss of waited-for descendants: the kernel is the largest of them.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ok = proc.returncode == 0
    if not ok:
        print(proc.stderr[-2000:], file=sys.stderr)
    return {"notebook": path.name, "ok": ok, "wall_s": round(wall, 1), "peak_mb_so_far": round(peak_mb)}


def run_standin(path: Path, profile: str) -> dict:
    """One vision lesson with ResNet-18 from seeded random weights: the time a learner online waits.

    Speed does not depend on the weights' values; the accuracy checks fail by design (every other
    cell must run, ``tests/standin.py``). Early stopping may stop at another epoch with random
    weights than with pretrained ones: recorded.json says so with each entry.
    """
    sys.path.insert(0, str(REPO / "tests"))
    import standin

    from tlcourse import config

    root = Path(os.environ["BENCH_STANDIN_DIR"])
    data = root / "data"
    if not data.exists():
        standin.make_standin_root(config.data_root(), data)
    t0 = time.perf_counter()
    cells = standin.run_notebook(path, data, root / "cache", profile=profile, timeout=3600)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    wrong = [c for c in cells if not c.ok]
    for c in wrong:
        print(f"{path.name} cell {c.index} ({c.first_line}): {c.error or 'a check passed with random weights'}",
              file=sys.stderr)
    return {"notebook": path.name, "ok": not wrong, "wall_s": round(wall, 1), "peak_mb_so_far": round(peak_mb)}


def recorded_section(profile: str, standin: bool = False) -> dict:
    """The recorded entries ({lesson: entry}) of one profile: EfficientNet-Lite0's, or the stand-in's."""
    recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    return (recorded.get(STANDIN_KEY, {}) if standin else recorded).get(profile, {})


def bench_notebooks(select: list[str] | None, profile: str = "quick", record: bool = False,
                    stale: bool = False, standin: bool = False) -> dict:
    from lesson_fingerprint import fingerprint, stale_parts

    paths = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if select:
        paths = [p for p in paths if p.name[:2] in select]
    if standin:
        sys.path.insert(0, str(REPO / "tests"))
        from test_resnet_standin import VISION_LESSONS

        paths = [p for p in paths if p.name[:2] in VISION_LESSONS]
        os.environ["BENCH_STANDIN_DIR"] = tempfile.mkdtemp(prefix="tlcourse-standin-")
    fingerprints = {p: fingerprint(p) for p in paths}
    if stale:
        section = recorded_section(profile, standin)
        why = {p: stale_parts(section.get(p.name[:2], {}).get("fingerprint"), fingerprints[p]) for p in paths}
        paths = [p for p in paths if why[p]]
        for p in paths:
            print(f"{p.name}: changed since its recorded {profile} run ({', '.join(why[p][:6])}"
                  + (", ..." if len(why[p]) > 6 else "") + ")")
        if not paths:
            print(f"every lesson matches its recorded {profile}-profile run: nothing to run")
    rows = []
    for p in paths:
        # one child per notebook so that ru_maxrss is that notebook's own peak
        row = in_subprocess(f"{'standin' if standin else 'notebook'}:{profile}:{p}")
        # a run records the code it ran: a lesson edited while it ran is not recorded
        row["fingerprint"] = fingerprints[p] if fingerprint(p) == fingerprints[p] else None
        rows.append(row)
    shown = [{k: v for k, v in r.items() if k != "fingerprint"} for r in rows]
    table(f"notebooks ({profile} profile{', ResNet-18 stand-in' if standin else ''}; "
          "peak = the kernel's max resident memory)", shown)
    total = sum(r["wall_s"] for r in rows)
    peak = max((r["peak_mb"] for r in rows), default=0)
    print(f"total {total:.0f} s (quick target <= {TARGETS['notebooks_total_s']} s); "
          f"largest peak {peak / 1024:.2f} GB (target <= {TARGETS['peak_gb']} GB)")
    if record:
        write_record(profile, rows, standin)
    return {"notebooks": rows, "total_s": total, "peak_gb": peak / 1024}


def write_record(profile: str, rows: list[dict], standin: bool = False) -> None:
    """Keep each lesson's measured wall time, peak and code fingerprint in ``benchmarks/recorded.json``.

    Only runs in which every cell passed (for the stand-in: every cell but the accuracy checks,
    which must fail) and whose code did not change while they ran are recorded.
    """
    import datetime

    import torch

    from tlcourse import config

    backbone = "resnet18" if standin else config.backbone_name()
    if backbone != "efficientnet_lite0" and not standin:
        raise SystemExit(f"recorded.json keeps EfficientNet-Lite0's runs (CI's backbone), not {backbone!r}: "
                         "set TLCOURSE_BACKBONE=efficientnet_lite0, or use --standin for ResNet-18")
    recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    lessons = (recorded.setdefault(STANDIN_KEY, {}) if standin else recorded).setdefault(profile, {})
    for r in rows:
        if not (r["ok"] and r["fingerprint"]):
            print(f"not recorded: {r['notebook']} ({'edited during the run' if r['ok'] else 'a cell failed'})")
            continue
        entry = {"notebook": r["notebook"], "wall_s": r["wall_s"], "peak_mb": r["peak_mb"],
                 "date": datetime.date.today().isoformat(), "backbone": backbone,
                 "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}", "fingerprint": r["fingerprint"]}
        if standin:
            entry["assumes"] = ("seeded random ResNet-18 weights: same work per epoch as the pretrained ones, "
                                "but early stopping may end at another epoch")
        lessons[r["notebook"][:2]] = entry
    RECORDED.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"recorded in {RECORDED.relative_to(REPO)}")


# --------------------------------------------------------------------------- training loops
def _vision_setup(size: int = 160, batch: int = 32, batches: int = 6, channels_last: bool = False):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from tlcourse import backbones, finetune

    torch.manual_seed(0)
    spec = backbones.get_spec("efficientnet_lite0")
    model = finetune.make_classifier(spec, 2, pretrained=False)
    x = torch.randn(batch * batches, 3, size, size)
    y = torch.randint(0, 2, (batch * batches,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return model, loader, opt


def _bare_epoch(model, loader, opt) -> None:
    import torch.nn.functional as F

    model.train()
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()


def child_loop(channels_last: bool = False) -> dict:
    import torch

    from tlcourse import training

    model, loader, opt = _vision_setup(channels_last=channels_last)
    n = len(loader.dataset)
    bare = timed(lambda: _bare_epoch(model, loader, opt))
    ours = timed(lambda: training.run_epoch(model, loader, torch.nn.CrossEntropyLoss(),
                                            torch.device("cpu"), opt, progress=True))
    return {"bare_img_s": round(n / bare, 1), "fit_img_s": round(n / ours, 1), "ratio": round(bare / ours, 3)}


def child_text_loop() -> dict:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from tlcourse import training

    torch.manual_seed(0)
    # MiniLM-L6's shape (6 layers, hidden 384); weights do not matter for speed.
    cfg = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    model = BertForSequenceClassification(cfg)
    ids = torch.randint(1000, 20000, (32 * 6, 48))
    batches = [{"input_ids": ids[i:i + 32], "attention_mask": torch.ones(32, 48, dtype=torch.long),
                "labels": torch.randint(0, 2, (32,))} for i in range(0, len(ids), 32)]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def bare() -> None:
        model.train()
        for b in batches:
            opt.zero_grad(set_to_none=True)
            out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            torch.nn.functional.cross_entropy(out.logits, b["labels"]).backward()
            opt.step()

    t_bare = timed(bare, repeat=2)
    t_ours = timed(lambda: training.run_epoch(model, batches, torch.nn.CrossEntropyLoss(),
                                              torch.device("cpu"), opt), repeat=2)
    n = len(ids)
    return {"bare_sent_s": round(n / t_bare, 1), "fit_sent_s": round(n / t_ours, 1), "ratio": round(t_bare / t_ours, 3)}


def bench_loop() -> dict:
    vision = in_subprocess("loop")
    text = in_subprocess("text_loop")
    table("fit loop vs bare forward+backward (synthetic inputs, same shapes, same process)", [
        {"task": "images 160px, efficientnet_lite0, batch 32", "bare /s": vision["bare_img_s"],
         "fit /s": vision["fit_img_s"], "fit/bare": vision["ratio"]},
        {"task": "sentences len 48, MiniLM-L6 shape, batch 32", "bare /s": text["bare_sent_s"],
         "fit /s": text["fit_sent_s"], "fit/bare": text["ratio"]},
    ])
    print(f"target: fit/bare >= {TARGETS['loop_ratio']}")
    return {"vision": vision, "text": text}


# --------------------------------------------------------------------------- cached features
def child_cache() -> dict:
    import torch
    from torch import nn

    from tlcourse import backbones, features, images, training, transforms

    spec = backbones.get_spec("efficientnet_lite0")
    size = 160
    feats, labels = features.hymenoptera_features(spec, "train", size=size, progress=False)
    head = nn.Linear(spec.feature_dim, 2)
    opt = torch.optim.SGD(head.parameters(), lr=1e-2, momentum=0.9)
    cached_loader = features.feature_loader(feats, labels)
    cpu = torch.device("cpu")
    cached = timed(lambda: training.run_epoch(head, cached_loader, nn.CrossEntropyLoss(), cpu, opt, progress=False),
                   repeat=5)
    net = backbones.remove_head(backbones.build(spec), spec).eval()
    train = images.hymenoptera("train", transforms.eval_transform(spec, size))

    def recompute() -> None:  # what an epoch costs if the frozen backbone runs every time
        f, y = features.extract_features(net, train, progress=False)
        training.run_epoch(head, features.feature_loader(f, y), nn.CrossEntropyLoss(), cpu, opt, progress=False)

    again = timed(recompute, repeat=1, warmup=0)
    return {"cached_s": cached, "recompute_s": again, "speedup": again / cached}


def bench_cache() -> dict:
    r = in_subprocess("cache")
    table("one head-training epoch on hymenoptera train (244 images, 160 px)", [
        {"epoch": "cached features", "seconds": f"{r['cached_s']:.4f}"},
        {"epoch": "recompute backbone", "seconds": f"{r['recompute_s']:.2f}"},
        {"epoch": "speed-up", "seconds": f"{r['speedup']:.0f}x (target >= {TARGETS['cache_speedup']}x)"},
    ])
    return r


# --------------------------------------------------------------------------- allocator
def child_step() -> dict:
    """Seconds per training step of efficientnet_lite0 at 160 px, batch 32 (median of 8)."""
    model, loader, opt = _vision_setup(batches=1)
    import torch.nn.functional as F

    x, y = next(iter(loader))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    seconds = timed(step, repeat=8, warmup=2)
    return {"step_s": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_malloc(runs: int) -> dict:
    glibc_default = {"MALLOC_MMAP_MAX_": "", "MALLOC_TRIM_THRESHOLD_": "", "MALLOC_ARENA_MAX": ""}
    course = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "17179869184", "MALLOC_ARENA_MAX": "1"}
    rows, result = [], {}
    for name, env in (("glibc default", glibc_default), ("course settings", course)):
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        clean.update({k: v for k, v in env.items() if v})
        times, peaks = [], []
        for _ in range(runs):
            out = subprocess.run([sys.executable, __file__, "--child", "step"], capture_output=True,
                                 text=True, env=clean, cwd=REPO, check=True)
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            times.append(measured["step_s"])
            peaks.append(measured["peak_mb"])
        result[name] = times
        rows.append({"allocator": name, "median s/step": f"{statistics.median(times):.3f}",
                     "min": f"{min(times):.3f}", "max": f"{max(times):.3f}",
                     "max/min": f"{max(times) / min(times):.2f}", "peak MB": f"{max(peaks):.0f}"})
    table(f"allocator: training step, {runs} fresh processes each", rows)
    return result


# --------------------------------------------------------------------------- levers
def child_levers() -> dict:
    import torch
    from torch.utils.data import DataLoader

    from tlcourse import backbones, images, transforms

    spec = backbones.get_spec("efficientnet_lite0")
    net = backbones.remove_head(backbones.build(spec), spec).eval()
    x = torch.randn(64, 3, 160, 160)
    out: dict[str, float] = {}
    with torch.no_grad():
        out["no_grad 160px"] = timed(lambda: net(x))
    with torch.inference_mode():
        out["inference_mode 160px"] = timed(lambda: net(x))
        out["inference_mode 224px"] = timed(lambda: net(torch.randn(64, 3, 224, 224)))
        out["inference_mode 128px"] = timed(lambda: net(torch.randn(64, 3, 128, 128)))
        cl = net.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        out["channels_last 160px"] = timed(lambda: cl(xc))
        net = net.to(memory_format=torch.contiguous_format)
    root = images.hymenoptera("train").root
    tf = transforms.eval_transform(spec, 160)
    files = sorted(root.rglob("*.jpg"))[:64]
    from torchvision.io import decode_jpeg, read_file

    out["decode 64 JPEGs full size (torchvision)"] = timed(
        lambda: [tf(decode_jpeg(read_file(str(f)))) for f in files], repeat=1)
    out["decode 64 JPEGs, PIL draft + resize (course)"] = timed(
        lambda: [tf(images.decode_image(f, 192)) for f in files], repeat=1)
    cached = images.hymenoptera("train", tf, short_side=192)
    out["64 cached tensors -> transform"] = timed(lambda: [cached[i] for i in range(64)], repeat=1)
    for workers in (0, 1, 2):
        loader = DataLoader(images.hymenoptera("train", transforms.train_transform(spec, 160)),
                            batch_size=32, num_workers=workers)
        out[f"augmenting loader epoch, {workers} workers"] = timed(lambda: [b for b in loader], repeat=1)
    return out


def bench_levers() -> dict:
    r = in_subprocess("levers")
    table("levers (seconds, median; forward passes are 64 images)", [{"what": k, "seconds": f"{v:.3f}"}
                                                                       for k, v in r.items()])
    return r


# --------------------------------------------------------------------------- peer
def _tutorial_train_model(model, dataloaders, criterion, optimizer, scheduler, num_epochs):
    """The PyTorch transfer-learning tutorial's ``train_model``, as it writes it (no tqdm, no AMP)."""
    import copy

    import torch

    sizes = {x: len(dataloaders[x].dataset) for x in ("train", "val")}
    best_wts, best_acc, epoch_s = copy.deepcopy(model.state_dict()), 0.0, []
    for _ in range(num_epochs):
        t0 = time.perf_counter()
        for phase in ("train", "val"):
            model.train() if phase == "train" else model.eval()
            running_loss, running_corrects = 0.0, 0
            for inputs, labels in dataloaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == "train":
                scheduler.step()
            acc = running_corrects.double().item() / sizes[phase]
            if phase == "val" and acc > best_acc:
                best_acc, best_wts = acc, copy.deepcopy(model.state_dict())
        epoch_s.append(time.perf_counter() - t0)
    model.load_state_dict(best_wts)
    return {"epoch_s": statistics.mean(epoch_s), "best_val": best_acc}


def child_peer(epochs: int = 3, size: int = 224) -> dict:
    """Same backbone, size, optimizer, schedule and epochs: the tutorial's loop vs ``training.fit``."""
    import torch
    from torch import nn
    from torchvision import datasets
    from torchvision import transforms as T

    from tlcourse import backbones, config, finetune, training

    spec = backbones.get_spec("efficientnet_lite0")
    norm = T.Normalize(spec.mean, spec.std)
    data_transforms = {
        "train": T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), norm]),
        "val": T.Compose([T.Resize(int(size * 256 / 224)), T.CenterCrop(size), T.ToTensor(), norm]),
    }
    root = config.data_root() / "hymenoptera_data"
    sets = {x: datasets.ImageFolder(root / x, data_transforms[x]) for x in ("train", "val")}
    loaders = {x: torch.utils.data.DataLoader(sets[x], batch_size=4, shuffle=True, num_workers=2)
               for x in ("train", "val")}
    out = {}
    for name in ("tutorial", "course"):
        torch.manual_seed(0)
        model = finetune.make_classifier(spec, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
        if name == "tutorial":
            out[name] = _tutorial_train_model(model, loaders, nn.CrossEntropyLoss(), opt, sched, epochs)
        else:
            train, val = finetune.hymenoptera_loaders(spec, size, batch_size=8)
            h = training.fit(model, train, val, opt, epochs, scheduler=sched, progress=False,
                             device=torch.device("cpu"))
            out[name] = {"epoch_s": statistics.mean(h.epoch_time), "best_val": h.best_val_acc}
    out["speedup"] = out["tutorial"]["epoch_s"] / out["course"]["epoch_s"]
    return out


def bench_peer() -> dict:
    r = in_subprocess("peer")
    table("the PyTorch tutorial's train_model vs training.fit (efficientnet_lite0, 224 px, SGD 0.001/0.9, "
          "StepLR 7/0.1, 3 epochs)", [
        {"loop": "tutorial: ImageFolder, decode every epoch, batch 4, 2 workers",
         "s/epoch": f"{r['tutorial']['epoch_s']:.1f}", "best val": f"{r['tutorial']['best_val']:.3f}"},
        {"loop": "course: training.fit, cached decoded images, batch 8",
         "s/epoch": f"{r['course']['epoch_s']:.1f}", "best val": f"{r['course']['best_val']:.3f}"},
        {"loop": "ratio (tutorial / course)", "s/epoch": f"{r['speedup']:.2f}x", "best val": ""},
    ])
    return r


# --------------------------------------------------------------------------- main
CHILDREN = {"loop": child_loop, "text_loop": child_text_loop, "cache": child_cache,
            "step": child_step, "levers": child_levers, "peer": child_peer}


def child(section: str) -> None:
    if section.startswith(("notebook:", "standin:")):
        kind, profile, path = section.split(":", 2)
        result = (run_standin if kind == "standin" else run_notebook)(Path(path), profile)
        result["peak_mb"] = result.pop("peak_mb_so_far")
    else:
        result = CHILDREN[section]()
    print(json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="notebooks,loop,peer,cache,malloc,levers")
    p.add_argument("--notebooks", default="", help="comma-separated lesson numbers, e.g. 00,03")
    p.add_argument("--profile", default="quick", choices=["quick", "full"], help="for the notebooks section")
    p.add_argument("--record", action="store_true", help="write notebook times to benchmarks/recorded.json")
    p.add_argument("--stale", action="store_true",
                   help="run only the lessons whose code changed since their recorded run of this profile")
    p.add_argument("--standin", action="store_true",
                   help="the vision lessons with ResNet-18 from seeded random weights (times only)")
    p.add_argument("--save", type=Path, help="keep each executed notebook (with outputs) in this folder")
    p.add_argument("--malloc-runs", type=int, default=4)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        os.environ["BENCH_SAVE_DIR"] = str(args.save.resolve())
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"MALLOC_MMAP_MAX_={os.environ.get('MALLOC_MMAP_MAX_', '(unset)')}, "
          f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '(unset)')}")
    results = {}
    only = args.only.split(",")
    if "notebooks" in only:
        results["notebooks"] = bench_notebooks([s for s in args.notebooks.split(",") if s], args.profile, args.record,
                                              stale=args.stale, standin=args.standin)
    if "loop" in only:
        results["loop"] = bench_loop()
    if "peer" in only:
        results["peer"] = bench_peer()
    if "cache" in only:
        results["cache"] = bench_cache()
    if "malloc" in only:
        results["malloc"] = bench_malloc(args.malloc_runs)
    if "levers" in only:
        results["levers"] = bench_levers()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
