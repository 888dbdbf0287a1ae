"""Checks of assignment 03, backpropagation through time: truncated BPTT, clipping, RTRL (the trusted side).

The learner writes the twins of :func:`rnncourse.numpy.truncated_bptt` (chunks,
``k2 = k1``), :func:`~rnncourse.numpy.clip_grad_norm_global` and
:func:`~rnncourse.numpy.rtrl`. The per-step loss of the cases is
``L_t = 0.5 ||h_t - y_t||^2``, so the callback the learner's function gets is
``loss_grad(h_t, t) = h_t - y[:, t]``; the call
(:mod:`rnncourse.checks.calls.bptt`) builds it from the case's targets ``y``
and records the steps it is called for.
"""

import numpy as np

from rnncourse.numpy import clip_grad_norm, clip_grad_norm_global, rnn_backward, rnn_forward, rtrl, truncated_bptt

from ._core import RAISES, Case, Check, Mistake, describe, nonzero_bias, random_cases, random_dims
from .calls.bptt import GRAD_NAMES, PARAMS, loss_grad_of

def _rnn_inputs(rng, N, T, D, H, dtype=np.float64, *, sigma=0.9):
    return {
        "x": rng.standard_normal((N, T, D)).astype(dtype),
        "h0": rng.uniform(-1, 1, (N, H)).astype(dtype),
        "Wx": (0.7 * rng.standard_normal((D, H))).astype(dtype),
        "Wh": (sigma / np.sqrt(H) * rng.standard_normal((H, H))).astype(dtype),
        "b": nonzero_bias(rng, H, dtype),
        "y": (0.5 * rng.standard_normal((N, T, H))).astype(dtype),
    }


def _check_calls(inputs, outputs, T=None):
    """The message when ``loss_grad`` was not called once per step, in order of t; else None."""
    T = inputs["x"].shape[1] if T is None else T
    calls = [int(t) for t in np.ravel(outputs.get("calls", np.zeros(0, int)))]
    if calls == list(range(T)):
        return None
    shown = ", ".join(map(str, calls[:12])) + (", ..." if len(calls) > 12 else "")
    message = f"loss_grad was called for the steps [{shown}]; expected each step once, in order: 0, 1, ..., {T - 1}."
    if len(calls) == T and calls and max(calls) < T and calls != sorted(calls):
        message += " Pass the step t of the whole sequence, not the position within a chunk."
    elif 0 < len(calls) < T and calls == list(range(len(calls))):
        message += f" The steps from {len(calls)} on were never reached: is the last, shorter chunk skipped?"
    return message


# --- truncated_bptt -------------------------------------------------------------------


def _tbptt_reference(i):
    updates, h_last = truncated_bptt(i["x"], i["h0"], i["Wx"], i["Wh"], i["b"], loss_grad_of(i["y"], []), int(i["k1"]))
    return {"h_last": h_last, **{f"updates.{n}": np.stack([u[n] for u in updates]) for n in PARAMS}}


def _chunked(i, *, carry_state=True):
    """Chunks of k1 steps, each backpropagated within itself; optionally restarting from h0 (a mistake)."""
    x, h0, y, k = i["x"], i["h0"], i["y"], int(i["k1"])
    h_start, updates = h0, []
    for start in range(0, x.shape[1], k):
        h, cache = rnn_forward(x[:, start : start + k], h_start, i["Wx"], i["Wh"], i["b"])
        updates.append(rnn_backward(h - y[:, start : start + k], cache)[2:])
        h_start = h[:, -1] if carry_state else h0
    return {"h_last": h[:, -1], **{f"updates.{n}": np.stack([u[j] for u in updates]) for j, n in enumerate(PARAMS)}}


def _one_dict_for_all(i):
    """Every update is the same dict, added into chunk after chunk: each holds the total."""
    right = _tbptt_reference(i)
    return {k: np.broadcast_to(v.sum(axis=0), v.shape) for k, v in right.items() if k.startswith("updates.")}


