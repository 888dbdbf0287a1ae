"""How gradients travel through time: truncated BPTT, RTRL, and gradient norms.

Three tools for the plain RNN ``h_t = tanh(x_t Wx + h_{t-1} Wh + b)``:

- :func:`truncated_bptt`: backpropagation through time over a sliding
  window, for sequences too long to unroll whole (Williams & Peng, 1990).
- :func:`rtrl`: real-time recurrent learning, the forward-mode alternative
  that needs no stored history (Williams & Zipser, 1989).
- :func:`gradient_norms_through_time`: ``||dL/dh_t||`` for every ``t`` when
  the loss sits at the last step, to watch gradients vanish or explode;
  with :func:`gradient_norm_bound` and :func:`scale_to_spectral_norm` for the lab.

The per-step loss enters the first two through a callback
``loss_grad(h_t, t) -> dL_t/dh_t`` (an ``(N, H)`` array, or None where step
``t`` has no loss), so the same code serves any output layer on top.
"""

import numpy as np

from ..validation import check_choice
from .lstm import lstm_step_backward, lstm_step_forward
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from ._checks import check_nonlinearity, dims, expect_shape, float_array, positive_int, recurrent_inputs, upstream_gradient

__all__ = [
    "truncated_bptt",
    "rtrl",
    "gradient_norms_through_time",
    "gradient_norm_bound",
    "scale_to_spectral_norm",
]


def _rnn_inputs(x, h0, Wx, Wh, b, gates=1):
    """A plain RNN's (or, with gates=4, an LSTM's) inputs as float arrays, and (N, T, D, H); T may be 0."""
    x, (h0,), Wx, Wh, (b,) = recurrent_inputs(x, {"h0": h0}, Wx, Wh, {"b": b}, gates=gates, allow_empty=True)
    return x, h0, Wx, Wh, b, (*x.shape, Wh.shape[0])


def _call_loss_grad(loss_grad, h_t, t):
    """``loss_grad(h_t, t)`` checked: an (N, H) float array, or None for no loss at t."""
    dh = loss_grad(h_t, t)
    if dh is None:
        return None
    dh = float_array(f"loss_grad(h_t, t={t})", dh)
    return expect_shape(f"loss_grad(h_t, t={t})", dh, "N H", h_t.shape)


