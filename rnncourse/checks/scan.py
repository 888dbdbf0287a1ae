"""Checks of assignment 08, linear recurrences and the parallel scan (the trusted side).

The learner writes the twins of :func:`rnncourse.numpy.scan.linear_recurrence`,
:func:`~rnncourse.numpy.scan.linear_recurrence_backward`,
:func:`~rnncourse.numpy.scan.compose_affine`,
:func:`~rnncourse.numpy.scan.parallel_scan` and
:func:`rnncourse.numpy.min_gru_forward` (sequential mode; real arrays); how
they are called: :mod:`rnncourse.checks.calls.scan`. Visible cases switch
on one term at a time (only ``b``, only ``h0``, ``a = 0``); the backward gets
the reference's states ``h``; ``parallel_scan`` is judged on its numbers and
on how many times it combined (a scan's ``O(log T)``, not a loop's ``T``).
"""

import math

import numpy as np

from rnncourse.numpy import min_gru_forward, sigmoid
from rnncourse.numpy.minrnn import positive_activation
from rnncourse.numpy.scan import compose_affine, linear_recurrence, linear_recurrence_backward

from ._core import Case, Check, Mistake, changed_outputs, nonzero_bias, random_cases
from ._recurrent import gradient_on_states, previous_states, shifted_states
from .calls.scan import ROUNDS


# --- inputs ---------------------------------------------------------------------------


def _recurrence_inputs(rng, N, T, H, dtype=np.float64, *, a=True, b=True, h0=True):
    """``a`` in (0.2, 1.1) with random signs, ``b`` at least 0.3 from zero, ``h0`` standard normal; a term switched off is zero."""
    inputs = {
        "a": (rng.choice([-1.0, 1.0], (N, T, H)) * rng.uniform(0.2, 1.1, (N, T, H)) if a else np.zeros((N, T, H))),
        "b": nonzero_bias(rng, (N, T, H)) if b else np.zeros((N, T, H)),
    }
    if h0 is not None:
        inputs["h0"] = rng.standard_normal((N, H)) if h0 else np.zeros((N, H))
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _no_h0(rng, N, T, H, dtype=np.float64):
    return _recurrence_inputs(rng, N, T, H, dtype, h0=None)


def _hidden_recurrence(rng):
    """Random shapes, h0 given (three float64 cases, one float32) and one case without h0."""
    cases = random_cases(rng, _recurrence_inputs, N=(1, 4), T=(1, 40), H=(1, 5))
    return cases + random_cases(rng, _no_h0, dtypes=(np.float64,), N=(1, 3), T=(2, 20), H=(1, 4))


def _recurrence(i):
    return linear_recurrence(i["a"], i["b"], i.get("h0"))


# --- linear_recurrence ----------------------------------------------------------------


def _loop(i, *, carry=True, inside=False):
    """The loop with a deliberate mistake: ``carry=False`` starts every step from h0; ``inside``: a (h + b)."""
    a, b = i["a"], i["b"]
    h0 = i.get("h0", np.zeros_like(b[:, 0]))
    h, prev = np.empty_like(b), h0
    for t in range(b.shape[1]):
        h[:, t] = a[:, t] * (prev + b[:, t]) if inside else a[:, t] * prev + b[:, t]
        prev = h[:, t] if carry else h0
    return {"h": h}


