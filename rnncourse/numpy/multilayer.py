"""Stacked and bidirectional recurrent layers, built from the single-layer ones.

A stack of ``L`` layers feeds the output sequence of layer ``l`` to layer
``l + 1`` as its input. A bidirectional layer runs two independent cells over
the same input: direction 0 from ``t = 0`` to ``T - 1``, direction 1 over the
time-reversed sequence; at every step their outputs are concatenated along the
feature axis, forward first, so the next layer (and the caller) sees
``H * num_directions`` features. This is ``torch.nn.RNN/LSTM/GRU`` with
``num_layers=L``, ``bidirectional=...``, ``batch_first=True`` and no dropout.

Parameters are a list of lists of dicts, ``params[layer][direction]``, each
holding the arrays of one single-layer cell:

- ``"rnn"``, ``"lstm"``: ``{"Wx", "Wh", "b"}`` as in :func:`~rnncourse.numpy.rnn.rnn_forward`
  and :func:`~rnncourse.numpy.lstm.lstm_forward`;
- ``"gru"``: ``{"Wx", "Wh", "bx", "bh"}`` as in :func:`~rnncourse.numpy.gru.gru_forward`.

Layer 0 has ``Wx`` of shape ``(D, G*H)``, every later layer ``(H *
num_directions, G*H)``, with ``G`` = 1 (rnn), 4 (lstm) or 3 (gru). Initial and
final states are stacked like torch's: ``(L * num_directions, N, H)`` with
index ``layer * num_directions + direction``.
"""

import numpy as np

from ..validation import check_choice, check_rng
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .rnn import rnn_backward, rnn_forward
from ._checks import check_nonlinearity, dims, expect_shape, float_array, no_cell_state, positive_int, upstream_gradient

__all__ = ["init_params", "stacked_rnn_forward", "stacked_rnn_backward"]

# Parameter names of one cell, and how many H-wide blocks its matrices stack.
_CELL_KEYS = {"rnn": ("Wx", "Wh", "b"), "lstm": ("Wx", "Wh", "b"), "gru": ("Wx", "Wh", "bx", "bh")}
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _check_cell(cell, nonlinearity="tanh"):
    check_choice("cell", cell, tuple(_CELL_KEYS))
    check_nonlinearity(nonlinearity)
    if cell != "rnn" and nonlinearity != "tanh":
        raise ValueError(f"nonlinearity={nonlinearity!r} only applies to cell='rnn'; got cell={cell!r}")


def init_params(cell, input_size, hidden_size, num_layers=1, bidirectional=False, *, rng, dtype=np.float64):
    """Random parameters for a stacked (and possibly bidirectional) recurrent layer.

    D: input size, H: hidden size, L: number of layers, G: gates per cell
    (1 for rnn, 4 for lstm, 3 for gru).

    Every weight is drawn from ``U(-1/sqrt(H), 1/sqrt(H))``, torch's default.
    Torch keeps two biases per cell, ``bias_ih`` and ``bias_hh``, each drawn
    from that uniform; ``rnn`` and ``lstm`` cells here have one bias ``b``, the
    sum of the two, so ``b`` is drawn as a sum of two such uniforms and has
    the distribution torch's effective bias has. The ``gru`` keeps both.

    Parameters
    ----------
    cell : ``"rnn"``, ``"lstm"`` or ``"gru"``.
    input_size : D, features of the input to layer 0.
    hidden_size : H.
    num_layers : L >= 1.
    bidirectional : if True, two directions per layer.
    rng : numpy.random.Generator, required (no hidden global seed).
    dtype : float32 or float64.

    Returns
    -------
    params : list of L lists of ``num_directions`` dicts: ``params[l][d]`` has
        ``Wx`` of shape (D, G*H) for l = 0 and (H * num_directions, G*H) for
        l > 0, ``Wh`` (H, G*H), and ``b`` (G*H,) or ``bx``, ``bh`` (G*H,).
    """
    _check_cell(cell)
    check_rng(rng)
    input_size = positive_int("input_size", input_size)
    hidden_size = positive_int("hidden_size", hidden_size)
    num_layers = positive_int("num_layers", num_layers)
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype is {dtype}; expected a floating-point dtype (float32 or float64)")
    H, G = hidden_size, _GATES[cell]
    num_directions = 2 if bidirectional else 1
    k = 1.0 / np.sqrt(H)

    def uniform(*shape):
        return rng.uniform(-k, k, size=shape).astype(dtype)

    params = []
    for layer in range(num_layers):
        D_in = input_size if layer == 0 else H * num_directions
        directions = []
        for _ in range(num_directions):
            p = {"Wx": uniform(D_in, G * H), "Wh": uniform(H, G * H)}
            if cell == "gru":
                p["bx"], p["bh"] = uniform(G * H), uniform(G * H)
            else:
                p["b"] = uniform(G * H) + uniform(G * H)
            directions.append(p)
        params.append(directions)
    return params


