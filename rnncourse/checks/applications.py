"""Checks of assignment 07, applications: the pieces around a model, and training one.

The learner writes five small functions and trains one model:

- ``bits_per_character(scores, y, mask=None)``: the metric of a character
  model, the twin of :func:`rnncourse.numpy.temporal_softmax_loss` divided
  by ``ln 2`` (bits, not nats), over the unmasked steps only;
- ``pad_sequences(sequences, pad_value=0)``: a batch of variable-length
  sequences as one padded array, with the lengths and the mask;
- ``last_states(h, lengths)``: the state of each sequence of a padded batch
  at its own last step, what a many-to-one model must read (``h[:, -1]``
  has read the padding);
- ``sample_with_temperature(logits, temperature, u)``: one draw from
  ``softmax(logits / temperature)`` by inverse-CDF, with the uniform numbers
  ``u`` given by the check (so no check depends on the learner's random
  draws), as :meth:`rnncourse.numpy.CharRNN.sample` draws;
- ``seasonal_naive(y, season, horizon)``: the baseline every forecaster
  must beat, the last season repeated;
- ``train_char_lm(ids, vocab_size)`` (the hard one): train a character
  model on a stretch of text and return its parameters, laid out as
  :attr:`rnncourse.numpy.CharRNN.params`.

This is the trusted side: the references, cases and known mistakes. How
the functions are called: :mod:`rnncourse.checks.calls.applications`.

The training check compares nothing with reference outputs. The sandbox
runs the learner's training and sends back the parameters (plain arrays);
the trusted side rebuilds the model from them, measures the bits per
character on held-out text that the learner's function never received
(:mod:`rnncourse.checks.char_lm`, which also gives the notebook its data),
and awards the points when it is below
:data:`~rnncourse.checks.char_lm.THRESHOLD_BPC`. Its ``precheck`` holds that
verdict (see :func:`_train_precheck`); the reference outputs are empty, so
nothing else is compared.
"""

import numpy as np

from rnncourse.numpy import Adam, CharRNN, clip_grad_norm_global, softmax, temporal_softmax_loss

from ._core import Case, Check, Mistake, describe, random_cases, random_dims
from .calls import format_shape
from .calls.applications import PARAMS_PREFIX, split_sequences
from .char_lm import (
    BLOCK,
    THRESHOLD_BPC,
    TRAIN_STRETCH,
    VOCAB_SIZE,
    ParamsError,
    baseline_bits_per_character,
    char_lm_data,
    char_lm_scores,
    heldout_bits_per_character,
    letters_text,
    model_of,
)

# --- the references, in the learner's signatures -------------------------------------
# The checks compute their expected outputs with the first five; the tests
# use all six as the right answers (exercisetools.right_answers).


def bits_per_character(scores, y, mask=None):
    """Mean of ``-log2 softmax(scores)[y]`` over the unmasked steps: scores (N, T, V), y (N, T), mask (N, T)."""
    cross_entropy, _ = temporal_softmax_loss(scores, y, mask)
    return float(cross_entropy) / np.log(2)


def pad_sequences(sequences, pad_value=0):
    """A list of N 1-D sequences as ``padded (N, T)``, ``lengths (N,)``, ``mask (N, T)``; padding at the end."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    T = int(lengths.max())
    mask = np.arange(T)[None, :] < lengths[:, None]
    padded = np.full((len(sequences), T), pad_value, dtype=np.result_type(*sequences))
    padded[mask] = np.concatenate(sequences)
    return padded, lengths, mask


def last_states(h, lengths):
    """``h_last[n] = h[n, lengths[n] - 1]``, each sequence's state at its own last step: h (N, T, H), lengths (N,)."""
    return h[np.arange(h.shape[0]), np.asarray(lengths) - 1]