def _tbptt_precheck(inputs, outputs, expected):
    message = _check_calls(inputs, outputs)
    if message:
        return message
    T, k = inputs["x"].shape[1], int(inputs["k1"])
    want = expected["updates.Wh"].shape[0]
    got = np.shape(outputs.get("updates.Wh", np.zeros(0)))
    n = got[0] if len(got) == 3 else 0
    if n != want:
        return (
            f"truncated_bptt returned {n} update(s); expected one per chunk of k1 = {k} steps, "
            f"ceil(T / k1) = ceil({T} / {k}) = {want} (the last chunk may be shorter)."
        )
    return None


def _tbptt_inputs(rng, N, T, D, H, k1, dtype=np.float64):
    return {**_rnn_inputs(rng, N, T, D, H, dtype), "k1": np.array(k1)}


def _tbptt_hidden(rng):
    cases = []
    for dtype in (np.float64, np.float64, np.float64, np.float32):
        d = random_dims(rng, N=(1, 3), T=(2, 9), D=(1, 4), H=(1, 5))
        k1 = int(rng.integers(1, d["T"] + 1))
        cases.append((describe({**d, "k1": k1}, dtype), _tbptt_inputs(rng, dtype=dtype, k1=k1, **d)))
    return cases


TRUNCATED_BPTT = Check(
    name="truncated_bptt",
    reference=_tbptt_reference,
    precheck=_tbptt_precheck,
    visible=(
        Case(
            "one_chunk",
            "k1 = T = 4: one chunk, which is full BPTT",
            "With k1 >= T there is one chunk and its update is the full BPTT gradient of sum_t L_t.",
            lambda rng: _tbptt_inputs(rng, 2, 4, 3, 5, k1=4),
        ),
        Case(
            "even_chunks",
            "T = 6, k1 = 2: three chunks",
            "Chunk i runs from the last state of chunk i-1; its update backpropagates its own losses within it.",
            lambda rng: _tbptt_inputs(rng, 2, 6, 3, 5, k1=2),
        ),
        Case(
            "short_last_chunk",
            "T = 7, k1 = 3: the last chunk has one step",
            "The last chunk, shorter than k1, makes an update too.",
            lambda rng: _tbptt_inputs(rng, 2, 7, 3, 5, k1=3),
        ),
    ),
    hidden=_tbptt_hidden,
    output_hints={
        "h_last": "h_last is the state after the last step of the whole sequence, as rnn_forward on all of x gives.",
    },
    mistakes=(
        Mistake(
            "Each chunk restarted from h0: carry the state from one chunk to the next (cut only the gradient).",
            lambda i: _chunked(i, carry_state=False),
        ),
        Mistake(
            "Every update holds the total of all chunks: appending one dict and adding into it makes "
            "each entry of the list the same object. Give each chunk its own dict of new arrays.",
            _one_dict_for_all,
        ),
    ),
)


# --- clip_grad_norm_global ------------------------------------------------------------


def _clip_reference(i):
    grads = {n: i[f"grads.{n}"] for n in PARAMS}
    if not all(np.isfinite(g).all() for g in grads.values()):
        return {RAISES: "ValueError"}
    clipped, total_norm = clip_grad_norm_global(grads, float(i["max_norm"]))
    return {"total_norm": np.float64(total_norm), **{f"clipped.{n}": clipped[n] for n in PARAMS}}


def _clip_precheck(inputs, outputs, expected):
    if bool(np.any(outputs.get("inputs_changed", False))):
        return "clip_grad_norm_global wrote into the arrays of grads: return new arrays and leave grads as it was."
    return None


def _total_norm(i):
    return float(np.sqrt(sum(np.sum(i[f"grads.{n}"] ** 2) for n in PARAMS)))


def _scaled(i, factor):
    return {f"clipped.{n}": i[f"grads.{n}"] * factor for n in PARAMS}


def _grads(rng, D, H, scales=(1.0, 1.0, 1.0), max_norm=1.0, dtype=np.float64, inf=False):
    shapes = {"Wx": (D, H), "Wh": (H, H), "b": (H,)}
    g = {f"grads.{n}": (s * rng.standard_normal(shapes[n])).astype(dtype) for n, s in zip(PARAMS, scales)}
    if inf:
        g["grads.Wh"][0, 0] = np.inf
    return {**g, "max_norm": np.array(float(max_norm))}


