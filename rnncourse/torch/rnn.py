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
same function, to rounding.

**Subclasses of torch.nn's classes.** ``RNN``, ``LSTM`` and ``GRU`` subclass
``torch.nn.RNN``, ``LSTM`` and ``GRU`` (so ``torch.nn.RNNBase``) and keep
everything of theirs but ``forward``: the constructor (after our own checks
of its arguments), the parameters and their registration, ``all_weights``,
``flatten_parameters``, ``extra_repr``, pickling. Code that finds "all the
RNNs of a model" with ``isinstance(m, nn.RNNBase)`` or ``nn.LSTM`` finds ours,
and so does every part of PyTorch that asks. ``torch.compile`` treats them as
torch's: Dynamo does not trace recurrent modules (the graph breaks around
them and they run eagerly, ours on the hand-written fast path) unless
``torch._dynamo.config.allow_rnn`` is set; then it traces into ours, which
then run their composite form (next paragraph). Only ``forward`` is ours, and it reads nothing of
torch's but the parameters.

**Gradients of every order.** The first-order backward is hand-written (see
``_recurrence``); gradients of gradients (``create_graph=True``) and
``vmap`` over the backward are computed through the same equations written
as plain tensor operations, which autograd differentiates to any order. A
module that is traced (``torch.jit.trace``), compiled (``torch.compile``
tracing into it), transformed by ``torch.func``, differentiated in forward
mode (``torch.autograd.forward_ad``) or given an empty batch (N = 0) runs that
form throughout. A trace records the loop over the traced
input's time steps: it serves inputs of that length and batch size only
(torch.nn's trace records one ``aten::lstm`` call and serves any).

**Autocast.** Under ``torch.autocast`` a module computes in the dtype
torch.nn's twin returns: on CUDA the autocast dtype (cuDNN's rule); on the
CPU the autocast dtype for ``RNN`` and ``LSTM`` (torch's products and its
oneDNN LSTM are on the CPU's autocast list) and the parameters' dtype for
``GRU``. Inputs and weights are cast once per call; gradients reach the
parameters in their own dtype.

**Errors.** Bad arguments raise the exception type torch.nn raises for them,
with our own message, which says what was expected and what came (where
torch's message says that too, ours begins with torch's words, so that code
and tests that match torch's text match ours). Where torch
raises a ``RuntimeError`` for a bad input (a wrong shape or size, no time
steps) ours raise an :class:`InputError`, which is a ``RuntimeError`` and also a
``ValueError`` (the project's convention), so code written for either
catches it.
"""

import numbers
import sys

import torch
from torch import nn
from torch.autograd import forward_ad as _forward_ad
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence

from . import triton as _fast  # does not import Triton itself
from ._checks import check_int_type, check_tensor
from ._recurrence import (
    GRULayer,
    LSTMLayer,
    RNNLayer,
    Steps,
    composite_layer,
    gru_step,
    lstm_step,
    rnn_step,
)

__all__ = ["RNN", "LSTM", "GRU", "InputError"]


class InputError(ValueError, RuntimeError):
    """A bad input that torch.nn refuses with a ``RuntimeError``; a ``ValueError`` too, the project's convention."""


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__} ({value!r}); pass True or False")


def _check_size(name, value, smallest=1):
    """torch.nn's rule for a size argument: an int (TypeError), at least ``smallest`` (ValueError)."""
    check_int_type(name, value)
    if value < smallest:
        what = "greater than zero" if smallest == 1 else f"at least {smallest}"
        raise ValueError(f"{name} must be {what}, got {value}")


def check_module_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size):
    """Raise where ``torch.nn.RNNBase`` raises, with the same exception type and our message.

    torch.nn checks ``bias`` and ``batch_first`` (bools), the sizes (ints,
    positive), ``dropout`` (a number in [0, 1]) and ``proj_size`` (0 <= it <
    ``hidden_size``); ``bidirectional`` is used for its truth value, as there.
    (torch.nn's constructor, which runs next, warns about a ``dropout`` with one layer.)
    """
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1:
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an "
            f"element being zeroed, got {dropout!r}"
        )
    _check_bool("bias", bias)
    _check_bool("batch_first", batch_first)
    _check_size("input_size", input_size)
    _check_size("hidden_size", hidden_size)
    _check_size("num_layers", num_layers)
    check_int_type("proj_size", proj_size)
    if proj_size < 0:
        raise ValueError(
            f"proj_size should be a positive integer or zero to disable projections, got {proj_size}"
        )
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}")


