"""Lesson 04's graded exercises: typical mistakes fail with the message a learner needs."""
from __future__ import annotations

import pytest
import torch

from tlcourse.exercises.grading import grade


# --------------------------------------------------------------------------- 04.5 cls_vectors(encoder, loader)
def _cls(encoder, loader):  # a correct answer: the reference the mistakes below vary
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state[:, 0]
                          for b in loader])


def _mean_pooling(encoder, loader):  # the lesson's `embed`, not [CLS]
    encoder.eval()
    out = []
    with torch.no_grad():
        for b in loader:
            hidden = encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).float()
            out.append((hidden * m).sum(1) / m.sum(1))
    return torch.cat(out)


def _no_mask(encoder, loader):
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(input_ids=b["input_ids"]).last_hidden_state[:, 0] for b in loader])


def _last_token(encoder, loader):
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state[:, -1]
                          for b in loader])


def _pooler(encoder, loader):
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).pooler_output
                          for b in loader])


def _keeps_gradients(encoder, loader):
    encoder.eval()
    return torch.cat([encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state[:, 0]
                      for b in loader])


def _dropout_on(encoder, loader):  # no encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state[:, 0]
                          for b in loader])


def _last_batch_only(encoder, loader):
    encoder.eval()
    with torch.no_grad():
        for b in loader:
            vectors = encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state[:, 0]
    return vectors


def _list_of_batches(encoder, loader):
    encoder.eval()
    with torch.no_grad():
        return [encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state[:, 0]
                for b in loader]


def _every_token(encoder, loader):  # last_hidden_state itself: batches of different widths do not concatenate
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
                          for b in loader])


def _reversed(encoder, loader):
    return _cls(encoder, loader).flip(0)


def _lesson_device(encoder, loader):  # reads a lesson variable: a crash, reported with the learner's line
    return torch.cat([encoder(input_ids=b["input_ids"].to(device)).last_hidden_state[:, 0]  # noqa: F821
                      for b in loader])


CLS_MISTAKES = {
    _mean_pooling: "you returned the mean of the token vectors (mean pooling",
    _no_mask: "padded in its batch) gets a different [CLS] vector than when it runs alone: pass the batch's "
              "attention_mask",
    _last_token: "you returned the vector of the last position, last_hidden_state[:, -1]",
    _pooler: "you returned pooler_output",
    _keeps_gradients: "carry gradients (requires_grad=True)",
    _dropout_on: "the encoder is still in training mode after your call: call encoder.eval() first",
    _last_batch_only: "you returned 1 vector(s) for the 7 sentences the loader yields (in 3 batches)",
    _list_of_batches: "you returned a list of 3 tensors; join them into one tensor of shape (7, 32) with torch.cat",
    _every_token: "your code raised RuntimeError: Sizes of tensors must match",
    _reversed: "the right [CLS] vectors in another order",
    _lesson_device: "your code raised NameError: name 'device' is not defined",
}


@pytest.mark.parametrize("answer", list(CLS_MISTAKES), ids=lambda f: f.__name__)
def test_cls_vector_mistakes_fail_with_the_first_difference(answer):
    verdict = grade("04.5", answer)
    assert verdict.status == "failed", (answer.__name__, str(verdict))
    assert CLS_MISTAKES[answer] in verdict.message, (answer.__name__, verdict.message)
    assert verdict.message.startswith("on a random tiny BERT (hidden size 32) and a loader of 7 padded sentences: ")


def test_cls_vectors_any_correct_answer_passes():
    def unpacks_the_batch(encoder, loader):  # encoder(**batch): BertModel ignores the labels
        encoder.eval()
        with torch.inference_mode():
            return torch.cat([encoder(**b).last_hidden_state[:, 0] for b in loader])

    def detaches(encoder, loader):
        encoder.train(False)
        rows = []
        for b in loader:
            out = encoder(b["input_ids"], attention_mask=b["attention_mask"])
            rows += list(out[0][:, 0].detach())
        return torch.stack(rows)

    for answer in (_cls, unpacks_the_batch, detaches):
        verdict = grade("04.5", answer)
        assert verdict.status == "passed", (answer.__name__, str(verdict))
    assert "which pooling suits MiniLM is yours to read" in verdict.message


