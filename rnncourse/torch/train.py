"""The one training loop of the course, :func:`fit`, and the :class:`History` it returns.

:func:`fit` trains any model of the course: gradient clipping by global
norm, mixed precision on CUDA, validation, a plain-text progress line,
atomic checkpoints that resume *exactly* (:mod:`rnncourse.torch.checkpoint`),
and stateful truncated BPTT for language models.

The loss is always a function ``loss_fn(model, batch) -> loss`` that the
caller writes, so one loop serves every model: the batch can hold lengths,
masks or anything else, and the function knows what to do with it. In
truncated-BPTT mode it also takes and returns the recurrent state:
``loss_fn(model, batch, state) -> (loss, state)``.

This module was once the home of every training helper; those now live by
subject, and their old names here keep working:
:func:`~rnncourse.torch.runtime.seed_everything`,
:func:`~rnncourse.torch.runtime.select_device` and
:func:`~rnncourse.torch.runtime.to_device` in :mod:`rnncourse.torch.runtime`;
:func:`~rnncourse.torch.data.batchify_stream`,
:func:`~rnncourse.torch.data.tbptt_chunks`,
:func:`~rnncourse.torch.data.stream_cross_entropy` and
:class:`~rnncourse.torch.data.LengthBuckets` in :mod:`rnncourse.torch.data`.
"""

import dataclasses
import math
import os
import sys
import time
import warnings

import torch

from ..validation import check_int
from .checkpoint import load_checkpoint, save_checkpoint
from .data import LengthBuckets, batchify_stream, stream_cross_entropy, tbptt_chunks
from .runtime import seed_everything, select_device, to_device

__all__ = [
    "History",
    "fit",
    # re-exported from rnncourse.torch.runtime and rnncourse.torch.data, their homes
    "seed_everything",
    "select_device",
    "to_device",
    "batchify_stream",
    "tbptt_chunks",
    "stream_cross_entropy",
    "LengthBuckets",
]


@dataclasses.dataclass
class History:
    """What :func:`fit` measured. Lists grow by one per step or per epoch.

    Attributes
    ----------
    train_loss : loss of every optimizer step.
    grad_norm : global gradient norm of every step *before* clipping (only
        when clipping; with fp16 autocast, of the unscaled gradients).
    epoch_train_loss : mean training loss of each epoch.
    epoch_end_step : steps done at the end of each epoch (an x axis for the
        per-epoch lists).
    valid_loss : mean of ``loss_fn`` over ``valid_batches``, after each epoch.
    metrics : what ``eval_fn(model)`` returned after each epoch (dicts).
    epochs, steps : epochs and optimizer steps done in all.
    """

    train_loss: list = dataclasses.field(default_factory=list)
    grad_norm: list = dataclasses.field(default_factory=list)
    epoch_train_loss: list = dataclasses.field(default_factory=list)
    epoch_end_step: list = dataclasses.field(default_factory=list)
    valid_loss: list = dataclasses.field(default_factory=list)
    metrics: list = dataclasses.field(default_factory=list)
    epochs: int = 0
    steps: int = 0


