"""Training helpers: seeding, device choice, one training loop, language-model batches.

- :func:`seed_everything` and :func:`select_device`.
- :func:`fit`, the one training loop of the course: gradient clipping by
  global norm, mixed precision on CUDA, validation, a plain-text progress
  line, atomic checkpoints that resume *exactly*, and stateful truncated
  BPTT for language models.
- :func:`batchify_stream` and :func:`tbptt_chunks` turn one long token
  stream into the consecutive chunks stateful truncated BPTT trains on;
  :func:`stream_cross_entropy` scores a language model on such streams.
- :class:`LengthBuckets`: minibatches of variable-length sequences of
  similar lengths, so that little of each batch is padding.

The loss is always a function ``loss_fn(model, batch) -> loss`` that the
caller writes, so one loop serves every model: the batch can hold lengths,
masks or anything else, and the function knows what to do with it. In
truncated-BPTT mode it also takes and returns the recurrent state:
``loss_fn(model, batch, state) -> (loss, state)``.
"""

import dataclasses
import math
import os
import random
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "select_device",
    "to_device",
    "History",
    "fit",
    "batchify_stream",
    "tbptt_chunks",
    "stream_cross_entropy",
    "LengthBuckets",
]

_CHECKPOINT_FORMAT = "rnncourse.torch.fit checkpoint v1"


# --- reproducibility and devices -------------------------------------------------------


