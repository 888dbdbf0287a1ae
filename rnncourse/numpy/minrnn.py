"""minGRU and minLSTM (Feng et al. 2024): gated RNNs whose gates see only the input, trained by a scan.

N: batch size, T: sequence length, D: input size, H: hidden size. Row
vectors, as in the rest of the package. The GRU and LSTM of chapters 4 and 5
with ``h_{t-1}`` removed from their gates and candidate, and the candidate's
tanh replaced by a positive function ``g``::

    minGRU                                   minLSTM
    z_t = sigmoid(x_t Wz + bz)               f_t = sigmoid(x_t Wf + bf),  i_t = sigmoid(x_t Wi + bi)
    h~_t = g(x_t Wh + bh)                    h~_t = g(x_t Wh + bh)
    h_t = (1 - z_t) h_{t-1} + z_t h~_t       f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t)
                                             h_t = f'_t h_{t-1} + i'_t h~_t

with ``g(a) = a + 1/2`` for ``a >= 0`` and ``sigmoid(a)`` below (continuous,
positive, linear for large ``a``). Since nothing in ``a_t = 1 - z_t`` (or
``f'_t``) and ``b_t = z_t h~_t`` (or ``i'_t h~_t``) depends on ``h``, each
layer is the linear recurrence ``h_t = a_t h_{t-1} + b_t`` of
:mod:`rnncourse.numpy.scan` after one matrix product per gate for all steps.

Two ways to run the recurrence give the same ``h``:

- ``mode="sequential"``: :func:`~rnncourse.numpy.scan.linear_recurrence`, a loop;
- ``mode="parallel"``: :func:`~rnncourse.numpy.scan.log_space_scan` on
  ``log a_t`` and ``log b_t``, computed from the pre-activations without
  forming ``a`` and ``b`` (``log sigmoid(k) = -softplus(-k)``), as the paper
  trains them. ``a``, ``b`` and ``h`` are positive when ``h0 >= 0``, which
  this mode requires.

The backward pass is the same for both: the scan's backward
(:func:`~rnncourse.numpy.scan.linear_recurrence_backward`), then the gates'
local derivatives, all steps at once.

Caches (flat tuples, the convention of the package):
``min_gru_forward``: ``(x, h0, Wz, Wh, z, h_tilde, h)``;
``min_lstm_forward``: ``(x, h0, Wf, Wi, Wh, f, i, h_tilde, h)``.
"""

import numpy as np

from ..validation import check_choice
from ._checks import at_least_one_step, dims, expect_shape, float_array, upstream_gradient
from .activations import sigmoid, softplus
from .scan import MODES, linear_recurrence, linear_recurrence_backward, log_space_scan

__all__ = [
    "positive_activation",
    "log_positive_activation",
    "min_gru_step_forward",
    "min_gru_forward",
    "min_gru_backward",
    "min_lstm_step_forward",
    "min_lstm_forward",
    "min_lstm_backward",
]


def positive_activation(a):
    """The paper's ``g``: ``a + 1/2`` where ``a >= 0``, ``sigmoid(a)`` where ``a < 0``; always > 0."""
    a = np.asarray(a)
    return np.where(a >= 0, a + 0.5, sigmoid(np.minimum(a, 0)))


def log_positive_activation(a):
    """``log g(a)``, computed without forming ``g(a)`` where it is tiny: ``-softplus(-a)`` for ``a < 0``."""
    a = np.asarray(a)
    return np.where(a >= 0, np.log(np.maximum(a, 0) + 0.5), -softplus(-np.minimum(a, 0)))


def _positive_activation_derivative(g):
    """``g'(a)`` from the output ``g = g(a)``: 1 where ``g >= 1/2`` (a >= 0), else ``g (1 - g)``."""
    return np.where(g >= 0.5, 1.0, g * (1 - g))


def _check(x, h0, weights, biases, mode, sequence=True):
    """Validate the inputs of a minGRU/minLSTM function; return ``x, h0, [weights], [biases]``."""
    check_choice("mode", mode, MODES)
    x = float_array("x", x)
    dims("x", x, "N T D" if sequence else "N D")
    if sequence:
        at_least_one_step("x", x)
    h0 = float_array("h0" if sequence else "prev_h", h0)
    dims("h0" if sequence else "prev_h", h0, "N H")
    N, D, H = x.shape[0], x.shape[-1], h0.shape[1]
    expect_shape("h0" if sequence else "prev_h", h0, "N H", (N, H))
    weights = {name: float_array(name, w) for name, w in weights.items()}
    for name, w in weights.items():
        dims(name, w, "D H")
        expect_shape(name, w, "D H", (D, H))
    biases = {name: float_array(name, b) for name, b in biases.items()}
    for name, b in biases.items():
        dims(name, b, "H")
        expect_shape(name, b, "H", (H,))
    if mode == "parallel" and np.any(h0 < 0):
        raise ValueError("h0 has negative elements; mode='parallel' runs on logarithms and needs h0 >= 0")
    return x, h0, list(weights.values()), list(biases.values())


