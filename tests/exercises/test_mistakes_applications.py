"""Assignment 07 (applications): realistic wrong answers, and the training check's threshold.

As in test_grading_mistakes.py: every function below is a learner's answer
with one mistake, written the way a learner would write it. Each must fail
the visible cases (so its notebook test cell, and its points, fail), the
message must name the mistake in a few lines, and the grader's
out-of-process mode must give the same verdict and message.

The training check is judged by a number, not by a comparison with
reference outputs, so it gets its own tests: the reference training reaches
the threshold on several stretches of text and seeds; an untrained model, a
unigram model and a bigram model (written as parameters of the same
network) do not; and the evaluation is the one the notebook states.
"""

import numpy as np
import pytest

from exercisetools import assert_mistake_fails_and_is_named, in_process
from rnncourse.checks import applications as A
from rnncourse.checks import char_lm as L
from rnncourse.checks import judge, make_cases, run_case
from rnncourse.numpy import Adam, CharRNN, clip_grad_norm_global, temporal_softmax_loss

# --- bits_per_character ---------------------------------------------------------------


def _log_p_y(scores, y):
    shifted = scores - scores.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]


def _real(y, mask):
    return np.ones(y.shape, bool) if mask is None else mask.astype(bool)


def bpc_in_nats(scores, y, mask=None):
    return -_log_p_y(scores, y)[_real(y, mask)].mean()


def bpc_naive_softmax(scores, y, mask=None):
    p = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)
    p_y = np.take_along_axis(p, y[..., None], axis=-1)[..., 0]
    return -np.log2(p_y)[_real(y, mask)].mean()


def bpc_ignores_mask(scores, y, mask=None):
    return -_log_p_y(scores, y).mean() / np.log(2)


def bpc_masked_sum_over_all_steps(scores, y, mask=None):
    return -(_log_p_y(scores, y) * _real(y, mask)).sum() / y.size / np.log(2)


def bpc_perplexity(scores, y, mask=None):
    return 2 ** (-_log_p_y(scores, y)[_real(y, mask)].mean() / np.log(2))


# --- pad_sequences --------------------------------------------------------------------


def pad_in_front(sequences, pad_value=0):
    T = max(len(s) for s in sequences)
    padded = np.array([np.concatenate([np.full(T - len(s), pad_value), s]) for s in sequences])
    mask = np.array([[False] * (T - len(s)) + [True] * len(s) for s in sequences])
    return padded, np.array([len(s) for s in sequences]), mask


def pad_lengths_as_last_index(sequences, pad_value=0):
    T = max(len(s) for s in sequences)
    padded = np.full((len(sequences), T), pad_value)
    lengths = np.zeros(len(sequences), dtype=int)
    for n, s in enumerate(sequences):
        for t, token in enumerate(s):
            padded[n, t] = token
            lengths[n] = t
    return padded, lengths, np.arange(T) < lengths[:, None] + 1


def pad_counts_non_pad_tokens(sequences, pad_value=0):
    T = max(len(s) for s in sequences)
    padded = np.full((len(sequences), T), pad_value)
    for n, s in enumerate(sequences):
        padded[n, : len(s)] = s
    mask = padded != pad_value
    return padded, mask.sum(axis=1), mask


def pad_mask_marks_padding(sequences, pad_value=0):
    T = max(len(s) for s in sequences)
    lengths = np.array([len(s) for s in sequences])
    padded = np.full((len(sequences), T), pad_value)
    for n, s in enumerate(sequences):
        padded[n, : len(s)] = s
    return padded, lengths, np.arange(T) >= lengths[:, None]


def pad_with_zeros(sequences, pad_value=0):
    T = max(len(s) for s in sequences)
    lengths = np.array([len(s) for s in sequences])
    padded = np.zeros((len(sequences), T), dtype=int)
    for n, s in enumerate(sequences):
        padded[n, : len(s)] = s
    return padded, lengths, np.arange(T) < lengths[:, None]


# --- last_states ----------------------------------------------------------------------


