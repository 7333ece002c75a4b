"""Lesson 04's text helpers: SST-2 loading, tokenization, batching, the classifier, caching, errors."""
from __future__ import annotations

import ast
import builtins
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import data_root

from tlcourse import config, probes, training
from tlcourse.labs import text_classification as lab
from tlcourse.errors import DataMissingError, ModelUnavailableError

MODEL = config.DEFAULT_TEXT_MODEL


@pytest.fixture
def sst_root(real_root):
    if not (real_root / "SST-2" / "dev.tsv").is_file():
        pytest.skip(f"SST-2 is not in {real_root}")
    return real_root


@pytest.fixture
def model_root(sst_root, monkeypatch):
    if not (sst_root / "models" / MODEL / "config.json").is_file():
        pytest.skip(f"{MODEL} is not in {sst_root}/models")
    monkeypatch.delenv("TLCOURSE_TEXT_MODEL", raising=False)
    return sst_root


@pytest.fixture(scope="module")
def tokenizer():
    """The default model's tokenizer, loaded once for the module (skips without the model)."""
    folder = data_root() / "models" / MODEL
    if not (folder / "config.json").is_file():
        pytest.skip(f"{MODEL} is not in {data_root()}/models")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


# --------------------------------------------------------------------------- data
def test_sst2_has_the_published_sizes_and_balance(sst_root):
    dev, train = lab.load_sst2("dev"), lab.load_sst2("train")
    assert dev.shape == (872, 2) and len(train) == 67349
    assert dev["label"].value_counts().to_dict() == {1: 444, 0: 428}
    assert train["label"].value_counts().to_dict() == {1: 37569, 0: 29780}
    assert not dev["sentence"].str.endswith(" ").any()
    assert any('"' in s or "'" in s for s in dev["sentence"])  # quotes read as text, not CSV quoting


def test_sst2_missing_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    with pytest.raises(DataMissingError, match="fetch_data.py sst2"):
        lab.load_sst2("dev")
    with pytest.raises(ValueError, match="test split has no labels"):
        lab.load_sst2("test")


def test_sample_is_repeatable_and_bounded(sst_root):
    dev = lab.load_sst2("dev")
    a, b, c = lab.sample(dev, 50, seed=3), lab.sample(dev, 50, seed=3), lab.sample(dev, 50, seed=4)
    assert a.equals(b) and not a.equals(c) and len(a) == 50
    assert len(lab.sample(dev, 10_000)) == 872 and len(lab.sample(dev, None)) == 872


# --------------------------------------------------------------------------- tokens and batches
def test_show_tokens_pads_truncates_and_masks(tokenizer):
    short = lab.show_tokens(tokenizer, "a gorgeous film .", max_len=8)
    assert short["token"].tolist()[:2] == ["[CLS]", "a"] and short["token"].tolist()[-1] == "[PAD]"
    assert len(short) == 8 and short["attention_mask"].tolist() == [1] * 6 + [0] * 2
    assert (short.loc[short["token"] == "[PAD]", "id"] == tokenizer.pad_token_id).all()
    cut = lab.show_tokens(tokenizer, "an unflinchingly bleak and desperate film , beautifully shot", max_len=6)
    assert len(cut) == 6 and cut["token"].tolist()[-1] == "[SEP]" and cut["attention_mask"].sum() == 6
    assert any(t.startswith("##") for t in lab.show_tokens(tokenizer, "unflinchingly", 10)["token"])


def test_dataset_returns_ids_mask_label_and_loader_pads_per_batch(tokenizer):
    sents = ["good", "a very long and rather tedious film about nothing at all", "bad .", "fine"]
    ds = lab.TokenizedText(sents, [1, 0, 0, 1], tokenizer, max_len=8)
    item = ds[1]
    assert set(item) == {"input_ids", "attention_mask", "labels"} and item["labels"].item() == 0
    assert len(item["input_ids"]) == 8 and ds.lengths[0] == 3  # [CLS] good [SEP]
    batches = list(lab.text_loader(ds, batch_size=2, shuffle=False))
    widths = [b["input_ids"].shape[1] for b in batches]
    assert widths == [8, 3], "long sentences together (longest batch first), each padded to its own longest"
    assert int(sum(b["attention_mask"].sum() for b in batches)) == sum(ds.lengths)