def fit(model, train_batches, loss_fn, *, optimizer, epochs=None, steps=None, device=None,
        clip_grad_norm=None, amp=False, valid_batches=None, eval_fn=None,
        checkpoint_path=None, resume=False, progress=True, tbptt=False):
    """Train ``model`` by minimising ``loss_fn`` over ``train_batches``.

    Each step: forward and loss (under autocast if ``amp``), backward,
    optional clipping of the global gradient norm, optimizer step. After
    each epoch: validation loss, ``eval_fn``, a progress line, a checkpoint.

    **Stateful truncated BPTT** (``tbptt=True``, for language models): the
    batches are consecutive chunks of the same N streams (see
    :func:`~rnncourse.torch.data.tbptt_chunks`), ``loss_fn(model, batch, state) -> (loss, state)``,
    and the state a chunk ends with is the state the next chunk starts
    from, *detached*: state carried, gradient cut. Each backward pass then
    spans one chunk while the model still sees the whole history. The state
    starts as None at every epoch.

    **Checkpoints** are written at the end of every epoch: model, optimizer,
    gradient scaler, epoch and step counts, history, and the states of the
    Python, NumPy and PyTorch RNGs. They are written to a temporary file and
    then renamed over the old one, so a crash while saving never loses the
    previous checkpoint (:mod:`rnncourse.torch.checkpoint`). With
    ``resume=True`` training continues from the checkpoint *exactly*: a run
    stopped after k epochs and resumed ends with the same parameters and
    losses as one that never stopped, provided the batches come from the
    global RNGs (a list, or a ``DataLoader`` shuffling without its own
    ``generator``). With ``steps``, the last epoch may end
    part-way; resuming with a larger ``steps`` starts a new epoch there.

    Parameters
    ----------
    model : nn.Module, moved to ``device``.
    train_batches : a re-iterable of batches (a list, a ``DataLoader``; a
        generator would be used up after one epoch). Each batch is passed to
        ``loss_fn`` after its tensors are moved to ``device``.
    loss_fn : ``loss_fn(model, batch) -> loss``, a scalar tensor; with
        ``tbptt``, ``loss_fn(model, batch, state) -> (loss, state)``.
    optimizer : a ``torch.optim`` optimizer over ``model``'s parameters.
    epochs : int >= 1, passes over ``train_batches``; or
    steps : int >= 1, optimizer steps (exactly one of the two).
    device : where to train; default :func:`~rnncourse.torch.runtime.select_device`.
    clip_grad_norm : float > 0, optional; scales the gradients so their
        global L2 norm is at most this (``torch.nn.utils.clip_grad_norm_``).
    amp : False, True, ``"bf16"`` or ``"fp16"``. Autocast on CUDA: True
        picks bf16 where the GPU supports it, else fp16 with a gradient
        scaler. On the CPU it is ignored, with a warning.
    valid_batches : re-iterable of batches, optional; their mean loss is
        recorded after each epoch (eval mode, no gradients).
    eval_fn : ``eval_fn(model) -> dict`` of name -> number, optional;
        called after each epoch in eval mode without gradients.
    checkpoint_path : str or path, optional. If the file already exists,
        ``resume=True`` is required (fit will not overwrite a checkpoint it
        was not asked to continue).
    resume : continue from ``checkpoint_path`` if it exists (otherwise start
        afresh). A checkpoint that does not match the model or optimizer
        raises ``ValueError`` before anything is changed.
    progress : True for a line per epoch, False for silence, an int n for
        every n-th epoch (and the last). On a terminal a ``\\r``-updated
        line also shows the loss during the epoch. Plain text on stdout.
    tbptt : bool, stateful truncated BPTT as above.

    Returns
    -------
    History
        Continued from the checkpoint's when resuming. The model is left in
        the train/eval mode it came in.

    Raises
    ------
    ValueError
        For bad arguments, a ``loss_fn`` that does not return what is
        expected, or a checkpoint that does not match (nothing is changed).
    FileExistsError
        If ``checkpoint_path`` exists and ``resume`` is False.
    FloatingPointError
        If the training loss becomes NaN or infinite (checked once per
        epoch; that epoch is not checkpointed).
    """
    _check_budget(epochs, steps)
    _check_clip_and_progress(clip_grad_norm, progress)
    device = select_device(device)
    loop = _Loop(model, loss_fn, optimizer, device, _amp_dtype(amp, device), clip_grad_norm, tbptt)
    model.to(device)
    history = _starting_history(checkpoint_path, resume, loop)
    every = 1 if progress is True else int(progress)
    report = _Progress(epochs=epochs, steps=steps, every=every, stream=sys.stdout if every else None)
    was_training = model.training

    def done():
        return history.epochs >= epochs if epochs is not None else history.steps >= steps

    while not done():
        loop.train_epoch(train_batches, history, report, max_steps=steps)
        loop.evaluate(valid_batches, eval_fn, history)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, optimizer, loop.scaler, history)
        report.end_of_epoch(history, last=done())
    model.train(was_training)
    return history


