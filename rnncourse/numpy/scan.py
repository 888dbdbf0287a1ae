"""Linear recurrences and the parallel scan, forward and backward by hand.

N: batch size, T: sequence length, H: state size. The recurrence, elementwise,
for t = 1..T (``t = 0..T-1`` in the code, with ``h0`` the state before)::

    h_t = a_t * h_{t-1} + b_t

with ``a``, ``b`` and ``h`` of shape ``(N, T, H)``, real or complex. Unlike
``h_t = tanh(x_t Wx + h_{t-1} Wh + b)``, it can be computed in
``O(log T)`` vectorised steps: one step maps ``h_{t-1}`` to ``h_t`` by the
affine map ``h -> a_t h + b_t``, and affine maps compose associatively. Two
steps in a row are one step,

    (a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)        (first a1, b1, then a2, b2)

(:func:`compose_affine`), so the prefixes ``(a_1, b_1) o ... o (a_t, b_t)`` of all
t can be computed by a *scan* (扫描) that combines neighbours in a tree, and
the ``b`` part of prefix t is ``h_t`` when ``h_0 = 0``. ``h0`` enters as one
more step: ``b_1`` becomes ``a_1 h_0 + b_1``.

- :func:`linear_recurrence`: the definition, a loop over t.
- :func:`hillis_steele_scan`: ``ceil(log2 T)`` steps, ``~T log2 T`` combines.
- :func:`blelloch_scan`: ``~2 log2 T`` steps, ``~2 T`` combines (work-efficient);
  :func:`parallel_scan` is this one.
- :func:`linear_recurrence_backward`: the gradients, itself a linear
  recurrence run backwards in time.
- :func:`log_space_scan`: the same recurrence for positive ``a``, ``b``, on
  logarithms (as minGRU and minLSTM are trained).
- :func:`matrix_linear_recurrence` and :func:`matrix_parallel_scan`: the
  recurrence with a matrix ``A_t`` per step, ``h_t = h_{t-1} A_t + b_t`` (row
  vectors), which Newton's method for a nonlinear RNN needs
  (:mod:`rnncourse.numpy.newton`).

Complex arrays follow PyTorch's convention for gradients: for a real loss L
and a complex ``z = x + i y`` the gradient is ``dL/dx + i dL/dy``, so that
``z - lr * dz`` is a gradient-descent step on ``x`` and ``y``. Through
``w = a * h`` the gradient of ``h`` is then ``dw * conj(a)``.

In NumPy the scans are not faster than the loop for every T: each of their
steps is a vectorised operation over up to T elements, against T small
operations for the loop. Where the loop's per-step overhead dominates (long
sequences, small N and H) the scan wins; ``make bench-scan`` measures where.
"""

import numpy as np

from ._checks import at_least_one_step, dims, expect_shape

__all__ = [
    "compose_affine",
    "linear_recurrence",
    "linear_recurrence_backward",
    "hillis_steele_scan",
    "blelloch_scan",
    "parallel_scan",
    "log_space_scan",
    "matrix_linear_recurrence",
    "matrix_parallel_scan",
]

# The two ways the layers of part three (minGRU, minLSTM, the LRU, the selective SSM) run their
# recurrence, the argument ``mode``: "sequential", the loop of linear_recurrence, or "parallel", a scan.
MODES = ("sequential", "parallel")


# --- input checks ---------------------------------------------------------------------


def _inexact(name, x):
    """``x`` as a float or complex ndarray, or ``ValueError`` (integers are refused, not cast)."""
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.inexact):
        raise ValueError(f"{name} has dtype {arr.dtype}; expected a floating-point or complex array")
    return arr


def _check_recurrence(a, b, h0):
    """Validate ``a``, ``b`` (N, T, H) and ``h0`` (N, H) or None; return them, ``h0`` as zeros if None."""
    a, b = _inexact("a", a), _inexact("b", b)
    dims("a", a, "N T H")
    expect_shape("b", b, "N T H", a.shape)
    at_least_one_step("a", a)
    N, T, H = a.shape
    return a, b, _initial_state("h0", h0, N, H, np.result_type(a, b))


def _initial_state(name, h0, N, H, dtype, fill=0.0):
    """``h0`` checked as a float or complex ndarray (N, H); None gives one of ``dtype`` filled with ``fill``."""
    if h0 is None:
        return np.full((N, H), fill, dtype)
    h0 = _inexact(name, h0)
    dims(name, h0, "N H")
    expect_shape(name, h0, "N H", (N, H))
    return h0


