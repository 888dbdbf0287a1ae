import numpy as np
import pytest

from rnncourse.numpy import gradcheck, numerical_gradient, rel_error


def _affine(x, W):
    return np.tanh(x @ W)


def _affine_grads(x, W, dout):
    dz = (1 - np.tanh(x @ W) ** 2) * dout
    return dict(x=dz @ W.T, W=x.T @ dz)


@pytest.fixture
def point():
    rng = np.random.default_rng(1)
    return dict(x=rng.normal(size=(3, 4)), W=rng.normal(size=(4, 5))), rng.normal(size=(3, 5))


def test_correct_gradient_passes(point):
    inputs, dout = point
    report = gradcheck(_affine, inputs, _affine_grads(**inputs, dout=dout), dout)
    assert report.ok, str(report)
    assert report.max_error < 1e-9


def test_wrong_gradient_fails_and_report_names_the_element(point):
    inputs, dout = point
    grads = _affine_grads(**inputs, dout=dout)
    grads["W"] = grads["W"].copy()
    grads["W"][2, 3] += 0.5
    report = gradcheck(_affine, inputs, grads, dout)
    assert not report.ok
    assert report.errors["x"] < 1e-9 and report.errors["W"] > 1e-3
    assert (report.worst_input, report.worst_index) == ("W", (2, 3))
    assert "dW[2, 3]" in str(report) and "FAILED" in str(report)


def test_transposed_gradient_fails():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(4, 4))
    x, dout = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    dz = (1 - np.tanh(x @ W) ** 2) * dout
    assert not gradcheck(_affine, dict(x=x, W=W), dict(W=(x.T @ dz).T), dout).ok


def test_numerical_gradient_leaves_inputs_untouched(point):
    inputs, dout = point
    before = {k: v.copy() for k, v in inputs.items()}
    numerical_gradient(_affine, inputs, "W", dout)
    for k in inputs:
        assert np.array_equal(inputs[k], before[k])


def test_tuple_outputs_with_a_missing_upstream_gradient():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5,))
    d1 = rng.normal(size=(5,))
    report = gradcheck(lambda x: (np.sin(x), np.cos(x)), dict(x=x), dict(x=np.cos(x) * d1), (d1, None))
    assert report.ok, str(report)


def test_rel_error():
    a = np.array([1.0, 2.0, 3.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(a, -a) == 1.0
    assert abs(rel_error(a, a * (1 + 1e-6)) - 5e-7) < 1e-12
    with pytest.raises(ValueError, match="shapes"):
        rel_error(a, a[:2])


def test_bad_analytic_gradient_shape_is_reported(point):
    inputs, dout = point
    with pytest.raises(ValueError, match=r"dW has shape \(5, 4\); expected the shape of W, \(4, 5\)"):
        gradcheck(_affine, inputs, dict(W=np.zeros((5, 4))), dout)