def _no_projection(cls_name, extra):
    """torch.nn.RNN and GRU refuse a ``proj_size`` argument (any value) with a ValueError."""
    if "proj_size" in extra:
        raise ValueError(
            f"proj_size argument is only supported for LSTM, not RNN or GRU; got proj_size={extra['proj_size']!r} "
            f"for {cls_name}"
        )
    if extra:
        raise TypeError(f"{cls_name}.__init__() got an unexpected keyword argument {next(iter(extra))!r}")


def _autocast_dtype(module, x):
    """The dtype ``module`` computes in under autocast (see the module docstring); None without autocast."""
    device = x.device.type
    if device not in ("cpu", "cuda") or not torch.is_autocast_enabled(device):
        return None
    if device == "cpu" and module.mode == "GRU":
        return module.weight_ih_l0.dtype
    return torch.get_autocast_dtype(device)


def _through_composite(steps, traced):
    """Whether the whole call runs the layers' composite form (see the module docstring).

    ``traced``: Dynamo traces the call. Also ``torch.jit.trace``, the
    transforms of ``torch.func`` (``vmap``, ``grad``, ``jvp``, ...), forward-mode
    differentiation (inside ``torch.autograd.forward_ad.dual_level``: the fast
    layers have no forward-mode rule), and an empty batch.
    """
    return (
        traced
        or steps.N == 0
        or torch.jit.is_tracing()
        or torch._C._are_functorch_transforms_active()
        or _forward_ad._current_level >= 0
    )


def _dynamo_steps_around_rnns():
    """Whether ``torch.compile`` must not trace the module: Dynamo is loaded and ``allow_rnn`` is unset.

    Dynamo does not trace recurrent modules (``isinstance(m, nn.RNNBase)``):
    the graph breaks at the call, which runs eagerly. But where Dynamo is on,
    it also compiles every Python function it meets as a frame of its own,
    ours among them (torch.nn's forward, in PyTorch's own files, it skips),
    and would unroll the time loop into a graph. Only where this says so,
    ours are run through :func:`_compute_eagerly`, which Dynamo skips.
    """
    if torch.compiler.is_compiling():  # Dynamo is loaded: its configuration is cheap to read
        return not torch._dynamo.config.allow_rnn
    dynamo = sys.modules.get("torch._dynamo")  # never imported here: that takes seconds
    return dynamo is not None and not dynamo.config.allow_rnn


_COMPUTE_EAGERLY = None


def _compute_eagerly():
    """``f(module, input, h0, c0)``: the module's forward, run eagerly even where Dynamo is compiling.

    ``torch._dynamo.disable`` of a function made once, where Dynamo is loaded.
    """
    global _COMPUTE_EAGERLY
    if _COMPUTE_EAGERLY is None:
        def compute(module, input, h0, c0):
            return module._compute(input, h0, c0, traced=False)

        _COMPUTE_EAGERLY = sys.modules["torch._dynamo"].disable(compute)
    return _COMPUTE_EAGERLY


