"""Input checks shared by every function of :mod:`rnncourse.numpy`.

Each check raises :class:`ValueError` with a message that says what was
expected and what came, e.g. ``h0 has shape (4, 3); expected (N, H) = (4, 5)``.
The public functions call these once at their entry; the inner loops of the
sequence functions do not, so checking costs nothing per time step.
"""

import numpy as np


def float_array(name, a):
    """Return ``a`` as a floating-point ndarray, or raise ``ValueError``.

    Integer and boolean arrays are refused rather than silently cast: an
    integer array where a float is expected is almost always a bug (token ids
    passed instead of embeddings, say).
    """
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"{name} has dtype {arr.dtype}; expected a floating-point array "
            "(float32 or float64)"
        )
    return arr


def int_array(name, a):
    """Return ``a`` as an integer ndarray (indices, lengths), or raise ``ValueError``."""
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} has dtype {arr.dtype}; expected an integer array")
    return arr


def _fmt(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def dims(name, a, symbols):
    """Check that ``a`` has one axis per symbol and return its shape.

    ``symbols`` names the axes, e.g. ``"N T D"``. Only the rank is checked:
    the sizes are whatever came, and the caller compares them with
    :func:`expect_shape`.
    """
    symbols = symbols.split()
    if a.ndim != len(symbols):
        raise ValueError(
            f"{name} has shape {_fmt(a.shape)}; expected ({', '.join(symbols)}) "
            f"with {len(symbols)} dimension{'s' if len(symbols) != 1 else ''}"
        )
    return a.shape


def expect_shape(name, a, symbols, shape):
    """Raise ``ValueError`` unless ``a.shape == shape``.

    ``symbols`` names the axes for the message: ``expect_shape("h0", h0,
    "N H", (4, 5))`` raises ``h0 has shape (4, 3); expected (N, H) = (4, 5)``.
    """
    shape = tuple(int(s) for s in shape)
    if a.shape != shape:
        names = ", ".join(symbols.split())
        raise ValueError(
            f"{name} has shape {_fmt(a.shape)}; expected ({names}) = {_fmt(shape)}"
        )
    return a


def float_arrays(**arrays):
    """Apply :func:`float_array` to each keyword and return the arrays in order."""
    return [float_array(name, a) for name, a in arrays.items()]
