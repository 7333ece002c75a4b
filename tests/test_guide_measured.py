"""The decision guide measured: recipe, cached frozen passes, partial fine-tune, verdicts (labs.choosing_a_strategy)."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from tlcourse import backbones, guide  # noqa: E402
from tlcourse.labs import choosing_a_strategy as gm  # noqa: E402
from tlcourse.labs.choosing_a_strategy import Recipe, Task  # noqa: E402

SPEC = backbones.get_spec("efficientnet_lite0")


# --------------------------------------------------------------------------- recipe and tasks
def test_recipe_steps_depths_and_cut():
    assert Recipe(min_steps=24, max_steps=40).steps_for(10) == 24
    assert Recipe(epochs=2, min_steps=10, max_steps=1000, batch_size=16).steps_for(1000) == 125
    assert Recipe(epochs=2, min_steps=10, max_steps=40, batch_size=16).steps_for(1000) == 40
    assert Recipe().depth_for(SPEC) == 6
    assert Recipe().depth_for(backbones.get_spec("resnet18")) == 3  # layer2 of 5 blocks
    assert Recipe(lower_depth=4).depth_for(backbones.get_spec("resnet18")) == 4
    assert Recipe(partial_blocks=1).cut_for(SPEC) == 8
    with pytest.raises(ValueError):
        Recipe(partial_blocks=9).cut_for(SPEC)


def test_tuned_sets_each_strategys_one_knob():
    base = Recipe(head_lr=1e-3, backbone_lr=1e-3, scratch_lr=1e-3, C=1.0)
    assert base.tuned("fixed features", 0.1) == Recipe(head_lr=1e-3, backbone_lr=1e-3, scratch_lr=1e-3, C=0.1)
    full = base.tuned("full fine-tune", 3e-4)
    assert (full.backbone_lr, full.head_lr, full.scratch_lr) == (3e-4, pytest.approx(3e-3), 1e-3)
    scratch = base.tuned("from scratch", 1e-2)
    assert (scratch.scratch_lr, scratch.head_lr, scratch.backbone_lr) == (1e-2, 1e-2, 1e-3)
    for strategy in gm.MEASURED_STRATEGIES:
        assert base.tuned(strategy, 0.5).knob(strategy) == 0.5
    with pytest.raises(ValueError):
        base.tuned("magic", 1.0)
    task = Task("mnist", 0.1, 32)
    # a tuned knob is part of the cache key; a tuning (holdout) run never shares a file with a real one
    assert (gm._run_path(task, 5, "from scratch", 0, scratch, SPEC)
            != gm._run_path(task, 5, "from scratch", 0, base, SPEC))
    held = Task("mnist", 0.1, 32, holdout=5)
    assert gm._run_path(held, 5, "from scratch", 0, base, SPEC) != gm._run_path(task, 5, "from scratch", 0, base, SPEC)


def test_best_rates_picks_the_best_holdout_score_per_task_and_strategy():
    table = pd.DataFrame({"task": ["mnist"] * 3 + ["hymenoptera"] * 3, "strategy": "full fine-tune",
                          "knob": [1e-3, 1e-4, 3e-4] * 2, "score": [0.5, 0.7, 0.7, 0.9, 0.1, 0.2]})
    assert gm.best_rates(table) == {("mnist", "full fine-tune"): 1e-4, ("hymenoptera", "full fine-tune"): 1e-3}


def test_task_label_follows_the_guide_threshold():
    assert Task("hymenoptera", 0.9, 96).label == "similar"
    assert Task("mnist", 0.1, 32).label == "dissimilar"
    assert Task("mnist_m", guide.SIMILAR_FROM, 32).label == "similar"


def test_cache_keys_ignore_settings_a_strategy_does_not_use():
    fast, slow = Recipe(max_steps=10), Recipe(max_steps=99, head_lr=0.5)
    task = Task("mnist", 0.1, 32)
    def path(strategy, recipe, size=5, seed=0):
        return gm._run_path(task, size, strategy, seed, recipe, SPEC)

    same = path("fixed features", fast) == path("fixed features", slow)
    assert same  # the feature strategies do not train with steps or learning rates
    assert path("full fine-tune", fast) != path("full fine-tune", slow)
    assert path("full fine-tune", fast) != path("full fine-tune", fast, seed=1)
    assert path("fixed features", fast) != path("fixed features", fast, size=6)


def test_cache_keys_follow_the_datas_fingerprint(tmp_path, monkeypatch):
    """A changed file in the task's dataset folder gives another entry (a stale result is never reused)."""
    root = tmp_path / "root"
    from tlcourse.infra.registry import DATASETS

    folder = DATASETS["mnist"].path(root)
    folder.mkdir(parents=True)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"digits")
    monkeypatch.setenv("TLCOURSE_DATA", str(root))
    task, recipe = Task("mnist", 0.1, 32), Recipe()
    path = lambda: gm._run_path(task, 5, "from scratch", 0, recipe, SPEC)  # noqa: E731
    before = path()
    assert path() == before
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"other digits")
    assert path() != before