def truncated_bptt(x, h0, Wx, Wh, b, loss_grad, k1, k2=None, *, nonlinearity="tanh"):
    """Truncated backpropagation through time, BPTT(k1, k2), over one long sequence.

    N: batch size, T: sequence length, D: input size, H: hidden size.

    The RNN reads the sequence ``k1`` steps at a time, carrying its hidden
    state forward across the whole sequence. After each block of ``k1``
    steps (the last block may be shorter) it makes one *update*: the losses
    of the steps of that block are backpropagated through the block and the
    ``k2 - k1`` steps before it, ``k2`` steps for a full block. The state
    before that window is treated as a constant, so no gradient flows
    further back. In symbols, for the block of steps ``t0 .. t1-1`` (0-based)
    and ``s = max(0, t0 - (k2 - k1))``, the update is::

        g = sum_{u = t0}^{t1 - 1}  d L_u / d theta   with h_{s-1} held fixed

    ``k1 = k2 = k`` is the common case: cut the sequence into chunks of
    ``k``, run each chunk from the last state of the previous one, and
    backpropagate within the chunk only (in PyTorch, ``h = h.detach()``
    every ``k`` steps). ``k2 > k1`` lets the newest losses look further back
    than one block; the older steps of the window are recomputed from the
    stored state at the window start. With ``k1 >= T`` (a single block)
    this is full BPTT. The weights are held fixed during the
    pass: the caller applies the updates (to train, one calls this on the
    next stretch of text with the updated weights and ``h0 = h_last``).

    Memory is O(N k2 H), independent of T; time is O(T k2 / k1) steps.

    Parameters
    ----------
    x : (N, T, D) input sequence.
    h0 : (N, H) state before step 0 (e.g. the last state of the previous stretch).
    Wx : (D, H) input-to-hidden weights.
    Wh : (H, H) hidden-to-hidden weights.
    b : (H,) bias.
    loss_grad : callable ``loss_grad(h_t, t) -> dL_t/dh_t``, with ``h_t`` the
        (N, H) state at step ``t``; returns an (N, H) array, or None when step
        ``t`` has no loss. Called exactly once per step, in order of ``t``.
    k1 : steps between updates, 1 <= k1.
    k2 : steps backpropagated at each update, k1 <= k2; default k1.
    nonlinearity : ``"tanh"`` or ``"relu"``.

    Returns
    -------
    updates : list of dicts ``{"Wx": (D, H), "Wh": (H, H), "b": (H,)}``, one
        per update, in order; the update ``i`` ends at step
        ``min((i + 1) * k1, T) - 1``.
    h_last : (N, H) state after the last step, to carry into the next stretch.
    """
    check_nonlinearity(nonlinearity)
    x, h0, Wx, Wh, b, (N, T, D, H) = _rnn_inputs(x, h0, Wx, Wh, b)
    k1 = positive_int("k1", k1)
    k2 = k1 if k2 is None else positive_int("k2", k2)
    if k2 < k1:
        raise ValueError(
            f"k2 = {k2} < k1 = {k1}; expected k2 >= k1 (each update must backpropagate "
            "at least through the k1 steps whose losses it takes)"
        )

    updates = []
    h_window, window_start = None, 0  # states of the last window, and its first step
    for block_start in range(0, T, k1):
        block_end = min(block_start + k1, T)  # this block is steps block_start .. block_end - 1
        start = max(0, block_start - (k2 - k1))  # the window is steps start .. block_end - 1
        h_before = h0 if start == 0 else h_window[:, start - 1 - window_start]
        h_window, cache = rnn_forward(x[:, start:block_end], h_before, Wx, Wh, b, nonlinearity=nonlinearity)

        # Losses of the new steps only: the older steps of the window were
        # counted by earlier updates and are here just to carry gradient back.
        dh = np.zeros_like(h_window)
        for t in range(block_start, block_end):
            dh_t = _call_loss_grad(loss_grad, h_window[:, t - start].copy(), t)
            if dh_t is not None:
                dh[:, t - start] = dh_t
        _, _, dWx, dWh, db = rnn_backward(dh, cache)  # dh0 is dropped: the cut
        updates.append({"Wx": dWx, "Wh": dWh, "b": db})
        window_start = start

    h_last = h0 if T == 0 else h_window[:, -1]
    return updates, h_last


