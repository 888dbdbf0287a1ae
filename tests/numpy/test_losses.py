"""Tests for rnncourse.numpy.losses: temporal softmax, binary cross-entropy, MSE."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse.numpy import gradcheck
from rnncourse.numpy.losses import binary_cross_entropy_with_logits, mse_loss, temporal_softmax_loss
from rnncourse.testing import assert_close

DTYPES = [np.float64, np.float32]
SHAPES = [(1, 1, 1), (2, 3, 4), (4, 1, 3), (3, 5, 7)]  # N, T, V
ONE = np.array(1.0)  # the upstream gradient of a loss


def softmax_inputs(seed, N, T, V, dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(seed)
    scores = (scale * rng.standard_normal((N, T, V))).astype(dtype)
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) < 0.7
    mask[0, 0] = True  # at least one step counts
    return scores, y, mask


def torch_masked_cross_entropy(scores, y, mask):
    """PyTorch's mean cross-entropy over the unmasked steps (ignore_index at the masked ones)."""
    V = scores.shape[-1]
    st = torch.tensor(scores, requires_grad=True)
    target = torch.tensor(np.where(mask, y, -100).reshape(-1))
    loss = F.cross_entropy(st.reshape(-1, V), target, ignore_index=-100)
    loss.backward()
    return loss, st.grad


