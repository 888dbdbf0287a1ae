"""Weights between our NumPy layers and ``torch.nn.RNN``, ``LSTM`` and ``GRU``.

Ours multiply row vectors, ``x_t Wx``; PyTorch multiplies column vectors,
``W_ih x_t``. So a weight of ours is the transpose of PyTorch's, with the
gates stacked in the same order along the last axis (LSTM ``i, f, g, o``; GRU
``r, z, n``). For layer ``k`` and direction ``d`` (suffix ``_reverse`` for
``d = 1``):

- ``Wx = weight_ih_l{k}.T``, shape ``(D, G*H)``, where ``D`` is the input
  size for ``k = 0`` and ``H * num_directions`` above;
- ``Wh = weight_hh_l{k}.T``, shape ``(H, G*H)``;
- RNN and LSTM: ``b = bias_ih_l{k} + bias_hh_l{k}``, shape ``(G*H,)``;
- GRU: ``bx = bias_ih_l{k}`` and ``bh = bias_hh_l{k}``, shape ``(G*H,)`` each.

``G`` is the number of gate blocks: 1 (RNN), 4 (LSTM), 3 (GRU).

**One bias or two.** In an RNN or LSTM cell the two biases of PyTorch are
always added together, ``W_ih x + b_ih + W_hh h + b_hh``, so only their sum
matters and we keep one, ``b``. Going back to PyTorch, ``b`` goes into
``bias_ih`` and ``bias_hh`` is zero: the module computes the same outputs,
but the original split of the sum is lost. A GRU needs both, because the
reset gate multiplies ``h Whn + bhn`` but not ``x Wxn + bxn``.

**Stacked and bidirectional layers.** ``params[layer][direction]`` is a dict
of the arrays above; ``direction`` 0 runs forward in time, 1 backward
(PyTorch's ``_reverse`` weights). A unidirectional single-layer model is
``[[{"Wx": ..., "Wh": ..., "b": ...}]]``.

This module does not import PyTorch until :func:`params_to_torch` needs it;
:func:`params_from_torch` reads tensors through their own methods.
"""

import re

import numpy as np

from ._checks import dims, expect_shape, float_array

__all__ = ["params_from_torch", "params_to_torch"]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_MODULE_MODES = {"rnn": ("RNN_TANH", "RNN_RELU"), "lstm": ("LSTM",), "gru": ("GRU",)}
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def _check_cell(cell):
    if cell not in _GATES:
        raise ValueError(f"cell is {cell!r}; expected one of 'rnn', 'lstm', 'gru'")
    return cell


def _bias_keys(cell):
    return ("bx", "bh") if cell == "gru" else ("b",)


def _expect(name, a, symbols, shape, cell):
    """:func:`expect_shape`, with the cell and its gate count in the message."""
    try:
        expect_shape(name, a, symbols, shape)
    except ValueError as e:
        raise ValueError(f"{e} for cell {cell!r} (G = {_GATES[cell]})") from None


def _proj_size_error():
    return ValueError(
        "LSTMs with proj_size > 0 (weights weight_hr_l*) are not supported: "
        "the NumPy LSTM has no projection of h"
    )


def _tensor_to_numpy(name, t):
    """A float32 or float64 NumPy copy of a tensor (or array), on the CPU."""
    if hasattr(t, "detach"):  # a torch.Tensor, read without importing torch
        t = t.detach()
        if not t.is_floating_point():
            raise ValueError(f"{name} has dtype {t.dtype}; expected a floating-point tensor")
        if str(t.dtype) not in ("torch.float32", "torch.float64"):
            t = t.float()  # NumPy has no bfloat16; the package works in float32/64
        return t.cpu().numpy().copy()
    return np.array(float_array(name, t))