# --------------------------------------------------------------------------- 04.6 pad_batch(items, pad_id)
def _pad(items, pad_id, width=None, mask_pad=0, left=False):
    width = width or max(len(it["input_ids"]) for it in items)

    def row(values, pad):
        fill = [pad] * (width - len(values))
        return fill + list(values) if left else list(values) + fill

    return {"input_ids": torch.tensor([row(it["input_ids"], pad_id) for it in items]),
            "attention_mask": torch.tensor([row(it["attention_mask"], mask_pad) for it in items]),
            "labels": torch.tensor([it["labels"] for it in items])}


def _mask_padded_with_pad_id(items, pad_id):
    return _pad(items, pad_id, mask_pad=pad_id)


def _fixed_length(items, pad_id):  # pads to max_len, not to the batch's longest
    return _pad(items, pad_id, width=64)


def _left_padding(items, pad_id):
    return _pad(items, pad_id, left=True)


def _forgets_labels(items, pad_id):
    batch = _pad(items, pad_id)
    del batch["labels"]
    return batch


def _pads_ids_with_zero(items, pad_id):
    return _pad(items, 0)


def _float_mask(items, pad_id):
    batch = _pad(items, pad_id)
    batch["attention_mask"] = batch["attention_mask"].float()
    return batch


def _mask_of_ones(items, pad_id):
    return _pad(items, pad_id, mask_pad=1)


def _labels_as_a_list(items, pad_id):
    batch = _pad(items, pad_id)
    batch["labels"] = [it["labels"] for it in items]
    return batch


def _pads_in_place(items, pad_id):  # extends the dataset's own lists
    width = max(len(it["input_ids"]) for it in items)
    for it in items:
        k = width - len(it["input_ids"])
        it["input_ids"] += [pad_id] * k
        it["attention_mask"] += [0] * k
    return {key: torch.tensor([it[key] for it in items]) for key in ("input_ids", "attention_mask", "labels")}


def _stacks_lists(items, pad_id):  # no padding at all
    return {key: torch.tensor([it[key] for it in items]) for key in ("input_ids", "attention_mask", "labels")}


PAD_MISTAKES = {
    _mask_padded_with_pad_id: "attention_mask is padded with 3, the pad_id; pad the mask with 0",
    _fixed_length: "input_ids has shape (4, 64): pad to the longest item of this batch (10 tokens), not to a "
                   "fixed length",
    _left_padding: "row 0 of input_ids is padded on the left",
    _forgets_labels: "your batch has no 'labels'",
    _pads_ids_with_zero: "input_ids is padded with 0; pad it with pad_id (3 here",
    _float_mask: "attention_mask has dtype torch.float32",
    _mask_of_ones: "attention_mask is 1 on the padding of row 0; pad it with 0",
    _labels_as_a_list: "labels is a list; make it a tensor",
    _pads_in_place: "your function changed item 0 of the items it was given (its input_ids grew from 6 to 10 values)",
    _stacks_lists: "your code raised ValueError",
}


@pytest.mark.parametrize("answer", list(PAD_MISTAKES), ids=lambda f: f.__name__)
def test_pad_batch_mistakes_fail_with_the_first_difference(answer):
    verdict = grade("04.6", answer)
    assert verdict.status == "failed", (answer.__name__, str(verdict))
    assert PAD_MISTAKES[answer] in verdict.message, (answer.__name__, verdict.message)
    assert verdict.message.startswith("on 4 item(s) of 6, 10, 4, 8 tokens with pad_id 3: ")


def test_pad_batch_any_correct_answer_passes():
    from torch.nn.utils.rnn import pad_sequence

    def with_pad_sequence(items, pad_id):
        ids = pad_sequence([torch.tensor(it["input_ids"]) for it in items], batch_first=True, padding_value=pad_id)
        mask = pad_sequence([torch.tensor(it["attention_mask"]) for it in items], batch_first=True)
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([it["labels"] for it in items])}

    def mask_from_lengths(items, pad_id):
        batch = _pad(items, pad_id)
        lengths = torch.tensor([len(it["input_ids"]) for it in items])
        batch["attention_mask"] = (torch.arange(batch["input_ids"].shape[1]) < lengths[:, None]).long()
        return batch

    for answer in (_pad, with_pad_sequence, mask_from_lengths):
        verdict = grade("04.6", answer)
        assert verdict.status == "passed", (answer.__name__, str(verdict))