def _with_h0(a, b, h0):
    """``b`` with ``h0`` folded into its first step: ``b_1 <- a_1 h_0 + b_1`` (a copy)."""
    b = b.astype(np.result_type(a, b, h0), copy=True)
    b[:, 0] += a[:, 0] * h0
    return b


# --- the definition and its backward --------------------------------------------------


def compose_affine(first, second):
    """Two affine steps ``h -> a h + b`` as one: ``(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)``.

    ``first = (a1, b1)`` is applied first. Associative, not commutative:
    ``compose_affine(compose_affine(p, q), r) == compose_affine(p, compose_affine(q, r))``. Arrays of any
    (broadcastable) shapes, elementwise.
    """
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a2 * b1 + b2


def linear_recurrence(a, b, h0=None):
    """The definition: ``h_t = a_t * h_{t-1} + b_t`` for t = 1..T, elementwise, in a loop.

    N: batch size, T: sequence length, H: state size.

    Parameters
    ----------
    a : ndarray (N, T, H), real or complex, the coefficients.
    b : ndarray (N, T, H), real or complex, the inputs.
    h0 : ndarray (N, H) or None, the state before the first step (zeros if None).

    Returns
    -------
    h : ndarray (N, T, H), every state; the dtype NumPy's promotion gives ``a, b, h0``.
    """
    a, b, h0 = _check_recurrence(a, b, h0)
    h = np.empty(a.shape, np.result_type(a, b, h0))
    prev_h = h0
    for t in range(a.shape[1]):
        h[:, t] = a[:, t] * prev_h + b[:, t]
        prev_h = h[:, t]
    return h


def linear_recurrence_backward(dh, a, h, h0=None):
    """Gradients of :func:`linear_recurrence`, by a linear recurrence run backwards.

    N: batch size, T: sequence length, H: state size. With ``g_t`` the
    gradient of the loss with respect to ``h_t`` through every path (the
    loss at step t, ``dh_t``, and step t + 1)::

        g_T = dh_T,   g_t = dh_t + conj(a_{t+1}) * g_{t+1}   (t = T-1 .. 1)
        da_t = g_t * conj(h_{t-1}),   db_t = g_t,   dh0 = conj(a_1) * g_1

    The first line is ``h_t = a_t h_{t-1} + b_t`` again, with time reversed
    and ``a`` shifted by one step: the backward pass is as parallel as the
    forward. ``conj`` does nothing to real arrays; for complex ones the
    gradients follow PyTorch's convention (see the module docstring).

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every ``h_t`` (from the loss at
        that step only, not through later steps).
    a : ndarray (N, T, H), the coefficients of the forward pass.
    h : ndarray (N, T, H), the states the forward pass returned.
    h0 : ndarray (N, H) or None, the initial state of the forward pass (zeros if None).

    Returns
    -------
    da : ndarray (N, T, H)
    db : ndarray (N, T, H)
    dh0 : ndarray (N, H)
    """
    a, h, h0 = _check_recurrence(a, h, h0)
    dh = _inexact("dh", dh)
    dims("dh", dh, "N T H")
    expect_shape("dh", dh, "N T H", a.shape)

    # g_t = conj(a_{t+1}) g_{t+1} + dh_t: a linear recurrence over reversed time,
    # whose coefficient at (reversed) step t is a_{t+1}; nothing comes after step T.
    a_next = np.zeros_like(a)
    a_next[:, :-1] = a[:, 1:]
    g = linear_recurrence(np.conj(a_next)[:, ::-1], dh[:, ::-1])[:, ::-1]

    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    da = g * np.conj(h_prev)
    db = g.copy()
    dh0 = np.conj(a[:, 0]) * g[:, 0]
    return da, db, dh0


# --- parallel scans ---------------------------------------------------------------------


