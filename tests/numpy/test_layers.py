"""Tests for rnncourse.numpy.layers: affine, temporal affine, embedding."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse.numpy import gradcheck
from rnncourse.numpy.layers import (
    affine_backward,
    affine_forward,
    embedding_backward,
    embedding_forward,
    temporal_affine_backward,
    temporal_affine_forward,
)
from rnncourse.testing import assert_close

DTYPES = [np.float64, np.float32]
SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (4, 1, 3, 2), (3, 5, 2, 6)]  # N, T, D, M


def randn(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def tt(a):
    return torch.tensor(a, requires_grad=True)


# ---------------------------------------------------------------- affine


def affine_inputs(seed, N, D, M, dtype=np.float64):
    rng = np.random.default_rng(seed)
    # the bias is drawn away from 0 so a dropped or misplaced bias shows
    return randn(rng, N, D, dtype=dtype), randn(rng, D, M, dtype=dtype), (1 + rng.random(M)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, D, M", SHAPES)
def test_affine_matches_torch(N, T, D, M, dtype):
    x, W, b = affine_inputs(N * 100 + M, N, D, M, dtype)
    out, cache = affine_forward(x, W, b)
    dout = randn(np.random.default_rng(1), N, M, dtype=dtype)
    dx, dW, db = affine_backward(dout, cache)

    xt, Wt, bt = tt(x), tt(W.T.copy()), tt(b)  # torch.nn.Linear stores W transposed
    ot = F.linear(xt, Wt, bt)
    ot.backward(torch.tensor(dout))
    assert out.dtype == dtype and dx.dtype == dtype and dW.dtype == dtype and db.dtype == dtype
    assert_close(out, ot, "out")
    assert_close(dx, xt.grad, "dx")
    assert_close(dW, Wt.grad.T, "dW")
    assert_close(db, bt.grad, "db")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, D, M", SHAPES)
def test_temporal_affine_matches_torch(N, T, D, M, dtype):
    rng = np.random.default_rng(N + 10 * T)
    x, W, b = randn(rng, N, T, D, dtype=dtype), randn(rng, D, M, dtype=dtype), (1 + rng.random(M)).astype(dtype)
    out, cache = temporal_affine_forward(x, W, b)
    dout = randn(rng, N, T, M, dtype=dtype)
    dx, dW, db = temporal_affine_backward(dout, cache)

    xt, Wt, bt = tt(x), tt(W.T.copy()), tt(b)
    ot = F.linear(xt, Wt, bt)
    ot.backward(torch.tensor(dout))
    assert out.dtype == dtype and dW.dtype == dtype
    assert_close(out, ot, "out")
    assert_close(dx, xt.grad, "dx")
    assert_close(dW, Wt.grad.T, "dW")
    assert_close(db, bt.grad, "db")


@pytest.mark.parametrize("N, T, D, M", SHAPES[1:])
def test_affine_gradcheck(N, T, D, M):
    x, W, b = affine_inputs(N, N, D, M)
    out, cache = affine_forward(x, W, b)
    dout = randn(np.random.default_rng(2), *out.shape)
    dx, dW, db = affine_backward(dout, cache)
    report = gradcheck(lambda **a: affine_forward(**a)[0], dict(x=x, W=W, b=b), dict(x=dx, W=dW, b=db), dout)
    assert report.ok, str(report)


@pytest.mark.parametrize("N, T, D, M", SHAPES[1:])
def test_temporal_affine_gradcheck(N, T, D, M):
    rng = np.random.default_rng(T)
    x, W, b = randn(rng, N, T, D), randn(rng, D, M), 1 + rng.random(M)
    out, cache = temporal_affine_forward(x, W, b)
    dout = randn(rng, *out.shape)
    dx, dW, db = temporal_affine_backward(dout, cache)
    report = gradcheck(
        lambda **a: temporal_affine_forward(**a)[0], dict(x=x, W=W, b=b), dict(x=dx, W=dW, b=db), dout
    )
    assert report.ok, str(report)


def test_gradcheck_catches_wrong_affine_gradients():
    """The checks above can fail: a dropped batch sum in db, a dW off by a transpose-like mix-up."""
    x, W, b = affine_inputs(0, 3, 4, 4)
    out, cache = affine_forward(x, W, b)
    dout = randn(np.random.default_rng(3), *out.shape)
    dx, dW, db = affine_backward(dout, cache)
    f = lambda **a: affine_forward(**a)[0]  # noqa: E731
    inputs = dict(x=x, W=W, b=b)
    assert not gradcheck(f, inputs, dict(b=dout[0]), dout).ok  # db from one row only
    assert not gradcheck(f, inputs, dict(W=dW.T), dout).ok  # a square W, transposed
    assert not gradcheck(f, inputs, dict(x=dout @ W), dout).ok  # W instead of W^T (square)


def test_torch_comparison_catches_a_missing_bias():
    x, W, b = affine_inputs(5, 3, 4, 2)
    expected = F.linear(torch.tensor(x), torch.tensor(W.T.copy()), torch.tensor(b))
    with pytest.raises(AssertionError, match="out"):
        assert_close(x @ W, expected, "out")


def test_affine_extreme_inputs_are_finite():
    x, W, b = affine_inputs(6, 3, 4, 2)
    out, cache = affine_forward(1e4 * x, W, 1e4 * b)
    grads = affine_backward(1e4 * np.ones_like(out), cache)
    assert np.isfinite(out).all() and all(np.isfinite(g).all() for g in grads)


def test_affine_backward_twice_gives_the_same_result():
    x, W, b = affine_inputs(7, 3, 4, 2)
    x0, W0 = x.copy(), W.copy()
    out, cache = affine_forward(x, W, b)
    dout = randn(np.random.default_rng(8), *out.shape)
    first = affine_backward(dout, cache)
    second = affine_backward(dout, cache)
    for a, c in zip(first, second):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(W, W0)

    rng = np.random.default_rng(9)
    out, cache = temporal_affine_forward(randn(rng, 2, 3, 4), W, b)
    dout = randn(rng, *out.shape)
    for a, c in zip(temporal_affine_backward(dout, cache), temporal_affine_backward(dout, cache)):
        np.testing.assert_array_equal(a, c)


def test_affine_value_errors():
    x, W, b = affine_inputs(0, 3, 4, 2)
    with pytest.raises(ValueError, match=r"x has shape \(3, 1, 4\); expected \(N, D\)"):
        affine_forward(x[:, None, :], W, b)
    with pytest.raises(ValueError, match=r"W has shape \(5, 2\); expected \(D, M\) = \(4, 2\)"):
        affine_forward(x, np.zeros((5, 2)), b)
    with pytest.raises(ValueError, match=r"b has shape \(3,\); expected \(M\) = \(2,\)"):
        affine_forward(x, W, np.ones(3))
    with pytest.raises(ValueError, match=r"x has dtype int64; expected a floating-point"):
        affine_forward(np.ones((3, 4), dtype=np.int64), W, b)
    with pytest.raises(ValueError, match=r"W has shape \(4,\); expected \(D, M\)"):
        affine_forward(x, W[:, 0], b)
    _, cache = affine_forward(x, W, b)
    with pytest.raises(ValueError, match=r"dout has shape \(3, 3\); expected \(N, M\) = \(3, 2\)"):
        affine_backward(np.ones((3, 3)), cache)
    with pytest.raises(ValueError, match=r"x has shape \(3, 4\); expected \(N, T, D\)"):
        temporal_affine_forward(x, W, b)
    _, cache = temporal_affine_forward(x[:, None, :], W, b)
    with pytest.raises(ValueError, match=r"dout has shape \(3, 2\); expected \(N, T, M\) = \(3, 1, 2\)"):
        temporal_affine_backward(np.ones((3, 2)), cache)


# ---------------------------------------------------------------- embedding


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, V, D", [(1, 1, 1, 1), (2, 3, 4, 5), (4, 6, 3, 2), (3, 5, 10, 3)])
def test_embedding_matches_torch(N, T, V, D, dtype):
    rng = np.random.default_rng(N * T * V)
    idx = rng.integers(0, V, size=(N, T))
    idx[0, 0] = idx[-1, -1]  # at least one repeated id (when N * T > 1)
    W = randn(rng, V, D, dtype=dtype)
    out, cache = embedding_forward(idx, W)
    dout = randn(rng, N, T, D, dtype=dtype)
    dW = embedding_backward(dout, cache)

    Wt = tt(W)
    ot = F.embedding(torch.tensor(idx), Wt)
    ot.backward(torch.tensor(dout))
    assert out.dtype == dtype and dW.dtype == dtype
    assert_close(out, ot, "out")
    assert_close(dW, Wt.grad, "dW")


def test_embedding_repeated_ids_accumulate():
    W = np.arange(12.0).reshape(4, 3)
    idx = np.array([[1, 1, 3], [1, 0, 3]])
    _, cache = embedding_forward(idx, W)
    dout = np.ones((2, 3, 3))
    dW = embedding_backward(dout, cache)
    np.testing.assert_array_equal(dW[:, 0], [1.0, 3.0, 0.0, 2.0])  # counts of ids 0, 1, 2, 3

    # a backward written as dW[idx] = dout keeps one occurrence; the torch check would catch it
    wrong = np.zeros_like(W)
    wrong[idx.ravel()] += dout.reshape(-1, 3)
    Wt = tt(W)
    F.embedding(torch.tensor(idx), Wt).backward(torch.tensor(dout))
    assert_close(dW, Wt.grad, "dW")
    with pytest.raises(AssertionError, match="dW"):
        assert_close(wrong, Wt.grad, "dW")


def test_embedding_gradcheck():
    rng = np.random.default_rng(11)
    idx = rng.integers(0, 5, size=(3, 4))
    W = randn(rng, 5, 3)
    out, cache = embedding_forward(idx, W)
    dout = randn(rng, *out.shape)
    dW = embedding_backward(dout, cache)
    f = lambda **a: embedding_forward(idx, **a)[0]  # noqa: E731
    report = gradcheck(f, dict(W=W), dict(W=dW), dout)
    assert report.ok, str(report)
    assert not gradcheck(f, dict(W=W), dict(W=dW[::-1].copy()), dout).ok  # rows swapped


def test_embedding_backward_twice_and_cache_untouched():
    rng = np.random.default_rng(12)
    idx = rng.integers(0, 5, size=(3, 4))
    idx0 = idx.copy()
    W = randn(rng, 5, 3)
    out, cache = embedding_forward(idx, W)
    dout = randn(rng, *out.shape)
    np.testing.assert_array_equal(embedding_backward(dout, cache), embedding_backward(dout, cache))
    np.testing.assert_array_equal(idx, idx0)


def test_embedding_value_errors():
    W = np.ones((10, 3))
    idx = np.zeros((2, 5), dtype=np.int64)
    idx[0, 3] = 12
    with pytest.raises(ValueError, match=r"idx holds 12 at \[0, 3\]; expected integers in \[0, V\) = \[0, 10\)"):
        embedding_forward(idx, W)
    idx[0, 3] = 0
    idx[1, 4] = -1
    with pytest.raises(ValueError, match=r"idx holds -1 at \[1, 4\]"):
        embedding_forward(idx, W)
    with pytest.raises(ValueError, match=r"idx has dtype float64; expected an integer array"):
        embedding_forward(np.zeros((2, 5)), W)
    with pytest.raises(ValueError, match=r"idx has shape \(5,\); expected \(N, T\)"):
        embedding_forward(np.zeros(5, dtype=np.int64), W)
    with pytest.raises(ValueError, match=r"W has dtype int64; expected a floating-point"):
        embedding_forward(np.zeros((2, 5), dtype=np.int64), np.ones((10, 3), dtype=np.int64))
    _, cache = embedding_forward(np.zeros((2, 5), dtype=np.int64), W)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 5, 4\); expected \(N, T, D\) = \(2, 5, 3\)"):
        embedding_backward(np.ones((2, 5, 4)), cache)
