"""``RNNCell``, ``LSTMCell`` and ``GRUCell``: one time step; torch.nn's cells with our forward.

N: batch size, D: ``input_size``, H: ``hidden_size``.

Each is a subclass of its ``torch.nn`` twin (so of ``torch.nn.RNNCellBase``)
that keeps torch's constructor (after our checks of its arguments),
parameters (``weight_ih`` ``(G*H, D)``, ``weight_hh`` ``(G*H, H)``,
``bias_ih``, ``bias_hh`` ``(G*H,)``; G = 1, 4, 3 gate blocks stacked ``i, f,
g, o`` for the LSTM and ``r, z, n`` for the GRU), initialisation
(``U(-1/sqrt(H), 1/sqrt(H))``) and ``repr``, and replaces ``forward``:
inputs ``(N, D)`` or unbatched ``(D,)``, an optional state, torch's return
values. See ``rnncourse.torch.rnn`` for why subclass.

A cell is one step, so there is no time loop to hand-optimise: the forward is
the book's equations in plain tensor operations,
:func:`rnncourse.torch._recurrence.rnn_step`, ``lstm_step`` and ``gru_step``
(the same functions the sequence modules run when they must be traced or
differentiated twice), and autograd differentiates them to any order.

Bad arguments raise the exception type ``torch.nn`` raises, with our message;
where that type is ``RuntimeError``, ours is an
:class:`~rnncourse.torch.rnn.InputError` (a ``RuntimeError`` and a
``ValueError``). The checks run in torch's order (dimensions, then sizes, then
dtypes), so one input with two faults gets the same kind of error from both.
One deliberate difference: ``RNNCell`` refuses an unknown ``nonlinearity``
when it is built (``ValueError``), where ``torch.nn.RNNCell`` accepts it and
fails at its first forward.
"""

import torch
from torch import nn

from ._checks import check_int_type, check_tensor
from ._recurrence import gru_step, lstm_step, rnn_step
from .rnn import InputError

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]


def _check_cell_sizes(input_size, hidden_size):
    """torch.nn's cells take any int >= 0 (0 makes empty weights); anything else fails in ``torch.empty``."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        check_int_type(name, value)
        if value < 0:
            raise InputError(f"{name} must be zero or more, got {value}")


class _Cell:
    """The checks of our cells' forward, mixed into torch.nn's classes."""

    def _batched_input(self, input):
        """``(x (N, D), unbatched)`` after the dimension check (the size is checked by :meth:`_check_sizes`)."""
        check_tensor("input", input)
        if input.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        unbatched = input.dim() == 1
        return (input.unsqueeze(0) if unbatched else input), unbatched

    def _check_state_dim(self, state, name):
        if state is None:
            return
        check_tensor(name, state)
        if state.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected {name} to be 1D or 2D, got {state.dim()}D instead")

    def _state(self, state, name, x, unbatched):
        """A state ``(N, H)``: zeros if None, else checked (``(H,)`` if unbatched)."""
        N, H = x.shape[0], self.hidden_size
        if state is None:
            return x.new_zeros(N, H)
        want = 1 if unbatched else 2
        if state.dim() != want:
            kind = "unbatched 1-D" if unbatched else "batched 2-D"
            raise InputError(f"{name} should be {want}-D for {kind} input, got {state.dim()}-D")
        if unbatched:
            state = state.unsqueeze(0)
        if state.shape[0] != N:
            raise InputError(f"Input batch size {N} doesn't match {name} batch size {state.shape[0]}")
        if state.shape[1] != H:
            raise InputError(f"{name} has inconsistent hidden_size: got {state.shape[1]}, expected {H}")
        return state

    def _check_input_size(self, x):
        if x.shape[-1] != self.input_size:
            raise InputError(f"input has inconsistent input_size: got {x.shape[-1]} expected {self.input_size}")

    def _forward_one_state(self, input, hx, step, **options):
        """The forward of RNNCell and GRUCell, whose state is h alone: ``step(x, h, weights, **options)``."""
        x, unbatched = self._batched_input(input)
        self._check_state_dim(hx, "hidden")
        self._check_input_size(x)
        h = self._state(hx, "hidden0", x, unbatched)
        self._check_dtypes(x, hidden0=h)
        h_next = step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, **options)
        return h_next.squeeze(0) if unbatched else h_next

    def _check_dtypes(self, x, **states):
        """The input in the weights' dtype and each state in the input's (autocast casts them itself)."""
        if torch.is_autocast_enabled(x.device.type):
            return
        weight = self.weight_ih
        if x.dtype != weight.dtype:
            raise InputError(
                f"{type(self).__name__} input dtype ({x.dtype}) does not match weight dtype ({weight.dtype}); "
                f"convert the input, input.to({weight.dtype}), or the cell, cell.to({x.dtype})"
            )
        for name, state in states.items():
            if state.dtype != x.dtype:
                raise InputError(f"{name} has dtype {state.dtype}; expected {x.dtype} like the input")


# The lines of the Parameters section that the three cells' docstrings share word for word, composed
# into their ``__doc__`` (as torch.nn's rnn.py composes its docstrings from named pieces).
_SIZE_AND_BIAS_ARGUMENTS = """\
    input_size : int, D.
    hidden_size : int, H.
    bias : default True. False: ``bias_ih`` and ``bias_hh`` are None."""


class RNNCell(_Cell, nn.RNNCell):
    __doc__ = """One step of the Elman RNN; ``torch.nn.RNNCell`` with our forward.

    N: batch size, D: ``input_size``, H: ``hidden_size``.

    ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (``relu`` instead of tanh
    with ``nonlinearity='relu'``).

    Parameters
    ----------