def sample_with_temperature(logits, temperature, u):
    """``idx`` (N,), the first index whose cumulative probability exceeds ``u``, and ``probs`` (N, V).

    ``probs = softmax(logits / temperature)``, one row per draw.
    """
    probs = softmax(logits / temperature, axis=-1)  # rnncourse.numpy.softmax shifts by the maximum first
    cdf = np.cumsum(probs, axis=-1)
    idx = np.minimum((cdf <= u[:, None]).sum(axis=-1), probs.shape[-1] - 1)
    return idx, probs


def seasonal_naive(y, season, horizon):
    """``forecast[:, s] = y[:, T - season + (s % season)]`` for s < horizon: the last season repeated."""
    T = y.shape[1]
    return y[:, T - season + np.arange(horizon) % season]


def train_char_lm(ids, vocab_size, *, hidden_size=64, steps=400, seed=0):
    """A tanh CharRNN trained on ``ids`` (L,) with Adam on random windows; returns ``model.params``."""
    rng = np.random.default_rng(seed)
    model = CharRNN(vocab_size, hidden_size, cell="rnn", embed_size=16, rng=rng)
    optimizer = Adam(model.params, lr=1e-2)
    N, T = 32, 32
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - T, size=N)
        window = ids[starts[:, None] + np.arange(T + 1)]
        _, grads = model.loss(window[:, :-1], window[:, 1:])
        grads, _ = clip_grad_norm_global(grads, 5.0)
        optimizer.step(grads)
    return model.params


REFERENCES = {
    "bits_per_character": bits_per_character,
    "pad_sequences": pad_sequences,
    "last_states": last_states,
    "sample_with_temperature": sample_with_temperature,
    "seasonal_naive": seasonal_naive,
    "train_char_lm": train_char_lm,
}
"""Name -> a right answer, for every function of this assignment (the tests use them)."""


def _changed(i, reference, buggy):
    """The outputs of a mistake that differ from the reference's: a mistake is recognised by those only."""
    right = reference(i)
    return {k: v for k, v in buggy.items() if not (np.shape(v) == np.shape(right[k]) and np.allclose(v, right[k]))}


# --- bits_per_character ---------------------------------------------------------------


def _bpc_reference(i):
    return {"bpc": np.float64(bits_per_character(i["scores"], i["y"], i.get("mask")))}


def _log2_p_of_y(i):
    scores = i["scores"]
    shifted = scores - scores.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    y = np.where(i["mask"], i["y"], 0) if "mask" in i else i["y"]
    return np.take_along_axis(logp, y[..., None], axis=-1)[..., 0] / np.log(2)


def _mask(i):
    return i["mask"].astype(bool) if "mask" in i else np.ones(i["y"].shape, bool)


def _bpc_inputs(rng, N, T, V, dtype=np.float64, *, scale=2.0, lengths=None):
    scores = (np.round(1024 * scale * rng.standard_normal((N, T, V))) / 1024).astype(dtype)  # exact in float32
    y = rng.integers(0, V, (N, T))
    inputs = {"scores": scores, "y": y}
    if lengths is not None:
        mask = np.arange(T)[None, :] < np.asarray(lengths)[:, None]
        inputs["y"] = np.where(mask, y, 0)  # what pad_sequences(..., pad_value=0) would give
        inputs["mask"] = mask
    return inputs


def _bpc_hidden(rng):
    cases = []
    for dtype, masked in ((np.float64, False), (np.float64, True), (np.float64, True), (np.float32, True)):
        d = random_dims(rng, N=(1, 4), T=(2, 7), V=(2, 9))
        lengths = rng.integers(1, d["T"] + 1, d["N"]) if masked else None
        text = describe(d, dtype) + (", with a mask" if masked else "")
        cases.append((text, _bpc_inputs(rng, dtype=dtype, lengths=lengths, **d)))
    return cases


def _overflow_precheck(output, what):
    """A precheck: the message when ``output`` holds NaN or inf (an overflowing exp), else None."""

    def precheck(inputs, outputs, expected):
        got = outputs.get(output)
        if got is not None and got.dtype.kind == "f" and not np.all(np.isfinite(got)):
            return (
                f"{output} holds NaN or inf: exp overflowed. {what} "
                "(softmax does not change when a row is shifted)."
            )
        return None

    return precheck


