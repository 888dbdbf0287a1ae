"""Gradient clipping: keep one exploding step from wrecking the weights.

Backpropagation through time multiplies by ``Wh`` once per step, so a
gradient can grow geometrically with the sequence length (Bengio et al.,
1994; Pascanu et al., 2013). Clipping bounds the size of each update without
changing its direction (norm clipping) or bounds each entry (value clipping).

Gradients are dicts ``name -> ndarray``, e.g. ``{"Wx": dWx, "Wh": dWh, "b": db}``.
The functions here are *functional*: they return a new dict of new arrays and
never modify the caller's arrays. (``torch.nn.utils.clip_grad_norm_`` and
``clip_grad_value_`` work in place on ``.grad``; the results are the same.)

Differences from PyTorch, all deliberate:

- **The 1e-6.** ``torch.nn.utils.clip_grad_norm_`` scales by
  ``min(1, max_norm / (total_norm + 1e-6))``, not by ``max_norm / total_norm``.
  We do the same, so a training loop here and its PyTorch twin agree step for
  step. Two consequences worth knowing: a gradient whose norm equals
  ``max_norm`` exactly is still shrunk, by the factor
  ``max_norm / (max_norm + 1e-6)``; and the 1e-6 keeps a zero gradient from
  dividing by zero.
- **Non-finite norms raise.** If a gradient holds ``inf`` or ``nan`` the norm
  is not finite and clipping cannot repair it. By default we raise
  ``ValueError`` (PyTorch's ``error_if_nonfinite=True``). PyTorch's default is
  ``error_if_nonfinite=False``, which scales anyway (an ``inf`` norm zeroes
  the finite entries and turns the ``inf`` ones into ``nan``; a ``nan`` norm
  makes every entry ``nan``); pass ``error_if_nonfinite=False`` to get exactly
  that.
- **Norms are accumulated in float64** with the largest entry factored out,
  so huge but finite gradients (float32 entries near 1e38, float64 entries
  near 1e160) give a finite norm. PyTorch accumulates in the gradient's dtype
  and overflows to ``inf`` there. The returned norms are Python floats.
"""

import numpy as np

from ..validation import check_positive_number
from ._checks import float_array

__all__ = ["clip_grad_value", "clip_grad_norm", "clip_grad_norm_global"]

# Added to the norm in the denominator, as torch.nn.utils.clip_grad_norm_ does.
_TORCH_EPS = 1e-6


def _checked_grads(grads):
    if not isinstance(grads, dict):
        raise ValueError(
            f"grads is a {type(grads).__name__}; expected a dict name -> ndarray"
        )
    return {name: float_array(f"grads[{name!r}]", g) for name, g in grads.items()}


def _l2_norm(g):
    """``||g||_2`` in float64, safe from overflow for huge finite entries."""
    a = np.abs(g, dtype=np.float64)
    scale = a.max(initial=0.0)
    if scale == 0.0 or not np.isfinite(scale):
        return float(scale)  # 0 for a zero gradient; inf or nan if an entry is
    return float(scale * np.sqrt(np.sum(np.square(a / scale))))


def _scale(g, norm, max_norm, name, error_if_nonfinite):
    """``g * min(1, max_norm / (norm + 1e-6))``, a new array of g's dtype."""
    if not np.isfinite(norm):
        if error_if_nonfinite:
            raise ValueError(
                f"the norm of {name} is {norm}, so it cannot be clipped: "
                "a gradient holds inf or nan. Pass error_if_nonfinite=False "
                "to scale anyway, as torch.nn.utils.clip_grad_norm_ does by default"
            )
        # Like torch: an inf norm gives factor 0 (and inf * 0 = nan), a nan norm nan.
        coef = float(np.minimum(max_norm / (norm + _TORCH_EPS), 1.0))
        with np.errstate(invalid="ignore"):
            return g * coef
    coef = min(1.0, max_norm / (norm + _TORCH_EPS))
    return g * coef  # a Python float keeps float32 gradients float32


