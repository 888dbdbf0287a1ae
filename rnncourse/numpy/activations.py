"""Numerically stable activations: ``sigmoid``, ``softplus``, ``softmax``, ``log_softmax``.

Stable means finite results and no floating-point warnings for any finite
input, ``|x|`` up to 1e4 and beyond: nothing here ever calls ``exp`` on a large
positive number.
"""

import numpy as np

__all__ = ["sigmoid", "softplus", "softmax", "log_softmax"]


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``, elementwise and stable.

    For ``x >= 0`` it computes ``1 / (1 + exp(-x))``; for ``x < 0`` the equal
    ``exp(x) / (1 + exp(x))``. Either way ``exp`` only sees ``-|x|``, so it
    cannot overflow.

    Parameters
    ----------
    x : ndarray of any shape, float32 or float64.

    Returns
    -------
    ndarray of the same shape and dtype, values in [0, 1].
    """
    x = np.asarray(x)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


def softplus(x):
    """``log(1 + exp(x))``, elementwise and stable: ``np.logaddexp(0, x)`` never overflows.

    The SSM's step ``delta = softplus(...)`` and minGRU's gates in log space
    (``log sigmoid(k) = -softplus(-k)``) use it.

    Parameters
    ----------
    x : ndarray of any shape, float32 or float64.

    Returns
    -------
    ndarray of the same shape and dtype, values > 0 (0 only where ``exp(x)`` underflows).
    """
    return np.logaddexp(0, x)


def softmax(x, axis=-1):
    """Softmax along ``axis``: ``exp(x_i) / sum_j exp(x_j)``.

    The maximum along ``axis`` is subtracted first (softmax is unchanged by a
    shift), so the largest exponent is ``exp(0) = 1``.

    Parameters
    ----------
    x : ndarray of any shape, float32 or float64.
    axis : the axis that sums to one.

    Returns
    -------
    ndarray of the same shape and dtype.
    """
    x = np.asarray(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """Logarithm of :func:`softmax`, computed without taking ``log(0)``.

    ``log_softmax(x) = (x - m) - log(sum_j exp(x_j - m))`` with ``m`` the
    maximum along ``axis``.

    Parameters
    ----------
    x : ndarray of any shape, float32 or float64.
    axis : the axis to normalise over.

    Returns
    -------
    ndarray of the same shape and dtype, values <= 0.
    """
    x = np.asarray(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
