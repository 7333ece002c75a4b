"""Text classification with a BERT-family encoder (lesson 04): SST-2, tokens, two ways to transfer.

* **Data**: GLUE SST-2 from the data root (:func:`load_sst2`), a random training
  subset (:func:`sample`), a :class:`TokenizedText` dataset that tokenizes every
  sentence once and returns ``input_ids``, ``attention_mask`` and ``labels``, and
  loaders that put sentences of similar length together (:class:`LengthBatches`),
  so that a batch is padded only to its own longest sentence.
* **Model**: :func:`load_tokenizer` / :func:`load_encoder` find the encoder in
  ``<data root>/models/<hub id>`` first, then on the Hugging Face hub, and raise
  :class:`~tlcourse.errors.ModelUnavailableError` with the fix when neither works.
  :class:`TextClassifier` = encoder + mean pooling + dropout + linear head.
* **Frozen encoder**: :func:`sst2_embeddings` runs the encoder once and caches the
  pooled sentence vectors on disk; a classifier is then trained on the table.
* **Fine-tuning**: :func:`fine_tune_classifier` is lesson 04's hand-written loop (section 7,
  ``make_optimizer`` and ``train_one_epoch``) with progress bars and a history: AdamW with
  :func:`adamw_groups` (no weight decay on biases and LayerNorm), ``transformers.get_linear_schedule_with_warmup``,
  gradient clipping; :func:`predict_proba` and :func:`confident_mistakes` read the errors.

Example:
    >>> tok = load_tokenizer()                                    # doctest: +SKIP
    >>> show_tokens(tok, "a gorgeous film .", max_len=8)["token"].tolist()  # doctest: +SKIP
    ['[CLS]', 'a', 'gorgeous', 'film', '.', '[SEP]', '[PAD]', '[PAD]']
    >>> mean_pool(torch.ones(1, 3, 2), torch.tensor([[1, 1, 0]])).tolist()
    [[1.0, 1.0]]
"""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from .. import config, training
from ..infra import registry
from ..backbones import count_params  # noqa: F401 (lesson 04 calls lab.count_params)
from ..infra.device import autocast, pick_device, seed_everything
from ..errors import CourseError, ModelUnavailableError

#: The larger BERT the lesson names for a GPU (110 M parameters, hidden size 768).
LARGER_MODEL = "bert-base-uncased"
#: SST-2's classes, in label order.
CLASSES = ("negative", "positive")


# --------------------------------------------------------------------------- data
def sst2_folder(root: Path | None = None) -> Path:
    """SST-2's folder in the data root (``train.tsv``, ``dev.tsv``), or a clear error saying how to get it."""
    return registry.require("sst2", root)


def load_sst2(split: str, root: Path | None = None) -> pd.DataFrame:
    """SST-2 ``split`` ('train': 67,349 phrases, 'dev': 872 sentences) as ``sentence, label`` rows.

    The files are ``sentence<TAB>label`` with a header; sentences hold quotes, so
    quoting is off. Trailing spaces of the GLUE files are removed.

    >>> load_sst2("dev").shape                                    # doctest: +SKIP
    (872, 2)
    """
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev' (the GLUE test split has no labels), got {split!r}")
    folder = sst2_folder(root)
    df = pd.read_csv(folder / f"{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False,
                     dtype={"sentence": str, "label": int})
    df["sentence"] = df["sentence"].str.strip()
    return df


