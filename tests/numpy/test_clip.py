"""Gradient clipping: parity with torch.nn.utils, purity, non-finite norms, errors."""

import numpy as np
import pytest
import torch

from rnncourse.numpy import clip_grad_norm, clip_grad_norm_global, clip_grad_value
from rnncourse.testing import assert_close

SHAPES = {"Wx": (3, 8), "Wh": (2, 8), "b": (8,)}
DTYPES = [np.float64, np.float32]


def random_grads(seed, dtype, scale=1.0):
    rng = np.random.default_rng(seed)
    return {k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in SHAPES.items()}


def torch_params(grads):
    """Parameters whose .grad holds a copy of each gradient, for torch's in-place clippers."""
    params = {}
    for k, g in grads.items():
        p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
        p.grad = torch.from_numpy(g.copy())
        params[k] = p
    return params


def copies(grads):
    return {k: g.copy() for k, g in grads.items()}


# ---------------------------------------------------------------- parity with torch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])  # clips a lot, a little, not at all
def test_global_norm_matches_torch(dtype, seed, max_norm):
    grads = random_grads(seed, dtype)
    ours, total = clip_grad_norm_global(grads, max_norm)
    params = torch_params(grads)
    torch_total = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm, foreach=False)
    assert_close(np.float64(total), torch_total.double(), "total norm", dtype=dtype)
    for k in grads:
        assert ours[k].dtype == dtype
        assert_close(ours[k], params[k].grad, f"clipped grads[{k!r}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_per_parameter_norm_matches_torch_on_each_parameter_alone(dtype, seed, max_norm):
    grads = random_grads(seed, dtype)
    ours, norms = clip_grad_norm(grads, max_norm)
    params = torch_params(grads)
    for k, p in params.items():
        torch_norm = torch.nn.utils.clip_grad_norm_([p], max_norm, foreach=False)
        assert_close(np.float64(norms[k]), torch_norm.double(), f"norm of grads[{k!r}]", dtype=dtype)
        assert ours[k].dtype == dtype
        assert_close(ours[k], p.grad, f"clipped grads[{k!r}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip_value", [0.1, 0.8, 10.0])
def test_value_clipping_matches_torch(dtype, clip_value):
    grads = random_grads(0, dtype)
    ours = clip_grad_value(grads, clip_value)
    params = torch_params(grads)
    torch.nn.utils.clip_grad_value_(list(params.values()), clip_value, foreach=False)
    for k in grads:
        assert ours[k].dtype == dtype
        assert_close(ours[k], params[k].grad, f"clipped grads[{k!r}]")


def test_the_torch_epsilon_is_matched_at_norm_equal_to_max_norm():
    """At ||g|| = max_norm torch still shrinks by max_norm / (max_norm + 1e-6).

    A clipper without the 1e-6 would return g unchanged there; float64's
    tolerance (1e-9) sees the 1e-6 difference, so this test catches it.
    """
    grads = random_grads(1, np.float64)
    _, total = clip_grad_norm_global(grads, 1.0)
    ours, _ = clip_grad_norm_global(grads, total)
    params = torch_params(grads)
    torch.nn.utils.clip_grad_norm_(list(params.values()), total, foreach=False)
    for k in grads:
        assert_close(ours[k], params[k].grad, f"clipped grads[{k!r}]")
        with pytest.raises(AssertionError):  # without the 1e-6: g itself
            assert_close(grads[k], params[k].grad, f"unclipped grads[{k!r}]")


# ---------------------------------------------------------------- what clipping means


def test_global_clipping_scales_every_gradient_by_one_factor():
    grads = random_grads(2, np.float64, scale=10.0)
    clipped, total = clip_grad_norm_global(grads, 1.0)
    assert total > 1.0
    factor = 1.0 / (total + 1e-6)
    for k in grads:
        assert_close(clipped[k], grads[k] * factor, f"clipped grads[{k!r}]")
    new_total = np.sqrt(sum(np.sum(g**2) for g in clipped.values()))
    assert new_total <= 1.0


def test_global_and_per_parameter_clipping_differ():
    """The two are not interchangeable: a test that confused them must fail."""
    grads = random_grads(3, np.float64, scale=10.0)
    global_clipped, total = clip_grad_norm_global(grads, 1.0)
    per_param, norms = clip_grad_norm(grads, 1.0)
    assert total == pytest.approx(np.sqrt(sum(n**2 for n in norms.values())), rel=1e-12)
    for k in grads:
        assert np.linalg.norm(per_param[k]) <= 1.0
        with pytest.raises(AssertionError):
            assert_close(per_param[k], global_clipped[k], f"grads[{k!r}]")


def test_small_gradients_are_returned_unchanged():
    grads = random_grads(4, np.float64, scale=1e-3)
    for clipped in (clip_grad_norm_global(grads, 1.0)[0], clip_grad_norm(grads, 1.0)[0]):
        for k in grads:
            np.testing.assert_array_equal(clipped[k], grads[k])


def test_empty_dict():
    assert clip_grad_norm_global({}, 1.0) == ({}, 0.0)
    assert clip_grad_norm({}, 1.0) == ({}, {})
    assert clip_grad_value({}, 1.0) == {}


def test_a_zero_gradient_stays_zero():
    grads = {"b": np.zeros(4)}
    clipped, total = clip_grad_norm_global(grads, 1.0)
    assert total == 0.0
    np.testing.assert_array_equal(clipped["b"], 0.0)


# ---------------------------------------------------------------- purity


@pytest.mark.parametrize(
    "clip",
    [
        lambda g: clip_grad_norm_global(g, 0.5)[0],
        lambda g: clip_grad_norm(g, 0.5)[0],
        lambda g: clip_grad_value(g, 0.1),
    ],
    ids=["global", "per_parameter", "value"],
)
def test_inputs_are_not_modified_and_outputs_are_new_arrays(clip):
    grads = random_grads(5, np.float32, scale=5.0)
    before = copies(grads)
    clipped = clip(grads)
    assert set(clipped) == set(grads)
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])
        assert not np.shares_memory(clipped[k], grads[k])
        assert not np.array_equal(clipped[k], grads[k])  # it did clip


