"""The training problem of 07_applications: its text, its held-out yardstick and what a learner uses around it.

Learner-facing: the notebook imports ``ALPHABET``, ``THRESHOLD_BPC``,
:func:`char_lm_data`, :func:`char_lm_scores`, :func:`baseline_bits_per_character`,
:func:`decode` and :func:`generate_text` from here, and the check of
``train_char_lm`` (``rnncourse.checks.applications``, the trusted side)
measures a submitted model with :func:`heldout_bits_per_character` on blocks
the learner's function never received. Nothing here knows an answer to the
assignment's functions, so the grader's sandbox holds this module too.

The text comes with Python itself: :func:`rnncourse.datasets.python_docs_text`
(the help topics of ``pydoc_data``), lowercased, every run of characters
other than ``a`` to ``z`` turned into one space (:func:`letters_text`).
Nothing is downloaded.
"""

import functools
import re

import numpy as np

from rnncourse.datasets import python_docs_text
from rnncourse.numpy import gru_forward, lstm_forward, rnn_forward, temporal_softmax_loss

from .calls import format_shape, shape_message

# --- the text ---------------------------------------------------------------------------

ALPHABET = " abcdefghijklmnopqrstuvwxyz"
"""The characters of the text: index 0 is the space, then ``a`` to ``z`` (V = 27)."""

VOCAB_SIZE = len(ALPHABET)

THRESHOLD_BPC = 2.7
"""Held-out bits per character a trained model must get below.

On this text a unigram model (character frequencies) gets 4.0 to 4.15 bits
per character and a bigram model (the last character) 3.2 to 3.4, whatever
stretch of it: neither can reach 2.7. The reference training
(``rnncourse.checks.applications.train_char_lm``, a tanh RNN with 64 units, 400 Adam steps, about one
second of CPU time) got 1.94 to 2.31 on 40 random stretches and seeds.
"""

BLOCK = 500
"""Length of the blocks the text is cut into; held-out blocks are evaluated one per row."""

HELD_OUT_EVERY = 6
"""One block in every ``HELD_OUT_EVERY`` is held out (the fourth of each six)."""

TRAIN_STRETCH = 30_000
"""Characters in the stretch of text of the visible case (training and held-out together)."""

_MAX_SIZE = 512  # largest hidden or embedding size the judge evaluates (a few seconds for an LSTM)


@functools.lru_cache(maxsize=1)
def letters_text():
    """:func:`rnncourse.datasets.python_docs_text` as one string of ``ALPHABET`` characters.

    Lowercased, every run of characters other than ``a`` to ``z`` turned
    into one space: about 376,000 characters under Python 3.11.
    """
    return re.sub(r"[^a-z]+", " ", python_docs_text().lower())


def encode(text):
    """A str of ``ALPHABET`` characters as an int64 array of indices (space = 0, a = 1, ...)."""
    index = {ch: i for i, ch in enumerate(ALPHABET)}
    return np.array([index[ch] for ch in text], dtype=np.int64)


def decode(ids):
    """Indices back to text."""
    return "".join(ALPHABET[int(i)] for i in np.ravel(ids))


def char_lm_data(start=0, length=TRAIN_STRETCH):
    """A stretch of the help texts, split into training text and held-out blocks.

    B: number of held-out blocks, L: training length.

    The ``length`` characters from ``start`` are cut into blocks of
    :data:`BLOCK` characters; the fourth block of every six is held out, the
    others, joined in order, are the training text.

    Returns
    -------
    ids : (L,) int64, the training text (about 5/6 of ``length``).
    heldout : (B, BLOCK) int64, the held-out blocks, one per row.
    """
    text = letters_text()
    if not (0 <= start and start + length <= len(text) and length >= HELD_OUT_EVERY * BLOCK):
        raise ValueError(
            f"start={start}, length={length}: expected a stretch of at least {HELD_OUT_EVERY * BLOCK} characters "
            f"inside the text of {len(text)}"
        )
    n = length // BLOCK
    blocks = encode(text[start : start + n * BLOCK]).reshape(n, BLOCK)
    held = np.arange(n) % HELD_OUT_EVERY == HELD_OUT_EVERY // 2
    return blocks[~held].ravel(), blocks[held]