def sample(df: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """``n`` random rows (all rows if ``n`` is None or larger than the table), index reset.

    >>> sample(pd.DataFrame({"sentence": list("abcd"), "label": [0, 1, 0, 1]}), 2).shape
    (2, 2)
    """
    if n is None or n >= len(df):
        return df.reset_index(drop=True)
    return df.sample(n=n, random_state=seed).reset_index(drop=True)


def show_tokens(tokenizer: Any, sentence: str, max_len: int) -> pd.DataFrame:
    """One row per position: token, id and attention mask, padded and truncated to ``max_len``.

    This is exactly what the model receives for ``sentence``: ``[CLS]`` first,
    ``[SEP]`` last, word pieces (``##``) in between, ``[PAD]`` (mask 0) up to ``max_len``.
    """
    enc = tokenizer(sentence, padding="max_length", truncation=True, max_length=max_len)
    ids = enc["input_ids"]
    return pd.DataFrame({"token": tokenizer.convert_ids_to_tokens(ids), "id": ids,
                         "attention_mask": enc["attention_mask"]})


class TokenizedText(Dataset):
    """Sentences and labels, tokenized once (truncated to ``max_len``, not padded).

    ``dataset[i]`` is a dict of 1-D tensors ``input_ids``, ``attention_mask`` and a
    scalar ``labels``; :func:`pad_collate` pads a batch to its longest sentence.

    >>> class Tok:  # a stand-in: one id per character, 101/102 around it
    ...     def __call__(self, texts, truncation, max_length):
    ...         ids = [[101] + [ord(c) for c in t][: max_length - 2] + [102] for t in texts]
    ...         return {"input_ids": ids}
    >>> ds = TokenizedText(["hello", "hi"], [1, 0], Tok(), max_len=4)
    >>> ds[0]["input_ids"].tolist(), ds.lengths
    ([101, 104, 101, 102], [4, 4])
    """

    def __init__(self, sentences: Sequence[str], labels: Sequence[int], tokenizer: Any,
                 max_len: int = 64) -> None:
        if len(sentences) != len(labels):
            raise ValueError(f"{len(sentences)} sentences but {len(labels)} labels")
        self.sentences, self.labels = list(sentences), [int(y) for y in labels]
        ids = tokenizer(self.sentences, truncation=True, max_length=max_len)["input_ids"]
        # One flat array + offsets: 67,349 phrases take 4 MB instead of ~100 MB of Python lists.
        self.lengths = [len(x) for x in ids]
        self._offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self._ids = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(self._offsets[-1]))
        self.max_len = max_len

    @classmethod
    def from_frame(cls, df: pd.DataFrame, tokenizer: Any, max_len: int = 64) -> "TokenizedText":
        """From a ``sentence, label`` table such as :func:`load_sst2` returns."""
        return cls(df["sentence"].tolist(), df["label"].tolist(), tokenizer, max_len)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(self._ids[self._offsets[i]:self._offsets[i + 1]])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),  # no padding yet: all 1
                "labels": torch.tensor(self.labels[i])}