_ONE_NUMBER = "Bits per character is one number for the whole batch: the mean over every (unmasked) step."

BITS_PER_CHARACTER = Check(
    name="bits_per_character",
    reference=_bpc_reference,
    precheck=_overflow_precheck("bpc", "Compute log-softmax with each row's largest score subtracted first"),
    visible=(
        Case(
            "uniform",
            "a uniform model over V=8 characters (all scores 0)",
            "A model that spreads its probability evenly over V characters needs log2 V bits per character: "
            "log2 8 = 3 here.",
            lambda rng: {"scores": np.zeros((2, 3, 8)), "y": rng.integers(0, 8, (2, 3))},
            shape_hint=_ONE_NUMBER,
        ),
        Case(
            "general",
            "N=2, T=4, V=5",
            "bpc = -mean over (n, t) of log2 softmax(scores[n, t])[y[n, t]].",
            lambda rng: _bpc_inputs(rng, 2, 4, 5),
            shape_hint=_ONE_NUMBER,
        ),
        Case(
            "padded",
            "a padded batch: lengths 5, 2 and 3, mask given",
            "Only the steps where mask is True count: average over those sum(mask) characters and ignore "
            "the rest, whatever y holds there.",
            lambda rng: _bpc_inputs(rng, 3, 5, 6, lengths=[5, 2, 3]),
            shape_hint=_ONE_NUMBER,
        ),
        Case(
            "large_scores",
            "scores of several hundreds",
            "exp overflows for scores this large: compute log-softmax as (s - max) - log(sum(exp(s - max))), "
            "row by row.",
            lambda rng: _bpc_inputs(rng, 2, 3, 5, scale=300.0),
            shape_hint=_ONE_NUMBER,
        ),
    ),
    hidden=_bpc_hidden,
    mistakes=(
        Mistake(
            "That is in nats (natural log); bits use log base 2: divide by ln 2.",
            lambda i: {"bpc": -_log2_p_of_y(i)[_mask(i)].mean() * np.log(2)},
        ),
        Mistake(
            "That is in base 10; bits use log base 2.",
            lambda i: {"bpc": -_log2_p_of_y(i)[_mask(i)].mean() * np.log10(2)},
        ),
        Mistake(
            "That is the perplexity, 2 ** bpc; return the bits per character themselves.",
            lambda i: {"bpc": 2.0 ** (-_log2_p_of_y(i)[_mask(i)].mean())},
        ),
        Mistake(
            "The padded steps were counted: average only over the steps where mask is True.",
            lambda i: {"bpc": -_log2_p_of_y({k: v for k, v in i.items() if k != "mask"}).mean()},
            applies=lambda i: "mask" in i,
        ),
        Mistake(
            "The sum over the real characters was divided by N * T: divide by their number, mask.sum().",
            lambda i: {"bpc": -_log2_p_of_y(i)[_mask(i)].sum() / _mask(i).size},
            applies=lambda i: "mask" in i,
        ),
        Mistake(
            "The bits were summed; bits per *character* is their mean.",
            lambda i: {"bpc": -_log2_p_of_y(i)[_mask(i)].sum()},
        ),
        Mistake(
            "Read the probability of the correct character y[n, t], not the largest one.",
            lambda i: {"bpc": -(np.log2(softmax(i["scores"]).max(axis=-1)))[_mask(i)].mean()},
        ),
    ),
)


# --- pad_sequences --------------------------------------------------------------------


def _pad_reference(i):
    return dict(zip(("padded", "lengths", "mask"), pad_sequences(split_sequences(i), int(i["pad_value"]))))


def _pad_inputs(seqs, pad_value):
    return {
        "flat": np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]),
        "lengths": np.array([len(s) for s in seqs], dtype=np.int64),
        "pad_value": np.array(pad_value),
    }


def _pre_padding(i):
    padded, lengths, mask = _pad_reference(i).values()
    T = padded.shape[1]
    pre = np.full_like(padded, int(i["pad_value"]))
    for n, s in enumerate(split_sequences(i)):
        pre[n, T - len(s) :] = s
    return {"padded": pre, "mask": mask[:, ::-1]}