def _check_budget(epochs, steps):
    if (epochs is None) == (steps is None):
        raise ValueError(f"epochs={epochs!r}, steps={steps!r}; expected exactly one of them")
    for name, value in (("epochs", epochs), ("steps", steps)):
        if value is not None:
            check_int(name, value)


def _check_clip_and_progress(clip_grad_norm, progress):
    if clip_grad_norm is not None and not (
        isinstance(clip_grad_norm, (int, float)) and math.isfinite(clip_grad_norm) and clip_grad_norm > 0
    ):
        raise ValueError(f"clip_grad_norm is {clip_grad_norm!r}; expected None or a finite number > 0")
    if not isinstance(progress, (bool, int)) or progress < 0:
        raise ValueError(f"progress is {progress!r}; expected True, False or an integer n >= 1")


def _starting_history(checkpoint_path, resume, loop):
    """A new History, or the one of the checkpoint to resume (whose state is loaded into the loop's objects)."""
    if checkpoint_path is None:
        if resume:
            raise ValueError("resume=True needs a checkpoint_path")
        return History()
    checkpoint_path = os.fspath(checkpoint_path)
    if not os.path.exists(checkpoint_path):
        return History()
    if not resume:
        raise FileExistsError(
            f"checkpoint_path {checkpoint_path!r} exists; pass resume=True to continue from it, "
            "or remove it (or choose another path) to start afresh"
        )
    return History(**load_checkpoint(checkpoint_path, loop.model, loop.optimizer, loop.scaler))


class _Loop:
    """What one training run does at each step and after each epoch, with its settings in one place."""

    def __init__(self, model, loss_fn, optimizer, device, amp_dtype, clip_grad_norm, tbptt):
        self.model, self.loss_fn, self.optimizer, self.device = model, loss_fn, optimizer, device
        self.amp_dtype, self.clip_grad_norm, self.tbptt = amp_dtype, clip_grad_norm, tbptt
        # fp16 needs its gradients scaled so that small ones do not underflow; bf16 does not.
        self.scaler = _grad_scaler() if amp_dtype == torch.float16 else None

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def step(self, batch, state):
        """One optimizer step on ``batch``: returns the loss, the state for the next chunk and the norm."""
        with self.autocast():
            loss, state = _call_loss(self.loss_fn, self.model, to_device(batch, self.device), state, self.tbptt)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        norm = None
        if self.clip_grad_norm is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.tbptt:
            state = _detach(state)  # state carried, gradient cut
        return loss, state, norm

    def train_epoch(self, train_batches, history, report, max_steps=None):
        """One pass over ``train_batches`` (or fewer, once ``max_steps`` steps are done in all)."""
        self.model.train()
        losses, norms, state = [], [], None
        for batch in train_batches:
            loss, state, norm = self.step(batch, state)
            # Kept as tensors, not .item(): a host-device sync per step would
            # stall the GPU; they come to the host once per epoch.
            losses.append(loss.detach().float())
            if norm is not None:
                norms.append(norm)
            history.steps += 1
            report.during_epoch(history, loss)
            if max_steps is not None and history.steps >= max_steps:
                break
        _record_epoch(history, losses, norms)

    def evaluate(self, valid_batches, eval_fn, history):
        """The validation loss and ``eval_fn``'s metrics after an epoch, in eval mode without gradients."""
        if valid_batches is None and eval_fn is None:
            return
        self.model.eval()
        with torch.no_grad(), self.autocast():
            if valid_batches is not None:
                history.valid_loss.append(
                    _mean_loss(self.loss_fn, self.model, valid_batches, self.device, self.tbptt))
            if eval_fn is not None:
                history.metrics.append(_metrics(eval_fn(self.model)))


def _record_epoch(history, losses, norms):
    """Bring one epoch's step losses and norms to the host (one sync) and check them."""
    if not losses:
        raise ValueError(
            f"train_batches yielded no batch in epoch {history.epochs + 1}; "
            "expected a re-iterable such as a list or a DataLoader "
            "(a generator is used up after one epoch)"
        )
    epoch_losses = torch.stack(losses).tolist()
    if not all(map(math.isfinite, epoch_losses)):
        bad = next(i for i, x in enumerate(epoch_losses) if not math.isfinite(x))
        raise FloatingPointError(
            f"the training loss became {epoch_losses[bad]} "
            f"at step {history.steps - len(losses) + bad + 1}; "
            "try clip_grad_norm or a lower learning rate (the last checkpoint is kept as it was)"
        )
    history.train_loss += epoch_losses
    history.grad_norm += torch.stack(norms).tolist() if norms else []
    history.epoch_train_loss.append(sum(epoch_losses) / len(epoch_losses))
    history.epochs += 1
    history.epoch_end_step.append(history.steps)


