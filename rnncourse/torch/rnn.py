"""``RNN``, ``LSTM`` and ``GRU``: drop-in replacements for their ``torch.nn`` twins.

T: sequence length, N: batch size, D: input size (``input_size``), H: hidden
size (``hidden_size``), P: size of the hidden state h (``proj_size`` if
non-zero, else H), L: ``num_layers``, K: 2 if ``bidirectional`` else 1.

Same constructor signatures and defaults, parameter names and shapes
(``weight_ih_l{k}`` ``(G*H, D_k)``, ``weight_hh_l{k}`` ``(G*H, P)``,
``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(G*H,)``, ``weight_hr_l{k}`` ``(P, H)``,
suffix ``_reverse`` for the backward direction; G = 1, 4, 3 gate blocks
stacked ``i, f, g, o`` for the LSTM and ``r, z, n`` for the GRU), inputs
(``(T, N, D)``, ``(N, T, D)`` with ``batch_first``, unbatched ``(T, D)``, or a
``PackedSequence``) and return values as ``torch.nn``; so ``load_state_dict``
works both ways without any key mapping. The equations, per layer and
direction (torch's)::

    RNN   h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
    LSTM  i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
          c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)   (then h_t W_hr^T with proj_size)
    GRU   r, z = sigmoid(x_t W_i{r,z}^T + b_i{r,z} + h_{t-1} W_h{r,z}^T + b_h{r,z})
          n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn)),   h_t = (1 - z) * n + z * h_{t-1}

The time loops and their hand-derived backward passes are in
``rnncourse.torch._recurrence``, which says why they are written that way.
On CUDA, the LSTM and GRU run each layer-direction through fused Triton
kernels instead (``rnncourse.torch.triton``) when they apply: float32,
bfloat16 or float16, a padded batch, no ``proj_size``, Triton importable;
otherwise, and always on the CPU, through ``_recurrence``. Both compute the
same function, to rounding. Double backward (gradients of gradients) is not supported.

Errors on shapes mirror torch's wording and are raised as an exception that
is both a ``ValueError`` (the project's convention) and a ``RuntimeError``
(what ``torch.nn`` raises), so code written for either catches it.
"""

import math
import numbers
import warnings

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence

from . import triton as _fast  # does not import Triton itself
from ._recurrence import GRULayer, LSTMLayer, RNNLayer, _Steps

