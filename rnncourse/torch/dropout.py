"""Dropout for recurrent networks: masks that change at every step, and masks that do not.

N: batch size, T: time steps, D: features, H: hidden size, L: layers.

Dropout (Srivastava et al., 2014) zeroes each activation with probability
``p`` during training and scales the others by ``1 / (1 - p)``, so that the
expected activation is unchanged and nothing needs rescaling at test time.
A recurrent network offers it three kinds of connection, and the masks can
be drawn in two ways:

- **Dropout between layers** (Zaremba, Sutskever & Vinyals, 2014): on the
  *non-recurrent* connections only (the input of each layer, the output
  before the read-out), with a new mask at every time step, as
  ``torch.nn.Dropout`` and the ``dropout`` argument of a stacked
  ``torch.nn.LSTM`` draw it. The recurrent connections are left alone: a new
  mask at every step would corrupt the memory at every step.
- **Variational dropout** (Gal & Ghahramani, 2016): *one mask per sequence,
  the same at every time step* (:func:`variational_dropout`), on the inputs,
  the outputs and the recurrent connections too. A unit dropped is dropped
  for the whole sequence, so the memory is not corrupted step after step:
  the network learns not to rely on any one unit.
- **Recurrent units dropped through the weights**
  (:func:`drop_recurrent_units`): dropping unit j of ``h_{t-1}`` with a mask
  that stays the same at every step is the same as zeroing column j of
  ``W_hh`` (``h_{t-1} W_hh^T`` only reads column j through ``h_j``). Masking
  the weight once per batch lets a fused recurrent layer run unchanged; the
  price is that the mask is shared by the whole batch, where Gal &
  Ghahramani draw one per sequence. (Merity, Keskar & Socher, 2018, drop
  single weights of ``W_hh`` the same way, once per batch.)

:func:`run_recurrent` runs a stacked recurrent module of :mod:`rnncourse.torch`
(or ``torch.nn``) with these masks, layer by layer, *on the module's own
parameters*: a model trained with variational dropout is the same module,
with the same parameter names, as one trained without, and is evaluated by
calling it plainly.
"""

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..validation import check_probability

__all__ = ["variational_dropout", "drop_recurrent_units", "run_recurrent"]


def variational_dropout(x, p, training=True):
    """Dropout with one mask per sequence, the same at every time step.

    Parameters
    ----------
    x : (N, T, D) tensor, batch first.
    p : probability in [0, 1) of dropping a feature.
    training : bool; when False, or when ``p`` is 0, ``x`` is returned as it is.

    Returns
    -------
    (N, T, D): ``x * m / (1 - p)`` with ``m`` a (N, 1, D) mask of zeros
    (probability ``p``) and ones, broadcast over the T steps.
    """
    p = check_probability("p", p)
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x is {got}; expected a (N, T, D) tensor, batch first")
    if not training or p == 0.0:
        return x
    keep = x.new_empty((x.shape[0], 1, x.shape[2])).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


def drop_recurrent_units(weight_hh, p, hidden_size, training=True):
    """``W_hh`` with the columns of dropped units of ``h_{t-1}`` zeroed (and the others scaled).

    G: gates (1 for a tanh RNN, 3 for a GRU, 4 for an LSTM). The recurrent
    product of every step is ``h_{t-1} W_hh^T`` with ``W_hh`` (G*H, H); zeroing
    column j removes unit j of ``h_{t-1}`` from every gate, at every step
    that uses this weight: one mask for the whole batch.

    Parameters
    ----------
    weight_hh : (G*H, H) tensor.
    p : probability in [0, 1) of dropping a unit.
    hidden_size : H, the number of columns.
    training : bool; when False, or when ``p`` is 0, the weight is returned as it is.

    Returns
    -------
    (G*H, H) tensor (a new one when masked; gradients flow to ``weight_hh``).
    """
    p = check_probability("p", p)
    if weight_hh.dim() != 2 or weight_hh.shape[1] != hidden_size:
        raise ValueError(f"weight_hh has shape {tuple(weight_hh.shape)}; expected (G*H, H) with H = {hidden_size}")
    if not training or p == 0.0:
        return weight_hh
    keep = weight_hh.new_empty((hidden_size,)).bernoulli_(1.0 - p)
    return weight_hh * (keep / (1.0 - p))


