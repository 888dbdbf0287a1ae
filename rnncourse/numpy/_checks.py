"""Input checks shared by the functions of :mod:`rnncourse.numpy`, one home for each.

Each check raises :class:`ValueError` with a message that says what was
expected and what came, e.g. ``h0 has shape (4, 3); expected (N, H) = (4, 5)``.
The public functions call these at their entry.
"""

import numpy as np

from ..validation import check_choice

NONLINEARITIES = ("tanh", "relu")


def fmt_shape(shape):
    """A shape as the messages write it: ``(4, 3)``, ``(5,)``."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def float_array(name, a):
    """Return ``a`` as a floating-point ndarray, or raise ``ValueError``.

    Integer and boolean arrays are refused rather than silently cast: an
    integer array where a float is expected is almost always a bug (token ids
    passed instead of embeddings, say).
    """
    arr = np.asarray(a)
    if arr.dtype.kind != "f":  # np.issubdtype(arr.dtype, np.floating), several times faster
        raise ValueError(
            f"{name} has dtype {arr.dtype}; expected a floating-point array "
            "(float32 or float64)"
        )
    return arr


def int_array(name, a):
    """Return ``a`` as an integer ndarray (indices, lengths), or raise ``ValueError``."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":  # np.issubdtype(arr.dtype, np.integer)
        raise ValueError(f"{name} has dtype {arr.dtype}; expected an integer array")
    return arr


def dims(name, a, symbols):
    """Check that ``a`` has one axis per symbol and return its shape.

    ``symbols`` names the axes, e.g. ``"N T D"``. Only the rank is checked:
    the sizes are whatever came, and the caller compares them with
    :func:`expect_shape`.
    """
    symbols = symbols.split()
    if a.ndim != len(symbols):
        raise ValueError(
            f"{name} has shape {fmt_shape(a.shape)}; expected ({', '.join(symbols)}) "
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
            f"{name} has shape {fmt_shape(a.shape)}; expected ({names}) = {fmt_shape(shape)}"
        )
    return a


def upstream_gradient(name, d, symbols, shape):
    """An upstream gradient as a float array of exactly ``shape``, or raise ``ValueError``.

    A backward function knows the whole shape its upstream gradient must have
    (the shape of the forward's output), so the message gives every size:
    ``dh has shape (4, 5); expected (N, T, H) = (4, 2, 5)``.
    """
    return expect_shape(name, float_array(name, d), symbols, shape)


def at_least_one_step(name, a):
    """``a``, a sequence ``(N, T, ...)``, unless it has no time step:
    ``x has shape (4, 0, 3); expected at least one time step (T >= 1)``."""
    if a.shape[1] == 0:
        raise ValueError(f"{name} has shape {fmt_shape(a.shape)}; expected at least one time step (T >= 1)")
    return a


def first_index(bad):
    """The index of the first true element of the boolean array ``bad``, as a list: ``[0, 3]``.

    The messages of the value checks say where the first bad value is:
    ``y holds 12 at [0, 3] ...``.
    """
    return [int(i) for i in np.argwhere(bad)[0]]


def no_cell_state(name, value, cell):
    """Raise ``ValueError`` unless ``value`` is None: a cell state (or its gradient) given to a cell that has none.

    ``c0 was given for cell='gru'; only an LSTM has a cell state``.
    """
    if value is not None:
        raise ValueError(f"{name} was given for cell={cell!r}; only an LSTM has a cell state")


def positive_int(name, value):
    """``value`` as an ``int``, or ``ValueError`` unless it is an integer >= 1 (a size, a count)."""
    if int(value) != value or value < 1:
        raise ValueError(f"{name} is {value!r}; expected an integer >= 1")
    return int(value)


def check_nonlinearity(nonlinearity):
    """Raise ``ValueError`` unless ``nonlinearity`` is ``"tanh"`` or ``"relu"`` (the plain RNN's)."""
    return check_choice("nonlinearity", nonlinearity, NONLINEARITIES)


def recurrent_inputs(x, states, Wx, Wh, biases, *, gates, sequence=True, allow_empty=False):
    """Validate the inputs of a recurrent cell (RNN, LSTM or GRU), step or sequence.

    ``x`` is ``(N, T, D)`` for a sequence, ``(N, D)`` for one step
    (``sequence=False``). ``states`` maps names (``"prev_h"``, ``"h0"``,
    ``"c0"``...) to ``(N, H)`` arrays, ``biases`` maps names to ``(G H,)``
    arrays, ``gates`` is ``G`` (1 for the plain RNN, 4 for the LSTM, 3 for the
    GRU). ``H`` is read off ``Wh (H, G H)``, the only input that holds nothing
    but ``H``. A sequence needs at least one step unless ``allow_empty``.

    Returns ``x, [states...], Wx, Wh, [biases...]`` as float arrays.
    """
    gh = "H" if gates == 1 else f"{gates}H"
    x = float_array("x", x)
    dims("x", x, "N T D" if sequence else "N D")
    states = {name: float_array(name, s) for name, s in states.items()}
    for name, s in states.items():
        dims(name, s, "N H")
    Wx, Wh = float_array("Wx", Wx), float_array("Wh", Wh)
    dims("Wx", Wx, f"D {gh}")
    dims("Wh", Wh, f"H {gh}")
    biases = {name: float_array(name, b) for name, b in biases.items()}
    for name, b in biases.items():
        dims(name, b, gh)

    if sequence and not allow_empty:
        at_least_one_step("x", x)
    N, D, H = x.shape[0], x.shape[-1], Wh.shape[0]
    expect_shape("Wh", Wh, f"H {gh}", (H, gates * H))
    expect_shape("Wx", Wx, f"D {gh}", (D, gates * H))
    for name, b in biases.items():
        expect_shape(name, b, gh, (gates * H,))
    for name, s in states.items():
        expect_shape(name, s, "N H", (N, H))
    return x, list(states.values()), Wx, Wh, list(biases.values())


def unpack_cache(cache, fields, default):
    """A reference cache split into its stated arrays and the option that may follow them.

    ``fields`` names the arrays of the stated layout, in order, e.g.
    ``"x prev_h Wx Wh next_h"``. For the case the exercises ask for
    (``nonlinearity="tanh"``, ``reset_after=True``) a cache is exactly those
    arrays and the option is ``default``; for another option the forward
    appends its value, so that a backward written for the stated layout cannot
    unpack the cache (an error, not a silently wrong gradient). Returns
    ``(arrays, option)``; raises ``ValueError`` for a cache of another length.
    """
    fields = fields.split()
    if not isinstance(cache, (tuple, list)) or len(cache) not in (len(fields), len(fields) + 1):
        got = f"a {type(cache).__name__} of {len(cache)}" if isinstance(cache, (tuple, list)) else type(cache).__name__
        raise ValueError(
            f"cache is {got}; expected the tuple ({', '.join(fields)}), "
            "and after it the option the forward was given, if not the default"
        )
    option = cache[len(fields)] if len(cache) > len(fields) else default
    return tuple(cache[: len(fields)]), option