__all__ = ["RNN", "LSTM", "GRU"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class ShapeError(ValueError, RuntimeError):
    """A tensor of the wrong shape: a ``ValueError`` and, like torch.nn's, a ``RuntimeError``."""


class _RNNBase(nn.Module):
    """What RNN, LSTM and GRU share: parameters, checks, the layer loop."""

    def __init__(self, mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                 bidirectional, proj_size, device, dtype):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero, got {value}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an "
                f"element being zeroed, got {dropout!r}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}"
            )
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(
                f"proj_size should be a positive integer or zero to disable projections, got {proj_size!r}"
            )
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")

        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size

        K = 2 if bidirectional else 1
        G, P = _GATES[mode], proj_size or hidden_size
        factory = dict(device=device, dtype=dtype)
        # Created and registered in torch.nn's order (per layer, per direction:
        # w_ih, w_hh, b_ih, b_hh, w_hr), so reset_parameters draws the same
        # numbers as torch.nn for the same seed.
        self._weight_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else P * K
            for direction in range(K):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (G * hidden_size, layer_input), "weight_hh": (G * hidden_size, P)}
                if bias:
                    shapes.update(bias_ih=(G * hidden_size,), bias_hh=(G * hidden_size,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for kind, shape in shapes.items():
                    self.register_parameter(kind + suffix, nn.Parameter(torch.empty(shape, **factory)))
                self._weight_names.append(
                    tuple(kind + suffix if kind in shapes else None
                          for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))
                )
        self.reset_parameters()

    def reset_parameters(self):
        """Every parameter from ``U(-1/sqrt(H), 1/sqrt(H))``, torch.nn's default."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def flatten_parameters(self):
        """Does nothing: for code written for ``torch.nn`` (cuDNN's weight buffer)."""

    @property
    def all_weights(self):
        """The parameters of each layer-direction: a list of lists, like torch.nn's."""
        return [[getattr(self, name) for name in names if name is not None] for names in self._weight_names]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    # -- forward ------------------------------------------------------------

    def _flat_input(self, input):
        """``(x (S, D), steps, packed parts or None, unbatched)`` from any accepted input."""
        if isinstance(input, PackedSequence):
            x = input.data
            steps = _Steps(input.batch_sizes.tolist())  # batch_sizes lives on the CPU: no sync
            packed, unbatched = input, False
        else:
            if not isinstance(input, torch.Tensor):
                raise TypeError(f"input is a {type(input).__name__}; expected a Tensor or a PackedSequence")
            if input.dim() not in (2, 3):
                raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
            unbatched, packed = input.dim() == 2, None
            if unbatched:
                input = input.unsqueeze(1)
            elif self.batch_first:
                input = input.transpose(0, 1)
            T, N = input.shape[:2]
            if T == 0:
                raise ValueError(f"input has shape {tuple(input.shape)}: no time steps; expected T >= 1")
            x = input.reshape(T * N, input.shape[2])  # time-major rows: step t is rows [tN, (t+1)N)
            steps = _Steps((N,) * T)
        if x.shape[-1] != self.input_size:
            raise ShapeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}"
            )
        weight = self.weight_ih_l0
        if x.dtype != weight.dtype:
            raise ValueError(
                f"{type(self).__name__} input dtype ({x.dtype}) does not match weight dtype "
                f"({weight.dtype}); convert the input, input.to({weight.dtype}), or the model"
            )
        return x, steps, packed, unbatched

    def _initial_state(self, state, name, size, N, unbatched, packed, like):
        """One initial state ``(L*K, N, size)``: zeros if None, else checked and sorted."""
        expected = (self.num_layers * (2 if self.bidirectional else 1), N, size)
        if state is None:
            return like.new_zeros(expected)
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"{name} is a {type(state).__name__}; expected a Tensor")
        if unbatched:
            state = state.unsqueeze(1)
        if tuple(state.shape) != expected:
            raise ShapeError(
                f"Expected {name} size {expected} (num_layers * num_directions, batch, "
                f"{'proj_size' if size == self.proj_size else 'hidden_size'}), got {list(state.shape)}"
            )
        if state.dtype != like.dtype:
            raise ValueError(f"{name} has dtype {state.dtype}; expected {like.dtype} like the input")
        if packed is not None and packed.sorted_indices is not None:
            state = state.index_select(1, packed.sorted_indices)
        return state

    def _check_state_dims(self, states, unbatched):
        """torch.nn's rule: 2-D states with unbatched 2-D input, 3-D with batched 3-D input."""
        dims = [s.dim() for s in states if isinstance(s, torch.Tensor)]
        want = 2 if unbatched else 3
        if any(d != want for d in dims):
            got = ", ".join(f"{d}-D" for d in dims)
            what = "For unbatched 2-D input" if unbatched else "For batched 3-D input"
            raise ShapeError(f"{what}, the initial states should also be {want}-D but got ({got}) tensors")

    def _run(self, x, steps, h0, c0):
        """The layers: (output (S, K*P), h_n (L*K, N, P), c_n (L*K, N, H) or None)."""
        K = 2 if self.bidirectional else 1
        plan = _fast.choose(self.mode, x, steps, self.hidden_size, self.proj_size)  # None: no Triton
        layer_input, h_n, c_n = x, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(K):
                k = layer * K + direction
                w_ih, w_hh, b_ih, b_hh, w_hr = (
                    None if name is None else getattr(self, name) for name in self._weight_names[k]
                )
                reverse = direction == 1
                if self.mode == "LSTM" and plan is not None:
                    out, h, c = _fast.lstm_layer(layer_input, h0[k], c0[k], w_ih, w_hh, b_ih, b_hh, steps.T, reverse,
                                                 plan)
                    c_n.append(c)
                elif self.mode == "LSTM":
                    out, h, c = LSTMLayer.apply(layer_input, h0[k], c0[k], w_ih, w_hh, b_ih, b_hh, w_hr, steps, reverse)
                    c_n.append(c)
                elif self.mode == "GRU" and plan is not None:
                    out, h = _fast.gru_layer(layer_input, h0[k], w_ih, w_hh, b_ih, b_hh, steps.T, reverse, plan)
                elif self.mode == "GRU":
                    out, h = GRULayer.apply(layer_input, h0[k], w_ih, w_hh, b_ih, b_hh, steps, reverse)
                else:
                    relu = self.mode == "RNN_RELU"
                    out, h = RNNLayer.apply(layer_input, h0[k], w_ih, w_hh, b_ih, b_hh, relu, steps, reverse)
                outputs.append(out)
                h_n.append(h)
            layer_input = outputs[0] if K == 1 else torch.cat(outputs, 1)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, torch.stack(h_n), (torch.stack(c_n) if c_n else None)

    def _forward(self, input, h0, c0):
        x, steps, packed, unbatched = self._flat_input(input)
        P = self.proj_size or self.hidden_size
        lstm = self.mode == "LSTM"
        h0 = self._initial_state(h0, "hidden[0]" if lstm else "hidden", P, steps.N, unbatched, packed, x)
        if lstm:
            c0 = self._initial_state(c0, "hidden[1]", self.hidden_size, steps.N, unbatched, packed, x)
        output, h_n, c_n = self._run(x, steps, h0, c0)
        if packed is not None:
            output = PackedSequence(output, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
            if packed.unsorted_indices is not None:
                h_n = h_n.index_select(1, packed.unsorted_indices)
                c_n = None if c_n is None else c_n.index_select(1, packed.unsorted_indices)
            return output, h_n, c_n
        output = output.view(steps.T, steps.N, output.shape[1])
        if unbatched:
            return output.squeeze(1), h_n.squeeze(1), None if c_n is None else c_n.squeeze(1)
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, h_n, c_n


class RNN(_RNNBase):
    """Elman RNN, ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``; a drop-in ``torch.nn.RNN``.

    T: sequence length, N: batch size, D: ``input_size``, H: ``hidden_size``,
    L: ``num_layers``, K: 2 if ``bidirectional`` else 1.

    Parameters
    ----------
    input_size : int, D.
    hidden_size : int, H.
    num_layers : int, default 1. Layer ``l > 0`` reads the ``K*H`` outputs of layer ``l - 1``.
    nonlinearity : ``'tanh'`` (default) or ``'relu'``.
    bias : bool, default True. False: no ``bias_ih_l*``, ``bias_hh_l*``.
    batch_first : bool, default False. True: input and output are ``(N, T, *)``
        (the states stay ``(L*K, N, H)``).
    dropout : float in [0, 1], default 0. Dropout on the outputs of every layer
        but the last, in training mode.
    bidirectional : bool, default False.
    device, dtype : of the parameters.

    Attributes ``weight_ih_l{k}`` ``(H, D_k)`` (``D_0 = D``, ``D_k = K*H``),
    ``weight_hh_l{k}`` ``(H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(H,)``,
    suffixed ``_reverse`` for the backward direction; each drawn from
    ``U(-1/sqrt(H), 1/sqrt(H))``.

    Forward ``(input, hx=None) -> (output, h_n)``
    ----------------------------------------------
    input : ``(T, N, D)``, ``(N, T, D)`` with ``batch_first``, unbatched
        ``(T, D)``, or a ``PackedSequence`` of variable-length sequences.
    hx : ``(L*K, N, H)`` (``(L*K, H)`` unbatched) initial states; None: zeros.
    output : ``(T, N, K*H)`` (``(N, T, K*H)``, ``(T, K*H)``, or a
        ``PackedSequence``), the last layer's h at every step, forward
        direction first.
    h_n : ``(L*K, N, H)``, the final state of every layer and direction (for
        packed input, each sequence's state after its own last step).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)

    def forward(self, input, hx=None):
        """See the class docstring: ``(output, h_n)``."""
        unbatched = isinstance(input, torch.Tensor) and input.dim() == 2
        if hx is not None:
            self._check_state_dims([hx], unbatched)
        output, h_n, _ = self._forward(input, hx, None)
        return output, h_n


class LSTM(_RNNBase):
    """Long short-term memory; a drop-in ``torch.nn.LSTM``.

    T: sequence length, N: batch size, D: ``input_size``, H: ``hidden_size``,
    P: ``proj_size`` if non-zero else H, L: ``num_layers``, K: 2 if
    ``bidirectional`` else 1.

    Per step, with gates stacked ``i, f, g, o``::

        i, f, o = sigmoid(.), g = tanh(.) of x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)          (times W_hr^T if proj_size > 0)

    Parameters
    ----------
    input_size : int, D.
    hidden_size : int, H.
    num_layers : int, default 1. Layer ``l > 0`` reads the ``K*P`` outputs of layer ``l - 1``.
    bias : bool, default True. False: no ``bias_ih_l*``, ``bias_hh_l*``.
    batch_first : bool, default False. True: input and output are ``(N, T, *)``
        (the states stay ``(L*K, N, *)``).
    dropout : float in [0, 1], default 0. Dropout on the outputs of every layer
        but the last, in training mode.
    bidirectional : bool, default False.
    proj_size : int, default 0. If > 0 (and < H), ``h_t`` is projected to P
        features by ``weight_hr_l{k}`` ``(P, H)``.
    device, dtype : of the parameters.

    Attributes ``weight_ih_l{k}`` ``(4H, D_k)`` (``D_0 = D``, ``D_k = K*P``),
    ``weight_hh_l{k}`` ``(4H, P)``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
    ``(4H,)``, ``weight_hr_l{k}`` ``(P, H)``, suffixed ``_reverse`` for the
    backward direction; each drawn from ``U(-1/sqrt(H), 1/sqrt(H))``.

    Forward ``(input, hx=None) -> (output, (h_n, c_n))``
    ----------------------------------------------------
    input : ``(T, N, D)``, ``(N, T, D)`` with ``batch_first``, unbatched
        ``(T, D)``, or a ``PackedSequence`` of variable-length sequences.
    hx : tuple ``(h_0, c_0)`` of ``(L*K, N, P)`` and ``(L*K, N, H)``
        (without the N axis if unbatched); None: zeros.
    output : ``(T, N, K*P)`` (``(N, T, K*P)``, ``(T, K*P)``, or a
        ``PackedSequence``), the last layer's h at every step, forward
        direction first.
    h_n : ``(L*K, N, P)``, c_n : ``(L*K, N, H)``, the final states of every
        layer and direction (for packed input, each sequence's states after
        its own last step).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)

    def forward(self, input, hx=None):
        """See the class docstring: ``(output, (h_n, c_n))``."""
        unbatched = isinstance(input, torch.Tensor) and input.dim() == 2
        h0 = c0 = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError(f"hx is a {type(hx).__name__}; expected a tuple (h_0, c_0) of two tensors")
            self._check_state_dims(hx, unbatched)
            h0, c0 = hx
        output, h_n, c_n = self._forward(input, h0, c0)
        return output, (h_n, c_n)


