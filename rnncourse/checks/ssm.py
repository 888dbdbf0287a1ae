"""Checks of assignment 09, state-space models and linear attention (the trusted side).

The learner writes the twins of :func:`rnncourse.numpy.ssm.zoh_discretize`,
:func:`~rnncourse.numpy.ssm.selective_ssm_step_forward`,
:func:`rnncourse.numpy.linear_attention.linear_attention_rnn_step` and
:func:`~rnncourse.numpy.linear_attention.linear_attention_rnn_forward`; how
they are called: :mod:`rnncourse.checks.calls.ssm`. Visible cases switch on
one term at a time (``x = 0``: the state only decays; ``prev_h = 0`` and
``skip = 0``: only this token's write; an empty memory), and the known
mistakes are the slips of each formula (Euler's rule for ``A``, the sign of
``A``, no softplus, reading the memory before writing to it).
"""

import numpy as np

from rnncourse.numpy import softplus
from rnncourse.numpy.linear_attention import elu_feature_map, linear_attention_rnn_forward, linear_attention_rnn_step
from rnncourse.numpy.ssm import selective_ssm_step_forward, zoh_discretize

from ._core import Case, Check, Mistake, changed_outputs, nonzero_bias, random_cases

# --- zoh_discretize -------------------------------------------------------------------


def _zoh_inputs(rng, D, S, dtype=np.float64, *, B=True, small_step=False):
    """A negative ``A`` (D, S), ``B`` (D, S), one step per channel ``delta`` (D, 1)."""
    inputs = {
        "A": -np.exp(rng.uniform(-1.0, 1.0, (D, S))),
        "B": rng.standard_normal((D, S)) if B else np.ones((D, S)),
        "delta": (rng.uniform(0.001, 0.01, (D, 1)) if small_step else rng.uniform(0.1, 1.5, (D, 1))),
    }
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _zoh(i, *, euler_A=False, euler_B=False, divide=True, times_B=True):
    A, B, delta = i["A"], i["B"], i["delta"]
    A_bar = 1 + delta * A if euler_A else np.exp(delta * A)
    if euler_B:
        B_bar = delta * B
    else:
        B_bar = (np.exp(delta * A) - 1) * (B if times_B else 1) / (A if divide else 1)
    return {"A_bar": A_bar, "B_bar": B_bar}