def pad_collate(items: list[dict[str, torch.Tensor]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Stack a batch, padding ``input_ids`` with ``pad_id`` and the mask with 0 to the longest item.

    What 🤗 ``DataCollatorWithPadding`` does in lesson 04 (section 4), without needing the
    tokenizer: :class:`TokenizedText` items already hold tensors, so ``pad_sequence`` suffices.

    >>> b = pad_collate([{"input_ids": torch.tensor([5, 6, 7]), "attention_mask": torch.ones(3, dtype=torch.long),
    ...                   "labels": torch.tensor(1)},
    ...                  {"input_ids": torch.tensor([5]), "attention_mask": torch.ones(1, dtype=torch.long),
    ...                   "labels": torch.tensor(0)}])
    >>> b["input_ids"].tolist(), b["attention_mask"].tolist()
    ([[5, 6, 7], [5, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """
    ids = pad_sequence([it["input_ids"] for it in items], batch_first=True, padding_value=pad_id)
    mask = pad_sequence([it["attention_mask"] for it in items], batch_first=True, padding_value=0)
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.stack([it["labels"] for it in items])}


class LengthBatches(Sampler[list[int]]):
    """Batches of indices of similar length: far less padding than random batches.

    ``shuffle=False``: sorted by length, longest batch first (for evaluation;
    :func:`predict_proba` puts results back in dataset order; later, smaller batches
    then fit in the memory the first one freed). ``shuffle=True``: shuffled with the global
    torch RNG, cut into chunks of ``chunk × batch_size``, sorted by length within a
    chunk, and the batches shuffled again (``transformers``' Trainer calls this
    ``train_sampling_strategy="group_by_length"``).

    ``max_tokens`` caps a batch's padded size (sentences × longest length): batches
    of long sentences hold fewer of them, so the memory a training step needs stays
    bounded by the cap instead of by the longest sentences.

    >>> list(LengthBatches([3, 1, 2, 5], batch_size=2, shuffle=False))
    [[0, 3], [1, 2]]
    >>> list(LengthBatches([3, 1, 2, 5], batch_size=2, shuffle=False, max_tokens=6))
    [[3], [0], [1, 2]]
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True,
                 chunk: int = 50, max_tokens: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.lengths, self.batch_size, self.shuffle, self.chunk = list(lengths), batch_size, shuffle, chunk
        self.max_tokens = max_tokens
        self._planned: list[list[int]] | None = None  # the next epoch's batches, once drawn

    def _cut(self, ordered: list[int]) -> list[list[int]]:
        """Consecutive batches of ``ordered`` (sorted by length) within both limits."""
        batches: list[list[int]] = []
        for i in ordered:
            last = batches[-1] if batches else None
            if (last is None or len(last) >= self.batch_size or (self.max_tokens is not None and
                    (len(last) + 1) * max(self.lengths[i], self.lengths[last[-1]]) > self.max_tokens)):
                batches.append([i])
            else:
                last.append(i)
        return batches

    def _plan(self) -> list[list[int]]:
        if not self.shuffle:
            return self._cut(sorted(range(len(self.lengths)), key=self.lengths.__getitem__))[::-1]
        perm = torch.randperm(len(self.lengths)).tolist()
        size = self.chunk * self.batch_size
        batches = [b for start in range(0, len(perm), size)
                   for b in self._cut(sorted(perm[start:start + size], key=self.lengths.__getitem__))]
        return [batches[b] for b in torch.randperm(len(batches)).tolist()]

    def __len__(self) -> int:
        if self.max_tokens is None:
            return -(-len(self.lengths) // self.batch_size)
        if self._planned is None:  # with a token cap the count depends on the shuffle: draw it now
            self._planned = self._plan()
        return len(self._planned)

    def __iter__(self) -> Iterator[list[int]]:
        batches, self._planned = self._planned or self._plan(), None
        yield from batches


def text_loader(dataset: TokenizedText, batch_size: int = 32, shuffle: bool = True,
                pad_id: int = 0, max_tokens: int | None = None) -> DataLoader:
    """A loader over :class:`TokenizedText` with length-grouped batches and dynamic padding.

    ``max_tokens`` caps sentences × padded length per batch (see :class:`LengthBatches`).
    """
    sampler = LengthBatches(dataset.lengths, batch_size, shuffle, max_tokens=max_tokens)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=lambda items: pad_collate(items, pad_id))


# --------------------------------------------------------------------------- model
def resolve_model(name: str | None = None) -> str:
    """Where to load ``name`` from: a folder as it is, ``<data root>/models/<name>``, else the hub id.

    >>> resolve_model("/no/such/folder/x") == "/no/such/folder/x"
    True
    """
    name = (name or config.text_model_name()).strip()
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    local = config.data_root() / "models" / name
    return str(local) if (local / "config.json").is_file() else name


def _unavailable(name: str, exc: Exception) -> ModelUnavailableError:
    target = config.data_root() / "models" / name
    try:
        from huggingface_hub import is_offline_mode

        offline = is_offline_mode()
    except ImportError:  # older huggingface_hub
        offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes")
                      for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return ModelUnavailableError(
        f"The text model '{name}' is not available: it is not in {target} and could not be loaded "
        f"from the Hugging Face hub{' (offline mode is on)' if offline else ''} "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}).\n"
        f"With internet, either let transformers download it on first use, or save it for offline use:\n"
        f"    hf download {name} --local-dir {target}\n"
        + (f"Offline, point TLCOURSE_DATA at a data root that holds models/{name} (the course's "
           f"prepared data root does; {config.DEFAULT_TEXT_MODEL} works offline from there)."
           if name == config.DEFAULT_TEXT_MODEL else
           f"Offline, use the default '{config.DEFAULT_TEXT_MODEL}' (the course's data root ships it, so it "
           f"works offline): unset TLCOURSE_TEXT_MODEL or set it to that id."))


def load_tokenizer(name: str | None = None) -> Any:
    """The model's tokenizer (``AutoTokenizer``), from the data root if it is there."""
    from transformers import AutoTokenizer

    name = name or config.text_model_name()
    try:
        return AutoTokenizer.from_pretrained(resolve_model(name))
    except (OSError, ValueError) as exc:
        raise _unavailable(name, exc) from exc


def load_encoder(name: str | None = None, pretrained: bool = True, seed: int = 0) -> nn.Module:
    """The encoder (``AutoModel``): pretrained weights, or ``pretrained=False`` for random ones.

    Random weights come from the same architecture (``AutoModel.from_config``) with
    ``seed``, the baseline that shows how much the pretrained weights carry.
    """
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    name = name or config.text_model_name()
    where = resolve_model(name)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # no "loading weights" bar / unused-keys notices in the lesson
    hf_logging.disable_progress_bar()
    try:
        if pretrained:
            return AutoModel.from_pretrained(where)
        cfg = AutoConfig.from_pretrained(where)
        # The same random network; the CPU generator is put back afterwards. Not cache.rng_neutral:
        # torch.manual_seed also seeds the CUDA generators, which fork_rng(devices=[]) leaves seeded,
        # and lesson 04 fine-tunes right after this (dropout on the GPU, no reseed in between), so
        # restoring them as rng_neutral does would change the lesson's numbers on a GPU.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return AutoModel.from_config(cfg)
    except (OSError, ValueError) as exc:
        raise _unavailable(name, exc) from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors (B, T, H) over the real tokens (mask 1), padding left out.

    Summed in float32, also when the encoder ran in bfloat16 (autocast on a GPU).
    """
    m = mask.unsqueeze(-1).float()
    return (hidden.float() * m).sum(1) / m.sum(1).clamp(min=1e-9)


class TextClassifier(nn.Module):
    """Encoder → mean pooling over real tokens → dropout → linear head (``num_classes`` logits).

    Lesson 04 writes this class out in section 5 (its ``TextClassifier`` cell); this copy
    serves the control panel and the tests. ``freeze_encoder=True`` turns off the encoder's
    gradients (only the head trains).
    """

    def __init__(self, encoder: nn.Module, num_classes: int = 2, dropout: float = 0.1,
                 freeze_encoder: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)
        self.encoder.requires_grad_(not freeze_encoder)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled sentence vectors (B, hidden size)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                **_: Any) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask)))


# --------------------------------------------------------------------------- frozen encoder
@torch.inference_mode()
def embed(encoder: nn.Module, dataset: TokenizedText, batch_size: int = 32,
          device: torch.device | None = None, progress: bool = True,
          desc: str = "embedding") -> torch.Tensor:
    """Mean-pooled sentence vectors (N, hidden) of every item, in dataset order (encoder in eval mode)."""
    device = device or pick_device()
    encoder.to(device).eval()
    out = torch.empty(len(dataset), encoder.config.hidden_size)
    batches = list(LengthBatches(dataset.lengths, batch_size, shuffle=False))
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=pad_collate)
    for idx, batch in zip(batches, tqdm(loader, desc=desc, leave=False, disable=not progress)):
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        with autocast(device):
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        out[idx] = mean_pool(hidden, mask).cpu()
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)[-80:]


def sst2_embeddings(split: str, n: int | None = None, max_len: int = 64, seed: int = 0,
                    model_name: str | None = None, pretrained: bool = True, tokenizer: Any = None,
                    encoder: nn.Module | None = None, progress: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor, pd.DataFrame]:
    """Frozen-encoder features of SST-2 ``split`` (``n`` random rows), computed once, cached on disk.

    Returns ``(features (N, hidden), labels (N,), rows)``; the cache entry
    (:mod:`tlcourse.infra.cache`, in ``config.cache_dir()/text``) is keyed by the model, split,
    size, seed, ``max_len``, the SST-2 files and the model folder's files, so changing
    any of them computes new features. ``tokenizer`` and
    ``encoder`` may be passed in to avoid loading them again (they must match ``model_name``).

    >>> feats, labels, rows = sst2_embeddings("dev")              # doctest: +SKIP
    >>> feats.shape                                               # doctest: +SKIP
    torch.Size([872, 384])
    """
    model_name = model_name or config.text_model_name()
    rows = sample(load_sst2(split), n, seed)
    tag = f"{_slug(model_name)}-{'pre' if pretrained else f'rand{seed}'}-{split}-n{len(rows)}-s{seed}-L{max_len}"
    labels = torch.tensor(rows["label"].to_numpy())

    def build() -> torch.Tensor:  # run by tlcourse.infra.cache: the caller's random state stays untouched
        tok = tokenizer or load_tokenizer(model_name)
        enc = encoder or load_encoder(model_name, pretrained=pretrained, seed=seed)
        return embed(enc, TokenizedText.from_frame(rows, tok, max_len), progress=progress,
                     desc=f"embedding {split} ({len(rows)} sentences)")

    from ..infra import cache

    local_model = Path(resolve_model(model_name))  # a folder's files key the entry; a hub id by its name
    settings = dict(model=model_name, pretrained=pretrained, split=split, n=len(rows), seed=seed,
                    max_len=max_len)
    feats = cache.cached("text", settings, build, name=f"sst2-{tag}", version=2,
                         data=[registry.require("sst2"), *([local_model] if local_model.is_dir() else [])])
    return feats, labels, rows


# --------------------------------------------------------------------------- fine-tuning
def no_decay(module: nn.Module) -> set[str]:
    """Names of the parameters AdamW should not decay: every bias and the weights of LayerNorm layers.

    In a BERT these are exactly the names holding ``bias`` or ``LayerNorm`` (the rule the
    lesson writes); this version also finds LayerNorm layers named otherwise.

    >>> sorted(no_decay(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))))
    ['0.bias', '1.bias', '1.weight']
    """
    names = {n for n, _ in module.named_parameters() if n.endswith("bias")}
    for prefix, layer in module.named_modules():
        if isinstance(layer, nn.LayerNorm):
            names |= {f"{prefix}.{n}" if prefix else n for n, _ in layer.named_parameters(recurse=False)}
    return names


def adamw_groups(model: nn.Module, lr: float, head_lr: float | None = None, weight_decay: float = 0.01
                 ) -> list[dict[str, Any]]:
    """AdamW parameter groups of a model with ``encoder`` and ``head``: lesson 04's set-up.

    The encoder trains at ``lr``, the new head at ``head_lr`` (default ``lr``; a larger
    rate for the head is the course's choice, not the BERT paper's, which used one rate
    for all weights). Biases and LayerNorm weights get no weight decay (:func:`no_decay`),
    as in the BERT paper and 🤗 ``Trainer``. Frozen parameters are left out.

    >>> m = nn.Module(); m.encoder, m.head = nn.LayerNorm(4), nn.Linear(4, 2)
    >>> [(len(g["params"]), g["lr"], g["weight_decay"]) for g in adamw_groups(m, 2e-5, 1e-3)]
    [(2, 2e-05, 0.0), (1, 0.001, 0.01), (1, 0.001, 0.0)]
    """
    groups = []
    for part, rate in ((model.encoder, float(lr)), (model.head, float(head_lr or lr))):
        named, skip = [(n, p) for n, p in part.named_parameters() if p.requires_grad], no_decay(part)
        groups += [{"params": [p for n, p in named if n not in skip], "lr": rate, "weight_decay": weight_decay},
                   {"params": [p for n, p in named if n in skip], "lr": rate, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def fine_tune_classifier(model: nn.Module, train_loader: Iterable, val_loader: Iterable, epochs: int = 1,
              lr: float = 2e-5, head_lr: float | None = None, weight_decay: float = 0.01,
              warmup: float | None = 0.1, max_grad_norm: float | None = 1.0,
              callbacks: Iterable[Callable] = (), progress: bool = True,
              device: torch.device | None = None) -> tuple[training.History, list[float]]:
    """Train every layer: lesson 04's ``make_optimizer`` and ``train_one_epoch`` (section 7).

    The same steps as the lesson's visible loop (a check cell there shows that both give
    the same losses and weights for the same seed), plus progress bars, mixed precision
    on CUDA, a :class:`~tlcourse.training.History` and ``callbacks`` (live curves) after
    each epoch:

    * AdamW over :func:`adamw_groups` (``lr`` for the encoder, ``head_lr`` for the head,
      no decay on biases and LayerNorm), fused on CPU and CUDA (faster steps);
    * ``transformers.get_linear_schedule_with_warmup``: the rates grow linearly from 0
      over the first ``warmup`` share of the steps, then fall linearly to 0 at the last
      step, moved after every step (``warmup=None``: constant rates);
    * per step: forward, cross-entropy, ``backward``, ``clip_grad_norm_`` to
      ``max_grad_norm`` (None: no clipping), optimizer step, scheduler step, ``zero_grad``;
    * after each epoch, loss and accuracy on ``val_loader``.

    The loop itself is :func:`tlcourse.training.fit` (``step_scheduler``, ``clip_norm``):
    the course has one fit loop. ``model`` is called as ``model(input_ids=..., attention_mask=...)``
    on batches that are mappings with ``input_ids``, ``attention_mask`` and ``labels``. No copy of the best epoch's
    weights is kept (90 MB more for MiniLM, too much for a 2 GB notebook server): the
    model ends with the *last* epoch's weights, whose dev accuracy is ``history.val_acc[-1]``.
    Returns the history and the seconds of each epoch's *training* phase alone.
    """
    from transformers import get_constant_schedule, get_linear_schedule_with_warmup

    device = device or pick_device()
    model.to(device)
    # The fused kernel updates all weights in one pass: faster than the default loop over
    # tensors, which costs a good share of a training step for a model this small.
    optimizer = torch.optim.AdamW(adamw_groups(model, lr, head_lr, weight_decay),
                                  fused=device.type in ("cpu", "cuda"))
    total = epochs * len(train_loader)
    scheduler = (get_constant_schedule(optimizer) if warmup is None else
                 get_linear_schedule_with_warmup(optimizer, int(warmup * total), total))
    # The course's one fit loop, with the schedule stepped per step and the gradient clipped;
    # restore_best=False: no 90 MB copy of the best weights, the model ends with the last epoch's.
    history = training.fit(model, train_loader, val_loader, optimizer, epochs, step_scheduler=scheduler,
                           clip_norm=max_grad_norm, restore_best=False, device=device,
                           callbacks=callbacks, progress=progress)
    return history, history.train_time


@torch.inference_mode()
def predict_proba(model: nn.Module, dataset: TokenizedText, batch_size: int = 32,
                  device: torch.device | None = None) -> torch.Tensor:
    """Class probabilities (N, C) for every item, in dataset order."""
    device = device or next(model.parameters()).device
    batches = list(LengthBatches(dataset.lengths, batch_size, shuffle=False))
    logits, _ = training.predict(model, DataLoader(dataset, batch_sampler=batches, collate_fn=pad_collate), device)
    order = torch.tensor([i for b in batches for i in b])
    out = torch.empty_like(logits)
    out[order] = logits
    return out.softmax(1)


def confident_mistakes(sentences: Sequence[str], labels: Sequence[int] | torch.Tensor,
                       probs: torch.Tensor, k: int = 10) -> pd.DataFrame:
    """The ``k`` wrong predictions the model was surest of, most confident first.

    >>> p = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    >>> confident_mistakes(["a", "b", "c"], [1, 1, 0], p)["sentence"].tolist()
    ['a', 'c']
    """
    labels = torch.as_tensor(labels)
    conf, pred = probs.max(1)
    df = pd.DataFrame({"sentence": list(sentences), "true": [CLASSES[i] for i in labels.tolist()],
                       "predicted": [CLASSES[i] for i in pred.tolist()], "confidence": conf.numpy()})
    wrong = df[(pred != labels).numpy()]
    return wrong.sort_values("confidence", ascending=False).head(k).reset_index(drop=True)


def time_per_epoch(seconds: Sequence[float], n_train: int, n_full: int = 67349) -> dict[str, float]:
    """Mean measured seconds per training epoch, and the same scaled to ``n_full`` sentences.

    The scaled figure is an *estimate*: it assumes the cost grows in proportion to
    the number of training sentences (true for random subsets of one dataset).

    >>> time_per_epoch([10.0, 12.0], n_train=1000, n_full=10000)
    {'s_per_epoch': 11.0, 'full_train_s_per_epoch_est': 110.0}
    """
    per_epoch = float(np.mean(seconds)) if len(seconds) else float("nan")
    return {"s_per_epoch": per_epoch, "full_train_s_per_epoch_est": per_epoch * n_full / max(n_train, 1)}


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall clock)."""

    def __enter__(self) -> "Timer":
        self.start, self.seconds = time.perf_counter(), 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start


