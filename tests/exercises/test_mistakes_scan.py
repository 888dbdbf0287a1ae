"""Assignment 08 (linear recurrences and the parallel scan): realistic wrong answers lose their points and are named.

Every function below is a learner's answer with one mistake, written the way
a learner would write it (not taken from rnncourse.checks). For each, the
visible cases must fail (so the notebook's test cell, and its points, fail),
the message must point at the mistake, and the grader's out-of-process mode
must give the same verdict and message as the learner's process.

Also here: ``parallel_scan`` is judged on how many times it combines (a loop
over t that calls ``compose_affine`` at each step gives the right numbers and
loses the points), and the backward's ``h`` is the reference's.
"""

import numpy as np
import pytest

from exercisetools import (assert_mistake_fails_and_is_named, calling, in_float32, in_process, mistake_id, out_of_process,
                           right_answers)
from rnncourse.checks import judge, make_cases, run_case
from rnncourse.checks.scan import max_rounds
from rnncourse.numpy.scan import linear_recurrence as reference_recurrence

ASSIGNMENT = "08_scan"


# --- right answers, written as a learner would: the base the mistakes are made from ----


def recurrence_ok(a, b, h0=None, *, carry=True, inside=False, shifted=False):
    N, T, H = a.shape
    if h0 is None:
        h0 = np.zeros((N, H))
    h = np.empty((N, T, H))
    prev = h0
    for t in range(T):
        h[:, t] = a[:, t] * (prev + b[:, t]) if inside else a[:, t] * prev + b[:, t]
        if carry:
            prev = h[:, t]
    if shifted:  # h[:, t] holds the state before step t
        h = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    return h


def recurrence_no_carry(a, b, h0=None):
    return recurrence_ok(a, b, h0, carry=False)


def recurrence_a_times_sum(a, b, h0=None):
    return recurrence_ok(a, b, h0, inside=True)


def recurrence_states_before(a, b, h0=None):
    return recurrence_ok(a, b, h0, shifted=True)


def recurrence_ignores_h0(a, b, h0=None):
    return recurrence_ok(a, b, None)


def backward_ok(dh, a, h, h0=None, *, carry=True, same_step=False, current_state=False, dh0_plain=False):
    N, T, H = a.shape
    if h0 is None:
        h0 = np.zeros((N, H))
    g = np.zeros_like(dh)
    for t in reversed(range(T)):
        g[:, t] = dh[:, t]
        if carry and t + 1 < T:
            g[:, t] += (a[:, t] if same_step else a[:, t + 1]) * g[:, t + 1]
    prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    da = g * (h if current_state else prev)
    dh0 = g[:, 0] if dh0_plain else a[:, 0] * g[:, 0]
    return da, g, dh0


def backward_no_carry(dh, a, h, h0=None):
    return backward_ok(dh, a, h, h0, carry=False)


def backward_same_step_a(dh, a, h, h0=None):
    return backward_ok(dh, a, h, h0, same_step=True)


def backward_da_current_state(dh, a, h, h0=None):
    return backward_ok(dh, a, h, h0, current_state=True)


def backward_dh0_forgets_a(dh, a, h, h0=None):
    return backward_ok(dh, a, h, h0, dh0_plain=True)


def compose_ok(first, second):
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a2 * b1 + b2


def compose_wrong_order(first, second):
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a1 * b2 + b1


def compose_adds_bs(first, second):
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, b1 + b2


def compose_adds_as(first, second):
    a1, b1 = first
    a2, b2 = second
    return a1 + a2, a2 * b1 + b2


def _prefixes(A, B, combine):
    """Hillis–Steele: at rounds k = 1, 2, 4, ... every position t >= k combines with the one k before."""
    T = A.shape[1]
    k = 1
    while k < T:
        A[:, k:], B[:, k:] = combine((A[:, :-k], B[:, :-k]), (A[:, k:], B[:, k:]))
        k *= 2
    return B


def _fold(a, b, h0):
    B = b.astype(float, copy=True)
    if h0 is not None:
        B[:, 0] += a[:, 0] * h0
    return B


def scan_ok(a, b, h0=None):
    return _prefixes(a.copy(), _fold(a, b, h0), compose_affine)  # noqa: F821


def scan_ignores_h0(a, b, h0=None):
    return _prefixes(a.copy(), b.astype(float, copy=True), compose_affine)  # noqa: F821


def scan_exclusive(a, b, h0=None):
    h = _prefixes(a.copy(), _fold(a, b, h0), compose_affine)  # noqa: F821
    first = np.zeros_like(h[:, :1]) if h0 is None else h0[:, None]
    return np.concatenate([first, h[:, :-1]], axis=1)  # the prefix ending before t