LINEAR_RECURRENCE = Check(
    name="linear_recurrence",
    reference=lambda i: {"h": _recurrence(i)},
    visible=(
        Case(
            "inputs_only",
            "only the inputs b (h0 not given: zeros), N=2, T=5, H=3",
            "With h0 = 0, h_1 = b_1 and h_t = a_t * h_{t-1} + b_t: check the loop carries h_t to the next step.",
            lambda rng: _no_h0(rng, 2, 5, 3),
        ),
        Case(
            "state_only",
            "only the initial state (b = 0), N=2, T=5, H=3",
            "With b = 0, h_t = a_t * ... * a_1 * h0: the first step must start from h0.",
            lambda rng: _recurrence_inputs(rng, 2, 5, 3, b=False),
        ),
        Case(
            "no_memory",
            "a = 0: every state forgets the past, N=2, T=4, H=3",
            "With a = 0, h_t = b_t at every step: h[:, t] is the state after step t (not before it).",
            lambda rng: _recurrence_inputs(rng, 2, 4, 3, a=False),
        ),
        Case(
            "all_terms",
            "a, b and h0 together, N=3, T=6, H=2",
            "Check h_t = a_t * h_{t-1} + b_t, elementwise, with h_0 = h0 before the first step.",
            lambda rng: _recurrence_inputs(rng, 3, 6, 2),
        ),
    ),
    hidden=_hidden_recurrence,
    mistakes=(
        Mistake("Every step started from h0: carry the state each step produces to the next.",
                lambda i: _loop(i, carry=False)),
        Mistake("a_t multiplies b_t too: h_t = a_t * h_{t-1} + b_t, with b_t added after the product.",
                lambda i: _loop(i, inside=True)),
        Mistake("Off by one in time: h[:, t] must be the state after step t, so h[:, 0] is not h0 "
                "and the last state is included.",
                lambda i: shifted_states(_recurrence(i), i.get("h0", np.zeros_like(i["b"][:, 0])))),
        Mistake("h0 is ignored: the first step is h_1 = a_1 * h0 + b_1.",
                lambda i: {"h": linear_recurrence(i["a"], i["b"])}, applies=lambda i: "h0" in i),
    ),
)  # fmt: skip


# --- linear_recurrence_backward -------------------------------------------------------


def _backward_inputs(rng, N, T, H, dtype=np.float64, *, only=None):
    inputs = _recurrence_inputs(rng, N, T, H, dtype)
    inputs["dh"] = gradient_on_states(rng, (N, T, H), dtype, only=only)
    return inputs


def _backward(i, *, carry=True, same_step_a=False, da_state="previous", dh0_without_a=False):
    """The backward with one deliberate mistake, to recognise it in a learner's gradients.

    carry=False: g_t = dh_t only; same_step_a: g_t = dh_t + a_t g_{t+1}; da_state="current": da_t = g_t h_t;
    dh0_without_a: dh0 = g_1. (A loop run forwards in time reads g_{t+1} before it is computed: carry=False.)
    """
    a, dh, h0 = i["a"], i["dh"], i["h0"]
    h = _recurrence(i)
    T = a.shape[1]
    g = np.zeros_like(dh)
    for t in reversed(range(T)):
        g[:, t] = dh[:, t]
        if carry and t + 1 < T:
            g[:, t] += (a[:, t] if same_step_a else a[:, t + 1]) * g[:, t + 1]
    prev = previous_states(h0, h)
    da = g * (prev if da_state == "previous" else h)
    dh0 = g[:, 0] if dh0_without_a else a[:, 0] * g[:, 0]
    return {"da": da, "db": g, "dh0": dh0}