def _check_params(params, cell, D):
    """Validate ``params[layer][direction]``; return (L, num_directions, H)."""
    if not isinstance(params, (list, tuple)) or len(params) == 0:
        got = f"an empty {type(params).__name__}" if isinstance(params, (list, tuple)) else type(params).__name__
        raise ValueError(
            f"params is {got}; expected a non-empty list of layers, params[layer][direction] a dict"
        )
    num_directions = len(params[0]) if isinstance(params[0], (list, tuple)) else 0
    if num_directions not in (1, 2):
        raise ValueError(
            f"params[0] has {num_directions} directions; expected a list of 1 or 2 dicts "
            "(forward, and reverse if bidirectional)"
        )
    keys, G = _CELL_KEYS[cell], _GATES[cell]
    first = params[0][0]
    if not isinstance(first, dict) or "Wh" not in first:
        raise ValueError(
            f"params[0][0] has no 'Wh'; expected a dict with keys {list(keys)} for cell={cell!r}"
        )
    H = dims("params[0][0]['Wh']", float_array("params[0][0]['Wh']", first["Wh"]), "H GH")[0]
    gh = "H" if G == 1 else f"{G}H"
    for layer, directions in enumerate(params):
        if not isinstance(directions, (list, tuple)) or len(directions) != num_directions:
            n = len(directions) if isinstance(directions, (list, tuple)) else type(directions).__name__
            raise ValueError(f"params[{layer}] has {n} directions; expected {num_directions} like params[0]")
        D_in, d_sym = (D, "D") if layer == 0 else (H * num_directions, "H" if num_directions == 1 else "2H")
        for direction, p in enumerate(directions):
            where = f"params[{layer}][{direction}]"
            if not isinstance(p, dict) or set(p) != set(keys):
                got = sorted(p) if isinstance(p, dict) else type(p).__name__
                raise ValueError(f"{where} has keys {got}; expected {sorted(keys)} for cell={cell!r}")
            for name in keys:
                float_array(f"{where}[{name!r}]", p[name])
            expect_shape(f"{where}['Wx']", np.asarray(p["Wx"]), f"{d_sym} {gh}", (D_in, G * H))
            expect_shape(f"{where}['Wh']", np.asarray(p["Wh"]), f"H {gh}", (H, G * H))
            for name in keys[2:]:
                expect_shape(f"{where}[{name!r}]", np.asarray(p[name]), gh, (G * H,))
    return len(params), num_directions, H


def _forward_direction(cell, x, h0, c0, p, nonlinearity):
    """One cell over a whole sequence: (h, c_last or None, cache)."""
    if cell == "rnn":
        h, cache = rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"], nonlinearity=nonlinearity)
        return h, None, cache
    if cell == "lstm":
        return lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"], c0, return_state=True)
    h, cache = gru_forward(x, h0, p["Wx"], p["Wh"], p["bx"], p["bh"])
    return h, None, cache


def _backward_direction(cell, dh, dc_last, cache):
    """Backward of :func:`_forward_direction`: (dx, dh0, dc0 or None, grads dict)."""
    if cell == "rnn":
        dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)
        return dx, dh0, None, {"Wx": dWx, "Wh": dWh, "b": db}
    if cell == "lstm":
        dx, dh0, dWx, dWh, db, dc0 = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)
        return dx, dh0, dc0, {"Wx": dWx, "Wh": dWh, "b": db}
    dx, dh0, dWx, dWh, dbx, dbh = gru_backward(dh, cache)
    return dx, dh0, None, {"Wx": dWx, "Wh": dWh, "bx": dbx, "bh": dbh}