def hillis_steele_scan(a, b, h0=None, *, trace=None):
    """:func:`linear_recurrence` by the scan of Hillis and Steele (1986).

    At round k = 0, 1, 2, ... every position t >= 2^k combines its prefix of
    length 2^k with the one ending 2^k earlier, all positions at once; after
    ``ceil(log2 T)`` rounds position t holds the whole prefix. Depth
    ``ceil(log2 T)`` rounds, work ``sum_k (T - 2^k) ~ T log2 T`` combines.

    Parameters
    ----------
    a, b, h0 : as for :func:`linear_recurrence`.
    trace : list or None. If a list, each round appends how many positions it
        combined: ``len(trace)`` is the depth, ``sum(trace)`` the work.

    Returns
    -------
    h : ndarray (N, T, H), as :func:`linear_recurrence` returns it.
    """
    a, b, h0 = _check_recurrence(a, b, h0)
    A, B = a.astype(np.result_type(a, b, h0)), _with_h0(a, b, h0)
    T = a.shape[1]
    k = 1
    while k < T:
        # right-hand sides are evaluated before assignment: every position reads
        # the previous round's values, as if all ran at the same time.
        A[:, k:], B[:, k:] = compose_affine((A[:, :-k], B[:, :-k]), (A[:, k:], B[:, k:]))
        if trace is not None:
            trace.append(T - k)
        k *= 2
    return B