def _counted_lengths(i):
    padded = _pad_reference(i)["padded"]
    mask = padded != int(i["pad_value"])
    return {"lengths": mask.sum(axis=1), "mask": mask}


def _pad_hidden(rng):
    cases = []
    for _ in range(4):
        d = random_dims(rng, N=(1, 5), V=(2, 9))
        lengths = rng.integers(1, 8, d["N"])
        pad_value = int(rng.choice([0, -1, d["V"]]))
        seqs = [rng.integers(0, d["V"], L) for L in lengths]
        text = f"N={d['N']}, lengths {', '.join(map(str, lengths))}, pad_value={pad_value}"
        cases.append((text, _pad_inputs(seqs, pad_value)))
    return cases


_PAD_SHAPE = "T is the length of the longest sequence; each row holds one sequence."

PAD_SEQUENCES = Check(
    name="pad_sequences",
    reference=_pad_reference,
    visible=(
        Case(
            "equal_lengths",
            "two sequences of length 4 (nothing to pad)",
            "With equal lengths, padded is the sequences stacked as rows, lengths is 4 for each and mask is all True.",
            lambda rng: _pad_inputs([[3, 1, 4, 1], [5, 2, 6, 5]], 0),
            shape_hint=_PAD_SHAPE,
        ),
        Case(
            "post_padding",
            "lengths 5, 2 and 3, pad_value = -1",
            "Sequence n fills padded[n, :lengths[n]]; the rest of its row is pad_value, and mask is True "
            "exactly at the real tokens.",
            lambda rng: _pad_inputs([[7, 3, 2, 8, 1], [4, 4], [6, 1, 9]], -1),
            shape_hint=_PAD_SHAPE,
        ),
        Case(
            "pad_value_in_data",
            "real tokens equal to pad_value = 0",
            "A real token may equal pad_value: lengths and mask come from the lengths of the sequences, "
            "not from comparing tokens with pad_value.",
            lambda rng: _pad_inputs([[2, 0, 5], [0, 3], [1, 0, 0, 4], [6, 4]], 0),
            shape_hint=_PAD_SHAPE,
        ),
    ),
    hidden=_pad_hidden,
    output_hints={
        "padded": "Sequence n fills padded[n, :lengths[n]]; the rest of its row is pad_value.",
        "lengths": "lengths[n] = len(sequences[n]), the number of real tokens.",
        "mask": "mask[n, t] is True for t < lengths[n] (a real token) and False on the padding.",
    },
    mistakes=(
        Mistake(
            "The padding went before the tokens; put it after them, so that sequence n is "
            "padded[n, :lengths[n]] (what pack_padded_sequence and a many-to-one model expect).",
            _pre_padding,
        ),
        Mistake(
            "lengths[n] is the number of tokens of sequence n, len(sequences[n]), not the index of its last token.",
            lambda i: {"lengths": i["lengths"] - 1},
        ),
        Mistake(
            "The mask is inverted: True marks a real token, False the padding.",
            lambda i: {"mask": ~_pad_reference(i)["mask"]},
        ),
        Mistake(
            "lengths and mask were found by comparing tokens with pad_value, but a real token can equal "
            "pad_value: use len(sequences[n]).",
            _counted_lengths,
        ),
        Mistake(
            "The mask was found by comparing tokens with pad_value, but a real token can equal pad_value: "
            "mask[n, t] = t < lengths[n].",
            lambda i: {"mask": _counted_lengths(i)["mask"]},
        ),
        Mistake(
            "The padding is 0 instead of pad_value.",
            lambda i: {"padded": np.where(_pad_reference(i)["mask"], _pad_reference(i)["padded"], 0)},
            applies=lambda i: int(i["pad_value"]) != 0,
        ),
    ),
)


# --- last_states ----------------------------------------------------------------------


