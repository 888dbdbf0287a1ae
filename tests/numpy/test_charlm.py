"""The character language model: gradients, parity with torch, training, sampling."""


import numpy as np
import pytest
import torch

from rnncourse.numpy import Adam, CharRNN, CharVocab, clip_grad_norm_global, gradcheck, rel_error
from rnncourse.testing import assert_close

CELLS = ["rnn", "gru", "lstm"]
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
CORPUS = "hello world! " * 8


def _model(cell, seed=0, V=6, H=4, E=3, dtype=np.float64):
    return CharRNN(V, H, cell=cell, embed_size=E, rng=np.random.default_rng(seed), dtype=dtype)


def _batch(seed, V, N=2, T=4):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, size=(N, T)), rng.integers(0, V, size=(N, T))


def _torch_twin(model):
    """The same model in torch: Embedding, RNN/GRU/LSTM, Linear."""
    p, cell, dtype = model.params, model.cell, TORCH_DTYPE[model.params["Wh"].dtype.type]
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    rec = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](
        model.embed_size, model.hidden_size, batch_first=True).to(dtype)
    emb = torch.nn.Embedding(model.vocab_size, model.embed_size).to(dtype)
    out = torch.nn.Linear(model.hidden_size, model.vocab_size).to(dtype)
    with torch.no_grad():
        emb.weight.copy_(t(p["W_embed"]))
        rec.weight_ih_l0.copy_(t(p["Wx"].T))
        rec.weight_hh_l0.copy_(t(p["Wh"].T))
        if cell == "gru":
            rec.bias_ih_l0.copy_(t(p["bx"]))
            rec.bias_hh_l0.copy_(t(p["bh"]))
        else:
            rec.bias_ih_l0.copy_(t(0.25 * p["b"]))
            rec.bias_hh_l0.copy_(t(0.75 * p["b"]))
        out.weight.copy_(t(p["W_out"].T))
        out.bias.copy_(t(p["b_out"]))
    return emb, rec, out


def _torch_grads(emb, rec, out, cell):
    g = {"W_embed": emb.weight.grad, "Wx": rec.weight_ih_l0.grad.T, "Wh": rec.weight_hh_l0.grad.T,
         "W_out": out.weight.grad.T, "b_out": out.bias.grad}
    if cell == "gru":
        g["bx"], g["bh"] = rec.bias_ih_l0.grad, rec.bias_hh_l0.grad
    else:
        g["b"] = rec.bias_ih_l0.grad
    return g


# --- vocabulary ---------------------------------------------------------------------------


def test_vocab_round_trip_and_errors():
    vocab = CharVocab("hello world")
    assert vocab.chars == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert len(vocab) == vocab.size == 8
    idx = vocab.encode("world hello")
    assert idx.dtype == np.int64 and idx.tolist() == [7, 5, 6, 4, 1, 0, 3, 2, 4, 4, 5]
    assert vocab.decode(idx) == "world hello"
    assert vocab.decode([]) == ""
    with pytest.raises(ValueError, match=r"text has characters \['!', 'z'\] that are not in the vocabulary"):
        vocab.encode("zz!")
    with pytest.raises(ValueError, match=r"idx has values in \[0, 8\]; expected 0 <= idx < V = 8"):
        vocab.decode([0, 8])
    with pytest.raises(ValueError, match=r"idx has dtype float64; expected an integer array"):
        vocab.decode(np.array([1.0]))
    with pytest.raises(ValueError, match=r"expected a non-empty str"):
        CharVocab("")