def check_model_name(name: str) -> str:
    """A non-empty model id or folder, else a clear error (used by the widgets)."""
    if not isinstance(name, str) or not name.strip():
        raise CourseError("Give a model: a Hugging Face hub id such as 'bert-base-uncased' or a folder.")
    return name.strip()


def run_approach(approach: str, model_name: str | None = None, lr: float = 2e-5, epochs: int = 1,
                 max_len: int = 64, n_train: int | None = 2000, batch_size: int = 16, seed: int = 0,
                 head_lr: float = 1e-3, max_tokens: int | None = 384, callbacks: Iterable[Callable] = (),
                 progress: bool = True) -> dict[str, Any]:
    """One experiment of the lesson's control panel: ``'frozen'`` or ``'fine-tune'`` on SST-2.

    ``frozen``: cached pooled features of ``n_train`` training sentences and the whole
    dev set, then logistic regression (``lr`` and ``epochs`` do not apply).
    ``fine-tune``: every layer trains with AdamW at ``lr`` (head at ``head_lr``) for
    ``epochs``, evaluated on the whole dev set after each epoch. Returns a dict with
    the dev accuracy, the seconds it took, and the history (fine-tuning only).
    """
    from ..probes import accuracy, fit_logreg

    if approach not in ("frozen", "fine-tune"):
        raise CourseError(f"approach must be 'frozen' or 'fine-tune', got {approach!r}")
    model_name = check_model_name(model_name or config.text_model_name())
    tokenizer = load_tokenizer(model_name)
    with Timer() as t:
        if approach == "frozen":
            kw = dict(max_len=max_len, model_name=model_name, tokenizer=tokenizer, progress=progress)
            train, dev = sst2_embeddings("train", n_train, seed=seed, **kw), sst2_embeddings("dev", **kw)
            acc, history = accuracy(fit_logreg(train[:2], C=0.1), *dev[:2]), None
        else:
            seed_everything(seed)
            rows = sample(load_sst2("train"), n_train, seed)
            model = TextClassifier(load_encoder(model_name))
            loaders = (text_loader(TokenizedText.from_frame(rows, tokenizer, max_len), batch_size,
                                   max_tokens=max_tokens),
                       text_loader(TokenizedText.from_frame(load_sst2("dev"), tokenizer, max_len), 32, False))
            history, _ = fine_tune_classifier(model, *loaders, epochs=epochs, lr=lr, head_lr=head_lr,
                                   callbacks=callbacks, progress=progress)
            acc = history.val_acc[-1]
    return {"approach": approach, "model": model_name, "dev_acc": acc, "seconds": t.seconds,
            "history": history}
