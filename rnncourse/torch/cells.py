"""``RNNCell``, ``LSTMCell`` and ``GRUCell``: one time step, drop-in for ``torch.nn``'s.

N: batch size, D: ``input_size``, H: ``hidden_size``.

Same constructor signatures, parameter names (``weight_ih`` ``(G*H, D)``,
``weight_hh`` ``(G*H, H)``, ``bias_ih``, ``bias_hh`` ``(G*H,)``; G = 1, 4, 3
gate blocks stacked ``i, f, g, o`` for the LSTM and ``r, z, n`` for the GRU),
initialisation (``U(-1/sqrt(H), 1/sqrt(H))``), inputs (``(N, D)`` or unbatched
``(D,)``, optional state) and return values as ``torch.nn``.

A cell is one step, so there is no time loop to hand-optimise: the forward is
the book's equations in plain tensor operations and autograd differentiates
it. Its two matrix products are each a single fused ``addmm`` (product plus
bias).
"""

import math

import torch
from torch import nn

from .rnn import ShapeError

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]


def _affine(x, weight, bias):
    """``x @ weight^T + bias``, one call (bias may be None)."""
    if bias is None:
        return x @ weight.t()
    return torch.addmm(bias, x, weight.t())


class _CellBase(nn.Module):
    """Parameters, initialisation and input checks shared by the three cells."""

    def __init__(self, input_size, hidden_size, bias, gates, device, dtype):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero, got {value}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        factory = dict(device=device, dtype=dtype)
        # torch.nn's order, so the same seed draws the same weights
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gates * hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(gates * hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Every parameter from ``U(-1/sqrt(H), 1/sqrt(H))``, torch.nn's default."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s

    def _check_input(self, input):
        """``(x (N, D), unbatched)``."""
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input is a {type(input).__name__}; expected a Tensor")
        if input.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"input has inconsistent input_size: got {input.shape[-1]} expected {self.input_size}")
        weight = self.weight_ih
        if input.dtype != weight.dtype:
            raise ValueError(
                f"{type(self).__name__} input dtype ({input.dtype}) does not match weight dtype ({weight.dtype})"
            )
        unbatched = input.dim() == 1
        return (input.unsqueeze(0) if unbatched else input), unbatched

    def _state(self, state, name, x, unbatched):
        """A state ``(N, H)``: zeros if None, else checked (``(H,)`` if unbatched)."""
        N, H = x.shape[0], self.hidden_size
        if state is None:
            return x.new_zeros(N, H)
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"{name} is a {type(state).__name__}; expected a Tensor")
        want = 1 if unbatched else 2
        if state.dim() != want:
            kind = "unbatched 1-D" if unbatched else "batched 2-D"
            raise ShapeError(f"{name} should be {want}-D for {kind} input, got {state.dim()}-D")
        if unbatched:
            state = state.unsqueeze(0)
        if state.shape[0] != N:
            raise ShapeError(f"Input batch size {N} doesn't match {name} batch size {state.shape[0]}")
        if state.shape[1] != H:
            raise ShapeError(f"{name} has inconsistent hidden_size: got {state.shape[1]}, expected {H}")
        if state.dtype != x.dtype:
            raise ValueError(f"{name} has dtype {state.dtype}; expected {x.dtype} like the input")
        return state