LINEAR_RECURRENCE_BACKWARD = Check(
    name="linear_recurrence_backward",
    reference=lambda i: dict(zip(("da", "db", "dh0"), linear_recurrence_backward(i["dh"], i["a"], i["h"], i["h0"]))),
    given=lambda i: {"h": _recurrence(i)},
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1: db = dh, da = dh * h0, dh0 = a * dh.",
            lambda rng: _backward_inputs(rng, 2, 1, 3),
        ),
        Case(
            "last_loss_only",
            "a loss on the last state only (dh[:, t] = 0 for t < T-1), T = 5",
            "The gradient of the last state must flow back through every step, multiplied by a at each.",
            lambda rng: _backward_inputs(rng, 2, 5, 3, only=[4]),
        ),
        Case(
            "every_step",
            "a loss at every step, N=2, T=5, H=3",
            "g_t = dh_t + a_{t+1} g_{t+1}: h_t reaches the loss directly and through step t+1.",
            lambda rng: _backward_inputs(rng, 2, 5, 3),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _backward_inputs, N=(1, 4), T=(2, 30), H=(1, 5)),
    output_hints={
        "*": "Every gradient is wrong: check g_t = dh_t + a_{t+1} * g_{t+1}, run from t = T down to 1, first.",
        "da": "h_t = a_t * h_{t-1} + b_t, so da_t = g_t * h_{t-1} (h0 at the first step).",
        "db": "db_t is g_t, the gradient reaching h_t from the loss at t and from step t+1.",
        "dh0": "h0 enters the first step only: dh0 = a_1 * g_1.",
    },
    mistakes=(
        Mistake("The gradient from step t+1 is not carried back: g_t = dh_t + a_{t+1} * g_{t+1}.",
                changed_outputs(_backward, carry=False)),
        Mistake("The carried gradient is multiplied by a_t; step t+1 multiplies h_t by a_{t+1}: "
                "g_t = dh_t + a_{t+1} * g_{t+1}.",
                changed_outputs(_backward, same_step_a=True)),
        Mistake("da uses the wrong state: step t multiplies h_{t-1} (h0 at the first step) by a_t, not h_t.",
                changed_outputs(_backward, da_state="current")),
        Mistake("dh0 forgets a_1: h0 enters the first step as a_1 * h0, so dh0 = a_1 * g_1.",
                changed_outputs(_backward, dh0_without_a=True)),
    ),
)  # fmt: skip


# --- compose_affine -------------------------------------------------------------------


def _pair_inputs(rng, N, H, dtype=np.float64, *, identity=None, b1=True):
    """Two steps ``(a1, b1)``, ``(a2, b2)`` of shape (N, H); ``identity``: that step is ``h -> h``."""
    inputs = {f"{p}{k}": rng.uniform(-1.5, 1.5, (N, H)) for k in (1, 2) for p in "ab"}
    if not b1:
        inputs["b1"] = np.zeros((N, H))
    if identity is not None:
        inputs[f"a{identity}"], inputs[f"b{identity}"] = np.ones((N, H)), np.zeros((N, H))
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _composed(i):
    a, b = compose_affine((i["a1"], i["b1"]), (i["a2"], i["b2"]))
    return {"a": a, "b": b}