# --- minGRU ----------------------------------------------------------------------------


def min_gru_step_forward(x, prev_h, Wz, bz, Wh, bh):
    """One minGRU step, ``h_t = (1 - z_t) h_{t-1} + z_t g(x_t Wh + bh)``, as at inference, one token at a time.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    x : ndarray (N, D); prev_h : ndarray (N, H).
    Wz, Wh : ndarray (D, H), the update gate's and the candidate's weights.
    bz, bh : ndarray (H,), their biases.

    Returns
    -------
    next_h : ndarray (N, H)
    """
    x, prev_h, (Wz, Wh), (bz, bh) = _check(x, prev_h, {"Wz": Wz, "Wh": Wh}, {"bz": bz, "bh": bh}, "sequential",
                                           sequence=False)
    z = sigmoid(x @ Wz + bz)
    h_tilde = positive_activation(x @ Wh + bh)
    return (1 - z) * prev_h + z * h_tilde


def min_gru_forward(x, h0, Wz, bz, Wh, bh, *, mode="sequential"):
    """minGRU over a sequence: the gates for all steps at once, then a linear recurrence.

    N: batch size, T: sequence length, D: input size, H: hidden size.

    Parameters
    ----------
    x : ndarray (N, T, D), the inputs.
    h0 : ndarray (N, H), the initial state (``>= 0`` for ``mode="parallel"``).
    Wz, Wh : ndarray (D, H), the update gate's and the candidate's weights.
    bz, bh : ndarray (H,), their biases.
    mode : ``"sequential"`` (a loop) or ``"parallel"`` (the log-space scan).

    Returns
    -------
    h : ndarray (N, T, H), every state.
    cache : ``(x, h0, Wz, Wh, z, h_tilde, h)``, with ``z``, ``h_tilde`` (N, T, H).
    """
    x, h0, (Wz, Wh), (bz, bh) = _check(x, h0, {"Wz": Wz, "Wh": Wh}, {"bz": bz, "bh": bh}, mode)
    kz = x @ Wz + bz  # the gate's pre-activation, all steps in one product
    kh = x @ Wh + bh
    z = sigmoid(kz)
    h_tilde = positive_activation(kh)
    if mode == "sequential":
        h = linear_recurrence(1 - z, z * h_tilde, h0)
    else:
        # log(1 - z) = log sigmoid(-kz) = -softplus(kz);  log z = -softplus(-kz)
        log_a = -softplus(kz)
        log_b = -softplus(-kz) + log_positive_activation(kh)
        with np.errstate(divide="ignore"):  # log 0 = -inf is a valid h0 = 0
            log_h0 = np.log(h0)
        h = np.exp(log_space_scan(log_a, log_b, log_h0))
    return h, (x, h0, Wz, Wh, z, h_tilde, h)


def min_gru_backward(dh, cache):
    """Backward pass of :func:`min_gru_forward` (either mode).

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every ``h_t``.

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, H)
    dWz : ndarray (D, H)
    dbz : ndarray (H,)
    dWh : ndarray (D, H)
    dbh : ndarray (H,)
    """
    x, h0, Wz, Wh, z, h_tilde, h = cache
    dh = upstream_gradient("dh", dh, "N T H", h.shape)
    # through the recurrence h_t = a_t h_{t-1} + b_t, with a = 1 - z, b = z h~
    da, db, dh0 = linear_recurrence_backward(dh, 1 - z, h, h0)
    dz = -da + db * h_tilde
    dh_tilde = db * z
    dkz = dz * z * (1 - z)
    dkh = dh_tilde * _positive_activation_derivative(h_tilde)
    dx = dkz @ Wz.T + dkh @ Wh.T
    N, T, D = x.shape
    rows = x.reshape(N * T, D).T
    H = h.shape[2]
    return (dx, dh0, rows @ dkz.reshape(N * T, H), dkz.sum(axis=(0, 1)),
            rows @ dkh.reshape(N * T, H), dkh.sum(axis=(0, 1)))


# --- minLSTM ---------------------------------------------------------------------------