def _last_inputs(rng, N, T, H, dtype=np.float64, lengths=None):
    lengths = rng.integers(1, T + 1, N) if lengths is None else np.asarray(lengths)
    return {"h": rng.uniform(-1, 1, (N, T, H)).astype(dtype), "lengths": lengths.astype(np.int64)}


def _last_precheck(inputs, outputs, expected):
    N, _, H = inputs["h"].shape
    got = outputs.get("h_last")
    if got is not None and got.shape == (N, N, H) and N > 1:
        return (
            f"h_last has shape {format_shape(got.shape)}: h[:, lengths - 1] picks every length for every sequence. "
            "Index the batch and time axes together: h[np.arange(N), lengths - 1]."
        )
    return None


def _last_hidden(rng):
    return random_cases(rng, _last_inputs, (np.float64, np.float64, np.float32), N=(1, 5), T=(1, 7), H=(1, 5))


LAST_STATES = Check(
    name="last_states",
    reference=lambda i: {"h_last": last_states(i["h"], i["lengths"])},
    precheck=_last_precheck,
    visible=(
        Case(
            "no_padding",
            "two sequences of the full length T = 3",
            "Without padding, the last state of every sequence is h[:, -1].",
            lambda rng: _last_inputs(rng, 2, 3, 4, lengths=[3, 3]),
        ),
        Case(
            "padded",
            "lengths 5, 2 and 3 in a batch padded to T = 5",
            "Sequence n ends at step lengths[n] - 1: h_last[n] = h[n, lengths[n] - 1], not a state computed "
            "on the padding.",
            lambda rng: _last_inputs(rng, 3, 5, 2, lengths=[5, 2, 3]),
        ),
        Case(
            "length_one",
            "a sequence of length 1 beside one of length 4",
            "A sequence of length 1 ends at step 0.",
            lambda rng: _last_inputs(rng, 2, 4, 3, lengths=[1, 4]),
        ),
    ),
    hidden=_last_hidden,
    mistakes=(
        Mistake(
            "That is h[:, -1], the state at the last padded step: a shorter sequence has read padding by then. "
            "Take each sequence's own last step, h[n, lengths[n] - 1].",
            lambda i: {"h_last": i["h"][:, -1]},
        ),
        Mistake(
            "Off by one: lengths[n] counts the tokens, so the last one is at index lengths[n] - 1.",
            lambda i: {"h_last": i["h"][np.arange(len(i["lengths"])), np.minimum(i["lengths"], i["h"].shape[1] - 1)]},
        ),
        Mistake(
            "That is the mean of the states over the real steps (masked pooling), another summary; "
            "the state at the last real step is h[n, lengths[n] - 1].",
            lambda i: {"h_last": (i["h"] * (np.arange(i["h"].shape[1]) < i["lengths"][:, None])[..., None]).sum(axis=1)
                       / i["lengths"][:, None]},  # fmt: skip
        ),
    ),
)


# --- sample_with_temperature ----------------------------------------------------------


def _sample_reference(i):
    idx, probs = sample_with_temperature(i["logits"], float(i["temperature"]), i["u"])
    return {"probs": probs, "idx": idx}


def _drawn(i, probs):
    """What a mistake gives when its probabilities are ``probs`` and it draws from them correctly."""
    cdf = np.cumsum(probs, axis=-1)
    with np.errstate(invalid="ignore"):
        idx = np.minimum((cdf <= i["u"][:, None]).sum(axis=-1), probs.shape[-1] - 1)
    return _changed(i, _sample_reference, {"probs": probs, "idx": idx})


def _sample_inputs(rng, N, V, dtype=np.float64, *, temperature=1.0, scale=2.0, offset=0.0, not_greedy=False):
    """Logits and u with every u at least 1e-3 away from a step of the cumulative distribution."""
    while True:
        # Multiples of 1/1024: exact in float32 too, even near 1000, so a float32 answer sees the same logits.
        logits = np.round(1024 * (offset + scale * rng.standard_normal((N, V)))) / 1024
        u = rng.random(N)
        idx, probs = sample_with_temperature(logits, temperature, u)
        cdf = np.cumsum(probs, axis=-1)
        clear = np.abs(cdf - u[:, None]).min() > 1e-3
        if clear and (not not_greedy or np.any(idx != probs.argmax(axis=-1))):
            return {"logits": logits.astype(dtype), "temperature": np.array(temperature), "u": u.astype(dtype)}