def _amp_dtype(amp, device):
    if amp not in (False, True, "bf16", "fp16"):
        raise ValueError(f"amp is {amp!r}; expected False, True, 'bf16' or 'fp16'")
    if amp is False:
        return None
    if device.type != "cuda":
        warnings.warn(
            f"amp={amp!r} is ignored on {device}: mixed precision is used on CUDA only; "
            "training in full precision",
            stacklevel=3,
        )
        return None
    if amp == "bf16" or (amp is True and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def _grad_scaler():
    # torch.amp.GradScaler is the current name (torch >= 2.3); the CUDA one before.
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def _call_loss(loss_fn, model, batch, state, tbptt):
    if tbptt:
        out = loss_fn(model, batch, state)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(
                f"loss_fn returned {type(out).__name__}; with tbptt=True expected "
                "loss_fn(model, batch, state) -> (loss, state)"
            )
        loss, state = out
    else:
        loss = loss_fn(model, batch)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        got = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(
            f"loss_fn returned a loss of {got}; expected a scalar tensor (a mean over the batch)"
        )
    return loss, state


def _detach(state):
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(_detach(s) for s in state)
    return state


def _mean_loss(loss_fn, model, batches, device, tbptt):
    losses, state = [], None
    for batch in batches:
        loss, state = _call_loss(loss_fn, model, to_device(batch, device), state, tbptt)
        losses.append(loss.float())
    if not losses:
        raise ValueError("valid_batches yielded no batch; expected a non-empty re-iterable")
    return torch.stack(losses).mean().item()


def _metrics(result):
    if not isinstance(result, dict):
        raise ValueError(f"eval_fn returned {type(result).__name__}; expected a dict of name -> number")
    try:
        return {str(k): float(v) for k, v in result.items()}
    except (TypeError, ValueError) as e:
        raise ValueError(f"eval_fn returned {result!r}; expected a dict of name -> number") from e


class _Progress:
    """One plain-text line per epoch (no widgets: the built book stays static HTML)."""

    def __init__(self, *, epochs, steps, every, stream):
        self.epochs, self.steps, self.every, self.stream = epochs, steps, every, stream
        self.live = stream is not None and stream.isatty()  # \r only where it redraws in place
        self.start = self.last_draw = time.perf_counter()
        self.width = 0

    def _where(self, history, epoch):
        if self.epochs is not None:
            return f"epoch {epoch}/{self.epochs}  step {history.steps}"
        return f"epoch {epoch}  step {history.steps}/{self.steps}"

    def during_epoch(self, history, loss):
        now = time.perf_counter()
        if self.live and now - self.last_draw > 0.5:  # .item() syncs: twice a second at most
            self.last_draw = now
            line = f"{self._where(history, history.epochs + 1)}  loss {loss.item():.4f}"
            self.width = max(self.width, len(line))
            self.stream.write("\r" + line)
            self.stream.flush()

    def end_of_epoch(self, history, last):
        if self.stream is None or (history.epochs % self.every and not last):
            return
        parts = [self._where(history, history.epochs), f"train_loss {history.epoch_train_loss[-1]:.4f}"]
        if len(history.valid_loss) == history.epochs:
            parts.append(f"valid_loss {history.valid_loss[-1]:.4f}")
        if len(history.metrics) == history.epochs:
            parts += [f"{k} {v:.4g}" for k, v in history.metrics[-1].items()]
        parts.append(f"{time.perf_counter() - self.start:.1f}s")
        line = "  ".join(parts)
        self.stream.write(("\r" + line.ljust(self.width) if self.live else line) + "\n")
        self.stream.flush()