# ---------------------------------------------------------------- temporal softmax


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, V", SHAPES)
def test_temporal_softmax_loss_matches_torch(N, T, V, dtype):
    scores, y, mask = softmax_inputs(N * T * V, N, T, V, dtype)
    loss, dscores = temporal_softmax_loss(scores, y, mask)
    loss_t, dscores_t = torch_masked_cross_entropy(scores, y, mask)
    assert loss.dtype == dtype and dscores.dtype == dtype
    assert_close(np.asarray(loss), loss_t, "loss")
    assert_close(dscores, dscores_t, "dscores")

    # without a mask: every step counts
    loss, dscores = temporal_softmax_loss(scores, y)
    loss_t, dscores_t = torch_masked_cross_entropy(scores, y, np.ones_like(mask))
    assert_close(np.asarray(loss), loss_t, "loss (no mask)")
    assert_close(dscores, dscores_t, "dscores (no mask)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_temporal_softmax_loss_extreme_scores(dtype):
    scores, y, mask = softmax_inputs(1, 3, 4, 6, dtype, scale=1e4)
    loss, dscores = temporal_softmax_loss(scores, y, mask)
    assert np.isfinite(loss) and np.isfinite(dscores).all()
    loss_t, dscores_t = torch_masked_cross_entropy(scores, y, mask)
    assert_close(np.asarray(loss), loss_t, "loss")
    assert_close(dscores, dscores_t, "dscores")


def test_temporal_softmax_loss_averages_over_unmasked_steps_only():
    """A loss divided by N*T instead of the number of real steps is caught."""
    scores, y, mask = softmax_inputs(2, 3, 4, 5)
    mask[:] = False
    mask[0, :2] = True
    loss, _ = temporal_softmax_loss(scores, y, mask)
    loss_t, _ = torch_masked_cross_entropy(scores, y, mask)
    assert_close(np.asarray(loss), loss_t, "loss")
    wrong = float(loss) * mask.sum() / mask.size
    with pytest.raises(AssertionError, match="loss"):
        assert_close(np.asarray(wrong), loss_t, "loss")


def test_temporal_softmax_loss_masked_steps_get_zero_gradient_and_any_label():
    scores, y, mask = softmax_inputs(3, 2, 4, 5)
    y_padded = np.where(mask, y, -100)  # padding labels out of range: never read
    y_padded[~mask & (np.arange(4) % 2 == 0)] = 5  # = V, also out of range
    loss, dscores = temporal_softmax_loss(scores, y_padded, mask)
    loss_ref, dscores_ref = temporal_softmax_loss(scores, y, mask)
    assert loss == loss_ref
    np.testing.assert_array_equal(dscores, dscores_ref)
    assert (dscores[~mask] == 0.0).all()


def test_temporal_softmax_loss_mask_forms_agree():
    scores, y, mask = softmax_inputs(4, 3, 4, 5)
    ref = temporal_softmax_loss(scores, y, mask)
    for form in (mask.astype(np.int64), mask.astype(np.float32), mask.astype(np.float64).tolist()):
        loss, dscores = temporal_softmax_loss(scores, y, form)
        assert loss == ref[0]
        np.testing.assert_array_equal(dscores, ref[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_temporal_softmax_loss_all_masked_is_zero(dtype):
    """Nothing to average: loss 0 and gradient 0 (PyTorch gives NaN), no warnings."""
    scores, y, _ = softmax_inputs(5, 2, 3, 4, dtype, scale=1e4)
    loss, dscores = temporal_softmax_loss(scores, y, np.zeros((2, 3), dtype=bool))
    assert loss == 0.0 and loss.dtype == dtype
    assert dscores.dtype == dtype
    np.testing.assert_array_equal(dscores, np.zeros_like(scores))


@pytest.mark.parametrize("N, T, V", SHAPES[1:])
def test_temporal_softmax_loss_gradcheck(N, T, V):
    scores, y, mask = softmax_inputs(6 + V, N, T, V)
    _, dscores = temporal_softmax_loss(scores, y, mask)
    f = lambda scores: temporal_softmax_loss(scores, y, mask)[0]  # noqa: E731
    report = gradcheck(f, dict(scores=scores), dict(scores=dscores), ONE)
    assert report.ok, str(report)


def test_gradcheck_catches_a_gradient_that_ignores_the_mask():
    scores, y, mask = softmax_inputs(7, 3, 4, 5)
    mask[1] = False
    _, dscores = temporal_softmax_loss(scores, y, mask)
    _, dscores_all = temporal_softmax_loss(scores, y)
    wrong = dscores_all * mask.size / mask.sum()  # masked steps leak gradient
    f = lambda scores: temporal_softmax_loss(scores, y, mask)[0]  # noqa: E731
    assert gradcheck(f, dict(scores=scores), dict(scores=dscores), ONE).ok
    assert not gradcheck(f, dict(scores=scores), dict(scores=wrong), ONE).ok


def test_temporal_softmax_loss_does_not_modify_its_inputs():
    scores, y, mask = softmax_inputs(8, 2, 3, 4)
    copies = scores.copy(), y.copy(), mask.copy()
    first = temporal_softmax_loss(scores, y, mask)
    second = temporal_softmax_loss(scores, y, mask)
    for a, c in zip(copies, (scores, y, mask)):
        np.testing.assert_array_equal(a, c)
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])


def test_temporal_softmax_loss_value_errors():
    scores, y, mask = softmax_inputs(0, 2, 5, 10)
    y = y.copy()
    y[0, 3] = 12
    mask[0, 3] = True
    with pytest.raises(ValueError, match=r"y holds 12 at \[0, 3\] .*expected integers in \[0, V\) = \[0, 10\)"):
        temporal_softmax_loss(scores, y, mask)
    y[0, 3] = -1
    with pytest.raises(ValueError, match=r"y holds -1 at \[0, 3\]"):
        temporal_softmax_loss(scores, y)
    y[0, 3] = 0
    with pytest.raises(ValueError, match=r"scores has dtype int64; expected a floating-point"):
        temporal_softmax_loss(scores.astype(np.int64), y)
    with pytest.raises(ValueError, match=r"scores has shape \(2, 50\); expected \(N, T, V\)"):
        temporal_softmax_loss(scores.reshape(2, 50), y)
    with pytest.raises(ValueError, match=r"y has shape \(5, 2\); expected \(N, T\) = \(2, 5\)"):
        temporal_softmax_loss(scores, y.T)
    with pytest.raises(ValueError, match=r"y has dtype float64; expected an integer array"):
        temporal_softmax_loss(scores, y.astype(np.float64))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 4\); expected \(N, T\) = \(2, 5\)"):
        temporal_softmax_loss(scores, y, mask[:, :4])
    bad = mask.astype(np.float64)
    bad[1, 2] = 0.5
    with pytest.raises(ValueError, match=r"mask holds 0.5 at \[1, 2\]; expected bool or 0/1"):
        temporal_softmax_loss(scores, y, bad)
    with pytest.raises(ValueError, match=r"mask has dtype <U1; expected bool or 0/1"):
        temporal_softmax_loss(scores, y, np.full((2, 5), "a"))
    with pytest.raises(ValueError, match=r"expected at least one class"):
        temporal_softmax_loss(np.zeros((2, 5, 0)), y, np.zeros((2, 5), dtype=bool))


# ---------------------------------------------------------------- binary cross-entropy


def bce_inputs(seed, shape, dtype=np.float64, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal(shape)).astype(dtype)
    y = rng.random(shape).astype(dtype)
    y.flat[::3] = 0.0  # hard labels too
    y.flat[1::3] = 1.0
    return logits, y


def torch_bce(logits, y):
    lt = torch.tensor(logits, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(lt, torch.tensor(y))
    loss.backward()
    return loss, lt.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (5,), (2, 3), (2, 3, 4)])