def _clip_hidden(rng):
    cases = []
    for dtype in (np.float64, np.float64, np.float64, np.float32):
        d = random_dims(rng, D=(1, 5), H=(1, 5))
        scales = tuple(10.0 ** rng.uniform(-2, 1, 3))
        max_norm = float(10.0 ** rng.uniform(-1, 1))
        cases.append((describe({**d, "max_norm": round(max_norm, 3)}, dtype), _grads(rng, **d, scales=scales, max_norm=max_norm, dtype=dtype)))
    return cases


CLIP_GRAD_NORM_GLOBAL = Check(
    name="clip_grad_norm_global",
    reference=_clip_reference,
    precheck=_clip_precheck,
    visible=(
        Case(
            "below",
            "total norm below max_norm",
            "When total_norm + 1e-6 <= max_norm the gradients come back unchanged: the factor is min(1, ...).",
            lambda rng: _grads(rng, 3, 4, scales=(0.1, 0.1, 0.1), max_norm=5.0),
        ),
        Case(
            "one_large",
            "total norm above max_norm, one gradient much larger than the others",
            "Every gradient is multiplied by the same factor, max_norm / (total_norm + 1e-6).",
            lambda rng: _grads(rng, 3, 4, scales=(10.0, 0.5, 0.01), max_norm=2.0),
        ),
        Case(
            "not_finite",
            "a gradient holds inf",
            "A total norm that is inf or nan cannot be clipped: raise ValueError.",
            lambda rng: _grads(rng, 3, 4, inf=True),
        ),
    ),
    hidden=_clip_hidden,
    output_hints={
        "total_norm": "total_norm = sqrt(sum over all gradients of the sum of their squared entries), before clipping.",
    },
    mistakes=(
        Mistake(
            "Each gradient was clipped to its own norm; global clipping scales all of them by one factor.",
            lambda i: {f"clipped.{n}": g for n, g in clip_grad_norm({n: i[f"grads.{n}"] for n in PARAMS}, float(i["max_norm"]))[0].items()},
        ),
        Mistake(
            "The gradients were scaled up: when the norm is below max_norm the factor is 1 (min(1, ...)).",
            lambda i: _scaled(i, float(i["max_norm"]) / (_total_norm(i) + 1e-6)),
        ),
        Mistake(
            "The total norm is the sum of the gradients' norms; it is the square root of the sum of their squares.",
            lambda i: {"total_norm": np.float64(sum(np.linalg.norm(i[f"grads.{n}"]) for n in PARAMS))},
        ),
        Mistake(
            "total_norm is the squared norm: take the square root.",
            lambda i: {"total_norm": np.float64(_total_norm(i) ** 2)},
        ),
        Mistake(
            "Divide by total_norm + 1e-6, as torch.nn.utils.clip_grad_norm_ does, not by total_norm.",
            lambda i: _scaled(i, min(1.0, float(i["max_norm"]) / _total_norm(i))),
        ),
    ),
)


# --- rtrl -----------------------------------------------------------------------------

def _rtrl_reference(i):
    grads, h_last = rtrl(i["x"], i["h0"], i["Wx"], i["Wh"], i["b"], loss_grad_of(i["y"], []))
    return {"h_last": h_last, **{f"grads.{n}": grads[n] for n in GRAD_NAMES}}