def last_padded_step(h, lengths):
    return h[:, -1]


def last_off_by_one(h, lengths):
    N, T, _ = h.shape
    return h[np.arange(N), np.minimum(lengths, T - 1)]  # clipped after an IndexError on the full-length rows


def last_every_length_for_every_row(h, lengths):
    return h[:, lengths - 1]


# --- sample_with_temperature ----------------------------------------------------------


def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _inverse_cdf(probs, u):
    return np.array([np.argmax(np.cumsum(p) > ui) for p, ui in zip(probs, u)])


def sample_multiplies(logits, temperature, u):
    probs = _softmax(logits * temperature)
    return _inverse_cdf(probs, u), probs


def sample_greedy(logits, temperature, u):
    probs = _softmax(logits / temperature)
    return probs.argmax(axis=1), probs


def sample_unshifted(logits, temperature, u):
    e = np.exp(logits / temperature)
    probs = e / e.sum(axis=1, keepdims=True)
    return _inverse_cdf(probs, u), probs


def sample_softmax_over_batch(logits, temperature, u):
    probs = _softmax(logits / temperature, axis=0)
    return _inverse_cdf(probs, u), probs


# --- seasonal_naive -------------------------------------------------------------------


def seasonal_last_value(y, season, horizon):
    return np.repeat(y[:, -1:], horizon, axis=1)


def seasonal_lag_off_by_one(y, season, horizon):
    T = y.shape[1]
    return np.stack([y[:, T - season - 1 + s % season] for s in range(horizon)], axis=1)


