"""The project's one tolerance policy, stated once.

Two implementations of the same computation (ours and PyTorch's, NumPy and
PyTorch, a cell and its sequence loop) never agree bit for bit: they sum in
different orders. They are compared with::

    float64: rtol=1e-9, atol=1e-12
    float32: rtol=1e-5, atol=1e-6

``atol`` only matters for elements that are zero in truth, where a relative
bound is meaningless; for float64 it is 1e4 times the unit roundoff.
Finite-difference gradient checks are a different test with their own bar:
:func:`rnncourse.numpy.gradcheck` with a relative error below 1e-7.

This module imports NumPy only; arrays from PyTorch are accepted (anything
``np.asarray`` takes, after ``.detach().cpu()``).
"""

import numpy as np

__all__ = ["TOLERANCES", "tolerance", "assert_close"]

TOLERANCES = {
    np.dtype(np.float64): dict(rtol=1e-9, atol=1e-12),
    np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6),
}


def tolerance(dtype):
    """The ``dict(rtol=..., atol=...)`` for ``dtype`` (float32 or float64).

    Half precision is not part of the policy and raises ``ValueError``.
    """
    dtype = np.dtype(dtype)
    if dtype not in TOLERANCES:
        raise ValueError(f"no tolerance for dtype {dtype}; expected float32 or float64")
    return TOLERANCES[dtype]


def _to_numpy(a):
    if hasattr(a, "detach"):  # a torch.Tensor, without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def assert_close(actual, expected, name="value", dtype=None, *, floor_from_largest=False):
    """Assert ``actual`` equals ``expected`` within the policy for ``dtype``.

    ``dtype`` defaults to the less precise of the two arrays' dtypes.
    ``floor_from_largest=True`` raises the absolute tolerance to ``rtol``
    times the largest finite magnitude in ``expected``: for an element that is
    a sum of many terms which cancel (a weight gradient summed over batch and
    time), rounding error scales with the terms, not with the small result, so
    a right float32 answer can miss the element-wise test on such an element
    (about one random case in a hundred for ``rnn_backward``). The graded
    checks compare this way; a wrong formula still differs on the scale of the
    array. The
    shapes must match exactly, and so must non-finite elements (a NaN only
    matches a NaN, an infinity only the same infinity). On failure the message names ``name``, the
    worst element and both values.
    """
    a, e = _to_numpy(actual), _to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name} has shape {a.shape}; expected {e.shape}")
    if dtype is None:
        dtype = np.float32 if np.float32 in (a.dtype, e.dtype) else np.float64
    tol = dict(tolerance(dtype))
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    if floor_from_largest:
        largest = np.abs(e64[np.isfinite(e64)]).max(initial=0.0)
        tol["atol"] = max(tol["atol"], tol["rtol"] * largest)
    # NaN compares False with everything, so "differs by more than tol" would
    # let a NaN pass: non-finite elements must match exactly instead.
    finite = np.isfinite(a64) & np.isfinite(e64)
    with np.errstate(invalid="ignore"):
        excess = np.where(finite, np.abs(a64 - e64) - tol["rtol"] * np.abs(e64), 0.0)
    mismatched_nonfinite = ~finite & ~((a64 == e64) | (np.isnan(a64) & np.isnan(e64)))
    bad = (excess > tol["atol"]) | mismatched_nonfinite
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(mismatched_nonfinite, np.inf, excess)), excess.shape)
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.size} elements differ beyond "
            f"rtol={tol['rtol']:g}, atol={tol['atol']:g}; worst at {[int(k) for k in i]}: "
            f"got {float(a64[i])!r}, expected {float(e64[i])!r}"
        )
