"""Graders of lesson 04's exercises (how grading works: :mod:`tlcourse.exercises.grading`).

Both run on a tiny random BERT (``transformers.BertModel`` built from a small ``BertConfig``) and
on hand-made token ids: no tokenizer files, no data, no download.

Example:
    >>> import torch
    >>> def pad_batch(items, pad_id):
    ...     width = max(len(it["input_ids"]) for it in items)
    ...     ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    ...     mask = torch.zeros((len(items), width), dtype=torch.long)
    ...     for row, it in enumerate(items):
    ...         ids[row, :len(it["input_ids"])] = torch.tensor(it["input_ids"])
    ...         mask[row, :len(it["attention_mask"])] = torch.tensor(it["attention_mask"])
    ...     return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([it["labels"] for it in items])}
    >>> print(grade("04.6", pad_batch))  # doctest: +ELLIPSIS
    ✔ Exercise 04.6: on batches of 4, 3 and 1 items of different lengths (pad_id 3 and 0), ...
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn as nn

from .grading import Wrong, case, grade, grades  # noqa: F401  (grade: the doctest)

CLS_ID, SEP_ID, PAD_ID = 2, 3, 0  # the tiny BERT's special tokens; real tokens are ids 5 and up
VOCAB = 60


# --------------------------------------------------------------------------- 04.5 the [CLS] vector
def _tiny_bert(hidden: int) -> nn.Module:
    """A random BERT with 2 layers of width ``hidden``, dropout on, in training mode (as built)."""
    from transformers import BertConfig, BertModel  # imported here: only this lesson's checks need it

    config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=2 * hidden, max_position_embeddings=32, pad_token_id=PAD_ID)
    return BertModel(config)


def _sentences(lengths: list[int], seed: int) -> list[dict[str, Any]]:
    """Items like lesson 04's ``TextDataset``: ``[CLS] ... [SEP]`` ids, a mask of ones, a label."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i, n in enumerate(lengths):
        ids = [CLS_ID, *torch.randint(5, VOCAB, (n - 2,), generator=g).tolist(), SEP_ID]
        items.append({"input_ids": ids, "attention_mask": [1] * n, "labels": i % 2})
    return items