def _sample_hidden(rng):
    cases = []
    for dtype in (np.float64, np.float64, np.float32):
        d = random_dims(rng, N=(1, 5), V=(2, 9))
        temperature = float(np.round(rng.uniform(0.25, 3.0), 2))
        inputs = _sample_inputs(rng, dtype=dtype, temperature=temperature, **d)
        cases.append((describe(d, dtype) + f", temperature {temperature}", inputs))
    return cases


SAMPLE_WITH_TEMPERATURE = Check(
    name="sample_with_temperature",
    reference=_sample_reference,
    precheck=_overflow_precheck("probs", "Subtract each row's largest value from logits / temperature before exp"),
    visible=(
        Case(
            "temperature_one",
            "temperature 1, N=3, V=5",
            "At temperature 1, probs is the softmax of each row of logits.",
            lambda rng: _sample_inputs(rng, 3, 5, not_greedy=True),
        ),
        Case(
            "cold",
            "temperature 0.5",
            "probs = softmax(logits / temperature): a temperature below 1 sharpens the distribution.",
            lambda rng: _sample_inputs(rng, 3, 5, temperature=0.5),
        ),
        Case(
            "hot",
            "temperature 2",
            "probs = softmax(logits / temperature): a temperature above 1 flattens the distribution.",
            lambda rng: _sample_inputs(rng, 3, 5, temperature=2.0),
        ),
        Case(
            "large_logits",
            "logits near 1000, temperature 0.5",
            "exp overflows for logits this large: subtract each row's largest value before exp "
            "(softmax does not change when a row is shifted).",
            lambda rng: _sample_inputs(rng, 2, 4, temperature=0.5, offset=1000.0),
        ),
    ),
    hidden=_sample_hidden,
    output_hints={
        "*": "probs is wrong, and idx, drawn from it, too: probs = softmax(logits / temperature), one "
        "distribution per row.",
        "idx": "idx[n] is the first index i whose cumulative probability probs[n, 0] + ... + probs[n, i] "
        "exceeds u[n] (inverse-CDF sampling).",
    },
    mistakes=(
        Mistake(
            "The logits were multiplied by the temperature; divide them: softmax(logits / temperature).",
            lambda i: _drawn(i, softmax(i["logits"] * float(i["temperature"]))),
            applies=lambda i: float(i["temperature"]) != 1,
        ),
        Mistake(
            "The temperature was not used: probs = softmax(logits / temperature).",
            lambda i: _drawn(i, softmax(i["logits"])),
            applies=lambda i: float(i["temperature"]) != 1,
        ),
        Mistake(
            "The softmax ran over the batch axis; each row is one distribution over the V characters "
            "and must sum to 1 (axis=-1).",
            lambda i: _drawn(i, softmax(i["logits"] / float(i["temperature"]), axis=0)),
            applies=lambda i: i["logits"].shape[0] > 1,
        ),
        Mistake(
            "probs ** (1 / temperature) must be divided by its sum to be a distribution again "
            "(or use softmax(logits / temperature)).",
            lambda i: _drawn(i, softmax(i["logits"]) ** (1 / float(i["temperature"]))),
            applies=lambda i: float(i["temperature"]) != 1,
        ),
        Mistake(
            "idx is the most likely index, whatever u: draw it with u instead, the first index whose "
            "cumulative probability exceeds u[n].",
            lambda i: _changed(i, _sample_reference, {"idx": _sample_reference(i)["probs"].argmax(axis=-1)}),
        ),
        Mistake(
            "idx is one too small: it is the first index whose cumulative probability *exceeds* u[n], "
            "counting from 0.",
            lambda i: _changed(i, _sample_reference, {"idx": np.maximum(_sample_reference(i)["idx"] - 1, 0)}),
        ),
    ),
)