ZOH_DISCRETIZE = Check(
    name="zoh_discretize",
    reference=lambda i: dict(zip(("A_bar", "B_bar"), zoh_discretize(i["A"], i["B"], i["delta"]))),
    visible=(
        Case(
            "unit_input",
            "B = 1: the response to a unit input held over one step",
            "With B = 1, B_bar = (exp(delta A) - 1) / A: the state that a constant input 1 builds up in one step.",
            lambda rng: _zoh_inputs(rng, 3, 4, B=False),
        ),
        Case(
            "small_step",
            "a small step (delta <= 0.01)",
            "For a small step, A_bar is close to 1 + delta A and B_bar to delta B, but not equal: use the exact formulas.",
            lambda rng: _zoh_inputs(rng, 3, 4, small_step=True),
        ),
        Case(
            "general",
            "D=3, S=4, one step per channel",
            "A_bar = exp(delta A), B_bar = (exp(delta A) - 1) / A * B, elementwise, delta broadcast over S.",
            lambda rng: _zoh_inputs(rng, 3, 4),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _zoh_inputs, D=(1, 6), S=(1, 8)),
    output_hints={
        "A_bar": "A_bar = exp(delta A): the exact solution of h' = A h over one step.",
        "B_bar": "B_bar = (exp(delta A) - 1) / A * B: the integral of exp(s A) B over the step.",
    },
    mistakes=(
        Mistake("A_bar by Euler's rule, 1 + delta A: the zero-order hold is exact, A_bar = exp(delta A).",
                changed_outputs(_zoh, euler_A=True)),
        Mistake("B_bar by Euler's rule, delta B: the zero-order hold gives (exp(delta A) - 1) / A * B.",
                changed_outputs(_zoh, euler_B=True)),
        Mistake("B_bar is not divided by A: (exp(delta A) - 1) / A * B.",
                changed_outputs(_zoh, divide=False)),
        Mistake("B_bar is not multiplied by B: (exp(delta A) - 1) / A * B.",
                changed_outputs(_zoh, times_B=False)),
    ),
)  # fmt: skip


# --- selective_ssm_step_forward -------------------------------------------------------


def _step_inputs(rng, N, D, S, dtype=np.float64, *, x=True, prev_h=True, skip=True):
    inputs = {
        "x": rng.standard_normal((N, D)) if x else np.zeros((N, D)),
        "prev_h": rng.standard_normal((N, D, S)) if prev_h else np.zeros((N, D, S)),
        "A_log": rng.uniform(-1.0, 1.0, (D, S)),
        "W_delta": 0.5 * rng.standard_normal((D, D)),
        "b_delta": nonzero_bias(rng, D),
        "W_B": rng.standard_normal((D, S)),
        "W_C": rng.standard_normal((D, S)),
        "skip": nonzero_bias(rng, D) if skip else np.zeros(D),
    }
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _ssm_step(i, *, positive_delta=True, sign=True, read_prev=False, skip=True, delta_x=True, zoh_B=False):
    """The selective step with one deliberate mistake (or none)."""
    x, prev_h = i["x"], i["prev_h"]
    k = x @ i["W_delta"] + i["b_delta"]
    delta = softplus(k) if positive_delta else k
    B, C = x @ i["W_B"], x @ i["W_C"]
    A = -np.exp(i["A_log"]) if sign else np.exp(i["A_log"])
    A_bar = np.exp(delta[:, :, None] * A)
    if zoh_B:
        write = ((A_bar - 1) / A) * B[:, None, :] * x[:, :, None]
    else:
        write = ((delta * x) if delta_x else x)[:, :, None] * B[:, None, :]
    next_h = A_bar * prev_h + write
    y = ((prev_h if read_prev else next_h) * C[:, None, :]).sum(axis=2) + (i["skip"] * x if skip else 0)
    return {"y": y, "next_h": next_h}


SELECTIVE_SSM_STEP_FORWARD = Check(
    name="selective_ssm_step_forward",
    reference=lambda i: dict(zip(("y", "next_h"), selective_ssm_step_forward(
        i["x"], i["prev_h"], i["A_log"], i["W_delta"], i["b_delta"], i["W_B"], i["W_C"], i["skip"]))),
    visible=(
        Case(
            "decay_only",
            "x = 0: no input, the state only decays",
            "With x = 0, delta = softplus(b_delta) and next_h = exp(delta A) * prev_h, with A = -exp(A_log) < 0.",
            lambda rng: _step_inputs(rng, 2, 3, 4, x=False),
        ),
        Case(
            "write_only",
            "prev_h = 0 and skip = 0: only this token's write",
            "With prev_h = 0, next_h[n, d, s] = delta[n, d] x[n, d] B[n, s] (B by Euler's rule, as in Mamba), "
            "and y reads it with C.",
            lambda rng: _step_inputs(rng, 2, 3, 4, prev_h=False, skip=False),
        ),
        Case(
            "skip_only",
            "prev_h = 0: the write, the read and the direct path skip * x",
            "y = sum over s of next_h * C, plus skip * x.",
            lambda rng: _step_inputs(rng, 2, 3, 4, prev_h=False),
        ),
        Case(
            "general",
            "N=2, D=3, S=4",
            "delta = softplus(x W_delta + b_delta), B = x W_B, C = x W_C; next_h = exp(delta A) prev_h + delta x B; "
            "y = next_h C + skip x.",
            lambda rng: _step_inputs(rng, 2, 3, 4),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _step_inputs, N=(1, 4), D=(1, 5), S=(1, 5)),
    output_hints={
        "*": "Both outputs are wrong: check delta = softplus(x W_delta + b_delta) and A_bar = exp(delta A) first.",
        "y": "y = sum over s of next_h[:, :, s] * C[:, None, s], plus skip * x: read the state after this step's write.",
        "next_h": "next_h = exp(delta A) * prev_h + (delta x)[:, :, None] * B[:, None, :].",
    },
    mistakes=(
        Mistake("delta is the pre-activation: delta = softplus(x W_delta + b_delta), a positive step.",
                changed_outputs(_ssm_step, positive_delta=False)),
        Mistake("A has the wrong sign: A = -exp(A_log), negative, so that exp(delta A) < 1 and the state decays.",
                changed_outputs(_ssm_step, sign=False)),
        Mistake("y reads the state before this step's write: y = next_h C + skip x, not prev_h C.",
                changed_outputs(_ssm_step, read_prev=True)),
        Mistake("The direct path is missing: y = next_h C + skip * x.",
                changed_outputs(_ssm_step, skip=False)),
        Mistake("The input is written without the step: next_h = A_bar prev_h + delta x B (delta scales the write).",
                changed_outputs(_ssm_step, delta_x=False)),
        Mistake("B is discretised by the zero-order hold; the exercise (and Mamba's code) uses Euler's rule for B: delta x B.",
                changed_outputs(_ssm_step, zoh_B=True)),
    ),
)  # fmt: skip


# --- linear attention as an RNN -------------------------------------------------------


def _la_step_inputs(rng, N, F, E, dtype=np.float64, *, empty=False):
    inputs = {
        "q": rng.standard_normal((N, F)),
        "k": rng.standard_normal((N, F)),
        "v": rng.standard_normal((N, E)),
        # a memory that earlier steps wrote: sums of positive keys' outer products
        "prev_S": np.zeros((N, F, E)) if empty else rng.standard_normal((N, F, E)),
        "prev_z": np.zeros((N, F)) if empty else rng.uniform(0.5, 3.0, (N, F)),
    }
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _phi(a, kind="elu"):
    return {"elu": elu_feature_map, "none": lambda x: x, "exp": np.exp, "relu": lambda x: np.maximum(x, 0)}[kind](a)


def _la_step(i, *, phi="elu", normalize=True, read_before_write=False):
    phi_q, phi_k = _phi(i["q"], phi), _phi(i["k"], phi)
    S = i["prev_S"] + phi_k[:, :, None] * i["v"][:, None, :]
    z = i["prev_z"] + phi_k
    read_S, read_z = (i["prev_S"], i["prev_z"]) if read_before_write else (S, z)
    out = (phi_q[:, None, :] @ read_S)[:, 0]
    if normalize:
        out = out / (phi_q * read_z).sum(axis=1, keepdims=True)
    return {"out": out, "S": S, "z": z}


LINEAR_ATTENTION_RNN_STEP = Check(
    name="linear_attention_rnn_step",
    reference=lambda i: dict(zip(("out", "S", "z"), linear_attention_rnn_step(i["q"], i["k"], i["v"], i["prev_S"], i["prev_z"]))),
    visible=(
        Case(
            "empty_memory",
            "an empty memory (prev_S = 0, prev_z = 0): the first step",
            "With an empty memory, S = phi(k)^T v (an outer product, (F, E)), z = phi(k), and out = v: "
            "one value stored, the read returns it.",
            lambda rng: _la_step_inputs(rng, 2, 3, 4, empty=True),
        ),
        Case(
            "general",
            "a memory written by earlier steps, N=2, F=3, E=4",
            "Write first (S = prev_S + phi(k)^T v, z = prev_z + phi(k)), then read: out = phi(q) S / (phi(q) . z).",
            lambda rng: _la_step_inputs(rng, 2, 3, 4),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _la_step_inputs, N=(1, 4), F=(1, 5), E=(1, 5)),
    output_hints={
        "S": "S = prev_S + phi(k)^T v: the outer product of the key's features (F) and the value (E), added.",
        "z": "z = prev_z + phi(k): the sum of the keys' features, the normaliser.",
        "out": "out = phi(q) S / (phi(q) . z), with the S and z after this step's write.",
    },
    mistakes=(
        Mistake("The feature map is missing: phi(a) = elu(a) + 1 (a + 1 for a > 0, exp(a) otherwise), applied to q and k.",
                changed_outputs(_la_step, phi="none")),
        Mistake("The feature map is relu; this exercise uses phi(a) = elu(a) + 1, which is never zero.",
                changed_outputs(_la_step, phi="relu")),
        Mistake("out is not normalised: divide phi(q) S by phi(q) . z.",
                changed_outputs(_la_step, normalize=False)),
        Mistake("The memory is read before this step's write: out uses the S and z that include phi(k)^T v.",
                changed_outputs(_la_step, read_before_write=True)),
    ),
)  # fmt: skip


def _la_inputs(rng, N, T, F, E, dtype=np.float64):
    inputs = {"q": rng.standard_normal((N, T, F)), "k": rng.standard_normal((N, T, F)), "v": rng.standard_normal((N, T, E))}
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _la_sequence(i, *, reset=False, non_causal=False):
    """Linear attention over the sequence with one deliberate mistake."""
    phi_q, phi_k, v = elu_feature_map(i["q"]), elu_feature_map(i["k"]), i["v"]
    if non_causal:
        S = np.einsum("ntf,nte->nfe", phi_k, v)
        z = phi_k.sum(axis=1)
        return {"out": np.einsum("ntf,nfe->nte", phi_q, S) / np.einsum("ntf,nf->nt", phi_q, z)[..., None]}
    if reset:  # every step from an empty memory: out_t = v_t
        return {"out": v.copy()}
    return {"out": linear_attention_rnn_forward(i["q"], i["k"], v)[0]}


LINEAR_ATTENTION_RNN_FORWARD = Check(
    name="linear_attention_rnn_forward",
    reference=lambda i: {"out": linear_attention_rnn_forward(i["q"], i["k"], i["v"])[0]},
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1 the memory holds one value and out[:, 0] = v[:, 0].",
            lambda rng: _la_inputs(rng, 2, 1, 3, 4),
        ),
        Case(
            "general",
            "N=2, T=6, F=3, E=4",
            "Start from an empty memory (S = 0 of shape (N, F, E), z = 0 of shape (N, F)) and carry S and z "
            "from step to step: out_t reads every value written at steps <= t.",
            lambda rng: _la_inputs(rng, 2, 6, 3, 4),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _la_inputs, N=(1, 3), T=(2, 12), F=(1, 4), E=(1, 4)),
    mistakes=(
        Mistake("Every step started from an empty memory: carry S and z from each step to the next.",
                lambda i: _la_sequence(i, reset=True)),
        Mistake("Every position reads the whole sequence: attention as an RNN is causal, out_t reads only the steps <= t.",
                lambda i: _la_sequence(i, non_causal=True)),
    ),
)  # fmt: skip


CHECKS = (ZOH_DISCRETIZE, SELECTIVE_SSM_STEP_FORWARD, LINEAR_ATTENTION_RNN_STEP, LINEAR_ATTENTION_RNN_FORWARD)