def min_lstm_step_forward(x, prev_h, Wf, bf, Wi, bi, Wh, bh):
    """One minLSTM step, ``h_t = f'_t h_{t-1} + i'_t g(x_t Wh + bh)``, as at inference.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    x : ndarray (N, D); prev_h : ndarray (N, H).
    Wf, Wi, Wh : ndarray (D, H), the forget gate's, input gate's and candidate's weights.
    bf, bi, bh : ndarray (H,), their biases.

    Returns
    -------
    next_h : ndarray (N, H)
    """
    x, prev_h, (Wf, Wi, Wh), (bf, bi, bh) = _check(
        x, prev_h, {"Wf": Wf, "Wi": Wi, "Wh": Wh}, {"bf": bf, "bi": bi, "bh": bh}, "sequential", sequence=False)
    f, i = sigmoid(x @ Wf + bf), sigmoid(x @ Wi + bi)
    h_tilde = positive_activation(x @ Wh + bh)
    return f / (f + i) * prev_h + i / (f + i) * h_tilde


def min_lstm_forward(x, h0, Wf, bf, Wi, bi, Wh, bh, *, mode="sequential"):
    """minLSTM over a sequence: the gates for all steps at once, normalised, then a linear recurrence.

    N: batch size, T: sequence length, D: input size, H: hidden size.

    Parameters
    ----------
    x : ndarray (N, T, D), the inputs.
    h0 : ndarray (N, H), the initial state (``>= 0`` for ``mode="parallel"``).
    Wf, Wi, Wh : ndarray (D, H), the forget gate's, input gate's and candidate's weights.
    bf, bi, bh : ndarray (H,), their biases.
    mode : ``"sequential"`` (a loop) or ``"parallel"`` (the log-space scan).

    Returns
    -------
    h : ndarray (N, T, H), every state.
    cache : ``(x, h0, Wf, Wi, Wh, f, i, h_tilde, h)``; ``f``, ``i`` are the gates
        before normalisation, (N, T, H).
    """
    x, h0, (Wf, Wi, Wh), (bf, bi, bh) = _check(
        x, h0, {"Wf": Wf, "Wi": Wi, "Wh": Wh}, {"bf": bf, "bi": bi, "bh": bh}, mode)
    kf, ki, kh = x @ Wf + bf, x @ Wi + bi, x @ Wh + bh
    f, i = sigmoid(kf), sigmoid(ki)
    h_tilde = positive_activation(kh)
    if mode == "sequential":
        h = linear_recurrence(f / (f + i), i / (f + i) * h_tilde, h0)
    else:
        # log f' = log f - log(f + i) = -softplus(log i - log f), and log i' likewise
        log_i_over_f = -softplus(-ki) + softplus(-kf)
        log_a = -softplus(log_i_over_f)
        log_b = -softplus(-log_i_over_f) + log_positive_activation(kh)
        with np.errstate(divide="ignore"):
            log_h0 = np.log(h0)
        h = np.exp(log_space_scan(log_a, log_b, log_h0))
    return h, (x, h0, Wf, Wi, Wh, f, i, h_tilde, h)


def min_lstm_backward(dh, cache):
    """Backward pass of :func:`min_lstm_forward` (either mode).

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every ``h_t``.

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, H)
    dWf, dbf, dWi, dbi, dWh, dbh : the weights' (D, H) and biases' (H,) gradients, in the forward's order.
    """
    x, h0, Wf, Wi, Wh, f, i, h_tilde, h = cache
    dh = upstream_gradient("dh", dh, "N T H", h.shape)
    s = f + i
    a = f / s
    da, db, dh0 = linear_recurrence_backward(dh, a, h, h0)
    # b = i' h~ with i' = 1 - f': the normalised gates move together
    dh_tilde = db * (1 - a)
    da_total = da - db * h_tilde  # d/d f' of  f' h_{t-1} + (1 - f') h~
    df = da_total * i / s**2  # d f'/d f = i / (f + i)^2
    di = -da_total * f / s**2  # d f'/d i = -f / (f + i)^2
    dkf, dki = df * f * (1 - f), di * i * (1 - i)
    dkh = dh_tilde * _positive_activation_derivative(h_tilde)
    dx = dkf @ Wf.T + dki @ Wi.T + dkh @ Wh.T
    N, T, D = x.shape
    H = h.shape[2]
    rows = x.reshape(N * T, D).T
    grads = []
    for dk in (dkf, dki, dkh):
        grads += [rows @ dk.reshape(N * T, H), dk.sum(axis=(0, 1))]
    return (dx, dh0, *grads)