class GRU(_RNNBase):
    """Gated recurrent unit (torch's variant: reset after the product); a drop-in ``torch.nn.GRU``.

    T: sequence length, N: batch size, D: ``input_size``, H: ``hidden_size``,
    L: ``num_layers``, K: 2 if ``bidirectional`` else 1.

    Per step, with gates stacked ``r, z, n``::

        r = sigmoid(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
        z = sigmoid(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
        n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    Parameters
    ----------
    input_size : int, D.
    hidden_size : int, H.
    num_layers : int, default 1. Layer ``l > 0`` reads the ``K*H`` outputs of layer ``l - 1``.
    bias : bool, default True. False: no ``bias_ih_l*``, ``bias_hh_l*``.
    batch_first : bool, default False. True: input and output are ``(N, T, *)``
        (the states stay ``(L*K, N, H)``).
    dropout : float in [0, 1], default 0. Dropout on the outputs of every layer
        but the last, in training mode.
    bidirectional : bool, default False.
    device, dtype : of the parameters.

    Attributes ``weight_ih_l{k}`` ``(3H, D_k)`` (``D_0 = D``, ``D_k = K*H``),
    ``weight_hh_l{k}`` ``(3H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
    ``(3H,)``, suffixed ``_reverse`` for the backward direction; each drawn
    from ``U(-1/sqrt(H), 1/sqrt(H))``.

    Forward ``(input, hx=None) -> (output, h_n)``
    ----------------------------------------------
    input : ``(T, N, D)``, ``(N, T, D)`` with ``batch_first``, unbatched
        ``(T, D)``, or a ``PackedSequence`` of variable-length sequences.
    hx : ``(L*K, N, H)`` (``(L*K, H)`` unbatched) initial states; None: zeros.
    output : ``(T, N, K*H)`` (``(N, T, K*H)``, ``(T, K*H)``, or a
        ``PackedSequence``), the last layer's h at every step, forward
        direction first.
    h_n : ``(L*K, N, H)``, the final state of every layer and direction (for
        packed input, each sequence's state after its own last step).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)

    def forward(self, input, hx=None):
        """See the class docstring: ``(output, h_n)``."""
        unbatched = isinstance(input, torch.Tensor) and input.dim() == 2
        if hx is not None:
            self._check_state_dims([hx], unbatched)
        output, h_n, _ = self._forward(input, hx, None)
        return output, h_n
