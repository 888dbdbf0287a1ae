"""Losses, each returning the loss and its gradient together.

Every loss here is a mean, and every function returns ``(loss, dinput)``:
``loss`` is a NumPy scalar of the input's dtype and ``dinput`` is
``d loss / d input``, with the input's shape. A loss is the end of the
graph, so the gradient needs no upstream ``dout`` and there is no separate
backward function.
"""

import numpy as np

from ._checks import dims, expect_shape, first_index, float_array, fmt_shape, int_array
from .activations import log_softmax, sigmoid

__all__ = ["temporal_softmax_loss", "binary_cross_entropy_with_logits", "mse_loss"]


def _same_shape(name, a, ref_name, ref):
    if a.shape != ref.shape:
        raise ValueError(
            f"{name} has shape {fmt_shape(a.shape)}; expected the shape of {ref_name}, {fmt_shape(ref.shape)}"
        )


def _not_empty(name, a):
    if a.size == 0:
        raise ValueError(f"{name} has shape {fmt_shape(a.shape)}; expected at least one element to average over")


def _as_mask(mask, shape):
    """``mask`` as a boolean array of ``shape``; accepts bool or 0/1 numbers."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask)
    expect_shape("mask", mask, "N T", shape)
    if mask.dtype == bool:
        return mask
    if not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
        raise ValueError(f"mask has dtype {mask.dtype}; expected bool or 0/1 numbers")
    bad = (mask != 0) & (mask != 1)
    if bad.any():
        where = first_index(bad)
        raise ValueError(f"mask holds {mask[tuple(where)].item()!r} at {where}; expected bool or 0/1 values")
    return mask == 1


def temporal_softmax_loss(scores, y, mask=None):
    """Softmax cross-entropy at every time step, averaged over the unmasked steps.

    N: batch size, T: sequence length, V: number of classes (vocabulary size).

    With ``p = softmax(scores[n, t])`` and ``M`` the number of unmasked steps::

        loss = -(1 / M) * sum over unmasked (n, t) of log p[y[n, t]]
        dscores[n, t] = (p - onehot(y[n, t])) / M   at unmasked steps, 0 at masked ones

    This is ``torch.nn.functional.cross_entropy`` with ``reduction="mean"``
    and ``ignore_index`` at the masked steps. ``log p`` is computed by
    :func:`~rnncourse.numpy.activations.log_softmax`, so scores of any size
    (``|scores|`` up to 1e4 and beyond) give a finite loss.

    Parameters
    ----------
    scores : ndarray (N, T, V), float: unnormalised log-probabilities.
    y : ndarray (N, T), integer: the correct class at each step, in ``[0, V)``
        wherever ``mask`` is true. Masked steps may hold anything (a padding
        id, -100, ...): they are not read.
    mask : ndarray (N, T), bool or 0/1 numbers, optional: which steps count
        (1 for a real token, 0 for padding). None counts every step.

    Returns
    -------
    loss : scalar of the dtype of ``scores``. When every step is masked there
        is nothing to average: the loss is defined as 0 and the gradient as 0,
        rather than 0/0 (PyTorch returns NaN there).
    dscores : ndarray (N, T, V), the dtype of ``scores``.
    """
    scores = float_array("scores", scores)
    N, T, V = dims("scores", scores, "N T V")
    if V == 0:
        raise ValueError("scores has shape (N, T, 0); expected at least one class, V >= 1")
    y = int_array("y", y)
    expect_shape("y", y, "N T", (N, T))
    mask = _as_mask(mask, (N, T))
    bad = mask & ((y < 0) | (y >= V))
    if bad.any():
        where = first_index(bad)
        raise ValueError(
            f"y holds {int(y[tuple(where)])} at {where} (an unmasked step); "
            f"expected integers in [0, V) = [0, {V})"
        )

    M = max(int(mask.sum()), 1)  # all masked: a sum of zero terms over 1, not 0/0
    y_read = np.where(mask, y, 0)  # masked labels may be out of range; never index with them
    n, t = np.arange(N)[:, None], np.arange(T)[None, :]

    logp = log_softmax(scores)
    loss = -logp[n, t, y_read][mask].sum() / M

    dscores = np.exp(logp)
    dscores[n, t, y_read] -= 1
    dscores *= (mask / M).astype(scores.dtype)[:, :, None]
    return scores.dtype.type(loss), dscores


def binary_cross_entropy_with_logits(logits, y):
    """Binary cross-entropy of ``sigmoid(logits)`` against targets ``y``, averaged.

    S: any shape (the same for ``logits`` and ``y``); n: its number of elements.

    Per element, with ``x`` the logit::

        l = -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))
          = max(x, 0) - x y + log(1 + exp(-|x|))

    The second form is the one computed: ``exp`` only sees ``-|x|`` (no
    overflow) and the log's argument is at least 1 (no ``log(0)``), so
    logits of any size give a finite loss. The gradient is
    ``dl/dx = sigmoid(x) - y``, divided by ``n`` for the mean.

    Parameters
    ----------
    logits : ndarray S, float.
    y : ndarray S, float, values in [0, 1] (probabilities, not only 0 and 1).

    Returns
    -------
    loss : scalar, the mean of ``l``; dtype NumPy's promotion of the inputs gives.
    dlogits : ndarray S.
    """
    logits = float_array("logits", logits)
    y = float_array("y", y)
    _same_shape("y", y, "logits", logits)
    _not_empty("logits", logits)
    bad = ~((y >= 0) & (y <= 1))  # written so that NaN counts as bad
    if bad.any():
        where = first_index(bad)
        raise ValueError(f"y holds {float(y[tuple(where)])!r} at {where}; expected values in [0, 1]")

    x = logits
    n = x.size
    loss = np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))))
    dlogits = (sigmoid(x) - y) / n
    return loss, dlogits


def mse_loss(pred, target):
    """Mean squared error ``(1/n) sum (pred - target)^2`` and its gradient.

    S: any shape (the same for both); n: its number of elements.

    Parameters
    ----------
    pred : ndarray S, float.
    target : ndarray S, float.

    Returns
    -------
    loss : scalar; dtype NumPy's promotion of the inputs gives.
    dpred : ndarray S, ``2 (pred - target) / n``.
    """
    pred = float_array("pred", pred)
    target = float_array("target", target)
    _same_shape("target", target, "pred", pred)
    _not_empty("pred", pred)
    diff = pred - target
    return np.mean(diff**2), 2 * diff / diff.size