class _Recurrent:
    """Our ``forward`` for RNN, LSTM and GRU, mixed into torch.nn's classes (which it reads only for parameters)."""

    def _layer_weights(self, layer, direction, dtype=None):
        """``(w_ih, w_hh, b_ih, b_hh, w_hr)`` of one layer-direction (None where absent), by name.

        By name at every call, not from a list made at construction: weight
        norm, parametrizations and ``torch.func.functional_call`` replace them.
        With ``dtype``, cast to it (a differentiable copy).
        """
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        names = ["weight_ih", "weight_hh"] + ["bias_ih", "bias_hh"] * self.bias + ["weight_hr"] * bool(self.proj_size)
        found = {name: getattr(self, name + suffix) for name in names}
        if dtype is not None:
            found = {name: w.to(dtype) for name, w in found.items()}
        return tuple(found.get(name) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))

    def _flat_input(self, input):
        """``(x (S, D), steps, packed parts or None, unbatched)`` from any accepted input."""
        if isinstance(input, PackedSequence):
            x = input.data
            steps = Steps(input.batch_sizes.tolist())  # batch_sizes lives on the CPU: no sync
            packed, unbatched = input, False
        else:
            if not isinstance(input, torch.Tensor):
                raise TypeError(f"input is a {type(input).__name__}; expected a Tensor or a PackedSequence")
            if input.dim() not in (2, 3):
                raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
            shape = tuple(input.shape)
            unbatched, packed = input.dim() == 2, None
            if unbatched:
                input = input.unsqueeze(1)
            elif self.batch_first:
                input = input.transpose(0, 1)
            T, N = input.shape[:2]
            x = input.reshape(T * N, input.shape[2])  # time-major rows: step t is rows [tN, (t+1)N)
        # torch.nn's order: the dtype, the input size, then (in its kernels) the length
        weight = self.weight_ih_l0
        if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(
                f"RNN input dtype ({x.dtype}) does not match weight dtype ({weight.dtype}) of this "
                f"{type(self).__name__}. Convert input: input.to({weight.dtype}), or convert model: model.to({x.dtype})"
            )
        if x.shape[-1] != self.input_size:
            raise InputError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}"
            )
        if packed is None:
            if T == 0:
                raise InputError(f"Expected sequence length to be larger than 0 in RNN; got input of shape {shape}")
            steps = Steps((N,) * T)
        return x, steps, packed, unbatched

    def _initial_state(self, state, name, size, N, unbatched, packed, like):
        """One initial state ``(L*K, N, size)``: zeros if None, else checked and sorted."""
        expected = (self.num_layers * (2 if self.bidirectional else 1), N, size)
        if state is None:
            return like.new_zeros(expected)
        check_tensor(name, state)
        if unbatched:
            state = state.unsqueeze(1)
        if tuple(state.shape) != expected:
            raise InputError(
                f"Expected {name} size {expected} (num_layers * num_directions, batch, "
                f"{'proj_size' if size == self.proj_size else 'hidden_size'}), got {list(state.shape)}"
            )
        if state.dtype != like.dtype and not torch.is_autocast_enabled(like.device.type):
            raise InputError(f"{name} has dtype {state.dtype}; expected {like.dtype} like the input")
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
            raise InputError(f"{what}, the initial states should also be {want}-D but got ({got}) tensors")

    def _run(self, x, steps, h0, c0, traced, dtype=None):
        """The layers: (output (S, K*P), h_n (L*K, N, P), c_n (L*K, N, H) or None), weights cast to ``dtype``."""
        K = 2 if self.bidirectional else 1
        composite = _through_composite(steps, traced)
        plan = None if composite else _fast.choose(self.mode, x, steps, self.hidden_size, self.proj_size)
        layer_input, h_n, c_n = x, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(K):
                k = layer * K + direction
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_weights(layer, direction, dtype)
                reverse = direction == 1
                if composite:
                    if self.mode == "LSTM":
                        out, h, c = composite_layer(lstm_step, layer_input, (h0[k], c0[k]),
                                                    (w_ih, w_hh, b_ih, b_hh, w_hr), steps, reverse)
                        c_n.append(c)
                    elif self.mode == "GRU":
                        out, h = composite_layer(gru_step, layer_input, (h0[k],), (w_ih, w_hh, b_ih, b_hh), steps,
                                                 reverse)
                    else:
                        out, h = composite_layer(rnn_step, layer_input, (h0[k],),
                                                 (w_ih, w_hh, b_ih, b_hh, self.mode == "RNN_RELU"), steps, reverse)
                elif self.mode == "LSTM" and plan is not None:
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

    def _forward_one_state(self, input, hx):
        """The forward of RNN and GRU, whose state is h alone: ``(output, h_n)``."""
        unbatched = isinstance(input, torch.Tensor) and input.dim() == 2
        if hx is not None:
            self._check_state_dims([hx], unbatched)
        output, h_n, _ = self._forward(input, hx, None)
        return output, h_n

    def _forward(self, input, h0, c0):
        """The forward shared by the three: ``(output, h_n, c_n or None)``."""
        if _dynamo_steps_around_rnns():
            return _compute_eagerly()(self, input, h0, c0)
        return self._compute(input, h0, c0, traced=torch.compiler.is_compiling())

    def _compute(self, input, h0, c0, traced):
        """The forward; ``traced``: Dynamo traces it (run the composite form)."""
        x, steps, packed, unbatched = self._flat_input(input)
        P = self.proj_size or self.hidden_size
        lstm = self.mode == "LSTM"
        h0 = self._initial_state(h0, "hidden[0]" if lstm else "hidden", P, steps.N, unbatched, packed, x)
        if lstm:
            c0 = self._initial_state(c0, "hidden[1]", self.hidden_size, steps.N, unbatched, packed, x)
        dtype = _autocast_dtype(self, x)
        if dtype is None:
            output, h_n, c_n = self._run(x, steps, h0, c0, traced)
        else:  # inputs and weights cast once, here; autocast off inside, where it would cast again
            x, h0, c0 = x.to(dtype), h0.to(dtype), None if c0 is None else c0.to(dtype)
            with torch.autocast(x.device.type, enabled=False):
                output, h_n, c_n = self._run(x, steps, h0, c0, traced, dtype)
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