# --- loss and gradients -------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_loss_gradcheck(cell):
    model = _model(cell, seed=1)
    idx_in, idx_target = _batch(2, model.vocab_size, N=2, T=3)
    h0 = np.random.default_rng(3).standard_normal((2, model.hidden_size))
    c0 = np.random.default_rng(4).standard_normal((2, model.hidden_size)) if cell == "lstm" else None
    loss, grads = model.loss(idx_in, idx_target, h0, c0)
    assert isinstance(loss, float)
    assert set(grads) == set(model.params)

    def f(**params):
        m = _model(cell, seed=1)
        m.params = params
        return np.asarray(m.loss(idx_in, idx_target, h0, c0)[0])

    report = gradcheck(f, dict(model.params), grads, np.asarray(1.0))
    assert report.ok, str(report)
    # an embedding gradient scattered to the wrong rows fails the same comparison
    wrong = np.roll(grads["W_embed"], 1, axis=0)
    assert rel_error(wrong, report.numeric_grads["W_embed"]) > 1e-7


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
def test_loss_and_gradients_match_torch(cell, dtype):
    model = _model(cell, seed=5, V=7, H=5, E=4, dtype=dtype)
    idx_in, idx_target = _batch(6, 7, N=3, T=5)
    rng = np.random.default_rng(7)
    h0 = rng.standard_normal((3, 5)).astype(dtype)
    c0 = rng.standard_normal((3, 5)).astype(dtype) if cell == "lstm" else None
    loss, grads, state = model.loss(idx_in, idx_target, h0, c0, return_state=True)

    emb, rec, out = _torch_twin(model)
    state0 = torch.from_numpy(h0)[None]
    if cell == "lstm":
        state0 = (state0, torch.from_numpy(c0)[None])
    h, state_n = rec(emb(torch.from_numpy(idx_in)), state0)
    scores = out(h)
    t_loss = torch.nn.functional.cross_entropy(scores.reshape(-1, 7), torch.from_numpy(idx_target).reshape(-1))
    t_loss.backward()

    assert_close(np.float64(loss), t_loss.detach().numpy().astype(np.float64), "loss", dtype=dtype)
    for name, g in _torch_grads(emb, rec, out, cell).items():
        assert grads[name].dtype == dtype
        assert_close(grads[name], g, f"d{name}")
    if cell == "lstm":
        assert_close(state[0], state_n[0][0], "h_last")
        assert_close(state[1], state_n[1][0], "c_last")
    else:
        assert_close(state, state_n[0], "h_last")


@pytest.mark.parametrize("cell", CELLS)
def test_carried_state_splits_a_sequence_in_two(cell):
    """Stateful use: two halves, the second starting from the first's last state,
    have the loss of the whole (as means of equal halves)."""
    model = _model(cell, seed=8)
    idx_in, idx_target = _batch(9, model.vocab_size, N=2, T=6)
    whole, _ = model.loss(idx_in, idx_target)
    first, _, state = model.loss(idx_in[:, :3], idx_target[:, :3], return_state=True)
    h, c = state if cell == "lstm" else (state, None)
    second, _ = model.loss(idx_in[:, 3:], idx_target[:, 3:], h, c)
    assert_close(np.float64((first + second) / 2), np.float64(whole), "loss")
    second_from_zeros, _ = model.loss(idx_in[:, 3:], idx_target[:, 3:])
    with pytest.raises(AssertionError):  # the state matters
        assert_close(np.float64((first + second_from_zeros) / 2), np.float64(whole), "loss")


def test_loss_twice_is_identical_and_leaves_params_alone():
    model = _model("lstm", seed=2)
    before = {k: v.copy() for k, v in model.params.items()}
    idx_in, idx_target = _batch(1, model.vocab_size)
    a, ga = model.loss(idx_in, idx_target)
    b, gb = model.loss(idx_in, idx_target)
    assert a == b
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k])
        np.testing.assert_array_equal(model.params[k], before[k])


def test_extreme_weights_give_finite_loss_and_samples():
    model = _model("gru", seed=3)
    model.params["W_out"] *= 1e4
    model.params["W_embed"] *= 1e4
    idx_in, idx_target = _batch(1, model.vocab_size)
    loss, grads = model.loss(idx_in, idx_target)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())
    out = model.sample(0, 10, rng=np.random.default_rng(0), temperature=1e-3)
    assert out.shape == (10,)


# --- training -----------------------------------------------------------------------------


def _train(cell, steps, seed=0):
    vocab = CharVocab(CORPUS)
    data = vocab.encode(CORPUS)
    rng = np.random.default_rng(seed)
    model = CharRNN(vocab.size, 32, cell=cell, embed_size=8, rng=rng)
    opt = Adam(model.params, lr=1e-2)
    T, N = 16, 8
    for _ in range(steps):
        starts = rng.integers(0, len(data) - T - 1, size=N)
        windows = np.stack([data[s:s + T + 1] for s in starts])
        loss, grads = model.loss(windows[:, :-1], windows[:, 1:])
        grads, _ = clip_grad_norm_global(grads, 5.0)
        opt.step(grads)
    return vocab, model, loss


@pytest.mark.parametrize("cell", CELLS)
def test_training_learns_a_repetitive_text_quickly(cell):
    vocab, model, loss = _train(cell, steps=200)
    uniform = np.log(vocab.size)
    assert loss < 0.5 * uniform, f"loss {loss:.3f} after 200 steps; uniform baseline log V = {uniform:.3f}"
    # greedy generation continues the text
    prompt = vocab.encode("hello wor")
    text = vocab.decode(model.sample(prompt, 13, rng=np.random.default_rng(0), temperature=1e-6))
    assert text == "ld! hello wor", text


# --- sampling -----------------------------------------------------------------------------