def test_bce_matches_torch(shape, dtype):
    logits, y = bce_inputs(len(shape), shape, dtype)
    loss, dlogits = binary_cross_entropy_with_logits(logits, y)
    loss_t, dlogits_t = torch_bce(logits, y)
    assert loss.dtype == dtype and dlogits.dtype == dtype
    assert_close(np.asarray(loss), loss_t, "loss")
    assert_close(dlogits, dlogits_t, "dlogits")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_extreme_logits(dtype):
    logits = np.array([1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 0.0], dtype=dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 0.3, 0.5], dtype=dtype)
    loss, dlogits = binary_cross_entropy_with_logits(logits, y)
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    loss_t, dlogits_t = torch_bce(logits, y)
    assert_close(np.asarray(loss), loss_t, "loss")
    assert_close(dlogits, dlogits_t, "dlogits")


def test_extreme_logit_check_catches_the_textbook_formula():
    """-(y log p + (1-y) log(1-p)) with p = sigmoid(x) takes log(0) at |x| = 1e4."""
    from rnncourse.numpy.activations import sigmoid

    x, y = np.array([1e4, -1e4]), np.array([0.0, 1.0])
    p = sigmoid(x)
    with pytest.raises(RuntimeWarning, match="divide by zero"):
        np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_bce_gradcheck():
    logits, y = bce_inputs(9, (3, 4))
    _, dlogits = binary_cross_entropy_with_logits(logits, y)
    f = lambda logits: binary_cross_entropy_with_logits(logits, y)[0]  # noqa: E731
    report = gradcheck(f, dict(logits=logits), dict(logits=dlogits), ONE)
    assert report.ok, str(report)
    # a gradient that forgets the mean (no division by n) is caught
    assert not gradcheck(f, dict(logits=logits), dict(logits=dlogits * logits.size), ONE).ok


def test_bce_value_errors():
    logits, y = bce_inputs(0, (2, 3))
    with pytest.raises(ValueError, match=r"y has shape \(3, 2\); expected the shape of logits, \(2, 3\)"):
        binary_cross_entropy_with_logits(logits, y.T)
    for value in (1.5, -0.1, np.nan):
        bad = y.copy()
        bad[1, 2] = value
        with pytest.raises(ValueError, match=r"y holds .* at \[1, 2\]; expected values in \[0, 1\]"):
            binary_cross_entropy_with_logits(logits, bad)
    with pytest.raises(ValueError, match=r"y has dtype int64; expected a floating-point"):
        binary_cross_entropy_with_logits(logits, (y > 0.5).astype(np.int64))
    with pytest.raises(ValueError, match=r"logits has shape \(0,\); expected at least one element"):
        binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0))


# ---------------------------------------------------------------- mean squared error


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (5,), (2, 3), (2, 3, 4)])
def test_mse_matches_torch(shape, dtype):
    rng = np.random.default_rng(len(shape))
    pred = rng.standard_normal(shape).astype(dtype)
    target = (rng.standard_normal(shape) + 0.5).astype(dtype)
    loss, dpred = mse_loss(pred, target)
    pt = torch.tensor(pred, requires_grad=True)
    loss_t = F.mse_loss(pt, torch.tensor(target))
    loss_t.backward()
    assert loss.dtype == dtype and dpred.dtype == dtype
    assert_close(np.asarray(loss), loss_t, "loss")
    assert_close(dpred, pt.grad, "dpred")


def test_mse_gradcheck_and_extremes():
    rng = np.random.default_rng(10)
    pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    _, dpred = mse_loss(pred, target)
    f = lambda pred: mse_loss(pred, target)[0]  # noqa: E731
    report = gradcheck(f, dict(pred=pred), dict(pred=dpred), ONE)
    assert report.ok, str(report)
    assert not gradcheck(f, dict(pred=pred), dict(pred=dpred / 2), ONE).ok  # the factor 2 forgotten

    loss, dpred = mse_loss(1e4 * pred, -1e4 * target)
    assert np.isfinite(loss) and np.isfinite(dpred).all()


def test_mse_value_errors():
    with pytest.raises(ValueError, match=r"target has shape \(3,\); expected the shape of pred, \(2, 3\)"):
        mse_loss(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"pred has dtype int64; expected a floating-point"):
        mse_loss(np.zeros(3, dtype=np.int64), np.zeros(3))
    with pytest.raises(ValueError, match=r"pred has shape \(2, 0\); expected at least one element"):
        mse_loss(np.zeros((2, 0)), np.zeros((2, 0)))
