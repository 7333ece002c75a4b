"""The course's fit loop: train and val phases, history, best checkpoint, resume.

One loop serves every lesson. It records loss and accuracy per epoch,
shows a ``tqdm.auto`` progress bar, steps an LR scheduler, stops early when
val accuracy stops improving, keeps the best weights, and writes a resumable
checkpoint after every epoch so an interrupted run (Ctrl-C, the stop button,
a closed laptop) continues where it stopped with the same result.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> seed_everything(0)
    >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=16)
    >>> model = torch.nn.Linear(4, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.5)
    >>> h = fit(model, loader, loader, opt, epochs=5, progress=False)
    >>> h.best_val_acc > 0.8
    True
"""
from __future__ import annotations

import copy
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from .infra.device import (PRECISIONS, amp_dtype, autocast, grad_scaler, optimizer_step,  # noqa: F401 (re-exported)
                           pick_device, seed_everything)
from .infra.cache import atomic_write
from .infra.distributed import all_sum, is_main
from .errors import CourseError


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """Per-epoch metrics of one run; ``best_*`` refer to the best val accuracy.

    Every training in the course records one: :func:`fit` (lessons 01–05, 07, 08) and
    lesson 06's DANN loop (:func:`tlcourse.labs.domain_adaptation.train_dann`), whose own measurements
    (domain loss, domain accuracy, λ) go into ``extra``. A list a run does not
    measure stays empty (DANN has no val loss).

    >>> h = History()
    >>> h.add_epoch(train_loss=0.7, val_acc=0.6, epoch_time=1.0, domain_acc=0.9)
    True
    >>> h.add_epoch(train_loss=0.5, val_acc=0.5, epoch_time=1.0, domain_acc=0.7)
    False
    >>> h.epochs, h.best_epoch, h.extra["domain_acc"], h.val_loss
    (2, 0, [0.9, 0.7], [])
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)  # train + val phase
    train_time: list[float] = field(default_factory=list)  # the training phase alone
    best_epoch: int = -1
    best_val_acc: float = 0.0
    stopped_early: bool = False
    extra: dict[str, list[float]] = field(default_factory=dict)  # a loop's own per-epoch metrics

    def add_epoch(self, *, epoch_time: float, train_time: float | None = None,
                  **metrics: float | None) -> bool:
        """Append one epoch's metrics (None: not measured); return True if its val accuracy is the best yet.

        Keyword names that are fields (``train_loss``, ``val_acc``, ``lr``...) go there,
        any other name into ``extra``.
        """
        self.epoch_time.append(epoch_time)
        self.train_time.append(epoch_time if train_time is None else train_time)
        for key, value in metrics.items():
            if value is not None:
                series = self._field(key)
                (self.extra.setdefault(key, []) if series is None else series).append(float(value))
        val_acc = metrics.get("val_acc")
        if val_acc is None or (self.best_epoch >= 0 and val_acc <= self.best_val_acc):
            return False
        self.best_val_acc, self.best_epoch = float(val_acc), len(self.epoch_time) - 1
        return True

    def metric(self, name: str) -> list[float]:
        """One metric per epoch, a field (``"val_acc"``) or a loop's own (``extra``); [] if never recorded.

        >>> History(val_acc=[0.5], extra={"domain_acc": [0.6]}).metric("domain_acc")
        [0.6]
        """
        series = self._field(name)
        return series if series is not None else self.extra.get(name, [])

    def _field(self, name: str) -> list[float] | None:
        """The per-epoch list field ``name`` (``train_loss``, ``lr``...), or None if it is not one."""
        value = getattr(self, name, None) if name in self.__dataclass_fields__ and name != "extra" else None
        return value if isinstance(value, list) else None

    @property
    def epochs(self) -> int:
        """Epochs recorded (a history read from a loop without timings has no ``epoch_time``)."""
        return max(len(self.train_loss), len(self.epoch_time))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, metrics: dict[str, Any]) -> "History":
        """A History from per-epoch lists, e.g. lesson 02's hand-written ``train_model``.

        Missing ``best_*`` fields are filled in: the first epoch with the highest val accuracy.

        >>> h = History.from_dict({"train_loss": [0.7, 0.5], "train_acc": [0.5, 0.8],
        ...                        "val_loss": [0.6, 0.4], "val_acc": [0.7, 0.9]})
        >>> h.epochs, h.best_epoch, h.best_val_acc
        (2, 1, 0.9)
        >>> History.from_dict(h.to_dict()) == h
        True
        """
        history = cls(**{k: list(v) if isinstance(v, (list, tuple)) else v for k, v in metrics.items()})
        if history.best_epoch < 0 and history.val_acc:
            history.best_epoch = max(range(len(history.val_acc)), key=lambda e: (history.val_acc[e], -e))
            history.best_val_acc = history.val_acc[history.best_epoch]
        return history


# --------------------------------------------------------------------------- batches
def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):  # a dict, or 🤗's BatchEncoding (a UserDict, not a dict)
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    """``(inputs, labels)`` from an ``(x, y)`` pair or a mapping with a ``labels`` key."""
    if isinstance(batch, Mapping):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return inputs, batch["labels"]
    inputs, labels = batch[0], batch[1]
    return inputs, labels


def forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Call the model on a tensor or on keyword inputs (tokenized text)."""
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    return getattr(out, "logits", out)


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:  # a generator, an IterableDataset without a length
        return None