def clip_grad_value(grads, clip_value):
    """Clip every entry of every gradient to ``[-clip_value, clip_value]``.

    Shapes: any; each gradient has the shape of its parameter.

    The same as ``torch.nn.utils.clip_grad_value_``, without modifying the
    input. Value clipping changes the direction of the update; norm clipping
    (:func:`clip_grad_norm_global`) does not, and is the usual choice for RNNs.
    ``nan`` entries stay ``nan`` (as in PyTorch); ``inf`` entries become
    ``±clip_value``.

    Parameters
    ----------
    grads : dict of str -> ndarray
        Gradients, any shapes, float32 or float64.
    clip_value : float
        Largest absolute value allowed, > 0.

    Returns
    -------
    clipped : dict of str -> ndarray
        New arrays, same keys, shapes and dtypes as ``grads``:
        ``clipped[k] = clip(grads[k], -clip_value, clip_value)``.
    """
    grads = _checked_grads(grads)
    c = check_positive_number("clip_value", clip_value)
    return {name: np.clip(g, -c, c) for name, g in grads.items()}


def clip_grad_norm(grads, max_norm, error_if_nonfinite=True):
    """Clip each gradient to its own L2 norm (per-parameter clipping).

    Shapes: any; each gradient has the shape of its parameter.

    For each parameter ``k``, with ``n_k = ||g_k||_2`` (all entries of ``g_k``
    as one vector)::

        g_k <- g_k * min(1, max_norm / (n_k + 1e-6))

    The same as calling ``torch.nn.utils.clip_grad_norm_`` on each parameter
    alone. Each gradient keeps its direction, but the overall update does not
    (the parameters are scaled by different factors); see
    :func:`clip_grad_norm_global` for the usual, global version.

    Parameters
    ----------
    grads : dict of str -> ndarray
        Gradients, any shapes, float32 or float64.
    max_norm : float
        Largest L2 norm allowed for each gradient, > 0.
    error_if_nonfinite : bool, default True
        Raise ``ValueError`` if a gradient's norm is ``inf`` or ``nan``. With
        ``False``, scale anyway, as PyTorch does by default (see the module
        docstring).

    Returns
    -------
    clipped : dict of str -> ndarray
        New arrays, same keys, shapes and dtypes as ``grads``.
    norms : dict of str -> float
        ``||g_k||_2`` of each gradient *before* clipping.
    """
    grads = _checked_grads(grads)
    max_norm = check_positive_number("max_norm", max_norm)
    norms = {name: _l2_norm(g) for name, g in grads.items()}
    clipped = {
        name: _scale(g, norms[name], max_norm, f"grads[{name!r}]", error_if_nonfinite)
        for name, g in grads.items()
    }
    return clipped, norms


def clip_grad_norm_global(grads, max_norm, error_if_nonfinite=True):
    """Scale all gradients together so their total L2 norm is at most ``max_norm``.

    Shapes: any; each gradient has the shape of its parameter.

    Pascanu, Mikolov and Bengio (2013), "On the difficulty of training
    recurrent neural networks", Algorithm 1. With the total norm over all
    parameters ``n = sqrt(sum_k ||g_k||_2^2)``::

        g_k <- g_k * min(1, max_norm / (n + 1e-6))      for every k

    Every gradient is multiplied by the same factor, so the direction of the
    whole update is kept. This is ``torch.nn.utils.clip_grad_norm_(
    model.parameters(), max_norm)``, 1e-6 included (see the module docstring).

    Parameters
    ----------
    grads : dict of str -> ndarray
        Gradients, any shapes, float32 or float64.
    max_norm : float
        Largest total L2 norm allowed, > 0.
    error_if_nonfinite : bool, default True
        Raise ``ValueError`` if the total norm is ``inf`` or ``nan``. With
        ``False``, scale anyway, as PyTorch does by default.

    Returns
    -------
    clipped : dict of str -> ndarray
        New arrays, same keys, shapes and dtypes as ``grads``.
    total_norm : float
        The total norm ``n`` *before* clipping (worth logging: spikes in it are
        the exploding gradients).
    """
    grads = _checked_grads(grads)
    max_norm = check_positive_number("max_norm", max_norm)
    total_norm = _l2_norm(np.array([_l2_norm(g) for g in grads.values()]))
    clipped = {
        name: _scale(g, total_norm, max_norm, "the gradients", error_if_nonfinite)
        for name, g in grads.items()
    }
    return clipped, total_norm