def test_length_batches_cover_every_index_once_and_follow_the_seed():
    lengths = [int(x) for x in torch.randint(1, 60, (500,), generator=torch.Generator().manual_seed(0))]
    torch.manual_seed(0)
    a = list(lab.LengthBatches(lengths, 16, shuffle=True, chunk=4))
    torch.manual_seed(0)
    b = list(lab.LengthBatches(lengths, 16, shuffle=True, chunk=4))
    assert a == b and sorted(i for batch in a for i in batch) == list(range(500))
    assert len(a) == len(lab.LengthBatches(lengths, 16)) == 32
    def spread(batches):
        return sum(max(lengths[i] for i in bt) - min(lengths[i] for i in bt) for bt in batches) / len(batches)

    random_batches = torch.randperm(500).split(16)
    assert spread(a) < 0.4 * spread([b.tolist() for b in random_batches]), "batches of similar length"


def test_token_cap_bounds_every_batch_and_len_matches_the_epoch():
    lengths = [int(x) for x in torch.randint(1, 64, (400,), generator=torch.Generator().manual_seed(1))]
    sampler = lab.LengthBatches(lengths, 16, shuffle=True, max_tokens=256)
    torch.manual_seed(0)
    n = len(sampler)  # draws this epoch's batches
    batches = list(sampler)
    assert len(batches) == n and sorted(i for b in batches for i in b) == list(range(400))
    assert all(len(b) * max(lengths[i] for i in b) <= 256 for b in batches)
    assert any(len(b) < 16 for b in batches) and max(len(b) for b in batches) == 16


# --------------------------------------------------------------------------- model
def test_resolve_model_prefers_the_data_root(model_root, monkeypatch):
    assert lab.resolve_model() == str(model_root / "models" / MODEL)
    assert lab.resolve_model("some-org/not-here") == "some-org/not-here"
    monkeypatch.setenv("TLCOURSE_TEXT_MODEL", "bert-base-uncased")
    assert lab.resolve_model() in ("bert-base-uncased", str(model_root / "models" / "bert-base-uncased"))


def test_missing_model_offline_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    import huggingface_hub.constants as hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)  # read once at import: set it where it is used
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty hub cache
    for load in (lab.load_tokenizer, lab.load_encoder):
        with pytest.raises(ModelUnavailableError) as info:
            load("bert-base-uncased")
        msg = str(info.value)
        assert "hf download bert-base-uncased" in msg and config.DEFAULT_TEXT_MODEL in msg
        assert "offline" in msg


def test_classifier_mean_pools_real_tokens_only(model_root, tokenizer):
    model = lab.TextClassifier(lab.load_encoder(), num_classes=2).eval()
    one = tokenizer(["a gorgeous film ."], return_tensors="pt")
    padded = tokenizer(["a gorgeous film .", "a much longer sentence that forces padding on the first"],
                       padding=True, return_tensors="pt")
    with torch.no_grad():
        alone = model(**one)
        in_batch = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"])
    assert in_batch.shape == (2, 2)
    torch.testing.assert_close(alone[0], in_batch[0], atol=1e-4, rtol=1e-4)  # padding changes nothing
    skip = lab.no_decay(model.encoder)  # the lesson's rule by name picks the same parameters in a BERT
    assert skip == {n for n, _ in model.encoder.named_parameters() if "bias" in n or "LayerNorm" in n}
    assert len(skip) == 2 + 6 * 10 + 1, "embeddings' LayerNorm; per layer 8 biases and 2 LayerNorm weights; pooler bias"
    frozen = lab.TextClassifier(lab.load_encoder(), freeze_encoder=True)
    assert lab.count_params(frozen, trainable_only=True) == 384 * 2 + 2
    assert 22_000_000 < lab.count_params(frozen) < 23_000_000


def test_embeddings_are_cached_on_disk(model_root, private_cache):
    feats, labels, rows = lab.sst2_embeddings("dev", n=24, max_len=32, progress=False)
    assert feats.shape == (24, 384) and labels.tolist() == rows["label"].tolist()
    files = list((private_cache / "text").glob("*.pt"))
    assert len(files) == 1 and "all-MiniLM-L6-v2" in files[0].name
    again, _, _ = lab.sst2_embeddings("dev", n=24, max_len=32, encoder=_Exploding(), progress=False)
    assert torch.equal(feats, again)