def scan_one_step_at_a_time(a, b, h0=None):
    """Right numbers, by a loop over t that composes one step at a time: not a scan."""
    N, T, H = a.shape
    acc_a, acc_b = np.ones((N, H)), np.zeros((N, H)) if h0 is None else h0.copy()
    h = np.empty((N, T, H))
    for t in range(T):
        acc_a, acc_b = compose_affine((acc_a, acc_b), (a[:, t], b[:, t]))  # noqa: F821
        h[:, t] = acc_b
    return h


def scan_by_a_loop(a, b, h0=None):
    """Right numbers, never calling compose_affine: the loop of linear_recurrence."""
    return linear_recurrence(a, b, h0)  # noqa: F821


def _sigmoid(k):
    return 1 / (1 + np.exp(-k))


def _gates(x, Wz, bz, Wh, bh, *, swapped=False, candidate="g", gate_bias=True):
    """a, b of minGRU's recurrence, and z, h~, with one mistake or none."""
    z = _sigmoid(x @ Wz + (bz if gate_bias else 0))
    k = x @ Wh + bh
    h_tilde = np.where(k >= 0, k + 0.5, _sigmoid(np.minimum(k, 0))) if candidate == "g" else np.tanh(k)
    a, b = (z, (1 - z) * h_tilde) if swapped else (1 - z, z * h_tilde)
    return a, b, z, h_tilde


def min_gru_ok(x, h0, Wz, bz, Wh, bh):
    a, b, z, h_tilde = _gates(x, Wz, bz, Wh, bh)
    h = parallel_scan(a, b, h0)  # noqa: F821
    return h, (x, h0, Wz, Wh, z, h_tilde, h)


def min_gru_swapped(x, h0, Wz, bz, Wh, bh):
    a, b, z, h_tilde = _gates(x, Wz, bz, Wh, bh, swapped=True)
    h = parallel_scan(a, b, h0)  # noqa: F821
    return h, (x, h0, Wz, Wh, z, h_tilde, h)


def min_gru_tanh(x, h0, Wz, bz, Wh, bh):
    a, b, z, h_tilde = _gates(x, Wz, bz, Wh, bh, candidate="tanh")
    h = parallel_scan(a, b, h0)  # noqa: F821
    return h, (x, h0, Wz, Wh, z, h_tilde, h)


def min_gru_no_gate_bias(x, h0, Wz, bz, Wh, bh):
    a, b, z, h_tilde = _gates(x, Wz, bz, Wh, bh, gate_bias=False)
    h = parallel_scan(a, b, h0)  # noqa: F821
    return h, (x, h0, Wz, Wh, z, h_tilde, h)


COMPOSE = {"compose_affine": compose_ok}
SCAN = {"parallel_scan": calling(scan_ok, compose_affine=compose_ok), **COMPOSE}


def _scan(fn):
    return {**COMPOSE, "parallel_scan": calling(fn, compose_affine=compose_ok)}


def _min_gru(fn, scan=SCAN["parallel_scan"]):
    return {"parallel_scan": scan, "min_gru_forward": calling(fn, parallel_scan=scan)}


MISTAKES = [
    ("linear_recurrence", {"linear_recurrence": recurrence_no_carry}, "Every step started from h0"),
    ("linear_recurrence", {"linear_recurrence": recurrence_a_times_sum}, "a_t multiplies b_t too"),
    ("linear_recurrence", {"linear_recurrence": recurrence_states_before}, "Off by one in time"),
    ("linear_recurrence", {"linear_recurrence": recurrence_ignores_h0}, "h0 is ignored"),
    ("linear_recurrence_backward", {"linear_recurrence_backward": backward_no_carry}, "from step t+1 is not carried back"),
    ("linear_recurrence_backward", {"linear_recurrence_backward": backward_same_step_a}, "multiplied by a_t"),
    ("linear_recurrence_backward", {"linear_recurrence_backward": backward_da_current_state}, "da uses the wrong state"),
    ("linear_recurrence_backward", {"linear_recurrence_backward": backward_dh0_forgets_a}, "dh0 forgets a_1"),
    ("compose_affine", {"compose_affine": compose_wrong_order}, "composed in the wrong order"),
    ("compose_affine", {"compose_affine": compose_adds_bs}, "b1 does not go through the second step's a"),
    ("compose_affine", {"compose_affine": compose_adds_as}, "The coefficients multiply"),
    ("parallel_scan", _scan(scan_ignores_h0), "h0 is ignored: fold it into the first step"),
    ("parallel_scan", _scan(scan_exclusive), "The prefixes are exclusive"),
    ("parallel_scan", _scan(scan_one_step_at_a_time), "called compose_affine 13 times for T = 13"),
    ("parallel_scan", {"parallel_scan": calling(scan_ok, compose_affine=compose_wrong_order),
                       "compose_affine": compose_wrong_order},
     "parallel_scan calls compose_affine, which fails its own test: fix compose_affine first"),
    ("min_gru_forward", _min_gru(min_gru_swapped), "The update gate weighs the wrong terms"),
    ("min_gru_forward", _min_gru(min_gru_tanh), "The candidate uses tanh"),
    ("min_gru_forward", _min_gru(min_gru_no_gate_bias), "The update gate has no bias"),
    ("min_gru_forward", _min_gru(min_gru_ok, calling(scan_ignores_h0, compose_affine=compose_ok)),
     "min_gru_forward calls parallel_scan, which fails its own test: fix parallel_scan first"),
]  # fmt: skip