def seasonal_tile_uncut(y, season, horizon):
    return np.tile(y[:, -season:], (1, max(horizon // season, 1)))


def seasonal_first_season(y, season, horizon):
    return y[:, np.arange(horizon) % season]


# --- train_char_lm --------------------------------------------------------------------


def _train(ids, vocab_size, steps, *, shift=True, seed=0, on_step=None):
    """A right training loop but for its length; ``shift=False`` trains on the wrong targets."""
    rng = np.random.default_rng(seed)
    model = CharRNN(vocab_size, 64, cell="rnn", embed_size=16, rng=rng)
    optimizer = Adam(model.params, lr=1e-2)
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - 32, size=32)
        window = ids[starts[:, None] + np.arange(33)]
        targets = window[:, 1:] if shift else window[:, :-1]
        loss, grads = model.loss(window[:, :-1], targets)
        grads, _ = clip_grad_norm_global(grads, 5.0)
        optimizer.step(grads)
        if on_step is not None:
            on_step(model, loss)
    return model


def train_keeps_the_initial_best(ids, vocab_size):
    """Keeps the "best" parameters, but best_loss starts at 0, so they are never replaced."""
    model = CharRNN(vocab_size, 64, cell="rnn", embed_size=16, rng=np.random.default_rng(0))
    best = {k: v.copy() for k, v in model.params.items()}
    best_loss = 0.0

    def keep_best(model, loss):
        nonlocal best, best_loss
        if loss < best_loss:
            best, best_loss = {k: v.copy() for k, v in model.params.items()}, loss

    _train(ids, vocab_size, 30, on_step=keep_best)
    return best


def train_unshifted_targets(ids, vocab_size):
    return _train(ids, vocab_size, 20, shift=False).params


def train_too_short(ids, vocab_size):
    return _train(ids, vocab_size, 10).params


def train_returns_the_model(ids, vocab_size):
    return _train(ids, vocab_size, 1)


def train_torch_head_layout(ids, vocab_size):
    params = dict(_train(ids, vocab_size, 1).params)
    params["W_out"] = params["W_out"].T  # torch.nn.Linear's weight is (out, in)
    return params


def train_no_output_bias(ids, vocab_size):
    params = dict(_train(ids, vocab_size, 1).params)
    del params["b_out"]
    return params


# (check, {function name: learner's function}, what the visible message must say)
MISTAKES = [
    ("bits_per_character", {"bits_per_character": bpc_in_nats}, "in nats"),
    ("bits_per_character", {"bits_per_character": bpc_naive_softmax}, "exp overflowed"),
    ("bits_per_character", {"bits_per_character": bpc_ignores_mask}, "padded steps were counted"),
    ("bits_per_character", {"bits_per_character": bpc_masked_sum_over_all_steps}, "divided by N * T"),
    ("bits_per_character", {"bits_per_character": bpc_perplexity}, "That is the perplexity"),
    ("pad_sequences", {"pad_sequences": pad_in_front}, "padding went before the tokens"),
    ("pad_sequences", {"pad_sequences": pad_lengths_as_last_index}, "not the index of its last token"),
    ("pad_sequences", {"pad_sequences": pad_counts_non_pad_tokens}, "a real token can equal pad_value"),
    ("pad_sequences", {"pad_sequences": pad_mask_marks_padding}, "The mask is inverted"),
    ("pad_sequences", {"pad_sequences": pad_with_zeros}, "padding is 0 instead of pad_value"),
    ("last_states", {"last_states": last_padded_step}, "the state at the last padded step"),
    ("last_states", {"last_states": last_off_by_one}, "Off by one: lengths[n] counts the tokens"),
    ("last_states", {"last_states": last_every_length_for_every_row}, "picks every length for every sequence"),
    ("sample_with_temperature", {"sample_with_temperature": sample_multiplies}, "multiplied by the temperature"),
    ("sample_with_temperature", {"sample_with_temperature": sample_greedy}, "most likely index, whatever u"),
    ("sample_with_temperature", {"sample_with_temperature": sample_unshifted}, "exp overflowed"),
    ("sample_with_temperature", {"sample_with_temperature": sample_softmax_over_batch}, "over the batch axis"),
    ("seasonal_naive", {"seasonal_naive": seasonal_last_value}, "That is the naive forecast"),
    ("seasonal_naive", {"seasonal_naive": seasonal_lag_off_by_one}, "The lag is off by one"),
    ("seasonal_naive", {"seasonal_naive": seasonal_tile_uncut}, "forecast has shape (2, 8); expected (N, S) = (2, 10)"),
    ("seasonal_naive", {"seasonal_naive": seasonal_first_season}, "repeats the first season"),
    ("train_char_lm", {"train_char_lm": train_keeps_the_initial_best}, "were the parameters trained?"),
    ("train_char_lm", {"train_char_lm": train_unshifted_targets}, "predicts the character it reads"),
    ("train_char_lm", {"train_char_lm": train_too_short}, "learning, but not enough"),
    ("train_char_lm", {"train_char_lm": train_returns_the_model}, "return its parameters, model.params"),
    ("train_char_lm", {"train_char_lm": train_torch_head_layout}, "params.W_out has shape (27, 64); expected (H, V) = (64, 27): the transpose?"),
    ("train_char_lm", {"train_char_lm": train_no_output_bias}, "params has no b_out"),
]


def _id(mistake):
    name, fns, _ = mistake
    return f"{name}-{list(fns.values())[-1].__name__}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflowing exp of the naive softmaxes
@pytest.mark.parametrize("name, functions, says", MISTAKES, ids=[_id(m) for m in MISTAKES])
def test_a_mistake_fails_and_is_named(name, functions, says):
    assert_mistake_fails_and_is_named(name, functions, says)



def test_the_helpers_the_mistakes_are_built_from_are_right_without_the_mistake():
    def sample(logits, temperature, u):
        probs = _softmax(logits / temperature)
        return _inverse_cdf(probs, u), probs

    assert in_process("sample_with_temperature", {"sample_with_temperature": sample}, hidden=True) == (True, "")
    assert in_process("train_char_lm", {"train_char_lm": lambda ids, V: _train(ids, V, 400).params}) == (True, "")


# --- the training check ---------------------------------------------------------------


def _stretches():
    """The visible case's text and three stretches a grader's secret seeds might draw."""
    cases = make_cases("train_char_lm") + [make_cases("train_char_lm", seed, hidden=True)[0] for seed in (21, 22, 23)]
    return [(case["ids"], case["heldout"]) for case in cases]


def test_the_reference_training_passes_on_other_stretches_and_seeds():
    """Reliability: 1.94 to 2.31 bits on 40 random stretches and seeds when measured; the threshold is 2.7."""
    for k, (ids, heldout) in enumerate(_stretches()):
        params = A.train_char_lm(ids, L.VOCAB_SIZE, seed=10 + k)
        assert L.heldout_bits_per_character(params, heldout) < L.THRESHOLD_BPC - 0.2


def _unigram_params(ids, H=8):
    """A unigram model as a CharRNN: the scores ignore the input, b_out = log p."""
    model = CharRNN(L.VOCAB_SIZE, H, cell="rnn", rng=np.random.default_rng(0))
    p = np.bincount(ids, minlength=L.VOCAB_SIZE) + 1.0
    model.params["W_out"][...] = 0
    model.params["b_out"][...] = np.log(p / p.sum())
    return model.params


def _bigram_params(ids, k=40.0):
    """A bigram model as a tanh RNN: h = tanh(k (onehot(c) - 1/2)) is +-1, so the scores are log p(next | c)."""
    V = L.VOCAB_SIZE
    counts = np.ones((V, V))
    np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    W_out = log_p / 2  # h = 2 onehot - 1, so h W_out + b_out = log_p[c] - sum(W_out) + b_out
    return {"W_embed": np.eye(V), "Wx": k * np.eye(V), "Wh": np.zeros((V, V)), "b": np.full(V, -k / 2),
            "W_out": W_out, "b_out": W_out.sum(axis=0)}  # fmt: skip


def test_untrained_unigram_and_bigram_models_do_not_pass():
    for ids, heldout in _stretches():
        base = L.baseline_bits_per_character(ids, heldout)
        assert base["uniform"] > base["unigram"] > base["bigram"] > L.THRESHOLD_BPC + 0.4
        unigram = L.heldout_bits_per_character(_unigram_params(ids), heldout)
        bigram = L.heldout_bits_per_character(_bigram_params(ids), heldout)
        # The count models written as networks score what the baselines say, so the baselines are right.
        assert abs(unigram - base["unigram"]) < 1e-9 and abs(bigram - base["bigram"]) < 1e-6
        for seed in range(3):
            for cell in ("rnn", "gru", "lstm"):
                untrained = CharRNN(L.VOCAB_SIZE, 64, cell=cell, rng=np.random.default_rng(seed)).params
                assert L.heldout_bits_per_character(untrained, heldout) > L.THRESHOLD_BPC + 1


def test_the_judge_grades_parameters_from_any_cell_and_any_float_dtype():
    case = make_cases("train_char_lm")[0]
    for params, passes in [(_unigram_params(case["ids"]), False), (_bigram_params(case["ids"]), False),
                           (A.train_char_lm(case["ids"], L.VOCAB_SIZE, steps=300), True)]:  # fmt: skip
        for dtype in (np.float64, np.float32):
            outputs = {f"params.{k}": v.astype(dtype) for k, v in params.items()}
            assert judge("train_char_lm", case, outputs)[0] == passes
    for cell in ("gru", "lstm"):
        model = CharRNN(L.VOCAB_SIZE, 16, cell=cell, embed_size=8, rng=np.random.default_rng(0))
        passed, message = judge("train_char_lm", case, {f"params.{k}": v for k, v in model.params.items()})
        assert not passed and "were the parameters trained?" in message


def test_the_evaluation_is_the_models_own_loss():
    """char_lm_scores is CharRNN's forward: the held-out bits are CharRNN.loss / ln 2, for each cell."""
    _, heldout = L.char_lm_data()
    for cell in ("rnn", "gru", "lstm"):
        model = CharRNN(L.VOCAB_SIZE, 12, cell=cell, embed_size=5, rng=np.random.default_rng(1))
        for p in model.params.values():
            p *= 2.0  # further from uniform than at initialisation
        loss, _ = model.loss(heldout[:, :-1], heldout[:, 1:])
        assert abs(L.heldout_bits_per_character(model.params, heldout) - loss / np.log(2)) < 1e-12
        scores = L.char_lm_scores(model.params, heldout[:, :-1])
        assert abs(A.bits_per_character(scores, heldout[:, 1:]) - loss / np.log(2)) < 1e-12


def test_the_learner_gets_the_training_text_and_never_the_held_out_blocks():
    case = make_cases("train_char_lm")[0]
    ids, heldout = L.char_lm_data()
    assert np.array_equal(case["ids"], ids) and np.array_equal(case["heldout"], heldout)
    assert len(ids) == 25_000 and heldout.shape == (10, 500)
    got = []

    def spy(*args):
        got.append(args)
        return {}

    run_case("train_char_lm", case, {"train_char_lm": spy})
    (args,) = got
    assert len(args) == 2 and np.array_equal(args[0], ids) and args[1] == L.VOCAB_SIZE
    text = L.letters_text()
    assert set(text) == set(L.ALPHABET) and L.decode(L.encode(text[:1000])) == text[:1000]


def test_malformed_parameters_get_a_verdict_not_a_crash():
    case = make_cases("train_char_lm")[0]
    good = CharRNN(L.VOCAB_SIZE, 8, cell="rnn", rng=np.random.default_rng(0)).params
    broken = [
        ({}, "params has no W_embed, Wx, Wh, b, W_out, b_out"),
        ({**good, "Wh": good["Wh"][:, :5]}, "params.Wh has shape (8, 5)"),
        ({**good, "W_embed": good["W_embed"][:20]}, "expected (V, E) with V = 27"),
        ({**good, "b": np.full(8, np.nan)}, "params.b holds NaN or inf"),
        ({**good, "bx": good["b"]}, "params has no bh"),
        ({**good, "Wx": good["Wx"].astype(np.int64)}, "params.Wx has dtype int64"),
    ]
    for params, says in broken:
        passed, message = judge("train_char_lm", case, {f"params.{k}": v for k, v in params.items()})
        assert not passed and says in message, message


def test_generate_text_writes_with_the_learners_sampler():
    ids, _ = L.char_lm_data()
    params = _bigram_params(ids)
    calls = []

    def sampler(logits, temperature, u):
        calls.append((logits.shape, temperature, u.shape))
        return A.sample_with_temperature(logits, temperature, u)

    text = L.generate_text(params, "the ", 30, sample=sampler, temperature=0.5, rng=np.random.default_rng(0))
    again = L.generate_text(params, "the ", 30, sample=sampler, temperature=0.5, rng=np.random.default_rng(0))
    assert text == again and text.startswith("the ") and len(text) == 34 and set(text) <= set(L.ALPHABET)
    assert calls[0] == ((1, L.VOCAB_SIZE), 0.5, (1,)) and len(calls) == 60
    # A bigram model at a low temperature follows the likeliest pairs: after "q" comes "u".
    assert L.generate_text(params, "q", 1, sample=sampler, temperature=0.05, rng=np.random.default_rng(0)) == "qu"


def test_the_text_is_the_python_docs_text_of_the_datasets_lowercased_to_letters():
    """One text under one name: the char-LM text is rnncourse.datasets.python_docs_text, reduced to a-z and spaces."""
    import re

    from rnncourse.datasets import python_docs_text

    assert L.letters_text() == re.sub(r"[^a-z]+", " ", python_docs_text().lower())
    for module in (A, L):  # no other text under that name
        assert getattr(module, "python_docs_text", python_docs_text) is python_docs_text


def test_temporal_softmax_loss_is_the_bits_per_character_reference():
    """The reference of bits_per_character is rnncourse.numpy's loss in bits, masked steps skipped."""
    rng = np.random.default_rng(0)
    scores, y = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, (3, 4))
    mask = np.array([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]], bool)
    loss, _ = temporal_softmax_loss(scores[mask][None], y[mask][None])
    assert abs(A.bits_per_character(scores, y, mask) - loss / np.log(2)) < 1e-12