def rtrl(x, h0, Wx, Wh, b, loss_grad, *, nonlinearity="tanh"):
    """Real-time recurrent learning: the gradient of ``sum_t L_t``, computed forward in time.

    N: batch size, T: sequence length, D: input size, H: hidden size.

    Instead of storing the states and going back (BPTT), RTRL carries the
    *sensitivities* of the current state to every parameter, ``P_t = dh_t/dtheta``,
    and updates them with the chain rule at each step. With
    ``a_t = x_t Wx + h_{t-1} Wh + b``, ``h_t = phi(a_t)`` and
    ``phi'_t = phi'(a_t)`` (``1 - h_t**2`` for tanh)::

        d h_t[k] / d Wh[i, j] = phi'_t[k] ([k == j] h_{t-1}[i] + sum_m Wh[m, k] d h_{t-1}[m] / d Wh[i, j])
        d h_t[k] / d Wx[i, j] = phi'_t[k] ([k == j] x_t[i]     + sum_m Wh[m, k] d h_{t-1}[m] / d Wx[i, j])
        d h_t[k] / d b[j]     = phi'_t[k] ([k == j]            + sum_m Wh[m, k] d h_{t-1}[m] / d b[j])
        d h_t[k] / d h0[i]    = phi'_t[k] (                      sum_m Wh[m, k] d h_{t-1}[m] / d h0[i])

    starting from zero sensitivities (and ``d h_{-1} / d h0 = I``), and adds
    ``dL_t/dtheta = sum_k dL_t/dh_t[k] * d h_t[k] / d theta`` as soon as step
    ``t`` is seen: the gradient is available online, with no backward pass.

    Costs, per sequence in the batch: the ``Wh`` sensitivity is an H x H x H
    tensor (O(H^3) memory) and its update multiplies it by ``Wh`` (O(H^4) time
    per step; the ``Wx`` sensitivity adds O(D H^2) memory and O(D H^3)
    time), against O(H^2 + D H) time per step for BPTT. But RTRL's memory does
    not grow with T, while BPTT stores all T states. The result is the same
    gradient BPTT gives (full BPTT, :func:`~rnncourse.numpy.rnn.rnn_backward`).

    Parameters
    ----------
    x : (N, T, D) input sequence.
    h0 : (N, H) initial state.
    Wx : (D, H), Wh : (H, H), b : (H,) the RNN's parameters.
    loss_grad : callable ``loss_grad(h_t, t) -> dL_t/dh_t``, (N, H) array or
        None for no loss at step t; called once per step in order of ``t``.
    nonlinearity : ``"tanh"`` or ``"relu"``.

    Returns
    -------
    grads : dict ``{"Wx": (D, H), "Wh": (H, H), "b": (H,), "h0": (N, H)}``, the
        gradient of ``sum_t L_t``.
    h_last : (N, H) state after the last step.
    """
    check_nonlinearity(nonlinearity)
    x, h0, Wx, Wh, b, (N, T, D, H) = _rnn_inputs(x, h0, Wx, Wh, b)
    dtype = np.result_type(x, h0, Wx, Wh, b)

    # Sensitivities, one set per sequence n: P_Wh[n, k, i, j] = d h_t[n, k] / d Wh[i, j].
    P_Wx = np.zeros((N, H, D, H), dtype)
    P_Wh = np.zeros((N, H, H, H), dtype)
    P_b = np.zeros((N, H, H), dtype)
    P_h0 = np.broadcast_to(np.eye(H, dtype=dtype), (N, H, H)).copy()
    grads = {"Wx": np.zeros((D, H), dtype), "Wh": np.zeros((H, H), dtype),
             "b": np.zeros(H, dtype), "h0": np.zeros((N, H), dtype)}
    eye = np.eye(H, dtype=dtype)

    def through_Wh(P):
        """sum_m Wh[m, k] P[n, m, ...]: how the previous sensitivities reach a_t."""
        return (Wh.T @ P.reshape(N, H, -1)).reshape(P.shape)

    h_prev = h0
    for t in range(T):
        h, _ = rnn_step_forward(x[:, t], h_prev, Wx, Wh, b, nonlinearity=nonlinearity)
        dphi = 1 - h**2 if nonlinearity == "tanh" else (h > 0).astype(dtype)
        dphi = dphi[:, :, None]  # (N, H, 1), scales the k axis

        # The direct terms [k == j] * (input of the product) put h_{t-1}[i] or
        # x_t[i] on the diagonal k == j; the recurrent terms are through_Wh.
        P_Wh = through_Wh(P_Wh)
        P_Wh += eye[None, :, None, :] * h_prev[:, None, :, None]
        P_Wh *= dphi[..., None]
        P_Wx = through_Wh(P_Wx)
        P_Wx += eye[None, :, None, :] * x[:, t][:, None, :, None]
        P_Wx *= dphi[..., None]
        P_b = (through_Wh(P_b) + eye) * dphi
        P_h0 = through_Wh(P_h0) * dphi

        dh = _call_loss_grad(loss_grad, h.copy(), t)
        if dh is not None:
            grads["Wh"] += np.einsum("nk,nkij->ij", dh, P_Wh)
            grads["Wx"] += np.einsum("nk,nkij->ij", dh, P_Wx)
            grads["b"] += np.einsum("nk,nkj->j", dh, P_b)
            grads["h0"] += np.einsum("nk,nki->ni", dh, P_h0)
        h_prev = h
    return grads, h_prev