def _rtrl_variant(i, *, carry=True, derivative=True, direct_state="previous"):
    """RTRL with one deliberate mistake, to recognise it in a learner's gradients.

    Sensitivities per sequence n: ``S_W[n, k, i, j] = d h_t[n, k] / d W[i, j]``.
    carry=False drops the term through Wh (the previous sensitivities) for
    the weights and the bias;
    derivative=False drops tanh'; direct_state="current" puts h_t instead of
    h_{t-1} in the direct term of the Wh sensitivity.
    """
    x, h0, Wx, Wh, b, y = i["x"], i["h0"], i["Wx"], i["Wh"], i["b"], i["y"]
    N, T, D = x.shape
    H = h0.shape[1]
    eye = np.eye(H)
    S = {"Wx": np.zeros((N, H, D, H)), "Wh": np.zeros((N, H, H, H)), "b": np.zeros((N, H, H)),
         "h0": np.broadcast_to(eye, (N, H, H)).copy()}  # fmt: skip
    g = {n: np.zeros(S[n].shape[2:]) if n != "h0" else np.zeros((N, H)) for n in GRAD_NAMES}
    h_prev = h0
    for t in range(T):
        h = np.tanh(x[:, t] @ Wx + h_prev @ Wh + b)
        dphi = (1 - h**2) if derivative else np.ones_like(h)
        state = h_prev if direct_state == "previous" else h
        direct = {
            "Wx": eye[None, :, None, :] * x[:, t][:, None, :, None],
            "Wh": eye[None, :, None, :] * state[:, None, :, None],
            "b": np.broadcast_to(eye, (N, H, H)),
            "h0": 0.0,
        }
        for n in GRAD_NAMES:
            # h0 reaches h_t only through Wh: without that term it would have no gradient at all.
            through = np.einsum("mk,nm...->nk...", Wh, S[n]) if carry or n == "h0" else 0.0
            S[n] = (through + direct[n]) * dphi.reshape(N, H, *([1] * (S[n].ndim - 2)))
        dh = h - y[:, t]
        for n in ("Wx", "Wh", "b"):
            g[n] += np.einsum("nk,nk...->...", dh, S[n])
        g["h0"] += np.einsum("nk,nki->ni", dh, S["h0"])
        h_prev = h
    return {f"grads.{n}": g[n] for n in GRAD_NAMES}


def _rtrl_precheck(inputs, outputs, expected):
    return _check_calls(inputs, outputs)


def _rtrl_hidden(rng):
    return random_cases(rng, _rnn_inputs, (np.float64, np.float64, np.float32), N=(1, 2), T=(1, 5), D=(1, 3), H=(1, 4))


RTRL = Check(
    name="rtrl",
    reference=_rtrl_reference,
    precheck=_rtrl_precheck,
    visible=(
        Case(
            "one_step",
            "one step (T = 1), N=1, D=2, H=3",
            "With one step the sensitivities are just the direct terms times tanh'(a_1) = 1 - h_1**2.",
            lambda rng: _rnn_inputs(rng, 1, 1, 2, 3),
        ),
        Case(
            "three_steps",
            "T = 3, N=1, D=2, H=3",
            "From the second step on, each sensitivity also gets the previous one through Wh.",
            lambda rng: _rnn_inputs(rng, 1, 3, 2, 3),
        ),
        Case(
            "batch",
            "a batch, N=2, T=4, D=2, H=3",
            "Each sequence of the batch has its own sensitivities; the gradients of the weights sum over the batch.",
            lambda rng: _rnn_inputs(rng, 2, 4, 2, 3),
        ),
    ),
    hidden=_rtrl_hidden,
    output_hints={
        "h_last": "h_last is the state after the last step, as rnn_forward gives.",
        "grads.h0": "h0 reaches h_t only through Wh, step after step: its sensitivity starts as the identity "
        "(d h0 / d h0 = I) and, unlike the weights', has no direct term.",
    },
    mistakes=(
        Mistake(
            "The sensitivities are not carried: d h_t / d theta also depends on d h_{t-1} / d theta, "
            "through Wh (sum_m Wh[m, k] d h_{t-1}[m] / d theta).",
            lambda i: {k: v for k, v in _rtrl_variant(i, carry=False).items() if k != "grads.h0"},
        ),
        Mistake(
            "The tanh derivative is missing: multiply each new sensitivity by tanh'(a_t) = 1 - h_t**2.",
            lambda i: _rtrl_variant(i, derivative=False),
        ),
        Mistake(
            "The direct term of d h_t / d Wh holds h_{t-1}, the state the step started from, not h_t.",
            lambda i: {"grads.Wh": _rtrl_variant(i, direct_state="current")["grads.Wh"]},
        ),
    ),
)


CHECKS = (TRUNCATED_BPTT, CLIP_GRAD_NORM_GLOBAL, RTRL)