@pytest.mark.parametrize("name, functions, says", MISTAKES, ids=[mistake_id(m) for m in MISTAKES])
def test_a_mistake_fails_and_is_named(name, functions, says):
    assert_mistake_fails_and_is_named(name, functions, says)


def test_the_helpers_the_mistakes_are_built_from_are_right_without_the_mistake():
    assert in_process("linear_recurrence", {"linear_recurrence": recurrence_ok}, hidden=True) == (True, "")
    assert in_process("linear_recurrence_backward", {"linear_recurrence_backward": backward_ok}, hidden=True) == (True, "")
    assert in_process("compose_affine", COMPOSE, hidden=True) == (True, "")
    assert in_process("parallel_scan", SCAN, hidden=True) == (True, "")
    assert in_process("min_gru_forward", _min_gru(min_gru_ok), hidden=True) == (True, "")


def test_a_loop_passed_off_as_the_scan_loses_the_points_however_it_is_written():
    """The numbers of a loop are right; its number of combines (or none at all) is not a scan's."""
    loop = {**_scan(scan_by_a_loop), "linear_recurrence": recurrence_ok}
    loop["parallel_scan"] = calling(scan_by_a_loop, compose_affine=compose_ok, linear_recurrence=recurrence_ok)
    passed, message = in_process("parallel_scan", loop)
    assert not passed and "never called compose_affine" in message, message
    assert out_of_process("parallel_scan", loop) == (passed, message)
    passed, message = in_process("parallel_scan", _scan(scan_one_step_at_a_time), hidden=True)
    assert not passed and "a scan needs about 2 log2 T" in message, message


def test_the_bound_on_the_rounds_admits_both_scans_and_refuses_a_loop_from_t_16():
    for T in range(2, 200):
        assert T - 1 > max_rounds(T) or T < 16
    # Hillis–Steele and the work-efficient scan of the solution on every length of the hidden cases
    right = right_answers()
    for fns in (SCAN, right):
        for T in (1, 2, 3, 5, 8, 13, 16, 17, 33, 64, 70, 129):
            rng = np.random.default_rng(T)
            case = {
                "_label": np.array("x"), "_description": np.array("x"), "_check": np.array("parallel_scan"),
                "a": rng.uniform(0.2, 1.0, (1, T, 2)), "b": rng.standard_normal((1, T, 2)), "h0": rng.standard_normal((1, 2)),
            }  # fmt: skip
            assert judge("parallel_scan", case, run_case("parallel_scan", case, fns)) == (True, "")


def test_the_count_reaches_through_a_wrapper_and_restores_compose_affine():
    right = right_answers()
    original = right["parallel_scan"].__globals__["compose_affine"]
    fns = {f: in_float32(right[f]) for f in ("parallel_scan", "compose_affine")}
    for case in make_cases("parallel_scan"):
        outputs = run_case("parallel_scan", case, fns)
        assert 0 < int(outputs["rounds"]) <= max_rounds(case["a"].shape[1]) or case["a"].shape[1] == 1
    assert right["parallel_scan"].__globals__["compose_affine"] is original


def test_the_backward_gets_the_states_a_right_forward_returns():
    got = []

    def spy(dh, a, h, h0=None):
        got.append((a, h, h0))
        return backward_ok(dh, a, h, h0)

    for case in make_cases("linear_recurrence_backward") + make_cases("linear_recurrence_backward", hidden=True):
        got.clear()
        assert judge("linear_recurrence_backward", case, run_case("linear_recurrence_backward", case, {"linear_recurrence_backward": spy}))[0]
        a, h, h0 = got[0]
        np.testing.assert_allclose(h, reference_recurrence(case["a"], case["b"], case["h0"]), rtol=1e-6)