def _prefixes(a, b, combine_steps, trace):
    """All prefixes ``(a_1, b_1) o ... o (a_t, b_t)`` along axis 1, work-efficiently.

    Up: combine neighbours (1, 2), (3, 4), ... into T // 2 pairs; recurse on
    the pairs, which gives the prefixes ending at every even t. Down: the
    prefix ending at an odd t > 1 is the prefix ending at t - 1 combined with
    step t. Each level is one vectorised combine, so the depth is
    ``~2 log2 T``, and the work ``T/2 + T/4 + ... `` twice, ``< 2 T``.
    """
    T = a.shape[1]
    if T == 1:
        return a, b
    # up: pairs of neighbours (0-based: (0, 1), (2, 3), ...)
    pair_a, pair_b = combine_steps((a[:, 0 : T - 1 : 2], b[:, 0 : T - 1 : 2]), (a[:, 1::2], b[:, 1::2]))
    if trace is not None:
        trace.append(T // 2)
    odd_a, odd_b = _prefixes(pair_a, pair_b, combine_steps, trace)  # prefixes ending at 1, 3, 5, ... (0-based)
    # down: the prefixes ending at 2, 4, ... (0-based) from those ending one step before
    n_even = (T - 1) // 2
    even_a, even_b = combine_steps((odd_a[:, :n_even], odd_b[:, :n_even]), (a[:, 2::2], b[:, 2::2]))
    if trace is not None and n_even:
        trace.append(n_even)
    A = np.empty(a.shape, np.result_type(odd_a, even_a, a))
    B = np.empty(b.shape, np.result_type(odd_b, even_b, b))
    A[:, 0], B[:, 0] = a[:, 0], b[:, 0]
    A[:, 1::2], B[:, 1::2] = odd_a, odd_b
    A[:, 2::2], B[:, 2::2] = even_a, even_b
    return A, B


def blelloch_scan(a, b, h0=None, *, trace=None):
    """:func:`linear_recurrence` by a work-efficient scan (Blelloch 1990), in ~2 log2 T rounds.

    An up-sweep combines neighbouring pairs level by level (T/2, T/4, ...
    combines), a down-sweep fills in the prefixes between them (..., T/4,
    T/2): depth ``~2 log2 T`` rounds, work ``< 2 T`` combines, against the
    loop's T - 1 and Hillis–Steele's ``~T log2 T``. (This is the odd–even
    formulation of the same tree; Blelloch's in-place version computes an
    exclusive scan with the same depth and work.)

    Parameters
    ----------
    a, b, h0 : as for :func:`linear_recurrence`.
    trace : list or None, as for :func:`hillis_steele_scan`.

    Returns
    -------
    h : ndarray (N, T, H), as :func:`linear_recurrence` returns it.
    """
    a, b, h0 = _check_recurrence(a, b, h0)
    return _prefixes(a, _with_h0(a, b, h0), compose_affine, trace)[1]


def parallel_scan(a, b, h0=None):
    """:func:`linear_recurrence` by an associative scan in ``O(log T)`` vectorised steps.

    The same result as the loop, to rounding (the products are grouped
    differently). This is :func:`blelloch_scan`, the work-efficient scan.

    Parameters
    ----------
    a, b, h0 : as for :func:`linear_recurrence`.

    Returns
    -------
    h : ndarray (N, T, H), as :func:`linear_recurrence` returns it.
    """
    return blelloch_scan(a, b, h0)


def log_space_scan(log_a, log_b, log_h0=None):
    """``log h`` for ``h_t = a_t h_{t-1} + b_t`` with positive ``a``, ``b``, ``h0``, computed on logarithms.

    Unrolled, ``h_t = sum_{s <= t} (a_{s+1} ... a_t) b_s`` (with ``b_0 = h_0``).
    With ``a*_t = log a_1 + ... + log a_t``::

        log h_t = a*_t + log sum_{s <= t} exp(log b_s - a*_s)

    Both the running sum ``a*`` and the running log-sum-exp are scans of an
    associative operator (``+`` and ``logaddexp``), so this parallelises
    like any scan; NumPy's ``cumsum`` and ``logaddexp.accumulate`` run them.
    Products of many ``a_t`` in (0, 1), which underflow to 0 in a plain scan,
    are sums of logarithms here (Feng et al. 2024 train minGRU and minLSTM
    this way, after Heinsen 2023).

    Parameters
    ----------
    log_a, log_b : ndarray (N, T, H), real: the logarithms of ``a`` and ``b``.
    log_h0 : ndarray (N, H) or None: ``log h0``; None (or ``-inf``) for ``h0 = 0``.

    Returns
    -------
    log_h : ndarray (N, T, H); ``np.exp(log_h)`` is ``h``.
    """
    log_a, log_b, _ = _check_recurrence(log_a, log_b, None)
    if np.iscomplexobj(log_a) or np.iscomplexobj(log_b):
        raise ValueError("log_space_scan takes real logarithms (positive a and b); got complex arrays")
    N, T, H = log_a.shape
    log_h0 = _initial_state("log_h0", log_h0, N, H, np.result_type(log_a, log_b), fill=-np.inf)

    a_star = np.cumsum(log_a, axis=1)  # log(a_1 ... a_t)
    # h0 is the term s = 0, with a*_0 = 0
    terms = np.concatenate([log_h0[:, None], log_b - a_star], axis=1)
    return a_star + np.logaddexp.accumulate(terms, axis=1)[:, 1:]


# --- matrix coefficients (row vectors): h_t = h_{t-1} A_t + b_t ------------------------


def _check_matrix_recurrence(A, b, h0):
    A, b = _inexact("A", A), _inexact("b", b)
    dims("b", b, "N T H")
    N, T, H = b.shape
    dims("A", A, "N T H H")
    expect_shape("A", A, "N T H H", (N, T, H, H))
    at_least_one_step("b", b)
    return A, b, _initial_state("h0", h0, N, H, np.result_type(A, b))


def _combine_matrix(first, second):
    """``(A1, b1) o (A2, b2) = (A1 A2, b1 A2 + b2)`` for row vectors ``b`` (N, k, H) and matrices (N, k, H, H)."""
    A1, b1 = first
    A2, b2 = second
    return A1 @ A2, (b1[..., None, :] @ A2)[..., 0, :] + b2


def matrix_linear_recurrence(A, b, h0=None):
    """The definition with a matrix per step: ``h_t = h_{t-1} A_t + b_t`` (row vectors), in a loop.

    N: batch size, T: sequence length, H: state size.

    Parameters
    ----------
    A : ndarray (N, T, H, H), one matrix per sequence and step.
    b : ndarray (N, T, H)
    h0 : ndarray (N, H) or None (zeros).

    Returns
    -------
    h : ndarray (N, T, H)
    """
    A, b, h0 = _check_matrix_recurrence(A, b, h0)
    h = np.empty(b.shape, np.result_type(A, b, h0))
    prev_h = h0
    for t in range(b.shape[1]):
        h[:, t] = (prev_h[:, None] @ A[:, t])[:, 0] + b[:, t]
        prev_h = h[:, t]
    return h


def matrix_parallel_scan(A, b, h0=None, *, trace=None):
    """:func:`matrix_linear_recurrence` by the work-efficient scan of :func:`blelloch_scan`.

    The operator is ``(A1, b1) o (A2, b2) = (A1 A2, b1 A2 + b2)``: each
    combine is a matrix product, ``H^3`` operations against the loop's ``H^2``
    per step, which is what a dense nonlinear RNN pays to be parallel in time.

    Parameters
    ----------
    A : ndarray (N, T, H, H)
    b : ndarray (N, T, H)
    h0 : ndarray (N, H) or None (zeros).
    trace : list or None, as for :func:`blelloch_scan`.

    Returns
    -------
    h : ndarray (N, T, H)
    """
    A, b, h0 = _check_matrix_recurrence(A, b, h0)
    b = b.astype(np.result_type(A, b, h0), copy=True)
    b[:, 0] += (h0[:, None] @ A[:, 0])[:, 0]
    return _prefixes(A, b, _combine_matrix, trace)[1]
