"""How the checks of 03_bptt call the learner's functions (cases and judge: :mod:`rnncourse.checks.bptt`).

The per-step loss of the cases is ``L_t = 0.5 ||h_t - y_t||^2``, so the
callback the learner's function gets is ``loss_grad(h_t, t) = h_t - y[:, t]``:
it is built here from the case's targets ``y`` (a callable cannot cross a
process boundary, an array can), and records the steps it is called for.
"""

import numpy as np

from . import Call, Needs, OutputError, Written, call_and_unpack

ASSIGNMENT = "03_bptt"

PARAMS = ("Wx", "Wh", "b")
GRAD_NAMES = ("Wx", "Wh", "b", "h0")


def loss_grad_of(y, calls):
    """``loss_grad(h_t, t) = h_t - y[:, t]``, appending each ``t`` it is called for to ``calls``."""

    def loss_grad(h_t, t):
        calls.append(int(t))
        return h_t - y[:, int(t)]

    return loss_grad


def expect_dict(value, keys, what):
    """``value`` if it is a dict with exactly ``keys``, else :class:`OutputError` saying what came."""
    if not isinstance(value, dict) or set(value) != set(keys):
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise OutputError(f"{what} is {got}; expected a dict with the keys {', '.join(keys)}")
    return value


def _tbptt_run(fns, i, out):
    calls = []
    updates, out["h_last"] = call_and_unpack(
        fns, "truncated_bptt", ("updates", "h_last"),
        i["x"], i["h0"], i["Wx"], i["Wh"], i["b"], loss_grad_of(i["y"], calls), int(i["k1"]),
    )  # fmt: skip
    out["calls"] = np.array(calls, dtype=np.int64)
    if not isinstance(updates, (list, tuple)):
        raise OutputError(f"updates is a {type(updates).__name__}; expected a list of dicts, one per chunk")
    for name in PARAMS:
        got = [np.asarray(expect_dict(u, PARAMS, f"update {k}")[name]) for k, u in enumerate(updates)]
        out[f"updates.{name}"] = np.stack(got) if got else np.zeros(0)


def _clip_run(fns, i, out):
    grads = {n: i[f"grads.{n}"] for n in PARAMS}
    before = {n: g.copy() for n, g in grads.items()}
    clipped, total_norm = call_and_unpack(
        fns, "clip_grad_norm_global", ("clipped", "total_norm"), grads, float(i["max_norm"])
    )
    expect_dict(clipped, PARAMS, "clipped")
    changed = any(not np.array_equal(grads[n], before[n], equal_nan=True) for n in PARAMS)
    out.update({"total_norm": total_norm, "inputs_changed": np.array(changed)})
    out.update({f"clipped.{n}": clipped[n] for n in PARAMS})


def _rtrl_run(fns, i, out):
    calls = []
    grads, out["h_last"] = call_and_unpack(
        fns, "rtrl", ("grads", "h_last"), i["x"], i["h0"], i["Wx"], i["Wh"], i["b"], loss_grad_of(i["y"], calls)
    )
    out["calls"] = np.array(calls, dtype=np.int64)
    expect_dict(grads, GRAD_NAMES, "grads")
    out.update({f"grads.{n}": grads[n] for n in GRAD_NAMES})


CALLS = (
    Call(
        "truncated_bptt", ASSIGNMENT, 5,
        outputs={"h_last": "N H", "updates.Wx": "U D H", "updates.Wh": "U H H", "updates.b": "U H"},
        run=_tbptt_run,
    ),
    Call(
        "clip_grad_norm_global", ASSIGNMENT, 3,
        outputs={"total_norm": "", "clipped.Wx": "D H", "clipped.Wh": "H H", "clipped.b": "H"},
        run=_clip_run,
    ),
    Call(
        "rtrl", ASSIGNMENT, 6,
        outputs={"h_last": "N H", "grads.Wx": "D H", "grads.Wh": "H H", "grads.b": "H", "grads.h0": "N H"},
        run=_rtrl_run,
    ),
)  # fmt: skip

WRITTEN = (
    Written("q_truncation_bias", ASSIGNMENT, 2, "why chunked truncated BPTT is biased, and when the bias is small"),
    Written("q_rtrl_cost", ASSIGNMENT, 2, "time and memory of RTRL against BPTT"),
    Written("q_clipping", ASSIGNMENT, 2, "global against per-parameter clipping"),
)

# The RNN of assignment 2 is given: truncated BPTT calls it on each chunk.
NEEDS = Needs(course={"rnncourse.numpy": ("rel_error", "rnn_backward", "rnn_forward", "rnn_step_forward")})