class _Exploding(torch.nn.Module):
    def forward(self, *a, **k):  # pragma: no cover - must not run
        raise AssertionError("the encoder ran although the features were cached")


def test_pretrained_encoder_passes_and_random_weights_fail_the_frozen_bar(model_root):
    """The lesson's frozen recipe on a small sample: random encoder weights miss the 0.75 bar."""
    tok = lab.load_tokenizer()
    scores = {}
    for pretrained in (True, False):
        kw = dict(max_len=48, tokenizer=tok, pretrained=pretrained, progress=False)
        train = lab.sst2_embeddings("train", n=600, seed=0, **kw)
        dev = lab.sst2_embeddings("dev", n=200, seed=0, **kw)
        clf = probes.fit_logreg(train[:2], C=0.1)
        scores[pretrained] = probes.accuracy(clf, *dev[:2])
    assert scores[False] < 0.75, scores  # the lesson's frozen bar
    assert scores[True] >= scores[False] + 0.12, scores


def test_fine_tune_trains_on_a_tiny_problem_and_reports_train_time(model_root, tokenizer):
    training.seed_everything(0)
    enc = lab.load_encoder()
    sents = ["great", "wonderful", "superb", "lovely", "awful", "terrible", "dreadful", "boring"] * 2
    ds = lab.TokenizedText(sents, [1, 1, 1, 1, 0, 0, 0, 0] * 2, tokenizer, max_len=8)
    model = lab.TextClassifier(enc)
    hist, secs = lab.fine_tune_classifier(model, lab.text_loader(ds, 8), lab.text_loader(ds, 16, shuffle=False),
                                epochs=3, lr=5e-5, head_lr=1e-2, progress=False, device=torch.device("cpu"))
    assert hist.epochs == 3 and len(secs) == 3 and all(0 < s <= t for s, t in zip(secs, hist.epoch_time))
    assert hist.val_acc[-1] == 1.0 and hist.lr[-1] < 5e-5 * 0.2  # the rate decayed towards 0
    probs = lab.predict_proba(model, ds)
    assert probs.shape == (16, 2) and (probs.argmax(1) == torch.tensor(ds.labels)).all()


def test_confident_mistakes_orders_by_confidence():
    probs = torch.tensor([[0.55, 0.45], [0.02, 0.98], [0.9, 0.1], [0.3, 0.7]])
    df = lab.confident_mistakes(["w1", "w2", "ok", "w3"], [1, 0, 0, 0], probs, k=2)
    assert df["sentence"].tolist() == ["w2", "w3"] and df["predicted"].tolist() == ["positive"] * 2
    assert df["confidence"].is_monotonic_decreasing