# ------------------------------------------------- the cheap computations are the same computations
def test_frozen_pass_matches_truncate_and_top_blocks_match_the_whole_network():
    torch.manual_seed(0)
    model = backbones.build(SPEC, pretrained=False).eval()
    x = torch.randn(2, 3, 64, 64)
    pooled, maps = gm.frozen_pass(model, SPEC, x, cut=7, device=torch.device("cpu"))
    with torch.inference_mode():
        for depth in (3, 6, 9):
            expected = backbones.truncate(model, SPEC, depth).eval()(x)
            torch.testing.assert_close(pooled[depth], expected, rtol=1e-4, atol=1e-5)
        top = gm.TopBlocks(model, SPEC, cut=7, num_classes=3).eval()
        whole = backbones.replace_head(model, SPEC, 3, head=top.head).eval()
        torch.testing.assert_close(top(maps), whole(x), rtol=1e-4, atol=1e-5)
    assert all(p.requires_grad for p in top.parameters())
    assert backbones.count_params(top) < 0.5 * backbones.count_params(model)


def test_train_steps_recomputes_batchnorm_statistics_on_the_training_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(64, 3) + 10.0
    y = (x[:, 0] > 10).long()
    gm.train_steps(model, [{"params": model.parameters(), "lr": 1e-6}], (x, y), (x, y), steps=1, batch_size=8,
                   device=torch.device("cpu"))
    with torch.no_grad():
        h = model[0](x)
    # one step with momentum 0.1 would leave the running mean mostly at its initial 0
    torch.testing.assert_close(model[1].running_mean, h.mean(0), rtol=1e-3, atol=1e-3)


def test_finetune_and_partial_runs_learn_a_separable_toy_task():
    torch.manual_seed(0)
    x = torch.randn(40, 3, 64, 64)  # at 32 px EfficientNet pools a 1x1 map and the result is seed luck
    y = torch.arange(40) % 2
    x[y == 1, 0] += 3.0  # class 1: a red cast
    # 20 steps: with 10, seed 0 reached only 15 of 20 (0.75) after the run loop's shuffle changed;
    # 20 gave 0.9-1.0 on seeds 0-2
    recipe = Recipe(min_steps=20, max_steps=20, batch_size=8, head_lr=1e-2, backbone_lr=1e-3)
    acc = gm.finetune_run(SPEC, (x[:20], y[:20]), (x[20:], y[20:]), 2, "full fine-tune", recipe, seed=0,
                          device=torch.device("cpu"))
    assert acc >= 0.8  # 16 of 20 held-out images: chance (0.5) gets there with p < 1%
    model = backbones.build(SPEC, pretrained=False)
    _, maps = gm.frozen_pass(model, SPEC, x, cut=recipe.cut_for(SPEC), device=torch.device("cpu"))
    acc = gm.partial_run(model, SPEC, (maps[:20], y[:20]), (maps[20:], y[20:]), 2, recipe, seed=0,
                         device=torch.device("cpu"))
    assert acc >= 0.8