def gradient_norms_through_time(x, h0, Wx, Wh, b, dh_last, *, cell="rnn", c0=None, nonlinearity="tanh"):
    """``||dL/dh_t||`` for every step t, for a loss on the last state only.

    N: batch size, T: sequence length, D: input size, H: hidden size,
    G: 1 for ``"rnn"``, 4 for ``"lstm"``.

    The loss is ``L = sum(h_{T-1} * dh_last)`` (any loss of the last state
    has this gradient for ``dh_last = dL/dh_{T-1}``). Backpropagating it
    step by step gives ``dL/dh_t`` for every t; its norm against the
    distance ``T - 1 - t`` shows the gradient vanish or explode. For the
    tanh RNN ``dL/dh_{t-1} = (dL/dh_t * (1 - h_t**2)) Wh^T``, so::

        ||dL/dh_t|| <= (sigma_max(Wh) * max|tanh'|)**(T-1-t) * ||dL/dh_{T-1}||

    with ``max|tanh'| = 1`` (see :func:`gradient_norm_bound`). For the LSTM,
    ``dL/dh_t`` is the gradient on the hidden state with the cell state
    ``c_t`` held as a separate variable (what ``h_t.grad`` is in PyTorch).

    Parameters
    ----------
    x : (N, T, D) input sequence, T >= 1.
    h0 : (N, H) initial state.
    Wx : (D, G*H), Wh : (H, G*H), b : (G*H,) the cell's parameters (LSTM gates i, f, g, o).
    dh_last : (N, H) gradient of the loss on the last state ``h_{T-1}``.
    cell : ``"rnn"`` or ``"lstm"``.
    c0 : (N, H) initial cell state for the LSTM, None for zeros.
    nonlinearity : ``"tanh"`` or ``"relu"`` (``"rnn"`` only).

    Returns
    -------
    norms : (T,) float64, ``norms[t] = ||dL/dh_t||``, the Frobenius norm over
        the batch and hidden units; ``norms[T-1] = ||dh_last||``.
    """
    check_choice("cell", cell, ("rnn", "lstm"))
    check_nonlinearity(nonlinearity)
    if cell == "lstm" and nonlinearity != "tanh":
        raise ValueError(f"nonlinearity={nonlinearity!r} only applies to cell='rnn'")
    x, h0, Wx, Wh, b, (N, T, D, H) = _rnn_inputs(x, h0, Wx, Wh, b, gates=4 if cell == "lstm" else 1)
    if T == 0:
        raise ValueError("x has T = 0 steps; expected at least one")
    dh_last = upstream_gradient("dh_last", dh_last, "N H", (N, H))

    caches, h, c = [], h0, None
    if cell == "lstm":
        c = np.zeros_like(h0) if c0 is None else expect_shape("c0", float_array("c0", c0), "N H", (N, H))
    for t in range(T):
        if cell == "rnn":
            h, cache = rnn_step_forward(x[:, t], h, Wx, Wh, b, nonlinearity=nonlinearity)
        else:
            h, c, cache = lstm_step_forward(x[:, t], h, c, Wx, Wh, b)
        caches.append(cache)

    norms = np.empty(T)
    dh, dc = dh_last, np.zeros_like(dh_last)
    for t in reversed(range(T)):
        norms[t] = np.linalg.norm(dh)
        if t == 0:
            break
        if cell == "rnn":
            _, dh, _, _, _ = rnn_step_backward(dh, caches[t])
        else:
            _, dh, dc, _, _, _ = lstm_step_backward(dh, dc, caches[t])
    return norms


def gradient_norm_bound(Wh, T, dh_last_norm=1.0):
    """Upper bound on ``||dL/dh_t||`` for a tanh RNN with the loss at the last step.

    H: hidden size, T: sequence length.

    ``bound[t] = sigma_max(Wh)**(T-1-t) * dh_last_norm``, from
    ``||dL/dh_{t-1}|| <= ||dL/dh_t|| * max|tanh'| * sigma_max(Wh)`` with
    ``max|tanh'| = 1``. Below 1, ``sigma_max`` guarantees the gradient
    vanishes exponentially with distance; above 1 the bound allows explosion
    (it does not force it: saturated units make tanh' small).

    Parameters
    ----------
    Wh : (H, H) hidden-to-hidden weights.
    T : number of steps.
    dh_last_norm : ``||dL/dh_{T-1}||``.

    Returns
    -------
    bound : (T,) float64, comparable with :func:`gradient_norms_through_time`.
    """
    Wh = float_array("Wh", Wh)
    H = dims("Wh", Wh, "H H")[0]
    expect_shape("Wh", Wh, "H H", (H, H))
    sigma = np.linalg.norm(Wh.astype(np.float64), ord=2)
    distance = np.arange(T - 1, -1, -1)
    return dh_last_norm * sigma**distance


def scale_to_spectral_norm(W, sigma):
    """``W`` rescaled so that its largest singular value is ``sigma``.

    Parameters
    ----------
    W : (H, M) matrix, not all zero.
    sigma : the new largest singular value, >= 0.

    Returns
    -------
    (H, M) array of W's dtype, ``W * sigma / sigma_max(W)``: same singular
    vectors, all singular values scaled by the same factor.
    """
    W = float_array("W", W)
    dims("W", W, "H M")
    if not sigma >= 0:
        raise ValueError(f"sigma is {sigma!r}; expected a number >= 0")
    current = np.linalg.norm(W.astype(np.float64), ord=2)
    if current == 0:
        raise ValueError("W is all zeros; its largest singular value cannot be rescaled")
    return (W * (sigma / current)).astype(W.dtype, copy=False)