def stacked_rnn_forward(x, h0, params, *, cell, c0=None, nonlinearity="tanh"):
    """Forward pass of a stacked, optionally bidirectional, recurrent layer.

    N: batch size, T: sequence length, D: input size, H: hidden size,
    L: number of layers, K = num_directions (1, or 2 if bidirectional).

    Layer ``l``, direction 0 computes ``h^l_t = cell(h^{l-1}_t, h^l_{t-1})``
    for ``t = 0 .. T-1``; direction 1 computes the same with its own
    parameters for ``t = T-1 .. 0``, i.e. it runs over the time-reversed
    input and its outputs are reversed back, so ``out[:, t]`` holds both
    directions' states *at time t*. ``h^0_t = x_t``; for ``l > 0`` the input
    is ``[forward h^{l-1}_t, reverse h^{l-1}_t]`` (forward first).

    Every sequence in the batch is taken to have the full length ``T``:
    variable lengths (padding, packed sequences) are out of scope here; with
    padded input the reverse direction would start on the padding. No dropout
    between layers.

    Parameters
    ----------
    x : (N, T, D) input sequences.
    h0 : (L*K, N, H) initial hidden states, index ``layer * K + direction``
        as in torch; None for zeros.
    params : ``params[layer][direction]`` dicts (see the module docstring and
        :func:`init_params`).
    cell : ``"rnn"``, ``"lstm"`` or ``"gru"`` (keyword, required).
    c0 : (L*K, N, H) initial LSTM cell states, None for zeros; only for ``"lstm"``.
    nonlinearity : ``"tanh"`` or ``"relu"``; only for ``"rnn"``.

    Returns
    -------
    ``out, h_n, cache`` for rnn and gru; ``out, h_n, c_n, cache`` for lstm, where

    out : (N, T, K*H) outputs of the top layer, forward direction in
        ``out[..., :H]``, reverse in ``out[..., H:]``.
    h_n : (L*K, N, H) final hidden state of every layer and direction (for
        the reverse direction that is its state after reading ``x_0``).
    c_n : (L*K, N, H) final LSTM cell states.
    cache : for :func:`stacked_rnn_backward`.
    """
    _check_cell(cell, nonlinearity)
    x = float_array("x", x)
    N, T, D = dims("x", x, "N T D")
    L, K, H = _check_params(params, cell, D)
    h0 = np.zeros((L * K, N, H), dtype=x.dtype) if h0 is None else float_array("h0", h0)
    expect_shape("h0", h0, "L*num_directions N H", (L * K, N, H))
    if cell == "lstm":
        c0 = np.zeros((L * K, N, H), dtype=x.dtype) if c0 is None else float_array("c0", c0)
        expect_shape("c0", c0, "L*num_directions N H", (L * K, N, H))
    else:
        no_cell_state("c0", c0, cell)

    layer_input, h_n, c_n, caches = x, [], [], []
    for layer in range(L):
        outputs = []
        for direction in range(K):
            k = layer * K + direction
            seq = layer_input if direction == 0 else layer_input[:, ::-1]
            h, c_last, cache = _forward_direction(
                cell, seq, h0[k], None if c0 is None else c0[k], params[layer][direction], nonlinearity
            )
            h_n.append(h[:, -1])
            c_n.append(c_last)
            caches.append(cache)
            outputs.append(h if direction == 0 else h[:, ::-1])
        layer_input = outputs[0] if K == 1 else np.concatenate(outputs, axis=2)

    out, h_n = layer_input, np.stack(h_n)
    cache = {"cell": cell, "L": L, "K": K, "N": N, "T": T, "H": H, "caches": caches}
    if cell == "lstm":
        return out, h_n, np.stack(c_n), cache
    return out, h_n, cache


def stacked_rnn_backward(dout, cache, *, dh_n=None, dc_n=None):
    """Backward pass of :func:`stacked_rnn_forward`.

    N: batch size, T: sequence length, D: input size, H: hidden size,
    L: number of layers, K = num_directions.

    The gradient reaching layer ``l``'s output is split into its directions;
    each direction backpropagates through time (the reverse one over reversed
    time) and the input gradients of the directions are summed, since both
    read the same input sequence. That sum is the output gradient of layer
    ``l - 1``.

    Parameters
    ----------
    dout : (N, T, K*H) upstream gradient on ``out``.
    dh_n : (L*K, N, H) upstream gradient on ``h_n``, or None for zeros.
    dc_n : (L*K, N, H) upstream gradient on ``c_n`` (lstm only), or None.

    Returns
    -------
    ``dx, dh0, grads`` for rnn and gru; ``dx, dh0, dc0, grads`` for lstm, where

    dx : (N, T, D) gradient on ``x``.
    dh0 : (L*K, N, H) gradient on ``h0``.
    dc0 : (L*K, N, H) gradient on ``c0``.
    grads : ``grads[layer][direction]`` dicts with the keys and shapes of
        ``params[layer][direction]``.
    """
    cell, L, K, N, T, H = (cache[k] for k in ("cell", "L", "K", "N", "T", "H"))
    dout = upstream_gradient("dout", dout, "N T num_directions*H", (N, T, K * H))
    if dh_n is not None:
        dh_n = upstream_gradient("dh_n", dh_n, "L*num_directions N H", (L * K, N, H))
    if cell == "lstm":
        if dc_n is not None:
            dc_n = upstream_gradient("dc_n", dc_n, "L*num_directions N H", (L * K, N, H))
    else:
        no_cell_state("dc_n", dc_n, cell)

    grads = [[None] * K for _ in range(L)]
    dh0, dc0 = [None] * (L * K), [None] * (L * K)
    d_layer_out = dout
    for layer in reversed(range(L)):
        d_layer_in = 0
        for direction in range(K):
            k = layer * K + direction
            dh = d_layer_out[:, :, direction * H:(direction + 1) * H]
            if direction == 1:
                dh = dh[:, ::-1]
            if dh_n is not None:
                # h_n[k] is this direction's last output, so its gradient adds there
                dh = dh.copy()
                dh[:, -1] += dh_n[k]
            dc_last = None if dc_n is None else dc_n[k]
            dx, dh0[k], dc0[k], grads[layer][direction] = _backward_direction(
                cell, dh, dc_last, cache["caches"][k]
            )
            d_layer_in = d_layer_in + (dx if direction == 0 else dx[:, ::-1])
        d_layer_out = d_layer_in

    dx, dh0 = d_layer_out, np.stack(dh0)
    if cell == "lstm":
        return dx, dh0, np.stack(dc0), grads
    return dx, dh0, grads