# --------------------------------------------------------------------------- reading results
def fake_results() -> pd.DataFrame:
    acc = {("similar", 5): [0.80, 0.70, 0.79, 0.65, 0.50], ("similar", 100): [0.85, 0.70, 0.90, 0.86, 0.55],
           ("dissimilar", 5): [0.50, 0.70, 0.45, 0.20, 0.10], ("dissimilar", 100): [0.70, 0.93, 0.60, 0.94, 0.12]}
    rows = [{"task": "hymenoptera" if s == "similar" else "mnist", "similarity": s, "per_class": n,
             "strategy": strat, "seed": 0, "accuracy": a, "train_images": n * (2 if s == "similar" else 10)}
            for (s, n), accs in acc.items() for strat, a in zip(gm.MEASURED_STRATEGIES, accs)]
    return pd.DataFrame(rows)


def test_compare_with_guide_finds_winners_and_verdicts():
    verdict = gm.compare_with_guide(fake_results(), {"similar": 0.9, "dissimilar": 0.1})
    v = verdict.set_index(["similarity", "per_class"])
    assert v.loc[("similar", 5), "winner"] == "fixed features" and v.loc[("similar", 5), "agrees"]
    # 100 per class is still "small" for the guide (< 1000): it says fixed features, partial FT wins by 0.05
    assert v.loc[("similar", 100), "guide says"] == "fixed features"
    assert not v.loc[("similar", 100), "agrees"] and v.loc[("similar", 100), "gap"] == pytest.approx(0.05)
    assert v.loc[("dissimilar", 100), "winner"] == "full fine-tune"
    assert v.loc[("dissimilar", 100), "agrees"]  # lower-layer features within 0.02 of the winner
    strict = gm.compare_with_guide(fake_results(), {"similar": 0.9, "dissimilar": 0.1}, tolerance=0.0)
    assert strict["agrees"].sum() == verdict["agrees"].sum() - 1
    text = gm.describe_agreement(verdict, {"similar": "ants"})
    assert text.count("\n") == 3 and "DISAGREES" in text and "ants, 5/class" in text


def test_large_sizes_get_the_guides_fine_tune_recommendations():
    table = fake_results().replace({"per_class": {100: 5000}})
    v = gm.compare_with_guide(table, {"similar": 0.9, "dissimilar": 0.1}).set_index(["similarity", "per_class"])
    assert v.loc[("similar", 5000), "guide says"] == "fine-tune"
    assert v.loc[("similar", 5000), "guide's acc"] == pytest.approx(0.90)  # the better of partial and full
    assert v.loc[("dissimilar", 5000), "guide says"] == "fine-tune all" and v.loc[("dissimilar", 5000), "agrees"]


def test_compare_with_guide_without_the_guide_strategy_says_not_measured():
    table = fake_results()
    table = table[table["strategy"] != "lower-layer features"]
    verdict = gm.compare_with_guide(table, {"similar": 0.9, "dissimilar": 0.1})
    assert verdict[verdict["similarity"] == "dissimilar"]["agrees"].isna().all()
    assert "not measured" in gm.describe_agreement(verdict)


def test_crossover_is_where_a_fine_tune_first_beats_the_features():
    table = fake_results()
    assert gm.crossover(table, "similar") == 100
    assert gm.crossover(table, "dissimilar") == 100
    no_win = table[~table["strategy"].isin(["partial fine-tune", "full fine-tune"])]
    assert gm.crossover(no_win, "similar") is None