def seed_everything(seed):
    """Seed Python's ``random``, NumPy's global RNG and PyTorch's (CPU and every GPU).

    Two runs that call ``seed_everything(s)`` first and then do the same
    things get the same initial weights, shuffles, dropout masks and
    samples. (On a GPU some kernels are not deterministic even then; see
    ``torch.use_deterministic_algorithms``.)

    Parameters
    ----------
    seed : int in ``[0, 2**32)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed is {seed!r}; expected an integer in [0, 2**32)")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.cuda.manual_seed_all(seed)  # explicit; a no-op without CUDA


def select_device(prefer=None):
    """The device to train on: ``cuda`` when PyTorch sees a GPU, else ``cpu``.

    Parameters
    ----------
    prefer : None, or a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a
        ``torch.device``) to use instead of the automatic choice.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If ``prefer`` asks for CUDA and there is none (rather than silently
        training on the CPU).
    """
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"prefer is {prefer!r}; expected None, 'cpu', 'cuda' or 'cuda:<index>'") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"prefer is {prefer!r}, but torch.cuda.is_available() is False "
            f"(this PyTorch is {torch.__version__}); use select_device() or 'cpu'"
        )
    return device


def to_device(batch, device):
    """``batch`` with every tensor in it moved to ``device``.

    Tuples, lists and dicts are walked recursively; other values are
    returned as they are. Copies to a GPU from pinned memory do not block.
    """
    if isinstance(batch, torch.Tensor):
        # Non-blocking only towards a GPU: a non-blocking copy *to* the CPU
        # could be read before it has arrived.
        return batch.to(device, non_blocking=torch.device(device).type == "cuda")
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


# --- the training loop -------------------------------------------------------------------


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
    :func:`tbptt_chunks`), ``loss_fn(model, batch, state) -> (loss, state)``,
    and the state a chunk ends with is the state the next chunk starts
    from, *detached*: state carried, gradient cut. Each backward pass then
    spans one chunk while the model still sees the whole history. The state
    starts as None at every epoch.

    **Checkpoints** are written at the end of every epoch: model, optimizer,
    gradient scaler, epoch and step counts, history, and the states of the
    Python, NumPy and PyTorch RNGs. They are written to a temporary file and
    then renamed over the old one, so a crash while saving never loses the
    previous checkpoint. With ``resume=True`` training continues from the
    checkpoint *exactly*: a run stopped after k epochs and resumed ends with
    the same parameters and losses as one that never stopped, provided the
    batches come from the global RNGs (a list, or a ``DataLoader`` shuffling
    without its own ``generator``). With ``steps``, the last epoch may end
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
    device : where to train; default :func:`select_device`.
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
    if (epochs is None) == (steps is None):
        raise ValueError(f"epochs={epochs!r}, steps={steps!r}; expected exactly one of them")
    for name, value in (("epochs", epochs), ("steps", steps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} is {value!r}; expected an integer >= 1")
    if clip_grad_norm is not None and not (
        isinstance(clip_grad_norm, (int, float)) and math.isfinite(clip_grad_norm) and clip_grad_norm > 0
    ):
        raise ValueError(f"clip_grad_norm is {clip_grad_norm!r}; expected None or a finite number > 0")
    if not isinstance(progress, (bool, int)) or progress < 0:
        raise ValueError(f"progress is {progress!r}; expected True, False or an integer n >= 1")
    device = select_device(device)
    amp_dtype = _amp_dtype(amp, device)
    scaler = _grad_scaler() if amp_dtype == torch.float16 else None
    model.to(device)

    history = History()
    if checkpoint_path is not None:
        checkpoint_path = os.fspath(checkpoint_path)
        if os.path.exists(checkpoint_path):
            if not resume:
                raise FileExistsError(
                    f"checkpoint_path {checkpoint_path!r} exists; pass resume=True to continue from it, "
                    "or remove it (or choose another path) to start afresh"
                )
            history = _load_checkpoint(checkpoint_path, model, optimizer, scaler)
    elif resume:
        raise ValueError("resume=True needs a checkpoint_path")

    every = 1 if progress is True else int(progress)
    report = _Progress(epochs=epochs, steps=steps, every=every, stream=sys.stdout if every else None)
    was_training = model.training

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    def done():
        return history.epochs >= epochs if epochs is not None else history.steps >= steps

    while not done():
        model.train()
        losses, norms, state = [], [], None
        for batch in train_batches:
            batch = to_device(batch, device)
            with autocast():
                loss, state = _call_loss(loss_fn, model, batch, state, tbptt)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
            else:
                loss.backward()
            if clip_grad_norm is not None:
                if scaler is not None:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm))
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if tbptt:
                state = _detach(state)  # state carried, gradient cut
            # Kept as tensors, not .item(): a host-device sync per step would
            # stall the GPU; they come to the host once per epoch.
            losses.append(loss.detach().float())
            history.steps += 1
            report.during_epoch(history, loss)
            if steps is not None and history.steps >= steps:
                break
        _record_epoch(history, losses, norms)
        if valid_batches is not None or eval_fn is not None:
            model.eval()
            with torch.no_grad(), autocast():
                if valid_batches is not None:
                    history.valid_loss.append(_mean_loss(loss_fn, model, valid_batches, device, tbptt))
                if eval_fn is not None:
                    history.metrics.append(_metrics(eval_fn(model)))
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, model, optimizer, scaler, history)
        report.end_of_epoch(history, last=done())
    model.train(was_training)
    return history


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


# --- checkpoints ---------------------------------------------------------------------------


def _rng_state():
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        # As tensors and plain numbers, so torch.load(weights_only=True) can read them.
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state):
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)


def _save_checkpoint(path, model, optimizer, scaler, history):
    checkpoint = {
        "format": _CHECKPOINT_FORMAT,
        "model_class": _qualname(model),
        "model": model.state_dict(),
        "optimizer_class": _qualname(optimizer),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": dataclasses.asdict(history),
        "rng": _rng_state(),
    }
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Write a temporary file in the same directory, then rename it over the
    # old checkpoint: os.replace is atomic, so the file at `path` is always
    # either the previous checkpoint or the new one, never half of one.
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _qualname(obj):
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _load_checkpoint(path, model, optimizer, scaler):
    """Check the whole checkpoint against model and optimizer, then load it; return its History."""
    try:
        # weights_only: a checkpoint from elsewhere cannot run code when loaded.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path!r} could not be read as a checkpoint written by fit: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path!r} is not a checkpoint written by fit (no {_CHECKPOINT_FORMAT!r} format tag)"
        )
    for what, saved, this in (("model", ckpt["model_class"], _qualname(model)),
                              ("optimizer", ckpt["optimizer_class"], _qualname(optimizer))):
        if saved != this:
            raise ValueError(f"{path!r} holds a checkpoint of a {saved} {what}; this {what} is a {this}")

    # Compare every key and shape first: load_state_dict would copy the
    # matching tensors before complaining about the others.
    saved, expected = ckpt["model"], model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in saved]
    problems += [f"unexpected {k}" for k in saved if k not in expected]
    problems += [
        f"{k} has shape {tuple(saved[k].shape)}, expected {tuple(v.shape)}"
        for k, v in expected.items() if k in saved and saved[k].shape != v.shape
    ]
    if problems:
        raise ValueError(
            f"{path!r} holds parameters of a different {type(model).__name__} "
            f"(other sizes or layers): {'; '.join(problems[:4])}" + (" ..." if len(problems) > 4 else "")
        )
    saved_groups = [len(g["params"]) for g in ckpt["optimizer"]["param_groups"]]
    groups = [len(g["params"]) for g in optimizer.param_groups]
    if saved_groups != groups:
        raise ValueError(
            f"{path!r} holds an optimizer state for parameter groups of sizes {saved_groups}; "
            f"this optimizer has {groups}"
        )

    model.load_state_dict(saved)
    optimizer.load_state_dict(ckpt["optimizer"])  # moves its state to the parameters' device
    if scaler is not None and ckpt["scaler"] is not None:
        scaler.load_state_dict(ckpt["scaler"])
    _set_rng_state(ckpt["rng"])
    return History(**ckpt["history"])


# --- language-model data ---------------------------------------------------------------------


def batchify_stream(token_ids, batch_size):
    """Cut one long token stream into ``batch_size`` parallel streams.

    L: stream length, N: ``batch_size``, S = L // N steps per stream. Row n
    is the contiguous stretch ``token_ids[n*S : (n+1)*S]``, so consecutive
    columns are consecutive tokens, and the state at the end of one chunk of
    columns is the right start for the next chunk. The last ``L - N*S``
    tokens are dropped.

    Parameters
    ----------
    token_ids : (L,) integers (tensor, NumPy array or list).
    batch_size : N >= 1.

    Returns
    -------
    (N, S) int64 tensor, a view of ``token_ids`` when it is an int64 tensor.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size is {batch_size!r}; expected an integer >= 1")
    ids = torch.as_tensor(token_ids)
    if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"token_ids is {ids.dtype} of shape {tuple(ids.shape)}; expected (L,) integers")
    steps = ids.shape[0] // batch_size
    if steps < 2:
        raise ValueError(
            f"token_ids has length L = {ids.shape[0]}; expected L >= 2 * batch_size = {2 * batch_size} "
            "(each stream needs an input and a next token)"
        )
    return ids[: batch_size * steps].to(torch.int64).view(batch_size, steps)