# --- the model behind the parameters --------------------------------------------------


class ParamsError(ValueError):
    """Parameters that do not make a character model; the message says what is wrong."""


def model_of(params, vocab_size=VOCAB_SIZE):
    """Check ``params`` and say which model they make: ``(cell, E, H)``.

    V: vocabulary size, E: embedding size, H: hidden size, G: gate blocks
    (1 rnn, 4 lstm, 3 gru).

    ``params`` must have the layout of ``CharRNN.params`` (:class:`rnncourse.numpy.CharRNN`):
    ``W_embed (V, E)``, ``Wx (E, G*H)``, ``Wh (H, G*H)``, ``b (G*H,)`` (or
    ``bx``, ``bh`` for a GRU), ``W_out (H, V)``, ``b_out (V,)``, all finite
    floating-point arrays. Raises :class:`ParamsError` saying what is wrong.
    """
    gru = "bx" in params or "bh" in params
    needed = ("W_embed", "Wx", "Wh", *(("bx", "bh") if gru else ("b",)), "W_out", "b_out")
    missing = [k for k in needed if k not in params]
    if missing:
        raise ParamsError(
            f"params has no {', '.join(missing)}; expected the keys of CharRNN.params: "
            "W_embed, Wx, Wh, b, W_out, b_out (a GRU has bx and bh instead of b)"
        )
    for k in needed:
        a = params[k]
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            what = getattr(a, "dtype", type(a).__name__)
            raise ParamsError(f"params.{k} has dtype {what}; expected floating point")
    V = int(vocab_size)
    W_embed, Wh = params["W_embed"], params["Wh"]
    if W_embed.ndim != 2 or W_embed.shape[0] != V:
        raise ParamsError(
            f"params.W_embed has shape {format_shape(W_embed.shape)}; expected (V, E) with V = {V}, one row per character"
        )
    if Wh.ndim != 2 or Wh.shape[0] == 0 or Wh.shape[1] % Wh.shape[0] or Wh.shape[1] // Wh.shape[0] not in (1, 3, 4):
        message = f"params.Wh has shape {format_shape(Wh.shape)}; expected (H, G*H) with G = 1 (rnn), 3 (gru) or 4 (lstm)"
        if Wh.ndim == 2 and Wh.shape[1] and Wh.shape[0] % Wh.shape[1] == 0:
            message += ": the transpose?"
        raise ParamsError(message)
    E, H = W_embed.shape[1], Wh.shape[0]
    G = Wh.shape[1] // H
    if gru and G != 3:
        raise ParamsError(f"params has bx and bh, a GRU's biases, but Wh has shape {format_shape(Wh.shape)}: a GRU's is (H, 3H)")
    if not gru and G == 3:
        raise ParamsError("Wh has 3H columns, a GRU's, but params has b: a GRU has two biases, bx and bh")
    if max(E, H) > _MAX_SIZE:
        raise ParamsError(f"the model has E = {E}, H = {H}; the check evaluates sizes up to {_MAX_SIZE}")
    expected = {"Wx": ((E, G * H), "E GH"), "b": ((G * H,), "GH"), "bx": ((G * H,), "GH"), "bh": ((G * H,), "GH"),
                "W_out": ((H, V), "H V"), "b_out": ((V,), "V")}  # fmt: skip
    for k in needed:
        if k in expected and params[k].shape != expected[k][0]:
            raise ParamsError(shape_message(f"params.{k}", params[k].shape, *expected[k]))
    for k in needed:
        if not np.all(np.isfinite(params[k])):
            raise ParamsError(
                f"params.{k} holds NaN or inf: did training diverge? Clip the gradients or lower the learning rate"
            )
    cell = {1: "rnn", 3: "gru", 4: "lstm"}[G]
    return cell, E, H