# --- seasonal_naive -------------------------------------------------------------------


def _seasonal_reference(i):
    return {"forecast": seasonal_naive(i["y"], int(i["season"]), int(i["horizon"]))}


def _seasonal_inputs(rng, N, T, season, horizon, dtype=np.float64):
    pattern = 3 * rng.standard_normal(season)
    y = pattern[np.arange(T) % season] + 0.5 * rng.standard_normal((N, T)) + 10
    return {"y": y.astype(dtype), "season": np.array(season), "horizon": np.array(horizon)}


def _lagged(i, first):
    """forecast[:, s] = y[:, first + (s % m)]: the right forecast when first = T - m."""
    m, S = int(i["season"]), int(i["horizon"])
    return {"forecast": i["y"][:, first + np.arange(S) % m]}


def _last_season(i):
    return i["y"][:, i["y"].shape[1] - int(i["season"]) :]


def _seasonal_hidden(rng):
    cases = []
    for dtype in (np.float64, np.float64, np.float64, np.float32):
        d = random_dims(rng, N=(1, 4), season=(1, 7))
        d["T"] = int(rng.integers(d["season"] + 1, 3 * d["season"] + 6))
        d["horizon"] = int(rng.integers(1, 2 * d["season"] + 4))
        cases.append((describe(d, dtype), _seasonal_inputs(rng, d["N"], d["T"], d["season"], d["horizon"], dtype)))
    return cases


_HORIZON_COLUMNS = "The forecast has one column per step ahead: S = horizon columns."

SEASONAL_NAIVE = Check(
    name="seasonal_naive",
    reference=_seasonal_reference,
    visible=(
        Case(
            "one_season",
            "season m = 4, horizon S = 4, T = 12",
            "For the next m steps, the forecast is the last m values, in order: y[:, T-m:].",
            lambda rng: _seasonal_inputs(rng, 2, 12, 4, 4),
            shape_hint=_HORIZON_COLUMNS,
        ),
        Case(
            "longer_horizon",
            "season m = 4, horizon S = 10, T = 12",
            "Beyond one season, repeat the last season: forecast[:, s] = y[:, T - m + (s % m)].",
            lambda rng: _seasonal_inputs(rng, 2, 12, 4, 10),
            shape_hint="The forecast has S = horizon columns: repeat the last season as often as needed, then cut.",
        ),
        Case(
            "shorter_horizon",
            "season m = 5, horizon S = 2, T = 10",
            "With S < m, the forecast is the first S values of the last season: y[:, T-m : T-m+S].",
            lambda rng: _seasonal_inputs(rng, 1, 10, 5, 2),
            shape_hint=_HORIZON_COLUMNS,
        ),
        Case(
            "season_one",
            "season m = 1, horizon S = 3",
            "With m = 1 the seasonal naive forecast is the naive one: the last value, repeated.",
            lambda rng: _seasonal_inputs(rng, 2, 6, 1, 3),
            shape_hint=_HORIZON_COLUMNS,
        ),
    ),
    hidden=_seasonal_hidden,
    mistakes=(
        Mistake(
            "That is the naive forecast, the last value repeated; the seasonal naive forecast repeats the "
            "last full season: forecast[:, s] = y[:, T - m + (s % m)].",
            lambda i: {"forecast": np.repeat(i["y"][:, -1:], int(i["horizon"]), axis=1)},
            applies=lambda i: int(i["season"]) > 1,
        ),
        Mistake(
            "The lag is off by one: step T + s copies the value one season earlier, y[:, T + s - m] "
            "(for s < m), so the last season is y[:, T-m:], ending with the last value.",
            lambda i: _lagged(i, i["y"].shape[1] - int(i["season"]) - 1),
            applies=lambda i: i["y"].shape[1] > int(i["season"]),
        ),
        Mistake(
            "That repeats the first season of the history; the forecast repeats the last one, y[:, T-m:].",
            lambda i: _lagged(i, 0),
        ),
        Mistake(
            "The last season is repeated backwards; keep it in order: forecast[:, s] = y[:, T - m + (s % m)].",
            lambda i: {"forecast": i["y"][:, i["y"].shape[1] - 1 - np.arange(int(i["horizon"])) % int(i["season"])]},
            applies=lambda i: int(i["season"]) > 1,
        ),
        Mistake(
            "That is the mean of the last season; the seasonal naive forecast copies the values themselves.",
            lambda i: {"forecast": np.repeat(_last_season(i).mean(axis=1, keepdims=True), int(i["horizon"]), axis=1)},
            applies=lambda i: int(i["season"]) > 1,
        ),
    ),
)