def tbptt_chunks(data, k):
    """Consecutive (input, target) chunks of ``k`` steps for stateful truncated BPTT.

    N: streams, S: steps (``data`` is (N, S), from :func:`batchify_stream`).
    Chunk j is ``x = data[:, jk : jk+k]`` and ``y = data[:, jk+1 : jk+k+1]``:
    every target is the token after its input, and chunk j+1's inputs
    continue where chunk j's stopped. The last chunk is shorter when
    ``S - 1`` is not a multiple of k. Pass the result to
    ``fit(..., tbptt=True)``, which carries the state across chunks.

    Parameters
    ----------
    data : (N, S) integer tensor, S >= 2.
    k : int >= 1, the truncation length (steps per chunk).

    Returns
    -------
    list of ``(x, y)`` pairs of (N, k) views of ``data`` (a list, so it can
    be iterated once per epoch).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k is {k!r}; expected an integer >= 1")
    if not isinstance(data, torch.Tensor) or data.dim() != 2 or data.shape[1] < 2:
        got = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data is {got}; expected an (N, S) tensor with S >= 2 (see batchify_stream)")
    S = data.shape[1]
    chunks = []
    for start in range(0, S - 1, k):
        stop = min(start + k, S - 1)  # the last target is data[:, S - 1]
        chunks.append((data[:, start:stop], data[:, start + 1 : stop + 1]))
    return chunks


@torch.no_grad()
def stream_cross_entropy(model, data, k, *, device=None):
    """A language model's mean cross-entropy per predicted token over whole streams, in nats.

    N: streams, S: steps, V: vocabulary size. ``data`` (N, S) is read in
    the consecutive chunks of :func:`tbptt_chunks`, the state carried from
    each chunk to the next, so every token is predicted from the whole
    stream before it, as if each stream were read in one call; ``k`` only
    bounds the memory used. The result is the total negative log-likelihood
    of the ``N * (S - 1)`` predicted tokens divided by their number, so
    chunks of different lengths are weighted by their tokens (a mean of
    per-chunk means would not be). Divide by ``ln 2`` for bits per token.

    Parameters
    ----------
    model : a language model called as ``model(x, state) -> (logits, state)``
        with ``x`` (N, k) token indices, ``logits`` (N, k, V) and ``state``
        None at the start (e.g. :class:`~rnncourse.torch.models.CharLanguageModel`).
        It is run in eval mode and put back in the mode it came in.
    data : (N, S) integer tensor, S >= 2 (see :func:`batchify_stream`).
    k : int >= 1, steps per chunk.
    device : where to compute; default the device of the model's parameters.

    Returns
    -------
    float, nats per token.
    """
    chunks = tbptt_chunks(data, k)
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        total, count, state = torch.zeros((), dtype=torch.float64, device=device), 0, None
        for x, y in chunks:
            logits, state = model(x.to(device), state)
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).double(), y.to(device).reshape(-1), reduction="sum"
            )
            count += y.numel()
    finally:
        model.train(was_training)
    return total.item() / count


class LengthBuckets:
    """Minibatches of sequences of similar lengths, in a new random order at every pass.

    B: number of sequences. The sequences are sorted by length and cut
    into consecutive groups of ``batch_size``; each group becomes one batch,
    ``collate(indices)``. A padded batch is as long as its longest sequence,
    and a recurrent layer runs that many steps, so batching sequences of
    similar lengths wastes little work on padding. Each iteration shuffles
    the order of the batches with PyTorch's global random generator (so
    :func:`seed_everything` makes it reproducible and :func:`fit` resumes it
    exactly); the groups themselves stay fixed.

    Parameters
    ----------
    lengths : (B,) integers, the length of each sequence.
    batch_size : int >= 1.
    collate : ``collate(indices) -> batch``, called with a (b,) int64
        tensor of sequence indices (b <= ``batch_size``); it builds the
        batch (pads, stacks, ...) that ``fit`` hands to the loss function.
    shuffle : bool; False keeps the batches in order of length.

    Examples
    --------
    >>> batches = LengthBuckets([5, 2, 9, 3], 2, lambda idx: idx.tolist(), shuffle=False)
    >>> list(batches)
    [[1, 3], [0, 2]]
    """

    def __init__(self, lengths, batch_size, collate, *, shuffle=True):
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise ValueError(f"lengths is {lengths.dtype} of shape {tuple(lengths.shape)}; expected (B,) integers")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size is {batch_size!r}; expected an integer >= 1")
        if not callable(collate):
            raise ValueError(f"collate is {type(collate).__name__}; expected a function of a tensor of indices")
        order = torch.sort(lengths.cpu(), stable=True).indices
        self.groups = list(torch.split(order, batch_size))
        self.collate, self.shuffle = collate, shuffle

    def __len__(self):
        return len(self.groups)

    def __iter__(self):
        order = torch.randperm(len(self.groups)).tolist() if self.shuffle else range(len(self.groups))
        for g in order:
            yield self.collate(self.groups[g])