class RNNCell(_CellBase):
    """One step of the Elman RNN; a drop-in ``torch.nn.RNNCell``.

    N: batch size, D: ``input_size``, H: ``hidden_size``.

    ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (``relu`` instead of tanh
    with ``nonlinearity='relu'``).

    Parameters
    ----------
    input_size : int, D.
    hidden_size : int, H.
    bias : bool, default True. False: ``bias_ih`` and ``bias_hh`` are None.
    nonlinearity : ``'tanh'`` (default) or ``'relu'``.
    device, dtype : of the parameters.

    Attributes ``weight_ih`` ``(H, D)``, ``weight_hh`` ``(H, H)``,
    ``bias_ih``, ``bias_hh`` ``(H,)``.

    Forward ``(input, hx=None) -> h'``: ``input`` ``(N, D)`` or ``(D,)``,
    ``hx`` ``(N, H)`` or ``(H,)`` (None: zeros); ``h'`` has ``hx``'s shape.
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        # torch.nn.RNNCell only complains at the first forward; we do it here
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input, hx=None):
        """``h'`` ``(N, H)``, or ``(H,)`` for unbatched input."""
        x, unbatched = self._check_input(input)
        h = self._state(hx, "hidden0", x, unbatched)
        a = _affine(x, self.weight_ih, self.bias_ih) + _affine(h, self.weight_hh, self.bias_hh)
        h_next = torch.relu(a) if self.nonlinearity == "relu" else torch.tanh(a)
        return h_next.squeeze(0) if unbatched else h_next


class LSTMCell(_CellBase):
    """One step of the LSTM; a drop-in ``torch.nn.LSTMCell``.

    N: batch size, D: ``input_size``, H: ``hidden_size``. Gates stacked ``i, f, g, o``::

        i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh)
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h' = sigmoid(o) * tanh(c')

    Parameters
    ----------
    input_size : int, D.
    hidden_size : int, H.
    bias : bool, default True. False: ``bias_ih`` and ``bias_hh`` are None.
    device, dtype : of the parameters.

    Attributes ``weight_ih`` ``(4H, D)``, ``weight_hh`` ``(4H, H)``,
    ``bias_ih``, ``bias_hh`` ``(4H,)``.

    Forward ``(input, hx=None) -> (h', c')``: ``input`` ``(N, D)`` or
    ``(D,)``; ``hx`` a tuple ``(h, c)`` of ``(N, H)`` or ``(H,)`` (None:
    zeros); ``h'``, ``c'`` of the same shape.
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        """``(h', c')``, each ``(N, H)``, or ``(H,)`` for unbatched input."""
        x, unbatched = self._check_input(input)
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ValueError(f"hx is a {type(hx).__name__}; expected a tuple (h, c) of two tensors")
        h = self._state(hx[0], "hidden0", x, unbatched)
        c = self._state(hx[1], "hidden1", x, unbatched)
        a = _affine(x, self.weight_ih, self.bias_ih) + _affine(h, self.weight_hh, self.bias_hh)
        i, f, g, o = a.chunk(4, 1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        if unbatched:
            return h_next.squeeze(0), c_next.squeeze(0)
        return h_next, c_next


class GRUCell(_CellBase):
    """One step of the GRU (torch's variant: reset after the product); a drop-in ``torch.nn.GRUCell``.

    N: batch size, D: ``input_size``, H: ``hidden_size``. Gates stacked ``r, z, n``::

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h' = (1 - z) * n + z * h

    Parameters
    ----------
    input_size : int, D.
    hidden_size : int, H.
    bias : bool, default True. False: ``bias_ih`` and ``bias_hh`` are None.
    device, dtype : of the parameters.

    Attributes ``weight_ih`` ``(3H, D)``, ``weight_hh`` ``(3H, H)``,
    ``bias_ih``, ``bias_hh`` ``(3H,)``.

    Forward ``(input, hx=None) -> h'``: ``input`` ``(N, D)`` or ``(D,)``,
    ``hx`` ``(N, H)`` or ``(H,)`` (None: zeros); ``h'`` has ``hx``'s shape.
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        """``h'`` ``(N, H)``, or ``(H,)`` for unbatched input."""
        x, unbatched = self._check_input(input)
        h = self._state(hx, "hidden0", x, unbatched)
        x_r, x_z, x_n = _affine(x, self.weight_ih, self.bias_ih).chunk(3, 1)
        h_r, h_z, h_n = _affine(h, self.weight_hh, self.bias_hh).chunk(3, 1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h_next = (1 - z) * n + z * h
        return h_next.squeeze(0) if unbatched else h_next