# --------------------------------------------------------------------------- the fine-tuning recipe (no model needed)
class _Toy(torch.nn.Module):
    """A stand-in for the lesson's classifier: ``encoder`` (with a LayerNorm) + masked mean + ``head``."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Embedding(20, 8), torch.nn.LayerNorm(8))
        self.head = torch.nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        m = attention_mask.unsqueeze(-1).float()
        return self.head((self.encoder(input_ids) * m).sum(1) / m.sum(1))


def _toy_batches(n_batches=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        ids = torch.randint(1, 20, (4, 5), generator=g)
        mask = (torch.rand(4, 5, generator=g) > 0.3).long()
        mask[:, 0] = 1
        out.append({"input_ids": ids, "attention_mask": mask, "labels": (ids[:, 0] > 10).long()})
    return out


def test_param_groups_skip_decay_on_bias_and_layernorm_and_give_the_head_its_rate():
    model = _Toy()
    groups = lab.adamw_groups(model, lr=2e-5, head_lr=1e-3, weight_decay=0.01)
    by_id = {id(p): g for g in groups for p in g["params"]}
    assert len(by_id) == sum(1 for _ in model.parameters()), "every parameter once"
    enc_emb, ln_w, ln_b = model.encoder[0].weight, model.encoder[1].weight, model.encoder[1].bias
    assert by_id[id(enc_emb)]["weight_decay"] == 0.01 and by_id[id(enc_emb)]["lr"] == 2e-5
    assert by_id[id(ln_w)]["weight_decay"] == by_id[id(ln_b)]["weight_decay"] == 0.0
    assert by_id[id(model.head.weight)]["lr"] == 1e-3 and by_id[id(model.head.bias)]["weight_decay"] == 0.0
    model.encoder.requires_grad_(False)
    assert {id(p) for g in lab.adamw_groups(model, 2e-5) for p in g["params"]} == {
        id(model.head.weight), id(model.head.bias)}, "frozen parameters are left out"


def test_fine_tune_is_the_lessons_loop_step_for_step():
    """The loop lesson 04 writes out (AdamW groups, library schedule, clipping) gives the same weights."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(0)
    helper, visible = _Toy(), _Toy()
    visible.load_state_dict(helper.state_dict())
    batches = _toy_batches()
    hist, _ = lab.fine_tune_classifier(helper, batches, batches, epochs=2, lr=0.05, head_lr=0.2, warmup=0.25,
                             max_grad_norm=0.5, progress=False, device=torch.device("cpu"))
    optimizer = torch.optim.AdamW(lab.adamw_groups(visible, 0.05, 0.2, 0.01), fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.25 * 12), 12)
    rates = []
    for _ in range(2):
        visible.train()
        for batch in batches:
            loss = torch.nn.functional.cross_entropy(visible(batch["input_ids"], batch["attention_mask"]),
                                                     batch["labels"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(visible.parameters(), 0.5)
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    for (name, a), b in zip(helper.state_dict().items(), visible.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert rates[0] == 0.0 and max(rates) == 0.05 and hist.lr[-1] == 0.0, "warm-up from 0, decay to 0"
    assert hist.epochs == 2 and 0 <= hist.val_acc[-1] <= 1
    with torch.no_grad():  # the val phase, by hand: mean cross-entropy and accuracy over all phrases
        visible.eval()
        logits = torch.cat([visible(b["input_ids"], b["attention_mask"]) for b in batches])
        labels = torch.cat([b["labels"] for b in batches])
    loss, acc = torch.nn.functional.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean()
    assert (loss, acc.item()) == pytest.approx((hist.val_loss[-1], hist.val_acc[-1]))


def test_fine_tune_clips_the_gradient_norm():
    torch.manual_seed(0)
    a, b = _Toy(), _Toy()
    b.load_state_dict(a.state_dict())
    batches = _toy_batches(2)
    kw = dict(epochs=1, lr=0.05, warmup=None, progress=False, device=torch.device("cpu"))
    lab.fine_tune_classifier(a, batches, batches, max_grad_norm=None, **kw)
    lab.fine_tune_classifier(b, batches, batches, max_grad_norm=1e-4, **kw)
    # Adam divides by the gradient's running scale, so clipping changes the steps but not by much
    assert not torch.equal(a.head.weight, b.head.weight)


# --------------------------------------------------------------------------- the lesson's exercises
LESSON = Path(__file__).resolve().parents[1] / "notebooks" / "04_text_classification.ipynb"


def _names(source: str) -> tuple[set[str], set[str], set[str]]:
    """(names a cell reads, names it binds, names it deletes), read with ``ast``."""
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    read, bound, deleted = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            {ast.Load: read, ast.Store: bound, ast.Del: deleted}[type(node.ctx)].add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return read, bound, deleted


def test_every_exercise_runs_on_the_lesson_cells_above_it_alone():
    """Issue 30: a solution reads only what the lesson's own cells above it left defined, never a name
    that only another exercise's solution binds (or one the lesson deleted: ``del X_train``)."""
    cells = [c for c in nbformat.read(LESSON, as_version=4).cells if c.cell_type == "code"]
    defined: set[str] = set(dir(builtins))
    solutions = 0
    for cell in cells:
        read, bound, deleted = _names(cell.source)
        if "solution" in cell.metadata.get("tags", []):
            solutions += 1
            missing = read - bound - defined
            assert not missing, f"exercise solution {solutions} needs {sorted(missing)}:\n{cell.source[:300]}"
        else:
            defined = (defined | bound) - deleted
    assert solutions >= 3