# --- train_char_lm --------------------------------------------------------------------

def _train_precheck(inputs, outputs, expected):
    """The whole verdict of the training check: ``None`` (pass) or what is wrong, from held-out bits per character."""
    params = {k[len(PARAMS_PREFIX) :]: v for k, v in outputs.items() if k.startswith(PARAMS_PREFIX)}
    heldout, V = inputs["heldout"], int(inputs["vocab_size"])
    try:
        model_of(params, V)
        bpc = heldout_bits_per_character(params, heldout)
    except ParamsError as err:
        return str(err)
    if np.isfinite(bpc) and bpc < THRESHOLD_BPC:
        return None
    base = baseline_bits_per_character(inputs["ids"], heldout, V)
    got = f"Held-out bits per character: {bpc:.3f}; it must be below {THRESHOLD_BPC}."
    if not np.isfinite(bpc):
        return f"{got} The scores are not finite: did training diverge?"
    copying = char_lm_scores(params, heldout)
    copy_bpc = float(temporal_softmax_loss(copying, heldout)[0]) / np.log(2)
    if copy_bpc < 1.0:
        return (
            f"{got} The model predicts the character it reads ({copy_bpc:.2f} bits for that), not the next one: "
            "train on inputs ids[t] and targets ids[t + 1]."
        )
    if abs(bpc - base["uniform"]) < 0.2:
        return (
            f"{got} That is a uniform guess over the V = {V} characters (log2 V = {base['uniform']:.2f}): "
            "were the parameters trained? Return them after training (model.params)."
        )
    if bpc > base["unigram"] - 0.05:
        return (
            f"{got} A model of the character frequencies alone gets {base['unigram']:.2f}: this one has not "
            "learned to use what it reads. Train longer or with a larger learning rate; check the targets."
        )
    return (
        f"{got} Frequencies alone give {base['unigram']:.2f}, the last character alone {base['bigram']:.2f}: "
        "it is learning, but not enough. Train longer, or with a larger model or learning rate."
    )


def _train_inputs(start, length):
    ids, heldout = char_lm_data(start, length)
    return {"ids": ids, "vocab_size": np.array(VOCAB_SIZE), "heldout": heldout}


def _train_hidden(rng):
    length = int(rng.integers(48, 73)) * BLOCK  # 24,000 to 36,000 characters
    start = int(rng.integers(0, len(letters_text()) - length))
    ids, heldout = char_lm_data(start, length)
    text = f"another stretch of the help texts: {len(ids)} characters to train on, {heldout.size} held out"
    return [(text, {"ids": ids, "vocab_size": np.array(VOCAB_SIZE), "heldout": heldout})]


TRAIN_CHAR_LM = Check(
    name="train_char_lm",
    reference=lambda i: {},
    precheck=_train_precheck,
    visible=(
        Case(
            "help_texts",
            f"the first {TRAIN_STRETCH} characters of the help texts: 25000 to train on, 5000 held out",
            "",
            lambda rng: _train_inputs(0, TRAIN_STRETCH),
        ),
    ),
    hidden=_train_hidden,
)


CHECKS = (BITS_PER_CHARACTER, PAD_SEQUENCES, LAST_STATES, SAMPLE_WITH_TEMPERATURE, SEASONAL_NAIVE, TRAIN_CHAR_LM)