def params_from_torch(state_dict_or_module, cell):
    """Our weights from a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` (or its state dict).

    L: number of layers, K: number of directions (1, or 2 if bidirectional),
    D: input size, H: hidden size, G: gate blocks (1 RNN, 4 LSTM, 3 GRU).

    Parameters
    ----------
    state_dict_or_module : torch.nn.Module or dict of str -> tensor
        A ``torch.nn.RNN`` / ``LSTM`` / ``GRU``, or its ``state_dict()``: keys
        ``weight_ih_l{k}`` ``(G*H, D_k)``, ``weight_hh_l{k}`` ``(G*H, H)``,
        ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(G*H,)``, each also with suffix
        ``_reverse`` if bidirectional. Tensors may live on any device; float32
        and float64 are kept, other float dtypes become float32. A module
        built with ``bias=False`` (no bias keys) gives zero biases.
    cell : {"rnn", "lstm", "gru"}
        The kind of module. For ``"rnn"`` the nonlinearity is not part of the
        weights: a ``torch.nn.RNN(..., nonlinearity="relu")`` converts like a
        tanh one, and the forward pass must be told (``nonlinearity="relu"``).

    Returns
    -------
    params : list of L lists of K dicts of ndarray
        ``params[layer][direction]`` with keys ``"Wx"`` ``(D_k, G*H)``,
        ``"Wh"`` ``(H, G*H)`` and ``"b"`` ``(G*H,)`` (RNN, LSTM, where
        ``b = bias_ih + bias_hh``) or ``"bx"``, ``"bh"`` ``(G*H,)`` (GRU).
        ``D_0 = D`` and ``D_k = K * H`` for ``k > 0``. New arrays: they do not
        share memory with the tensors.

    Raises
    ------
    ValueError
        For an unknown ``cell``, a module of another kind, an LSTM with
        ``proj_size > 0``, missing or unexpected keys, or inconsistent shapes.
    """
    cell = _check_cell(cell)
    G = _GATES[cell]
    source = state_dict_or_module
    if hasattr(source, "state_dict") and callable(source.state_dict):
        mode = getattr(source, "mode", None)
        if mode is not None and mode not in _MODULE_MODES[cell]:
            raise ValueError(
                f"the module is a torch.nn.{type(source).__name__} (mode {mode!r}); "
                f"expected a torch.nn.{cell.upper()} for cell {cell!r}"
            )
        if getattr(source, "proj_size", 0):
            raise _proj_size_error()
        source = source.state_dict()
    if not hasattr(source, "items"):
        raise ValueError(
            f"state_dict_or_module is a {type(source).__name__}; expected a "
            "torch.nn.RNN/LSTM/GRU or its state_dict()"
        )

    tensors = {}  # (layer, direction) -> {"weight_ih": array, ...}
    for key, value in source.items():
        match = _KEY.match(key)
        if match is None:
            raise ValueError(
                f"unexpected key {key!r}; expected torch.nn.RNN/LSTM/GRU keys "
                "such as 'weight_ih_l0', 'bias_hh_l1_reverse'"
            )
        kind, layer, reverse = match.groups()
        if kind == "weight_hr":
            raise _proj_size_error()
        tensors.setdefault((int(layer), int(bool(reverse))), {})[kind] = _tensor_to_numpy(key, value)
    if not tensors:
        raise ValueError("the state dict is empty; expected keys such as 'weight_ih_l0'")

    num_layers = 1 + max(layer for layer, _ in tensors)
    num_dirs = 1 + max(direction for _, direction in tensors)
    has_bias = any("bias_ih" in t or "bias_hh" in t for t in tensors.values())
    kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if has_bias else ())
    for layer in range(num_layers):
        for direction in range(num_dirs):
            for kind in kinds:
                if kind not in tensors.get((layer, direction), {}):
                    suffix = "_reverse" if direction else ""
                    raise ValueError(f"the state dict has no key '{kind}_l{layer}{suffix}'")

    H = tensors[0, 0]["weight_hh"].shape[-1]
    D = tensors[0, 0]["weight_ih"].shape[-1]
    params = []
    for layer in range(num_layers):
        D_in = D if layer == 0 else H * num_dirs
        directions = []
        for direction in range(num_dirs):
            t = tensors[layer, direction]
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            _expect(f"weight_ih{suffix}", t["weight_ih"], "G*H D", (G * H, D_in), cell)
            _expect(f"weight_hh{suffix}", t["weight_hh"], "G*H H", (G * H, H), cell)
            if has_bias:
                _expect(f"bias_ih{suffix}", t["bias_ih"], "G*H", (G * H,), cell)
                _expect(f"bias_hh{suffix}", t["bias_hh"], "G*H", (G * H,), cell)
                bias_ih, bias_hh = t["bias_ih"], t["bias_hh"]
            else:
                bias_ih = bias_hh = np.zeros(G * H, dtype=t["weight_ih"].dtype)
            p = {
                "Wx": np.ascontiguousarray(t["weight_ih"].T),
                "Wh": np.ascontiguousarray(t["weight_hh"].T),
            }
            if cell == "gru":
                p["bx"], p["bh"] = bias_ih.copy(), bias_hh.copy()
            else:
                p["b"] = bias_ih + bias_hh
            directions.append(p)
        params.append(directions)
    return params