def _pad(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The loader's collate function: right padding to the batch's longest item (the solution of 04.6)."""
    width = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, it in enumerate(items):
        ids[row, :len(it["input_ids"])] = torch.tensor(it["input_ids"])
        mask[row, :len(it["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([it["labels"] for it in items])}


@torch.no_grad()
def _poolings(encoder: nn.Module, batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """What the usual mistakes return, in eval mode, batch by batch, concatenated."""
    was_training = encoder.training
    encoder.eval()
    out: dict[str, list[torch.Tensor]] = {}
    for b in batches:
        masked = encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        unmasked = encoder(input_ids=b["input_ids"])
        m = b["attention_mask"].unsqueeze(-1).float()
        last_real = b["attention_mask"].sum(1) - 1
        for name, value in {
            "cls, no mask": unmasked.last_hidden_state[:, 0],
            "masked mean": (masked.last_hidden_state * m).sum(1) / m.sum(1),
            "mean": masked.last_hidden_state.mean(1),
            "mean, no mask": unmasked.last_hidden_state.mean(1),
            "pooler": masked.pooler_output,
            "pooler, no mask": unmasked.pooler_output,
            "last position": masked.last_hidden_state[:, -1],
            "last position, no mask": unmasked.last_hidden_state[:, -1],
            "last real token": masked.last_hidden_state[torch.arange(len(last_real)), last_real],
        }.items():
            out.setdefault(name, []).append(value)
    encoder.train(was_training)
    return {name: torch.cat(parts) for name, parts in out.items()}


@torch.no_grad()
def _one_by_one(encoder: nn.Module, items: list[dict[str, Any]]) -> torch.Tensor:
    """The [CLS] vector of each sentence run alone (no padding at all), in eval mode."""
    was_training = encoder.training
    encoder.eval()
    rows = [encoder(input_ids=torch.tensor([it["input_ids"]])).last_hidden_state[0, 0] for it in items]
    encoder.train(was_training)
    return torch.stack(rows)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def _which_pooling(got: torch.Tensor, pooled: dict[str, torch.Tensor]) -> str | None:
    """The learner-facing name of the mistake whose vectors ``got`` equals, if any."""
    said = {
        "masked mean": "the mean of the token vectors (mean pooling, the lesson's `embed`); this exercise asks "
                       "for the [CLS] vector, last_hidden_state[:, 0]",
        "mean": "the mean of the token vectors, padding included; this exercise asks for the [CLS] vector, "
                "last_hidden_state[:, 0]",
        "mean, no mask": "the mean of the token vectors (and without the attention mask); this exercise asks for "
                         "the [CLS] vector, last_hidden_state[:, 0]",
        "pooler": "pooler_output: the [CLS] vector after BERT's extra dense layer + tanh; this exercise asks for "
                  "the [CLS] vector itself, last_hidden_state[:, 0]",
        "pooler, no mask": "pooler_output (and without the attention mask); this exercise asks for the [CLS] "
                           "vector itself, last_hidden_state[:, 0]",
        "last position": "the vector of the last position, last_hidden_state[:, -1]; [CLS] is the first token: "
                         "last_hidden_state[:, 0]",
        "last position, no mask": "the vector of the last position, last_hidden_state[:, -1]; [CLS] is the first "
                                  "token: last_hidden_state[:, 0]",
        "last real token": "the vector of each sentence's last token ([SEP]); [CLS] is the first token: "
                           "last_hidden_state[:, 0]",
    }
    for name, words in said.items():
        if _close(got, pooled[name]):
            return words
    return None


def _check_cls(answer: Callable, hidden: int, lengths: list[int], batch_size: int, seed: int) -> None:
    from torch.utils.data import DataLoader

    encoder = _tiny_bert(hidden)  # in training mode, as a freshly built nn.Module is
    items = _sentences(lengths, seed)
    loader = DataLoader(items, batch_size=batch_size, collate_fn=_pad)  # yields input_ids, attention_mask, labels
    batches = list(loader)
    n, where = len(items), f"the {len(items)} sentences the loader yields (in {len(batches)} batches)"
    alone = _one_by_one(encoder, items)
    pooled = _poolings(encoder, batches)

    got = answer(encoder, loader)
    if isinstance(got, (list, tuple)) and got and all(isinstance(t, torch.Tensor) for t in got):
        raise Wrong(f"you returned a {type(got).__name__} of {len(got)} tensors; join them into one tensor of "
                    f"shape ({n}, {hidden}) with torch.cat")
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"you returned a {type(got).__name__}; return one tensor of shape ({n}, {hidden}): "
                    "one [CLS] vector per sentence")
    shape = tuple(got.shape)
    if got.dim() == 3:
        raise Wrong(f"you returned shape {shape}, one vector per token; keep only the [CLS] position of each "
                    "sentence: last_hidden_state[:, 0]")
    if got.dim() != 2 or shape[1] != hidden:
        raise Wrong(f"you returned shape {shape}; expected ({n}, {hidden}) = (sentences, hidden size)")
    if shape[0] != n:
        raise Wrong(f"you returned {shape[0]} vector(s) for {where}: one row per sentence, every batch's "
                    "vectors concatenated in the loader's order")
    keeps_gradients = got.requires_grad
    got = got.detach().float().cpu()
    if not _close(got, alone):
        if encoder.training:
            raise Wrong("your vectors are not the [CLS] vectors with dropout off, and the encoder is still in "
                        "training mode after your call: call encoder.eval() first (dropout changes every "
                        "vector at random)")
        mistake = _which_pooling(got, pooled)
        if mistake:
            raise Wrong(f"you returned {mistake}")
        if _close(got, pooled["cls, no mask"]):
            i = next((i for i in range(n) if not _close(alone[i], pooled["cls, no mask"][i])), 0)
            raise Wrong(f"sentence {i} ({lengths[i]} tokens, padded in its batch) gets a different [CLS] vector "
                        "than when it runs alone: pass the batch's attention_mask to the encoder so that it "
                        "ignores the padding")
        if _close(torch.sort(got, dim=0).values, torch.sort(alone, dim=0).values):
            raise Wrong("your rows are the right [CLS] vectors in another order; keep the loader's order "
                        "(row i = sentence i), so the labels still line up")
        i = int((got - alone).abs().amax(1).argmax())
        raise Wrong(f"the vector of sentence {i} differs from last_hidden_state[:, 0] of that sentence run alone "
                    f"by up to {(got[i] - alone[i]).abs().max():.3g}")
    if keeps_gradients:
        raise Wrong("your vectors are right but carry gradients (requires_grad=True): the encoder is frozen "
                    "here, so compute them under torch.no_grad() or torch.inference_mode() (without it every "
                    "batch keeps its activations in memory)")


@grades("04.5", "cls_vectors")
def cls_vectors(answer) -> str:
    """``answer(encoder, loader)`` returns the [CLS] vector (``last_hidden_state[:, 0]``) of every
    sentence the loader yields, in order, as one ``(sentences, hidden size)`` tensor; in eval mode,
    without gradients, and the same as each sentence run alone (the padding is masked)."""
    for hidden, lengths, batch_size, seed in ((32, [5, 9, 3, 7, 4, 8, 6], 3, 0), (48, [6, 3, 10, 4, 7], 4, 1)):
        with case(f"on a random tiny BERT (hidden size {hidden}) and a loader of {len(lengths)} padded sentences"):
            _check_cls(answer, hidden, lengths, batch_size, seed)
    return ("on two random tiny BERTs (hidden size 32 and 48), starting in training mode, your function returns "
            "the [CLS] vector of every sentence in the loader's order, with dropout off and padding masked (the "
            "same vectors as each sentence run alone), and no gradients; which pooling suits MiniLM is yours "
            "to read from the two accuracies below")


# --------------------------------------------------------------------------- 04.6 the collate function
def _short(values: list[int], keep: int = 12) -> str:
    return str(values) if len(values) <= keep else f"[{', '.join(map(str, values[:keep]))}, ...]"


def _check_row(name: str, i: int, row: list[int], real: list[int], pad: int, pad_id: int) -> None:
    """Row ``i`` of ``name`` should be the item's ``real`` values, then ``pad`` up to the batch's width."""
    k = len(row) - len(real)
    if row == real + [pad] * k:
        return
    what = "pad_id" if name == "input_ids" else "0"
    if k and row == [pad] * k + real:
        raise Wrong(f"row {i} of {name} is padded on the left ({_short(row)}); pad on the right: the item's "
                    f"{len(real)} values first, then {what}, as BERT's positions count from the first token")
    if row[:len(real)] == real and len(set(row[len(real):])) == 1:
        used = row[-1]
        if name == "input_ids":
            raise Wrong(f"input_ids is padded with {used}; pad it with pad_id ({pad_id} here: the "
                        "tokenizer's pad_token_id, the id of [PAD])")
        if used == pad_id:
            raise Wrong(f"attention_mask is padded with {used}, the pad_id; pad the mask with 0 whatever the "
                        "pad_id: 0 marks the positions the model must ignore")
        raise Wrong(f"attention_mask is {used} on the padding of row {i}; pad it with 0, or the model attends "
                    "to the [PAD] tokens")
    raise Wrong(f"row {i} of {name} is {_short(row)}; expected {_short(real + [pad] * k)} (item {i}'s "
                f"{name}, then {what} up to the longest item)")


def _check_collate(answer: Callable, lengths: list[int], pad_id: int, seed: int) -> None:
    items = _sentences(lengths, seed)
    for it in items:  # token ids away from pad_id, so that padding cannot look like a real token
        it["input_ids"] = [t + 10 if t == pad_id else t for t in it["input_ids"]]
    before = copy.deepcopy(items)
    n, width = len(items), max(lengths)
    got = answer(items, pad_id)
    if not isinstance(got, Mapping):
        raise Wrong(f"you returned a {type(got).__name__}; return a dict with 'input_ids', 'attention_mask' "
                    "and 'labels'")
    for key in ("input_ids", "attention_mask", "labels"):
        if key not in got:
            raise Wrong(f"your batch has no '{key}' (its keys: {sorted(got)}); the training loop reads "
                        f"batch['{key}']")
        value = got[key]
        if not isinstance(value, torch.Tensor):
            raise Wrong(f"{key} is a {type(value).__name__}; make it a tensor (torch.tensor or torch.full)")
        if value.dtype != torch.long:
            raise Wrong(f"{key} has dtype {value.dtype}; token ids, masks and labels are integers: torch.long "
                        "(what DataCollatorWithPadding returns, and what the embedding table and the loss expect)")
    for key in ("input_ids", "attention_mask"):
        shape = tuple(got[key].shape)
        if shape != (n, width):
            if len(shape) == 2 and shape[0] == n and shape[1] > width:
                raise Wrong(f"{key} has shape {shape}: pad to the longest item of this batch ({width} tokens), "
                            "not to a fixed length; every padded position costs as much compute as a real token")
            if len(shape) == 2 and shape[0] == n:
                raise Wrong(f"{key} has shape {shape}, but the longest item has {width} tokens: pad every item "
                            "to the longest, never cut one")
            raise Wrong(f"{key} has shape {shape}; expected ({n}, {width}) = (items, longest item's length)")
    labels = [it["labels"] for it in items]
    if got["labels"].tolist() != labels:
        raise Wrong(f"labels is {got['labels'].tolist()}; expected {labels}: one per item, in the items' order")
    for i, it in enumerate(items):
        _check_row("input_ids", i, got["input_ids"][i].tolist(), before[i]["input_ids"], pad_id, pad_id)
        _check_row("attention_mask", i, got["attention_mask"][i].tolist(), before[i]["attention_mask"], 0, pad_id)
    for i, (now, was) in enumerate(zip(items, before)):
        for key in was:
            if now[key] != was[key]:
                change = (f"its {key} grew from {len(was[key])} to {len(now[key])} values"
                          if isinstance(now[key], list) and len(now[key]) != len(was[key]) else f"its {key} changed")
                raise Wrong(f"your function changed item {i} of the items it was given ({change}): pad new tensors or "
                            "copies, not the dataset's own lists (the next epoch would read them padded)")


@grades("04.6", "pad_batch")
def pad_batch(answer) -> str:
    """``answer(items, pad_id)``, ``items`` a list of ``TextDataset`` items (``input_ids`` and
    ``attention_mask`` lists, an int ``labels``), returns ``input_ids`` right-padded with ``pad_id``
    and ``attention_mask`` right-padded with 0 to the batch's longest item, and ``labels``: torch.long
    tensors, the items untouched."""
    for lengths, pad_id, seed in (([6, 10, 4, 8], 3, 0), ([5, 2, 5], 0, 1), ([4], 0, 2)):
        with case(f"on {len(lengths)} item(s) of {', '.join(map(str, lengths))} tokens with pad_id {pad_id}"):
            _check_collate(answer, lengths, pad_id, seed)
    return ("on batches of 4, 3 and 1 items of different lengths (pad_id 3 and 0), your batch holds input_ids "
            "padded with pad_id and attention_mask padded with 0, on the right, to the batch's longest item, and "
            "the labels in order, all torch.long tensors; the items are left as they were")