# Docstring pieces that RNN and GRU share word for word, composed into their ``__doc__``
# (as torch.nn's rnn.py composes its docstrings from named pieces); help() shows the whole text.
_LAYER_OPTIONS = """\
    bias : bool, default True. False: no ``bias_ih_l*``, ``bias_hh_l*``.
    batch_first : bool, default False. True: input and output are ``(N, T, *)``
        (the states stay ``(L*K, N, H)``).
    dropout : float in [0, 1], default 0. Dropout on the outputs of every layer
        but the last, in training mode.
    bidirectional : bool, default False.
    device, dtype : of the parameters."""

_FORWARD_ONE_STATE = """\
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


class RNN(_Recurrent, nn.RNN):
    __doc__ = """Elman RNN, ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``; ``torch.nn.RNN`` with our forward.

    T: sequence length, N: batch size, D: ``input_size``, H: ``hidden_size``,
    L: ``num_layers``, K: 2 if ``bidirectional`` else 1.

    Parameters
    ----------
    input_size : int, D.
    hidden_size : int, H.
    num_layers : int, default 1. Layer ``l > 0`` reads the ``K*H`` outputs of layer ``l - 1``.
    nonlinearity : ``'tanh'`` (default) or ``'relu'``.
""" + _LAYER_OPTIONS + """

    Attributes ``weight_ih_l{k}`` ``(H, D_k)`` (``D_0 = D``, ``D_k = K*H``),
    ``weight_hh_l{k}`` ``(H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(H,)``,
    suffixed ``_reverse`` for the backward direction; each drawn from
    ``U(-1/sqrt(H), 1/sqrt(H))``.

""" + _FORWARD_ONE_STATE

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None, **unsupported):
        _no_projection("RNN", unsupported)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'.")
        check_module_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout, 0)
        super().__init__(input_size, hidden_size, num_layers, nonlinearity=nonlinearity, bias=bias,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional, device=device,
                         dtype=dtype)

    def forward(self, input, hx=None):
        """See the class docstring: ``(output, h_n)``."""
        return self._forward_one_state(input, hx)


class LSTM(_Recurrent, nn.LSTM):
    """Long short-term memory; ``torch.nn.LSTM`` with our forward.

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
        check_module_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, proj_size=proj_size, device=device, dtype=dtype)

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


class GRU(_Recurrent, nn.GRU):
    __doc__ = """Gated recurrent unit (torch's variant: reset after the product); ``torch.nn.GRU`` with our forward.

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
""" + _LAYER_OPTIONS + """

    Attributes ``weight_ih_l{k}`` ``(3H, D_k)`` (``D_0 = D``, ``D_k = K*H``),
    ``weight_hh_l{k}`` ``(3H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
    ``(3H,)``, suffixed ``_reverse`` for the backward direction; each drawn
    from ``U(-1/sqrt(H), 1/sqrt(H))``.

""" + _FORWARD_ONE_STATE

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, **unsupported):
        _no_projection("GRU", unsupported)
        check_module_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout, 0)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        """See the class docstring: ``(output, h_n)``."""
        return self._forward_one_state(input, hx)