""" + _SIZE_AND_BIAS_ARGUMENTS + """
    nonlinearity : ``'tanh'`` (default) or ``'relu'``.
    device, dtype : of the parameters.

    Attributes ``weight_ih`` ``(H, D)``, ``weight_hh`` ``(H, H)``,
    ``bias_ih``, ``bias_hh`` ``(H,)``.

    Forward ``(input, hx=None) -> h'``: ``input`` ``(N, D)`` or ``(D,)``,
    ``hx`` ``(N, H)`` or ``(H,)`` (None: zeros); ``h'`` has ``hx``'s shape.
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'.")
        _check_cell_sizes(input_size, hidden_size)
        super().__init__(input_size, hidden_size, bias=bias, nonlinearity=nonlinearity, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        """``h'`` ``(N, H)``, or ``(H,)`` for unbatched input."""
        return self._forward_one_state(input, hx, rnn_step, relu=self.nonlinearity == "relu")


class LSTMCell(_Cell, nn.LSTMCell):
    __doc__ = """One step of the LSTM; ``torch.nn.LSTMCell`` with our forward.

    N: batch size, D: ``input_size``, H: ``hidden_size``. Gates stacked ``i, f, g, o``::

        i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh)
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h' = sigmoid(o) * tanh(c')

    Parameters
    ----------
""" + _SIZE_AND_BIAS_ARGUMENTS + """
    device, dtype : of the parameters.

    Attributes ``weight_ih`` ``(4H, D)``, ``weight_hh`` ``(4H, H)``,
    ``bias_ih``, ``bias_hh`` ``(4H,)``.

    Forward ``(input, hx=None) -> (h', c')``: ``input`` ``(N, D)`` or
    ``(D,)``; ``hx`` a tuple ``(h, c)`` of ``(N, H)`` or ``(H,)`` (None:
    zeros); ``h'``, ``c'`` of the same shape.
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        _check_cell_sizes(input_size, hidden_size)
        super().__init__(input_size, hidden_size, bias=bias, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        """``(h', c')``, each ``(N, H)``, or ``(H,)`` for unbatched input."""
        x, unbatched = self._batched_input(input)
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ValueError(f"hx is a {type(hx).__name__}; expected a tuple (h, c) of two tensors")
        self._check_state_dim(hx[0], "hx[0]")
        self._check_state_dim(hx[1], "hx[1]")
        self._check_input_size(x)
        h = self._state(hx[0], "hidden0", x, unbatched)
        c = self._state(hx[1], "hidden1", x, unbatched)
        self._check_dtypes(x, hidden0=h, hidden1=c)
        h_next, c_next = lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if unbatched:
            return h_next.squeeze(0), c_next.squeeze(0)
        return h_next, c_next


class GRUCell(_Cell, nn.GRUCell):
    __doc__ = """One step of the GRU (torch's variant: reset after the product); ``torch.nn.GRUCell`` with our forward.

    N: batch size, D: ``input_size``, H: ``hidden_size``. Gates stacked ``r, z, n``::

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h' = (1 - z) * n + z * h

    Parameters
    ----------
""" + _SIZE_AND_BIAS_ARGUMENTS + """
    device, dtype : of the parameters.

    Attributes ``weight_ih`` ``(3H, D)``, ``weight_hh`` ``(3H, H)``,
    ``bias_ih``, ``bias_hh`` ``(3H,)``.

    Forward ``(input, hx=None) -> h'``: ``input`` ``(N, D)`` or ``(D,)``,
    ``hx`` ``(N, H)`` or ``(H,)`` (None: zeros); ``h'`` has ``hx``'s shape.
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        _check_cell_sizes(input_size, hidden_size)
        super().__init__(input_size, hidden_size, bias=bias, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        """``h'`` ``(N, H)``, or ``(H,)`` for unbatched input."""
        return self._forward_one_state(input, hx, gru_step)