def run_epoch(model: nn.Module, loader: Iterable, loss_fn: Callable, device: torch.device,
              optimizer: torch.optim.Optimizer | None = None, desc: str = "",
              progress: bool = True, *, step_scheduler: Any = None,
              clip_norm: float | None = None) -> tuple[float, float]:
    """One pass over ``loader``; trains when an optimizer is given. Returns (loss, accuracy).

    While training, ``clip_norm`` clips the gradient norm before every step and
    ``step_scheduler`` (a per-step schedule such as warm-up then decay) steps after it.
    """
    training = optimizer is not None
    model.train(training)
    # The sums stay on the training device: a `.cpu()` per batch waited for the GPU at every
    # step, and NCCL (torchrun on GPUs) reduces only CUDA tensors. One host read per epoch, at the end.
    total_loss = torch.zeros((), device=device)
    correct, seen = torch.zeros((), dtype=torch.long, device=device), 0
    # iter() here, once: tqdm.auto's (asyncio) tqdm calls iter() on an iterable in its constructor,
    # which started a second DataLoader iterator every epoch (an extra draw from torch's RNG, so a
    # hand-written loop with the same seed shuffled differently, and extra worker start-ups)
    bar = tqdm(iter(loader), total=_length(loader), desc=desc, leave=False, disable=not progress)
    grad = torch.enable_grad() if training else torch.inference_mode()
    with grad:
        for batch in bar:
            inputs, labels = split_batch(_to(batch, device))
            with autocast(device):
                logits = forward(model, inputs)
                loss = loss_fn(logits, labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                # backward + step (loss-scaled in float16), the gradient norm clipped first
                optimizer_step(loss, optimizer, device, clip_norm=clip_norm,
                               parameters=model.parameters() if clip_norm is not None else None)
                if step_scheduler is not None:
                    step_scheduler.step()
            n = labels.shape[0]  # a shape: known on the host, no wait
            total_loss += loss.detach().float() * n
            if labels.dim() == 1:  # hard labels; soft (MixUp) labels have no accuracy
                correct += (logits.argmax(1) == labels).sum()
            seen += n
    # Under torchrun every process saw its own shard: average over all of them so
    # every process records the same metrics and takes the same early-stopping decision
    # (all_sum moves the sums to the device the process group's backend reduces on).
    total_loss, correct, n_seen = all_sum(total_loss, correct, torch.tensor(seen))
    if int(n_seen) == 0:
        raise CourseError("The data loader is empty: check the dataset and the subset size.")
    return float(total_loss) / float(n_seen), float(correct) / float(n_seen)


@torch.inference_mode()
def predict(model: nn.Module, loader: Iterable, device: torch.device | None = None, *,
            mixed_precision: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32) and labels for a whole loader, in order, on the CPU (eval mode).

    ``device``: where the batches go (default: the model's; the CPU for a model without weights).
    ``mixed_precision=False`` runs the forward passes in float32 even where :func:`autocast`
    would use bfloat16/float16 (on CUDA), for helpers that must match a plain float32 loop.
    """
    device = device or next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    outs, labels = [], []
    for batch in loader:
        inputs, y = split_batch(_to(batch, device))
        with autocast(device) if mixed_precision else nullcontext():
            outs.append(forward(model, inputs).float().cpu())
        labels.append(y.cpu())
    return torch.cat(outs), torch.cat(labels)


def accuracy(model: Any, data: Any, labels: torch.Tensor | None = None, *, device: torch.device | None = None,
             mixed_precision: bool | None = None) -> float:
    """Share of examples whose predicted class is their label: the one accuracy of the course.

    * ``accuracy(model, loader)``: a model on a loader of ``(inputs, labels)`` batches, through
      :func:`predict` (eval mode; mixed precision where :func:`autocast` uses it).
    * ``accuracy(head, feats, labels)``: a head on one table of features (``probes.accuracy``,
      lessons 01, 04, 07): a PyTorch head through :func:`predict` in float32, or a fitted
      scikit-learn classifier through its ``predict``.

    ``mixed_precision`` overrides the default of each form. The share is a float32 mean, as
    ``(pred == y).float().mean()`` written out in a lesson's cell.

    >>> net = nn.Linear(2, 2, bias=False)
    >>> _ = net.weight.data.copy_(torch.eye(2))
    >>> x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    >>> accuracy(net, [(x, y)]), accuracy(net, x, y)
    (0.5, 0.5)
    """
    if labels is None:
        amp = True if mixed_precision is None else mixed_precision
        logits, labels = predict(model, data, device, mixed_precision=amp)
        pred = logits.argmax(1)
    else:
        pred = predict_labels(model, data, device=device, mixed_precision=bool(mixed_precision))
    return float((pred == labels.cpu()).float().mean())


def predict_labels(head: Any, feats: torch.Tensor, *, device: torch.device | None = None,
                   mixed_precision: bool = False) -> torch.Tensor:
    """Predicted class of every row of ``feats``: a PyTorch head through :func:`predict` (float32
    unless asked), or a fitted scikit-learn classifier through its ``predict``.

    >>> predict_labels(nn.Identity(), torch.tensor([[0.2, 0.8], [0.9, 0.1]])).tolist()
    [1, 0]
    """
    if isinstance(head, nn.Module):
        no_labels = torch.zeros(len(feats), dtype=torch.long)
        return predict(head, [(feats, no_labels)], device, mixed_precision=mixed_precision)[0].argmax(1)
    return torch.as_tensor(head.predict(feats.numpy()))


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write ``state`` atomically (:func:`tlcourse.infra.cache.atomic_write`): never a half file."""
    if not is_main():  # one writer when several processes train together
        return
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: tensors and plain data, never code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise CourseError(
            f"Refused to load {path}: it is not a plain checkpoint of tensors "
            f"({type(exc).__name__}). Only load files you trust, and only state dicts."
        ) from exc


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / DataParallel wrapper (else ``model`` itself)."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


def load_state(model: nn.Module, state: dict[str, Any]) -> None:
    """``model.load_state_dict(state)``, whether ``state`` and ``model`` come from DDP or not.

    DistributedDataParallel prefixes every key with ``module.``; that prefix is removed
    (``consume_prefix_in_state_dict_if_present``) unless the model's own keys carry it, and
    the state goes into the unwrapped model, so DDP and plain checkpoints load into both.

    >>> net = nn.Linear(2, 1)
    >>> load_state(net, {"module." + k: v for k, v in nn.Linear(2, 1).state_dict().items()})
    """
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    target = unwrap(model)
    if not any(k.startswith("module.") for k in target.state_dict()):
        state = copy.copy(state) if hasattr(state, "_metadata") else dict(state)
        consume_prefix_in_state_dict_if_present(state, "module.")
    target.load_state_dict(state)


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict (or a fit checkpoint) into ``model``, with a clear error on mismatch.

    Checkpoints written under DDP (keys ``module.*``) load into a plain model and vice versa.
    """
    state = load_checkpoint(path)
    state = state.get("model", state)
    try:
        load_state(model, state)
    except RuntimeError as exc:
        raise CourseError(
            f"{path} does not fit this model ({type(model).__name__}): it was saved from another "
            f"architecture or head size. First lines of the mismatch:\n" + "\n".join(str(exc).splitlines()[:4])
        ) from exc
    return model


# --------------------------------------------------------------------------- fit
def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None,
        optimizer: torch.optim.Optimizer, epochs: int, *,
        loss_fn: Callable | None = None, scheduler: Any = None, step_scheduler: Any = None,
        clip_norm: float | None = None, patience: int | None = None, checkpoint_dir: str | Path | None = None,
        resume: bool = False, device: torch.device | None = None,
        callbacks: Iterable[Callable[[History], None]] = (), progress: bool = True,
        restore_best: bool = True, val_every_epoch: bool = True) -> History:
    """Train for ``epochs`` with train and val phases; return the :class:`History`.

    Generalises lesson 02's hand-written ``train_model`` (section 2, "The classic recipe,
    written out": ``model.train()``/``model.eval()`` phases, ``torch.set_grad_enabled``,
    ``zero_grad``/``backward``/``step``, running loss and accuracy, StepLR stepped once per
    epoch, early stopping, a copy of the best weights). It adds a progress bar, callbacks
    (live curves, gradual unfreezing), resumable checkpoints, mixed precision on CUDA, dict
    batches (tokenized text) and torchrun. The lesson's check cell shows that for the same seed
    and batches both give the same history (losses within 1e-5 on a CPU, accuracies equal).

    Args:
        scheduler: stepped once per epoch (StepLR, lesson 02).
        step_scheduler: stepped after every optimizer step (warm-up then decay, lesson 04).
        clip_norm: clip the gradient norm to this before every step (None: no clipping).
        patience: stop after this many epochs without a better val accuracy.
        checkpoint_dir: writes ``last.pt`` (resumable) after every epoch and
            ``best.pt`` (weights only) at every new best.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists.
        callbacks: called with the history after each epoch (live plots).
        restore_best: end with the best epoch's weights in ``model``.
        val_every_epoch: False runs the val phase only after the last epoch (its val lists then
            hold one value). The training is the same only if a pass over ``val_loader`` draws
            no random numbers: a DataLoader draws a seed from the global RNG at every pass.
            ``val_loader=None`` runs no val phase at all (train only: no ``restore_best``,
            no ``patience``). Lesson 05's helpers use both (:mod:`tlcourse.labs.data_augmentation`).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if patience is not None and (val_loader is None or not val_every_epoch):
        raise ValueError("patience needs a val phase after every epoch (a val_loader, val_every_epoch=True)")
    if restore_best and val_loader is None:
        raise ValueError("restore_best needs a val_loader: pass restore_best=False to train without one")
    device = device or pick_device()
    model.to(device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history, start = History(), 0
    last = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    keep_best = restore_best or last is not None  # a copy of the weights: 90 MB for MiniLM, skip it if unused
    best_state = copy.deepcopy(unwrap(model).state_dict()) if keep_best else None  # plain keys: loads without DDP
    if resume and last and last.exists():
        ckpt = load_checkpoint(last)
        load_state(model, ckpt["model"])  # a DDP or a plain checkpoint
        optimizer.load_state_dict(ckpt["optimizer"])
        for sched, key in ((scheduler, "scheduler"), (step_scheduler, "step_scheduler")):
            if sched is not None and ckpt.get(key):
                sched.load_state_dict(ckpt[key])
        history = History(**ckpt["history"])
        best_state = ckpt["best_model"]
        torch.set_rng_state(ckpt["rng"])
        start = history.epochs
        print(f"Resumed from {last} after epoch {start}.")
    try:
        for epoch in range(start, epochs):
            if history.stopped_early:
                break
            t0 = time.perf_counter()
            sampler = getattr(train_loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle each epoch
                sampler.set_epoch(epoch)
            tr = run_epoch(model, train_loader, loss_fn, device, optimizer, f"epoch {epoch + 1} train", progress,
                           step_scheduler=step_scheduler, clip_norm=clip_norm)
            train_time = time.perf_counter() - t0
            va = (None, None)
            if val_loader is not None and (val_every_epoch or epoch == epochs - 1):
                va = run_epoch(model, val_loader, loss_fn, device, None, f"epoch {epoch + 1} val", progress)
            lr = optimizer.param_groups[0]["lr"]
            if scheduler is not None:
                scheduler.step()
            best = history.add_epoch(train_loss=tr[0], train_acc=tr[1], val_loss=va[0], val_acc=va[1], lr=lr,
                                     epoch_time=time.perf_counter() - t0, train_time=train_time)
            if best:
                if keep_best:
                    best_state = copy.deepcopy(unwrap(model).state_dict())
                if checkpoint_dir:
                    save_checkpoint(Path(checkpoint_dir) / "best.pt", model=best_state)
            if patience is not None and epoch - history.best_epoch >= patience:
                history.stopped_early = True
            if last:
                save_checkpoint(last, model=unwrap(model).state_dict(), optimizer=optimizer.state_dict(),
                                scheduler=scheduler.state_dict() if scheduler is not None else None,
                                step_scheduler=step_scheduler.state_dict() if step_scheduler is not None else None,
                                history=history.to_dict(), best_model=best_state, rng=torch.get_rng_state())
            for cb in callbacks:
                cb(history)
    except KeyboardInterrupt:
        where = f"; run again with resume=True to continue from {last}" if last else ""
        print(f"Training interrupted after {history.epochs} finished epoch(s){where}.")
        raise
    if restore_best:
        load_state(model, best_state)
    return history
