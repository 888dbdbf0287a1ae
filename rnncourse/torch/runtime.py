"""Where and how reproducibly to run: seeding every random generator, choosing the device.

- :func:`seed_everything` seeds Python's, NumPy's and PyTorch's generators at once.
- :func:`select_device` picks CUDA when there is a GPU, else the CPU, and
  refuses to fall back silently when CUDA was asked for.
- :func:`to_device` moves every tensor of a (nested) batch.
"""

import random

import numpy as np
import torch

from ..validation import check_int

__all__ = ["seed_everything", "select_device", "to_device"]


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
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
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