def run_recurrent(rnn, x, state=None, *, dropout=0.0, variational=False, recurrent_dropout=0.0, training=True):
    """Run a stacked, batch-first, one-direction recurrent module with dropout between its layers.

    Parameters
    ----------
    rnn : an ``RNN``, ``GRU`` or ``LSTM`` of :mod:`rnncourse.torch` (or of
        ``torch.nn``) with ``batch_first=True``, one direction, no
        projection, and its own ``dropout`` at 0 (this function does it).
    x : (N, T, D) input.
    state : None, ``h`` (L, N, H), or ``(h, c)`` for an LSTM.
    dropout : probability of dropping a feature of the input of layers 2..L
        (between layers). The input of layer 1 and the output of layer L are
        the caller's to drop (they are the model's, not the stack's).
    variational : bool; True draws one mask per sequence for ``dropout``,
        the same at every step (:func:`variational_dropout`); False a new
        mask at every step (``torch.nn.functional.dropout``).
    recurrent_dropout : probability of dropping a unit of ``h_{t-1}`` in
        every layer's recurrent product, one mask per layer for the whole
        batch and every step (:func:`drop_recurrent_units`).
    training : bool; False runs ``rnn`` plainly (no dropout at all).

    Returns
    -------
    output : (N, T, H), the last layer's states.
    state : like ``state``, after the last step.
    """
    dropout = check_probability("dropout", dropout)
    recurrent_dropout = check_probability("recurrent_dropout", recurrent_dropout)
    if getattr(rnn, "bidirectional", False) or getattr(rnn, "proj_size", 0) or not rnn.batch_first:
        raise ValueError("rnn must be batch first, one direction, without projection")
    if rnn.dropout:
        raise ValueError(f"rnn has its own dropout {rnn.dropout}; build it with dropout=0 and pass it here")
    if not training or (dropout == 0.0 and recurrent_dropout == 0.0):
        return rnn(x, state)
    L, H = rnn.num_layers, rnn.hidden_size
    params = dict(rnn.named_parameters())
    for k in range(L):
        name = f"weight_hh_l{k}"
        params[name] = drop_recurrent_units(params[name], recurrent_dropout, H)
    if dropout == 0.0 or L == 1:
        return functional_call(rnn, params, (x, state))

    # Layer by layer, through a one-layer twin of the module that borrows layer k's parameters.
    lstm = rnn.mode == "LSTM"
    h0 = None if state is None else (state[0] if lstm else state)
    c0 = None if state is None or not lstm else state[1]
    h_n, c_n, layer_input = [], [], x
    for k in range(L):
        if k > 0:
            layer_input = (variational_dropout(layer_input, dropout) if variational
                           else F.dropout(layer_input, dropout, training=True))
        layer = _one_layer(rnn, layer_input.shape[-1], x.device)
        layer_params = {name.replace(f"_l{k}", "_l0"): p for name, p in params.items() if name.endswith(f"_l{k}")}
        layer_state = None if h0 is None else ((h0[k : k + 1], c0[k : k + 1]) if lstm else h0[k : k + 1])
        layer_input, s = functional_call(layer, layer_params, (layer_input, layer_state))
        h_n.append(s[0] if lstm else s)
        if lstm:
            c_n.append(s[1])
    h_n = torch.cat(h_n)
    return layer_input, ((h_n, torch.cat(c_n)) if lstm else h_n)


def _one_layer(rnn, input_size, device):
    """A one-layer module of ``rnn``'s class and settings, on the meta device (no memory, no random draws)."""
    kwargs = dict(num_layers=1, bias=rnn.bias, batch_first=True, device="meta")
    if getattr(rnn, "nonlinearity", None) is not None:
        kwargs["nonlinearity"] = rnn.nonlinearity
    return type(rnn)(input_size, rnn.hidden_size, **kwargs)
