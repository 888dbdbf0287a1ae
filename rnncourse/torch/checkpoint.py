"""Checkpoints of a training run that resume it exactly, written so that a crash never loses one.

A checkpoint holds everything a run needs to continue as if it had never
stopped: the model's and the optimizer's state, the gradient scaler of mixed
precision, the :class:`~rnncourse.torch.train.History` so far, and the states
of the Python, NumPy and PyTorch random generators (which decide the next
shuffles and dropout masks). :func:`~rnncourse.torch.train.fit` writes one
at the end of every epoch and reads it back with ``resume=True``.

- :func:`save_checkpoint` writes a temporary file and renames it over the
  old checkpoint (``os.replace`` is atomic): the file at the path is always
  a whole checkpoint, the previous one or the new one.
- :func:`load_checkpoint` checks the whole checkpoint against the model and
  the optimizer *before* changing either, and reads it with
  ``weights_only=True``, so a file from elsewhere cannot run code.
"""

import dataclasses
import os
import random
import tempfile

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint"]

#: The tag every checkpoint carries; a file without it is refused.
CHECKPOINT_FORMAT = "rnncourse.torch.fit checkpoint v1"


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


def save_checkpoint(path, model, optimizer, scaler, history):
    """Write a checkpoint of a training run to ``path``, atomically.

    Parameters
    ----------
    path : str or path; its folder is created if needed.
    model : nn.Module.
    optimizer : a ``torch.optim`` optimizer.
    scaler : the gradient scaler of fp16 mixed precision, or None.
    history : a :class:`~rnncourse.torch.train.History` (a dataclass).
    """
    path = os.fspath(path)
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
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


def load_checkpoint(path, model, optimizer, scaler):
    """Check a checkpoint against ``model`` and ``optimizer``, then load it into them.

    Nothing is changed unless everything matches: the model's and the
    optimizer's classes, every parameter name and shape, and the sizes of
    the optimizer's parameter groups. The random generators are restored
    too, so the run continues with the draws it would have made.

    Parameters
    ----------
    path : str or path of a file written by :func:`save_checkpoint`.
    model, optimizer, scaler : as in :func:`save_checkpoint` (``scaler`` may be None).

    Returns
    -------
    dict, the saved history's fields (``History(**result)`` rebuilds it).

    Raises
    ------
    ValueError
        If the file is not a checkpoint written by :func:`save_checkpoint`,
        or does not match the model or the optimizer.
    """
    path = os.fspath(path)
    try:
        # weights_only: a checkpoint from elsewhere cannot run code when loaded.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path!r} could not be read as a checkpoint written by fit: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path!r} is not a checkpoint written by fit (no {CHECKPOINT_FORMAT!r} format tag)"
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
    return dict(ckpt["history"])