def char_lm_scores(params, idx):
    """The scores over the next character at every step, from parameters laid out as ``CharRNN.params``.

    N: batch size, T: sequence length, V: vocabulary size.

    Each row of ``idx`` is read from a zero state; the cell (rnn, gru or
    lstm) follows from the parameters (:func:`model_of`).

    Parameters
    ----------
    params : dict of arrays, as ``CharRNN.params`` (:class:`rnncourse.numpy.CharRNN`).
    idx : (N, T) int, characters in ``[0, V)``.

    Returns
    -------
    scores : (N, T, V) float64; ``scores[n, t]`` scores the character after ``idx[n, t]``.
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    cell, _, H = model_of(p, p["W_embed"].shape[0])
    idx = np.asarray(idx)
    e = p["W_embed"][idx]
    h0 = np.zeros((idx.shape[0], H))
    if cell == "rnn":
        h, _ = rnn_forward(e, h0, p["Wx"], p["Wh"], p["b"])
    elif cell == "gru":
        h, _ = gru_forward(e, h0, p["Wx"], p["Wh"], p["bx"], p["bh"])
    else:
        h, _ = lstm_forward(e, h0, p["Wx"], p["Wh"], p["b"])
    return h @ p["W_out"] + p["b_out"]


def heldout_bits_per_character(params, heldout):
    """Bits per character of the model ``params`` on the held-out blocks: what the check measures.

    B: number of blocks, K: block length.

    Each block (a row of ``heldout``, shape (B, K)) is read from a zero
    state; characters 1 to K-1 of each block are predicted from those before
    them, so B*(K-1) predictions are averaged. Raises :class:`ParamsError`
    when ``params`` do not make a model.
    """
    heldout = np.asarray(heldout)
    scores = char_lm_scores(params, heldout[:, :-1])
    cross_entropy, _ = temporal_softmax_loss(scores, heldout[:, 1:])
    return float(cross_entropy) / np.log(2)


def baseline_bits_per_character(ids, heldout, vocab_size=VOCAB_SIZE):
    """Held-out bits per character of the count models, fitted on ``ids``: a dict.

    ``uniform``: every character equally likely, ``log2 V``. ``unigram``:
    character frequencies. ``bigram``: frequencies of the next character
    given the last one. Counts start at 1 (add-one smoothing), so nothing has
    probability 0. The same predictions as :func:`heldout_bits_per_character`
    (characters 1 to K-1 of each block) are scored.
    """
    V = int(vocab_size)
    ids, heldout = np.asarray(ids), np.asarray(heldout)
    prev, nxt = heldout[:, :-1], heldout[:, 1:]
    unigram = np.bincount(ids, minlength=V) + 1.0
    unigram /= unigram.sum()
    bigram = np.ones((V, V))
    np.add.at(bigram, (ids[:-1], ids[1:]), 1.0)
    bigram /= bigram.sum(axis=1, keepdims=True)
    return {
        "uniform": float(np.log2(V)),
        "unigram": float(-np.log2(unigram[nxt]).mean()),
        "bigram": float(-np.log2(bigram[prev, nxt]).mean()),
    }


def generate_text(params, prompt, length, *, sample, temperature=1.0, rng):
    """Text written by the model ``params``, one character at a time, with the learner's sampler.

    The prompt is read first; then, ``length`` times, the scores of the next
    character go to ``sample(logits (1, V), temperature, u (1,))``, whose
    ``idx`` is the character written and read next. ``u`` is drawn from
    ``rng``.
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    cell, _, H = model_of(p, p["W_embed"].shape[0])
    ids = list(encode(prompt))
    h, c = np.zeros((1, H)), np.zeros((1, H))
    step = {"rnn": _rnn_step, "gru": _gru_step, "lstm": _lstm_step}[cell]
    out = []
    for i in range(len(ids) + length - 1):
        h, c = step(p, p["W_embed"][[ids[i] if i < len(ids) else out[-1]]], h, c)
        if i >= len(ids) - 1:
            idx, _ = sample(h @ p["W_out"] + p["b_out"], temperature, rng.random(1))
            out.append(int(np.ravel(idx)[0]))
    return prompt + decode(out)


def _rnn_step(p, e, h, c):
    return rnn_forward(e[:, None], h, p["Wx"], p["Wh"], p["b"])[0][:, 0], c


def _gru_step(p, e, h, c):
    return gru_forward(e[:, None], h, p["Wx"], p["Wh"], p["bx"], p["bh"])[0][:, 0], c


def _lstm_step(p, e, h, c):
    h, c, _ = lstm_forward(e[:, None], h, p["Wx"], p["Wh"], p["b"], c, return_state=True)
    return h[:, 0], c
