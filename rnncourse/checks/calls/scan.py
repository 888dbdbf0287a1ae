"""How the checks of 08_scan call the learner's functions (cases and judge: :mod:`rnncourse.checks.scan`).

The learner writes the twins of :func:`rnncourse.numpy.scan.linear_recurrence`,
:func:`~rnncourse.numpy.scan.linear_recurrence_backward`,
:func:`~rnncourse.numpy.scan.compose_affine`,
:func:`~rnncourse.numpy.scan.parallel_scan` and
:func:`rnncourse.numpy.min_gru_forward` (real arrays). No cache: the backward
takes the states ``h`` the forward returned, as the reference does.

``parallel_scan`` must combine steps with the learner's ``compose_affine``,
a whole level of the tree per call: its call counts the calls (``rounds``),
and the judge refuses more than a scan's ``O(log T)`` (a loop over ``t``
gives the right numbers in ``T`` rounds).
"""

import numpy as np

from . import Call, Needs, Written, argument, call

ASSIGNMENT = "08_scan"

SEQUENCE = {"h": "N T H"}

MIN_GRU_CACHE = ("x", "h0", "Wz", "Wh", "z", "h_tilde", "h")
"""``min_gru_forward``'s cache, as :func:`rnncourse.numpy.min_gru_forward` returns it (not judged)."""

COMBINE = "compose_affine"
ROUNDS = "rounds"  # outputs of parallel_scan: how many times it called compose_affine (-1: could not count)


def _scopes(fn):
    """The global namespaces of ``fn`` and of the functions it wraps that hold a ``compose_affine`` to count."""
    found, seen = [], set()
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        scope = getattr(fn, "__globals__", None)
        if isinstance(scope, dict) and callable(scope.get(COMBINE)) and all(s is not scope for s in found):
            found.append(scope)
        fn = getattr(fn, "__wrapped__", None)
    return found


def _run_counting_rounds(fns, inputs, out):
    """Call the learner's ``parallel_scan``, counting the calls to the ``compose_affine`` it sees by name."""
    scopes = _scopes(fns["parallel_scan"])
    count = [0]
    originals = [scope[COMBINE] for scope in scopes]

    def counted(original):
        def compose_affine(first, second):
            count[0] += 1
            return original(first, second)

        return compose_affine

    for scope, original in zip(scopes, originals):
        scope[COMBINE] = counted(original)
    try:
        args = [argument(inputs, a) for a in ("a", "b", "h0") if a in inputs]
        out["h"] = call(fns, "parallel_scan", *args)
    finally:
        for scope, original in zip(scopes, originals):
            scope[COMBINE] = original
        out[ROUNDS] = np.array(count[0] if scopes else -1)


CALLS = (
    Call("linear_recurrence", ASSIGNMENT, 3, outputs=SEQUENCE, args=("a", "b", "h0"), returns=("h",),
         optional=("h0",)),
    Call("linear_recurrence_backward", ASSIGNMENT, 4, outputs={"da": "N T H", "db": "N T H", "dh0": "N H"},
         args=("dh", "a", "h", "h0"), returns=("da", "db", "dh0")),
    Call(COMBINE, ASSIGNMENT, 2, outputs={"a": "N H", "b": "N H"}, args=(("a1", "b1"), ("a2", "b2")),
         returns=("a", "b")),
    Call("parallel_scan", ASSIGNMENT, 4, outputs=SEQUENCE, depends=(COMBINE,), run=_run_counting_rounds),
    Call("min_gru_forward", ASSIGNMENT, 3, outputs=SEQUENCE, args=("x", "h0", "Wz", "bz", "Wh", "bh"),
         returns=("h", "cache"), depends=("parallel_scan",)),
)  # fmt: skip

WRITTEN = (
    Written("q_work_and_depth", ASSIGNMENT, 2, "work and depth of the loop and of one's scan, and when the scan wins"),
    Written("q_why_linear", ASSIGNMENT, 2, "why minGRU's gates may not read h_{t-1}, and what that costs"),
)

NEEDS = Needs()
"""NumPy only: nothing of rnncourse.numpy, whose scan, minGRU and SSM would answer the exercises."""