COMPOSE_AFFINE = Check(
    name="compose_affine",
    reference=_composed,
    visible=(
        Case(
            "second_is_identity",
            "the second step is h -> h (a2 = 1, b2 = 0)",
            "Followed by the identity, the first step is unchanged: (a1, b1).",
            lambda rng: _pair_inputs(rng, 2, 3, identity=2),
        ),
        Case(
            "first_is_identity",
            "the first step is h -> h (a1 = 1, b1 = 0)",
            "After the identity comes the second step alone: (a2, b2).",
            lambda rng: _pair_inputs(rng, 2, 3, identity=1),
        ),
        Case(
            "first_adds_nothing",
            "b1 = 0: the first step only scales",
            "h -> a2 (a1 h) + b2: the composed a is a1 a2 and the composed b is b2.",
            lambda rng: _pair_inputs(rng, 2, 3, b1=False),
        ),
        Case(
            "general",
            "two general steps",
            "Apply (a1, b1) first: a2 (a1 h + b1) + b2 = (a1 a2) h + (a2 b1 + b2).",
            lambda rng: _pair_inputs(rng, 3, 4),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _pair_inputs, N=(1, 5), H=(1, 6)),
    output_hints={"a": "The composed a is a1 * a2.", "b": "The composed b is a2 * b1 + b2: the first step's b goes through the second's a."},
    mistakes=(
        Mistake("The steps are composed in the wrong order: (a1, b1) comes first, so b = a2 * b1 + b2, not a1 * b2 + b1.",
                lambda i: {"b": i["a1"] * i["b2"] + i["b1"]}),
        Mistake("b1 does not go through the second step's a: b = a2 * b1 + b2, not b1 + b2.",
                lambda i: {"b": i["b1"] + i["b2"]}),
        Mistake("The coefficients multiply; they do not add: a = a1 * a2.",
                lambda i: {"a": i["a1"] + i["a2"]}),
        Mistake("b is a1 * b1 + b2: the first step's b is multiplied by the second step's a, a2.",
                lambda i: {"b": i["a1"] * i["b1"] + i["b2"]}),
    ),
)  # fmt: skip


# --- parallel_scan --------------------------------------------------------------------


def max_rounds(T):
    """The most calls of ``compose_affine`` a scan of length ``T`` may make: ``2 ceil(log2 T) + 2``.

    A work-efficient scan makes about two rounds per level (up and down), one
    more to fold ``h0`` in; Hillis–Steele makes ``ceil(log2 T)``. A loop over
    ``t`` makes ``T - 1`` or ``T``, more than this bound from ``T = 16`` on.
    """
    return 2 * math.ceil(math.log2(T)) + 2 if T > 1 else 2


def _rounds_precheck(inputs, outputs, expected):
    rounds = outputs.get(ROUNDS)
    if rounds is None or rounds.ndim != 0:
        return "parallel_scan's calls of compose_affine could not be counted."
    rounds = int(rounds)
    T = inputs["a"].shape[1]
    if rounds < 0:
        return ("parallel_scan runs where no compose_affine is defined: write compose_affine (problem 3) "
                "and combine the steps with it.")  # fmt: skip
    if rounds == 0 and T > 1:
        return ("parallel_scan never called compose_affine: combine the steps with your compose_affine, "
                "a whole level of the tree in each call.")  # fmt: skip
    if rounds > max_rounds(T):
        return (f"parallel_scan called compose_affine {rounds} times for T = {T}; a scan needs about 2 log2 T "
                f"(at most {max_rounds(T)} here): combine whole slices of the sequence in each call, not one t at a time.")  # fmt: skip
    return None


def _hidden_scan(rng):
    return random_cases(rng, _recurrence_inputs, N=(1, 4), T=(2, 70), H=(1, 5))


PARALLEL_SCAN = Check(
    name="parallel_scan",
    reference=lambda i: {"h": _recurrence(i)},
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1 there is nothing to combine: h[:, 0] = a[:, 0] * h0 + b[:, 0].",
            lambda rng: _recurrence_inputs(rng, 2, 1, 3),
        ),
        Case(
            "power_of_two",
            "T = 8, h0 = 0",
            "Check the tree on a power of two first: every prefix (a_1, b_1) o ... o (a_t, b_t), whose b is h_t.",
            lambda rng: _recurrence_inputs(rng, 2, 8, 3, h0=False),
        ),
        Case(
            "state_only",
            "only the initial state (b = 0), T = 8",
            "h0 enters as one more step: fold it into the first, b_1 <- a_1 * h0 + b_1.",
            lambda rng: _recurrence_inputs(rng, 2, 8, 3, b=False),
        ),
        Case(
            "odd_length",
            "T = 13, not a power of two",
            "With T odd (or any T not a power of two), the last step has no neighbour to pair with: carry it to the next level.",
            lambda rng: _recurrence_inputs(rng, 2, 13, 3),
        ),
        Case(
            "long",
            "T = 64",
            "Check h_t = a_t * h_{t-1} + b_t at every t: the prefixes ending at every position, odd and even.",
            lambda rng: _recurrence_inputs(rng, 2, 64, 2),
        ),
    ),
    hidden=_hidden_scan,
    precheck=_rounds_precheck,
    mistakes=(
        Mistake("h0 is ignored: fold it into the first step, b_1 <- a_1 * h0 + b_1.",
                lambda i: {"h": linear_recurrence(i["a"], i["b"])}),
        Mistake("The prefixes are exclusive: h[:, t] must include step t (h[:, 0] = a_1 h0 + b_1), "
                "not end at step t - 1.",
                lambda i: shifted_states(_recurrence(i), i["h0"])),
    ),
)  # fmt: skip


