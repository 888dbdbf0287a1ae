import numpy as np
import pytest
import torch

from rnncourse.numpy import log_softmax, sigmoid, softmax
from rnncourse.testing import assert_close


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activations_match_torch(dtype):
    x = np.random.default_rng(0).normal(scale=5, size=(3, 4, 7)).astype(dtype)
    t = torch.from_numpy(x)
    assert_close(sigmoid(x), torch.sigmoid(t), "sigmoid")
    for axis in (0, 1, -1):
        assert_close(softmax(x, axis), torch.softmax(t, axis), f"softmax axis {axis}")
        assert_close(log_softmax(x, axis), torch.log_softmax(t, axis), f"log_softmax axis {axis}")
    for f in (sigmoid, softmax, log_softmax):
        assert f(x).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activations_are_finite_at_extreme_inputs(dtype):
    # A naive 1 / (1 + exp(-x)) overflows at x = -1e4; a softmax without the
    # max shift gives inf / inf = nan. RuntimeWarnings are errors in this suite.
    x = np.array([[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    s = sigmoid(x)
    assert np.isfinite(s).all() and s[0, 0] == 0 and s[0, 2] == 1
    p = softmax(x)
    assert np.isfinite(p).all()
    assert_close(p.sum(axis=-1), np.ones(2, dtype))
    lp = log_softmax(x)
    assert np.isfinite(lp).all()
    assert_close(lp[1], np.array([-np.log(2), -np.log(2), -2e4 - np.log(2)], dtype))
