"""Timing a function the way the book's experiments do: the best of a few runs.

:func:`best_time` is what chapter 3 and the misconceptions page use to
compare RTRL with BPTT. The least time of several runs is the steadiest
figure on a shared machine: other work can only make a run slower, never
faster, so the minimum is closest to the cost of the function itself.
"""

import time

from .validation import check_int

__all__ = ["best_time"]


def best_time(f, repeats=3):
    """The least wall-clock time, in seconds, of ``repeats`` calls of ``f()``.

    Parameters
    ----------
    f : callable taking no arguments; its result is ignored.
    repeats : int >= 1, how many times to call it.

    Returns
    -------
    float, seconds (``time.perf_counter``).
    """
    repeats = check_int("repeats", repeats)
    if not callable(f):
        raise TypeError(f"f is {type(f).__name__}; expected a function of no arguments")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best