def _greedy_with_torch(model, start, length):
    emb, rec, out = _torch_twin(model)
    idx, state, result = start, None, []
    with torch.no_grad():
        for _ in range(length):
            h, state = rec(emb(torch.tensor([[idx]])), state)
            idx = int(out(h)[0, 0].argmax())
            result.append(idx)
    return result


@pytest.mark.parametrize("cell", CELLS)
def test_small_temperature_is_greedy(cell):
    model = _model(cell, seed=10, V=8, H=6, E=4)
    model.params["W_out"] *= 5  # well-separated scores: no near-ties for argmax
    expected = _greedy_with_torch(model, 3, 12)
    for seed in range(3):
        got = model.sample(3, 12, rng=np.random.default_rng(seed), temperature=1e-8)
        assert got.tolist() == expected


def test_same_seed_same_sample_and_different_seed_different_sample():
    model = _model("lstm", seed=11, V=8)
    a = model.sample([1, 2, 3], 40, rng=np.random.default_rng(5))
    b = model.sample([1, 2, 3], 40, rng=np.random.default_rng(5))
    c = model.sample([1, 2, 3], 40, rng=np.random.default_rng(6))
    assert a.dtype == np.int64 and a.shape == (40,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert model.sample(1, 0, rng=np.random.default_rng(0)).shape == (0,)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_first_sample_follows_the_softmax_of_scores_over_temperature(temperature):
    """Frequencies of the first generated character after a prompt match
    softmax(scores / temperature), the model's distribution (computed by torch)."""
    model = _model("gru", seed=12, V=5, H=4, E=3)
    emb, rec, out = _torch_twin(model)
    with torch.no_grad():
        scores = out(rec(emb(torch.tensor([[2, 4]])))[0])[0, -1]
        probs = torch.softmax(scores / temperature, dim=0).numpy()
    rng = np.random.default_rng(0)
    n = 3000
    draws = [model.sample([2, 4], 1, rng=rng, temperature=temperature)[0] for _ in range(n)]
    counts = np.bincount(draws, minlength=5)
    # 4.5 standard deviations of a binomial count: fails for a wrong
    # distribution (scores not divided by temperature, off-by-one prompt), not by chance
    sd = np.sqrt(n * probs * (1 - probs))
    assert np.all(np.abs(counts - n * probs) < 4.5 * sd + 1), (counts, n * probs)


# --- bad input ----------------------------------------------------------------------------


def test_errors_name_what_was_expected():
    with pytest.raises(ValueError, match=r"rng is NoneType; expected a numpy.random.Generator"):
        CharRNN(5, 4, rng=None)
    with pytest.raises(ValueError, match=r"cell is 'transformer'; expected 'rnn', 'gru' or 'lstm'"):
        CharRNN(5, 4, cell="transformer", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"vocab_size is 0; expected an integer >= 1"):
        CharRNN(0, 4, rng=np.random.default_rng(0))
    model = _model("gru", V=6, H=4)
    idx_in, idx_target = _batch(0, 6, N=2, T=3)
    with pytest.raises(ValueError, match=r"idx_target has shape \(2, 2\); expected \(N, T\) = \(2, 3\)"):
        model.loss(idx_in, idx_target[:, :2])
    with pytest.raises(ValueError, match=r"idx_in has values in \[0, 6\]; expected 0 <= idx_in < V = 6"):
        model.loss(np.where(idx_in == idx_in[0, 0], 6, idx_in), idx_target)
    with pytest.raises(ValueError, match=r"idx_in has dtype float64; expected an integer array"):
        model.loss(idx_in.astype(float), idx_target)
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 3\); expected \(N, H\) = \(2, 4\)"):
        model.loss(idx_in, idx_target, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"c0 was given for cell='gru'"):
        model.loss(idx_in, idx_target, None, np.zeros((2, 4)))
    rng = np.random.default_rng(0)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"temperature is .*; expected a finite number > 0"):
            model.sample(0, 5, rng=rng, temperature=bad)
    with pytest.raises(ValueError, match=r"rng is int; expected a numpy.random.Generator"):
        model.sample(0, 5, rng=0)
    with pytest.raises(ValueError, match=r"start has values in \[7, 7\]; expected 0 <= start < V = 6"):
        model.sample(7, 5, rng=rng)
    with pytest.raises(ValueError, match=r"start is empty"):
        model.sample([], 5, rng=rng)
    with pytest.raises(ValueError, match=r"c0 was given for cell='gru'"):
        model.sample(0, 5, rng=rng, c0=np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 4\); expected \(N, H\) = \(1, 4\)"):
        model.sample(0, 5, rng=rng, h0=np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"length is -1; expected an integer >= 0"):
        model.sample(0, -1, rng=rng)
