"""Checks of the scalar arguments that many functions of the package share.

One home for each check, so that every function says the same thing about
the same mistake: "batch_size is 0; expected an integer >= 1", "cell is
'elman'; expected 'rnn', 'lstm' or 'gru'". The checks
of arrays (shapes, dtypes) belong to the modules that know the shapes.
This module imports neither PyTorch nor anything else heavy, so the NumPy
side, the data sets and the PyTorch side can all use it.
"""

import math

import numpy as np

__all__ = ["check_int", "check_probability", "check_positive_number", "check_choice", "check_rng"]


def check_int(name, value, minimum=1, maximum=None):
    """``value`` as a Python ``int``, if it is an integer in ``[minimum, maximum]``.

    A Python or NumPy integer passes; a ``bool`` does not (``True`` is an
    ``int`` to Python, but never a size or a count), nor does a float, even
    ``2.0``: a size given as a float is usually a computation gone wrong.

    Parameters
    ----------
    name : str, the argument's name, for the message.
    value : what the caller passed.
    minimum : int, the smallest value allowed (default 1: a size or a count).
    maximum : int or None, the largest value allowed (None for no bound).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Naming the argument, what came and what was expected, e.g.
        ``"batch_size is 0; expected an integer >= 1"``.

    Examples
    --------
    >>> check_int("steps", 3)
    3
    >>> check_int("n_test", 0, minimum=0)
    0
    """
    expected = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise ValueError(f"{name} is {value!r}; expected an integer {expected}")
    return int(value)


def check_probability(name, p):
    """``p`` as a ``float``, if it is a number in ``[0, 1)``: a dropout rate, say.

    1 is excluded: dropping everything leaves nothing to scale by ``1 / (1 - p)``.

    Raises
    ------
    ValueError
        ``"dropout is 1.0; expected a probability in [0, 1)"``.
    """
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0 <= p < 1:
        raise ValueError(f"{name} is {p!r}; expected a probability in [0, 1)")
    return float(p)


def check_positive_number(name, value):
    """``value`` as a ``float``, if it is a finite number > 0: a temperature, a clipping threshold.

    A Python or NumPy integer or float passes; a ``bool``, a string or an
    array does not, nor do ``inf`` and ``nan``.

    Raises
    ------
    ValueError
        ``"temperature is 0; expected a finite number > 0"``.
    """
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"{name} is {value!r}; expected a finite number > 0")
    return float(value)


def check_choice(name, value, choices):
    """``value``, if it is one of ``choices``.

    Raises
    ------
    ValueError
        Listing the choices in their order:
        ``"cell is 'elman'; expected 'rnn', 'lstm' or 'gru'"``.
    """
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise ValueError(f"{name} is {value!r}; expected {listed}")
    return value


def check_rng(rng):
    """``rng``, if it is a ``numpy.random.Generator``: randomness is passed in, never a hidden global seed.

    Raises
    ------
    ValueError
        ``"rng is int; expected a numpy.random.Generator, e.g. np.random.default_rng(0)"``.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng is {type(rng).__name__}; expected a numpy.random.Generator, "
            "e.g. np.random.default_rng(0)"
        )
    return rng