# --- min_gru_forward ------------------------------------------------------------------


def _min_gru_inputs(rng, N, T, D, H, dtype=np.float64, *, x=True):
    inputs = {
        "x": rng.standard_normal((N, T, D)) if x else np.zeros((N, T, D)),
        "h0": rng.standard_normal((N, H)),
        "Wz": 0.8 * rng.standard_normal((D, H)),
        "bz": nonzero_bias(rng, H),
        "Wh": 0.8 * rng.standard_normal((D, H)),
        "bh": nonzero_bias(rng, H),
    }
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _min_gru(i, *, weighting="right", candidate="g", gate_bias=True):
    """minGRU with one deliberate mistake: ``weighting="swapped"`` (z h_{t-1} + (1 - z) h~);
    ``candidate``: ``"tanh"`` or ``"linear"`` instead of g; ``gate_bias=False``: z without bz."""
    x = i["x"]
    z = sigmoid(x @ i["Wz"] + (i["bz"] if gate_bias else 0))
    k = x @ i["Wh"] + i["bh"]
    h_tilde = {"g": positive_activation, "tanh": np.tanh, "linear": lambda v: v}[candidate](k)
    a, b = (1 - z, z * h_tilde) if weighting == "right" else (z, (1 - z) * h_tilde)
    return {"h": linear_recurrence(a, b, i["h0"])}


MIN_GRU_FORWARD = Check(
    name="min_gru_forward",
    reference=lambda i: {"h": min_gru_forward(i["x"], i["h0"], i["Wz"], i["bz"], i["Wh"], i["bh"])[0]},
    visible=(
        Case(
            "biases_only",
            "x = 0: the gate and the candidate are their biases' alone, T = 4",
            "With x = 0, z = sigmoid(bz) and h~ = g(bh) at every step: h_t = (1 - z) h_{t-1} + z h~.",
            lambda rng: _min_gru_inputs(rng, 2, 4, 3, 4, x=False),
        ),
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1: h[:, 0] = (1 - z) * h0 + z * g(x Wh + bh), z = sigmoid(x Wz + bz).",
            lambda rng: _min_gru_inputs(rng, 2, 1, 3, 4),
        ),
        Case(
            "general",
            "N=2, T=9, D=3, H=4",
            "The gates for all steps at once, then the recurrence h_t = a_t h_{t-1} + b_t with a = 1 - z, b = z h~.",
            lambda rng: _min_gru_inputs(rng, 2, 9, 3, 4),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _min_gru_inputs, N=(1, 4), T=(1, 30), D=(1, 5), H=(1, 5)),
    mistakes=(
        Mistake("The update gate weighs the wrong terms: h_t = (1 - z_t) h_{t-1} + z_t h~_t, so a = 1 - z and b = z h~.",
                lambda i: _min_gru(i, weighting="swapped")),
        Mistake("The candidate uses tanh; minGRU's is g(k) = k + 1/2 for k >= 0 and sigmoid(k) below (positive).",
                lambda i: _min_gru(i, candidate="tanh")),
        Mistake("The candidate is the pre-activation x Wh + bh; apply g to it.",
                lambda i: _min_gru(i, candidate="linear")),
        Mistake("The update gate has no bias: z = sigmoid(x Wz + bz).",
                lambda i: _min_gru(i, gate_bias=False)),
    ),
)  # fmt: skip


CHECKS = (LINEAR_RECURRENCE, LINEAR_RECURRENCE_BACKWARD, COMPOSE_AFFINE, PARALLEL_SCAN, MIN_GRU_FORWARD)