def test_plots_and_summary_from_results():
    table = fake_results()
    verdict = gm.compare_with_guide(table, {"similar": 0.9, "dissimilar": 0.1})
    assert len(gm.plot_strategies(table, {"similar": "ants"}, verdict).axes) == 2
    assert len(gm.plot_at_size(table, 5, verdict).axes) == 1
    fig = gm.plot_measured_guide(verdict, {"similar": 0.9, "dissimilar": 0.1})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "the guide's pick lost here" in labels
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert set(texts) >= set(guide.STRATEGIES)  # the guide's four quadrants
    # one label per measured cell
    assert sorted(texts[4:]) == ["fixed", "full FT", "lower layers", "partial FT"]
    plt.close("all")
    summary = gm.summary_table(table)
    assert summary.loc[summary["method"] == "lower-layer features", "dissimilar, 100/class"].item() == 0.93
    assert {"method", "what it needs", "when to use it"} <= set(summary.columns)
    assert {"fixed features", "partial fine-tune", "full fine-tune", "from scratch"} <= set(summary["method"])


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown strategies"):
        gm.run_strategies([Task("mnist", 0.1, 32)], {"mnist": (2,)}, Recipe(), strategies=["magic"])


def test_strategy_runs_on_real_digits_are_complete_and_cached(real_root):
    """Every strategy on MNIST at a tiny scale; the second call trains nothing and returns the same."""
    task = Task("mnist", similarity=0.1, image_size=32, eval_images=40)
    recipe = Recipe(min_steps=1, max_steps=1, batch_size=4)
    first = gm.run_strategies([task], {"mnist": (1, 2)}, recipe, progress=False, device=torch.device("cpu"))
    assert first["strategy"].tolist() == list(gm.MEASURED_STRATEGIES) * 2 and not first["cached"].any()
    assert first["accuracy"].between(0, 1).all() and first["train_images"].tolist() == [10] * 5 + [20] * 5
    assert (first.loc[first["strategy"].isin(gm.FEATURE_STRATEGIES), "steps"] == 0).all()
    again = gm.run_strategies([task], {"mnist": (1, 2)}, recipe, progress=False)
    assert again["cached"].all()
    pd.testing.assert_series_equal(first["accuracy"], again["accuracy"])
    files = list(gm.results_dir().glob("run-*.json"))
    assert len(files) == 10 and "accuracy" in json.loads(files[0].read_text())
    # lower-layer features of pretrained weights already read digits far above chance (0.1)
    lower = first[(first["strategy"] == "lower-layer features") & (first["per_class"] == 2)]["accuracy"].item()
    assert lower >= 0.3


def test_tuning_scores_on_a_holdout_from_the_pool_never_on_the_eval_set(real_root):
    task = Task("mnist", similarity=0.1, image_size=32, eval_images=40)
    plain, held = gm.load_task(task, SPEC), gm.load_task(Task("mnist", 0.1, 32, eval_images=40, holdout=3), SPEC)
    assert held.eval[1].bincount().tolist() == [3] * 10 and len(held.pool[1]) == len(plain.pool[1]) - 30
    assert not torch.equal(held.eval[0][:3], plain.eval[0][:3])
    # every tuning image came from the pool: the eval set's images are in neither part
    flat = plain.pool[0].flatten(1)
    pool_rows = {hash(r.numpy().tobytes()) for r in flat}
    assert {hash(r.numpy().tobytes()) for r in held.pool[0].flatten(1)} <= pool_rows
    recipe = Recipe(min_steps=1, max_steps=1, batch_size=4)
    grid = {"fixed features": (0.1, 1.0), "from scratch": (1e-3, 1e-2)}
    tuned = gm.tune([task], grid, recipe, per_class={"mnist": 2}, holdout=3, progress=False,
                    device=torch.device("cpu"))
    assert len(tuned) == 4 and tuned["score"].between(0, 1).all() and not tuned["cached"].any()
    assert sorted(zip(tuned["strategy"], tuned["knob"])) == sorted((s, v) for s, vs in grid.items() for v in vs)
    rates = gm.best_rates(tuned)
    assert set(rates) == {("mnist", "fixed features"), ("mnist", "from scratch")}
    results = gm.run_strategies([task], {"mnist": (2,)}, recipe, strategies=list(grid), rates=rates,
                                progress=False, device=torch.device("cpu"))
    assert results.set_index("strategy")["knob"].to_dict() == {s: rates[("mnist", s)] for s in grid}
    assert gm.tune([task], grid, recipe, per_class={"mnist": 2}, holdout=3, progress=False)["cached"].all()