def _checked_params(params, cell):
    """Validate ``params[layer][direction]`` and return ``(H, num_dirs)``."""
    G = _GATES[cell]
    expected_keys = ("Wx", "Wh") + _bias_keys(cell)
    if not isinstance(params, (list, tuple)) or len(params) == 0:
        raise ValueError(
            f"params is {'an empty ' if isinstance(params, (list, tuple)) else 'a '}"
            f"{type(params).__name__}; expected a non-empty list params[layer][direction] of dicts"
        )
    num_dirs = None
    for layer, directions in enumerate(params):
        if not isinstance(directions, (list, tuple)) or len(directions) not in (1, 2):
            got = type(directions).__name__
            if isinstance(directions, (list, tuple)):
                got += f" of length {len(directions)}"
            raise ValueError(
                f"params[{layer}] is a {got}; expected a list of 1 or 2 dicts "
                "(forward, reverse)"
            )
        if num_dirs is None:
            num_dirs = len(directions)
        elif len(directions) != num_dirs:
            raise ValueError(
                f"params[{layer}] has {len(directions)} directions; expected {num_dirs} "
                "like params[0]"
            )
        for direction, p in enumerate(directions):
            where = f"params[{layer}][{direction}]"
            wanted = f"expected keys {list(expected_keys)} for cell {cell!r}"
            if not isinstance(p, dict):
                raise ValueError(f"{where} is a {type(p).__name__}; {wanted}")
            for key in expected_keys:
                if key not in p:
                    raise ValueError(f"{where} has no key {key!r}; {wanted}")
            for key in p:
                if key not in expected_keys:
                    raise ValueError(f"{where} has unexpected key {key!r}; {wanted}")
            for key in expected_keys:
                symbols = "G*H" if key.startswith("b") else ("D G*H" if key == "Wx" else "H G*H")
                dims(f"{where}[{key!r}]", float_array(f"{where}[{key!r}]", p[key]), symbols)

    H = np.shape(params[0][0]["Wh"])[0]
    D = np.shape(params[0][0]["Wx"])[0]
    for layer, directions in enumerate(params):
        D_in = D if layer == 0 else H * num_dirs
        for direction, p in enumerate(directions):
            where = f"params[{layer}][{direction}]"
            _expect(f"{where}['Wx']", np.asarray(p["Wx"]), "D G*H", (D_in, G * H), cell)
            _expect(f"{where}['Wh']", np.asarray(p["Wh"]), "H G*H", (H, G * H), cell)
            for key in _bias_keys(cell):
                _expect(f"{where}[{key!r}]", np.asarray(p[key]), "G*H", (G * H,), cell)
    return H, num_dirs


def params_to_torch(params, cell, bias=True):
    """A state dict that ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` loads as is.

    L: number of layers, K: number of directions, D: input size, H: hidden
    size, G: gate blocks (1 RNN, 4 LSTM, 3 GRU).

    The module to load it into is ``torch.nn.<RNN|LSTM|GRU>(D, H,
    num_layers=L, bidirectional=(K == 2), bias=bias, batch_first=True)``
    (``batch_first`` does not change the weights, but it is our convention
    for the inputs). Convert the module to the arrays' dtype first
    (``.double()`` for float64), or ``load_state_dict`` casts the values.

    Parameters
    ----------
    params : list of L lists of K dicts of ndarray
        As returned by :func:`params_from_torch`: ``params[layer][direction]``
        with ``"Wx"`` ``(D_k, G*H)``, ``"Wh"`` ``(H, G*H)`` and ``"b"``
        ``(G*H,)`` (RNN, LSTM) or ``"bx"``, ``"bh"`` ``(G*H,)`` (GRU);
        ``D_0 = D``, ``D_k = K * H`` for ``k > 0``.
    cell : {"rnn", "lstm", "gru"}
    bias : bool, default True
        False for a module built with ``bias=False``: the bias keys are left
        out, and the biases in ``params`` must be zero (else ``ValueError``,
        rather than silently dropping them).

    Returns
    -------
    state_dict : dict of str -> torch.Tensor
        ``weight_ih_l{k}`` ``(G*H, D_k)``, ``weight_hh_l{k}`` ``(G*H, H)``,
        ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(G*H,)`` (suffix ``_reverse`` for
        direction 1), CPU tensors of the arrays' dtypes, not sharing memory
        with them. RNN and LSTM: ``bias_ih = b`` and ``bias_hh = 0``. GRU:
        ``bias_ih = bx``, ``bias_hh = bh``.

    Raises
    ------
    ValueError
        For an unknown ``cell``, a malformed ``params`` (missing or
        unexpected keys, inconsistent shapes, integer arrays), or non-zero
        biases with ``bias=False``.
    """
    cell = _check_cell(cell)
    _checked_params(params, cell)
    if not bias:
        for layer, directions in enumerate(params):
            for direction, p in enumerate(directions):
                for key in _bias_keys(cell):
                    if np.any(np.asarray(p[key]) != 0):
                        raise ValueError(
                            f"params[{layer}][{direction}][{key!r}] is not zero, but bias=False "
                            "has no place for it; use bias=True"
                        )

    import torch  # only here: importing rnncourse.numpy must not import torch

    def tensor(a):
        return torch.tensor(np.asarray(a))  # torch.tensor copies

    state_dict = {}
    for layer, directions in enumerate(params):
        for direction, p in enumerate(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            state_dict[f"weight_ih{suffix}"] = tensor(np.asarray(p["Wx"]).T)
            state_dict[f"weight_hh{suffix}"] = tensor(np.asarray(p["Wh"]).T)
            if bias:
                if cell == "gru":
                    bias_ih, bias_hh = p["bx"], p["bh"]
                else:
                    bias_ih, bias_hh = p["b"], np.zeros_like(p["b"])
                state_dict[f"bias_ih{suffix}"] = tensor(bias_ih)
                state_dict[f"bias_hh{suffix}"] = tensor(bias_hh)
    return state_dict