# ---------------------------------------------------------------- extreme and non-finite


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_finite_gradients_give_finite_norms_without_warnings(dtype):
    big = 1e30 if dtype == np.float32 else 1e200  # squares overflow in the dtype
    grads = {"Wx": np.full((3, 4), big, dtype), "b": np.full(4, -big, dtype)}
    clipped, total = clip_grad_norm_global(grads, 1.0)
    assert total == pytest.approx(big * 4.0, rel=1e-6)
    assert np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in clipped.values())) == pytest.approx(1.0)
    per_param, norms = clip_grad_norm(grads, 2.0)
    assert norms["b"] == pytest.approx(2 * big, rel=1e-6)
    assert np.linalg.norm(per_param["b"].astype(np.float64)) == pytest.approx(2.0)


def test_gradients_up_to_1e4_match_torch():
    grads = random_grads(6, np.float64, scale=1e4)
    ours, total = clip_grad_norm_global(grads, 1.0)
    params = torch_params(grads)
    torch_total = torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0, foreach=False)
    assert_close(np.float64(total), torch_total, "total norm")
    for k in grads:
        assert np.all(np.isfinite(ours[k]))
        assert_close(ours[k], params[k].grad, f"clipped grads[{k!r}]")


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_norm_raises_by_default(bad):
    grads = random_grads(7, np.float64)
    grads["Wh"][1, 2] = bad
    with pytest.raises(ValueError, match=r"the norm of the gradients is (inf|nan), so it cannot be clipped"):
        clip_grad_norm_global(grads, 1.0)
    with pytest.raises(ValueError, match=r"the norm of grads\['Wh'\] is (inf|nan)"):
        clip_grad_norm(grads, 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_norm_with_error_if_nonfinite_false_matches_torch(dtype, bad):
    grads = random_grads(8, dtype)
    grads["Wh"][0, 3] = bad
    ours, total = clip_grad_norm_global(grads, 1.0, error_if_nonfinite=False)
    params = torch_params(grads)
    torch_total = torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0, foreach=False)
    assert np.isnan(total) == bool(torch_total.isnan()) and np.isinf(total) == bool(torch_total.isinf())
    for k in grads:
        expected = params[k].grad.numpy()
        # assert_close cannot see nan (nan > tol is False), so compare the masks first.
        np.testing.assert_array_equal(np.isnan(ours[k]), np.isnan(expected), err_msg=f"nan in grads[{k!r}]")
        finite = ~np.isnan(expected)
        assert_close(ours[k][finite], expected[finite], f"clipped grads[{k!r}]")
    if bad == np.inf:  # torch: factor 0, so finite entries become 0 and inf * 0 = nan
        np.testing.assert_array_equal(ours["Wx"], 0.0)


def test_value_clipping_of_non_finite_entries_matches_torch():
    g = np.array([np.inf, -np.inf, np.nan, 0.3, -7.0])
    ours = clip_grad_value({"b": g}, 1.0)["b"]
    params = torch_params({"b": g})
    torch.nn.utils.clip_grad_value_([params["b"]], 1.0, foreach=False)
    np.testing.assert_array_equal(ours, params["b"].grad.numpy())  # nan == nan for this function


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", [clip_grad_norm_global, clip_grad_norm, clip_grad_value])
def test_grads_must_be_a_dict_of_float_arrays(fn):
    with pytest.raises(ValueError, match=r"grads is a list; expected a dict name -> ndarray"):
        fn([np.ones(3)], 1.0)
    with pytest.raises(ValueError, match=r"grads\['b'\] has dtype int64; expected a floating-point array"):
        fn({"b": np.arange(3)}, 1.0)


@pytest.mark.parametrize("limit", [0.0, -1.0, np.nan, np.inf])
def test_limits_must_be_positive_and_finite(limit):
    grads = random_grads(9, np.float64)
    with pytest.raises(ValueError, match=r"max_norm is .*; expected a finite number > 0"):
        clip_grad_norm_global(grads, limit)
    with pytest.raises(ValueError, match=r"max_norm is .*; expected a finite number > 0"):
        clip_grad_norm(grads, limit)
    with pytest.raises(ValueError, match=r"clip_value is .*; expected a finite number > 0"):
        clip_grad_value(grads, limit)
