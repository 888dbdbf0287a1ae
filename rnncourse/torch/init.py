"""Initialisations the book teaches as options, for recurrent modules.

The constructors of :class:`~rnncourse.torch.LSTM` and friends keep
``torch.nn``'s default (every parameter from ``U(-1/sqrt(H), 1/sqrt(H))``);
these functions change an existing module in place and work on ours and on
``torch.nn``'s alike (they go by parameter names). Both return the module.
"""

import torch
from torch import nn

__all__ = ["init_forget_bias_", "init_orthogonal_recurrent_"]


def _recurrent_weights(module):
    """``[(name, weight_hh)]`` of the module itself (not its children), and H."""
    H = getattr(module, "hidden_size", None)
    weights = [(name, p) for name, p in module.named_parameters(recurse=False) if name.startswith("weight_hh")]
    if H is None or not weights:
        raise ValueError(
            f"{type(module).__name__} has no hidden_size or no weight_hh* parameters; expected "
            "an RNN, LSTM or GRU module or cell (ours or torch.nn's)"
        )
    return weights, H


def init_forget_bias_(module, value=1.0):
    """Set the forget gate's bias of an LSTM so that the cell starts by remembering.

    H: hidden size. The forget gate is the second of the four H-row blocks
    ``i, f, g, o``. A forget bias of 1 (Gers et al. 2000; Jozefowicz et al.
    2015) keeps ``f = sigmoid(1) ~ 0.73`` at the start of training, so
    gradients pass through ``c`` over more steps. The gate sees the *sum*
    ``b_ih + b_hh``; this sets ``bias_ih[H:2H] = value`` and ``bias_hh[H:2H]
    = 0`` in every layer and direction, so that the sum is ``value``.

    Parameters
    ----------
    module : LSTM or LSTMCell (ours or torch.nn's), built with ``bias=True``.
    value : float, default 1.0.

    Returns
    -------
    module, changed in place.

    Raises
    ------
    ValueError
        For a module that is not an LSTM (``weight_hh`` is not ``(4H, *)``)
        or has no biases.
    """
    weights, H = _recurrent_weights(module)
    for name, w in weights:
        if w.shape[0] != 4 * H:
            raise ValueError(
                f"{name} has {w.shape[0]} rows; expected 4 * hidden_size = {4 * H}: "
                "init_forget_bias_ needs an LSTM (gates i, f, g, o)"
            )
    biases = [(name, p) for name, p in module.named_parameters(recurse=False) if name.startswith("bias_")]
    if not biases:
        raise ValueError(f"{type(module).__name__} has no biases (built with bias=False); nothing to set")
    with torch.no_grad():
        for name, b in biases:
            b[H : 2 * H] = value if name.startswith("bias_ih") else 0.0
    return module


def init_orthogonal_recurrent_(module, gain=1.0, *, generator=None):
    """Make every gate block of every ``weight_hh`` an orthogonal matrix.

    H: hidden size, P: size of h (``proj_size``, or H), G: gate blocks (1
    RNN, 4 LSTM, 3 GRU). ``weight_hh`` ``(G*H, P)`` stacks one ``(H, P)``
    matrix per gate; each is replaced by a random (semi-)orthogonal matrix
    times ``gain`` (:func:`torch.nn.init.orthogonal_`), block by block: an
    orthogonal ``(G*H, P)`` matrix as a whole would not make each gate's
    recurrence norm-preserving (Saxe et al. 2014; Le et al. 2015 for RNNs).
    Nothing else changes.

    Parameters
    ----------
    module : RNN, LSTM, GRU or one of their cells (ours or torch.nn's).
    gain : float, default 1.0.
    generator : torch.Generator, optional; the global random generator when None.

    Returns
    -------
    module, changed in place.

    Raises
    ------
    ValueError
        For a module without ``hidden_size`` and ``weight_hh*`` parameters,
        or a ``weight_hh`` whose rows are not a multiple of H.
    """
    weights, H = _recurrent_weights(module)
    with torch.no_grad():
        for name, w in weights:
            if w.shape[0] % H:
                raise ValueError(f"{name} has {w.shape[0]} rows; expected a multiple of hidden_size = {H}")
            for block in w.split(H, 0):
                nn.init.orthogonal_(block, gain=gain, generator=generator)
    return module
