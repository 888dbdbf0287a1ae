"""Affine and embedding layers, forward and backward by hand.

The pieces around a recurrent core: an embedding turns token ids into
vectors, a (temporal) affine layer turns hidden states into scores over the
vocabulary. Row vectors, as everywhere in the package: ``out = x W + b``
with ``W`` of shape ``(D, M)``.
"""

import numpy as np

from ._checks import dims, expect_shape, first_index, float_array, int_array, upstream_gradient

__all__ = [
    "affine_forward",
    "affine_backward",
    "temporal_affine_forward",
    "temporal_affine_backward",
    "embedding_forward",
    "embedding_backward",
]


def _affine_inputs(x, W, b, x_dims):
    """Check ``x`` (its axes named by ``x_dims``, the last ``D``), ``W (D, M)`` and ``b (M,)``."""
    x = float_array("x", x)
    dims("x", x, x_dims)
    D = x.shape[-1]
    W = float_array("W", W)
    dims("W", W, "D M")
    M = W.shape[1]
    expect_shape("W", W, "D M", (D, M))
    b = float_array("b", b)
    expect_shape("b", b, "M", (M,))
    return x, W, b


def affine_forward(x, W, b):
    """Affine layer ``out = x W + b``.

    N: batch size, D: input size, M: output size.

    Parameters
    ----------
    x : ndarray (N, D), float.
    W : ndarray (D, M), float: the weight (the transpose of ``torch.nn.Linear.weight``).
    b : ndarray (M,), float: the bias.

    Returns
    -------
    out : ndarray (N, M).
    cache : what :func:`affine_backward` needs.
    """
    x, W, b = _affine_inputs(x, W, b, "N D")
    return x @ W + b, (x, W)


def affine_backward(dout, cache):
    """Backward pass of :func:`affine_forward`.

    N: batch size, D: input size, M: output size.

    Parameters
    ----------
    dout : ndarray (N, M): gradient of the loss with respect to ``out``.

    Returns
    -------
    dx : ndarray (N, D) ``= dout W^T``.
    dW : ndarray (D, M) ``= x^T dout``.
    db : ndarray (M,): ``dout`` summed over the batch, since ``b`` is added to every row.
    """
    x, W = cache
    dout = upstream_gradient("dout", dout, "N M", (x.shape[0], W.shape[1]))
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


def temporal_affine_forward(x, W, b):
    """The affine layer applied at every time step: ``out_t = x_t W + b``.

    N: batch size, T: sequence length, D: input size, M: output size.

    Parameters
    ----------
    x : ndarray (N, T, D), float.
    W : ndarray (D, M), float, shared by all time steps.
    b : ndarray (M,), float.

    Returns
    -------
    out : ndarray (N, T, M).
    cache : what :func:`temporal_affine_backward` needs.
    """
    x, W, b = _affine_inputs(x, W, b, "N T D")
    # matmul broadcasts over N and T: one product instead of a loop over time.
    return x @ W + b, (x, W)


def temporal_affine_backward(dout, cache):
    """Backward pass of :func:`temporal_affine_forward`.

    N: batch size, T: sequence length, D: input size, M: output size.

    Parameters
    ----------
    dout : ndarray (N, T, M).

    Returns
    -------
    dx : ndarray (N, T, D).
    dW : ndarray (D, M): summed over batch and time, as ``W`` is shared by all steps.
    db : ndarray (M,): summed over batch and time.
    """
    x, W = cache
    N, T, D = x.shape
    M = W.shape[1]
    dout = upstream_gradient("dout", dout, "N T M", (N, T, M))
    dW = x.reshape(N * T, D).T @ dout.reshape(N * T, M)
    return dout @ W.T, dW, dout.sum(axis=(0, 1))


def embedding_forward(idx, W):
    """Embedding lookup: ``out[n, t] = W[idx[n, t]]``.

    N: batch size, T: sequence length, V: vocabulary size, D: embedding size.

    Parameters
    ----------
    idx : ndarray (N, T), integer token ids in ``[0, V)``.
    W : ndarray (V, D), float: row ``i`` is the vector of token ``i``.

    Returns
    -------
    out : ndarray (N, T, D).
    cache : ``(idx, W)``, the two inputs: what :func:`embedding_backward`
        needs (the ids, and ``W`` for its shape and dtype). The layout the
        exercise of chapter 1 states.

    Raises
    ------
    ValueError
        If an id is outside ``[0, V)``. NumPy would accept a negative id
        (counting from the end), which hides bugs.
    """
    idx = int_array("idx", idx)
    dims("idx", idx, "N T")
    W = float_array("W", W)
    dims("W", W, "V D")
    V = W.shape[0]
    bad = (idx < 0) | (idx >= V)
    if bad.any():
        where = first_index(bad)
        raise ValueError(
            f"idx holds {int(idx[tuple(where)])} at {where}; "
            f"expected integers in [0, V) = [0, {V})"
        )
    return W[idx], (idx, W)


def embedding_backward(dout, cache):
    """Backward pass of :func:`embedding_forward`.

    N: batch size, T: sequence length, V: vocabulary size, D: embedding size.

    Row ``i`` of ``dW`` is the sum of ``dout[n, t]`` over every position
    where ``idx[n, t] == i``: a token that occurs several times collects
    the gradient of each occurrence, and a token that never occurs gets 0.

    Parameters
    ----------
    dout : ndarray (N, T, D).
    cache : ``(idx, W)``, from :func:`embedding_forward`.

    Returns
    -------
    dW : ndarray (V, D). (The ids are integers: they have no gradient.)
    """
    idx, W = cache
    V, D = W.shape
    dout = upstream_gradient("dout", dout, "N T D", idx.shape + (D,))
    dW = np.zeros((V, D), dtype=np.result_type(dout.dtype, W.dtype))
    # ``dW[idx] += dout`` would keep only one of repeated ids; add.at sums them all.
    np.add.at(dW, idx.ravel(), dout.reshape(-1, D))
    return dW
