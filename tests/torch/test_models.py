"""The application models: they handle state, padding and sampling correctly, and they learn."""

import math

import pytest
import torch
import torch.nn.functional as F

from rnncourse.testing import assert_close
from rnncourse.torch.init import init_forget_bias_, init_orthogonal_recurrent_
from rnncourse.torch.models import CharLanguageModel, Forecaster, SequenceClassifier
from rnncourse.torch.rnn import GRU, LSTM, RNN
from rnncourse.torch.train import fit, seed_everything

CELLS = ["lstm", "gru", "rnn"]


def _randomize_biases(module, generator):
    """Non-zero biases everywhere, so a bias that is ignored or misplaced shows."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "bias" in name:
                p.copy_(torch.randn(p.shape, generator=generator))


# --- initialisation ------------------------------------------------------------------------


def test_forget_bias_sets_the_f_block_of_every_layer_and_direction():
    g = torch.Generator().manual_seed(0)
    H = 5
    lstm = LSTM(3, H, num_layers=2, bidirectional=True, batch_first=True)
    _randomize_biases(lstm, g)
    before = {k: v.clone() for k, v in lstm.named_parameters()}
    assert init_forget_bias_(lstm, 1.5) is lstm
    names = [f"bias_{w}_l{k}{s}" for w in ("ih", "hh") for k in (0, 1) for s in ("", "_reverse")]
    for name in names:
        b, old = getattr(lstm, name), before[name]
        assert_close(b[H : 2 * H], torch.full((H,), 1.5 if "_ih_" in name else 0.0), f"{name} forget block")
        for other in (slice(0, H), slice(2 * H, 4 * H)):  # i; g and o untouched
            assert_close(b[other], old[other], f"{name} other gates")
    for name, p in lstm.named_parameters():
        if name.startswith("weight"):
            assert_close(p, before[name], name)


def _cell_after_one_step(lstm):
    """c_1 for x = 0, h_0 = 0, c_0 = 1: only the biases act, c_1 = sigmoid(f) + sigmoid(i) tanh(g)."""
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("weight"):
                p.zero_()
    h0, c0 = torch.zeros(1, 1, lstm.hidden_size), torch.ones(1, 1, lstm.hidden_size)
    _, (_, c1) = lstm(torch.zeros(1, 1, lstm.input_size), (h0, c0))
    return c1[0, 0]


def test_forget_bias_reaches_the_forget_gate_of_our_lstm():
    H = 4
    lstm = LSTM(2, H, batch_first=True)
    with torch.no_grad():
        lstm.bias_ih_l0.copy_(torch.linspace(-1, 1, 4 * H))
        lstm.bias_hh_l0.copy_(torch.linspace(0.5, -0.5, 4 * H))
    init_forget_bias_(lstm, 2.0)
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()
    i, g = b[:H], b[2 * H : 3 * H]
    expected = torch.sigmoid(torch.tensor(2.0)) + torch.sigmoid(i) * torch.tanh(g)
    assert_close(_cell_after_one_step(lstm), expected, "c_1 with forget bias 2")

    # A realistic bug, setting rows 0:H (the input gate, in PyTorch's i, f, g, o order), is caught.
    buggy = LSTM(2, H, batch_first=True)
    buggy.load_state_dict({k: v for k, v in lstm.state_dict().items()})
    with torch.no_grad():
        buggy.bias_ih_l0[:H], buggy.bias_hh_l0[:H] = 2.0, 0.0
    with pytest.raises(AssertionError):
        assert_close(_cell_after_one_step(buggy), expected, "c_1, forget bias in the wrong block")


@pytest.mark.parametrize("module", [GRU(3, 4), RNN(3, 4), torch.nn.Linear(3, 4), LSTM(3, 4, bias=False)])
def test_forget_bias_rejects_what_has_no_forget_gate_bias(module):
    with pytest.raises(ValueError, match="LSTM|forget|recurrent|bias"):
        init_forget_bias_(module, 1.0)


@pytest.mark.parametrize("cell,gates", [("rnn", 1), ("gru", 3), ("lstm", 4)])
def test_orthogonal_recurrent_makes_each_gate_block_orthogonal(cell, gates):
    H = 6
    rnn = {"rnn": RNN, "gru": GRU, "lstm": LSTM}[cell](4, H, num_layers=2, bidirectional=True)
    inputs_before = {k: v.clone() for k, v in rnn.named_parameters() if "weight_hh" not in k}
    init_orthogonal_recurrent_(rnn, gain=0.9, generator=torch.Generator().manual_seed(1))
    eye = torch.eye(H)
    for k in (0, 1):
        for s in ("", "_reverse"):
            w = getattr(rnn, f"weight_hh_l{k}{s}").detach()
            assert w.shape == (gates * H, H)
            for g in range(gates):
                block = w[g * H : (g + 1) * H] / 0.9
                assert_close(block @ block.T, eye, f"weight_hh_l{k}{s} gate {g}: W W^T / gain^2")
    for name, p in rnn.named_parameters():  # nothing else moved
        if name in inputs_before:
            assert_close(p, inputs_before[name], name)


def test_orthogonal_recurrent_is_reproducible_and_catches_a_whole_matrix_orthogonalisation():
    a, b = LSTM(3, 5), LSTM(3, 5)
    init_orthogonal_recurrent_(a, generator=torch.Generator().manual_seed(7))
    init_orthogonal_recurrent_(b, generator=torch.Generator().manual_seed(7))
    assert_close(a.weight_hh_l0, b.weight_hh_l0, "same seed, same weights")

    # torch.nn.init.orthogonal_ on the stacked (4H, H) matrix gives orthonormal
    # columns of the stack: the gate blocks themselves are not orthogonal.
    whole = LSTM(3, 5)
    torch.nn.init.orthogonal_(whole.weight_hh_l0)
    block = whole.weight_hh_l0.detach()[5:10]
    with pytest.raises(AssertionError):
        assert_close(block @ block.T, torch.eye(5), "forget block after whole-matrix orthogonalisation")


def test_models_apply_the_init_options():
    m = CharLanguageModel(7, 6, "lstm", num_layers=2, forget_bias=1.0, orthogonal_recurrent=True)
    assert_close(m.rnn.bias_ih_l1[6:12], torch.ones(6), "forget bias, layer 1")
    w = m.rnn.weight_hh_l1.detach()[12:18]
    assert_close(w @ w.T, torch.eye(6), "orthogonal g block, layer 1")
    c = SequenceClassifier(3, 4, 2, "lstm", bidirectional=True, forget_bias=2.0)
    assert_close(c.rnn.bias_ih_l0_reverse[4:8], torch.full((4,), 2.0), "classifier forget bias")
    f = Forecaster(1, 4, 3, "gru", orthogonal_recurrent=True)
    w = f.rnn.weight_hh_l0.detach()[:4]
    assert_close(w @ w.T, torch.eye(4), "forecaster orthogonal r block")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(cell="gru", forget_bias=1.0), "only an LSTM"),
        (dict(cell="cnn"), "cell is 'cnn'"),
        (dict(num_layers=0), "num_layers"),
        (dict(dropout=1.0), "dropout"),
        (dict(embed_size=2.5), "embed_size"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CharLanguageModel(5, 4, **kwargs)


# --- the character language model -----------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_char_lm_state_carries_across_calls(cell):
    seed_everything(0)
    model = CharLanguageModel(11, 8, cell, num_layers=2, embed_size=5)
    _randomize_biases(model, torch.Generator().manual_seed(0))
    idx = torch.randint(0, 11, (3, 9))
    logits, state = model(idx)
    assert logits.shape == (3, 9, 11)
    first, state1 = model(idx[:, :4])
    second, state2 = model(idx[:, 4:], state1)
    assert_close(torch.cat([first, second], dim=1), logits, "logits in two calls vs one")
    for a, b in zip(state2 if cell == "lstm" else [state2], state if cell == "lstm" else [state]):
        assert a.shape == (2, 3, 8)
        assert_close(a, b, "final state")


def test_char_lm_rejects_float_input():
    with pytest.raises(ValueError, match="int64"):
        CharLanguageModel(5, 4)(torch.zeros(2, 3))


TEXT = "a cat sat on a mat. a rat ate a hat. " * 12


def _lm_loss(model, batch, state):
    x, y = batch
    logits, state = model(x, state)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten()), state


def test_char_lm_learns_far_below_the_uniform_baseline():
    from rnncourse.torch.train import batchify_stream, tbptt_chunks

    chars = sorted(set(TEXT))
    V = len(chars)
    ids = torch.tensor([chars.index(ch) for ch in TEXT])
    seed_everything(0)
    model = CharLanguageModel(V, 32, "lstm", embed_size=16, forget_bias=1.0)
    chunks = tbptt_chunks(batchify_stream(ids, 8), 16)
    history = fit(model, chunks, _lm_loss, optimizer=torch.optim.Adam(model.parameters(), lr=0.02),
                  steps=60, device="cpu", tbptt=True, clip_grad_norm=1.0, progress=False)
    baseline = math.log(V)  # a model that knows nothing: uniform over the V characters
    assert history.train_loss[0] > 0.8 * baseline, "an untrained model should start near log V"
    final = sum(history.train_loss[-10:]) / 10
    assert final < 0.3 * baseline, f"loss {final:.3f} after 60 steps; uniform baseline log V = {baseline:.3f}"


# --- sampling -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm():
    seed_everything(3)
    model = CharLanguageModel(9, 12, "gru", dropout=0.3)
    _randomize_biases(model, torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.head.weight.mul_(4)  # a peaked distribution, so top-k matters
    return model


def _greedy(model, prompt, length):
    model.eval()
    seq = prompt.clone()
    with torch.no_grad():
        for _ in range(length):
            logits, _ = model(seq[None])
            seq = torch.cat([seq, logits[0, -1].argmax()[None]])
    return seq[len(prompt) :]


def test_top_k_1_and_tiny_temperature_are_greedy(lm):
    prompt = torch.tensor([1, 4, 2])
    greedy = _greedy(lm, prompt, 25)
    for kwargs in (dict(top_k=1, temperature=3.0), dict(temperature=1e-6)):
        got = lm.sample(prompt, 25, generator=torch.Generator().manual_seed(0), **kwargs)
        assert torch.equal(got, greedy), f"{kwargs}: {got.tolist()} vs greedy {greedy.tolist()}"
    # ... and sampling at temperature 1 is not (the comparison can fail).
    plain = lm.sample(prompt, 25, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(plain, greedy)


def _ranks(model, prompt, sampled):
    """Rank of each sampled index among the model's logits at its step (0 = most likely)."""
    model.eval()
    with torch.no_grad():
        logits, _ = model(torch.cat([prompt, sampled])[None])
    logits = logits[0, len(prompt) - 1 : -1]
    chosen = logits.gather(1, sampled[:, None])
    return (logits > chosen).sum(1)


def test_samples_never_leave_the_top_k(lm):
    prompt = torch.tensor([0, 3])
    hot = dict(temperature=5.0, generator=torch.Generator().manual_seed(1))
    top3 = lm.sample(prompt, 200, top_k=3, **hot)
    assert int(_ranks(lm, prompt, top3).max()) < 3
    free = lm.sample(prompt, 200, **hot)
    assert int(_ranks(lm, prompt, free).max()) >= 3, "without top_k, a hot sample should leave the top 3"


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_first_draw_follows_softmax_over_temperature(lm, temperature):
    n = 20000
    prompt = torch.tensor([[2, 5]]).expand(n, 2)
    draws = lm.sample(prompt, 1, generator=torch.Generator().manual_seed(2), temperature=temperature)
    freq = torch.bincount(draws[:, 0], minlength=9).double() / n
    lm.eval()
    with torch.no_grad():
        logits = lm(prompt[:1])[0][0, -1].double()
    p = torch.softmax(logits / temperature, -1)
    # A statistical bound, not the numerical tolerance policy: 5 standard
    # deviations of a frequency over n draws, plus 1e-3 for tiny p.
    bound = 5 * torch.sqrt(p * (1 - p) / n) + 1e-3
    assert bool(((freq - p).abs() <= bound).all()), f"frequencies {freq.tolist()} vs {p.tolist()}"
    wrong = torch.softmax(logits * temperature, -1)  # temperature multiplied in: caught
    assert not bool(((freq - wrong).abs() <= bound).all())


def test_sampling_is_reproducible_and_ignores_dropout(lm):
    lm.train()
    prompt = torch.tensor([[1, 2], [3, 4]])
    a = lm.sample(prompt, 30, generator=torch.Generator().manual_seed(5))
    torch.rand(10)  # move the global RNG that dropout would use
    b = lm.sample(prompt, 30, generator=torch.Generator().manual_seed(5))
    assert a.shape == (2, 30) and torch.equal(a, b)
    assert lm.training, "sample should put the model back in training mode"
    c = lm.sample(prompt, 30, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)
    assert lm.sample(prompt[0], 0, generator=torch.Generator()).shape == (0,)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature=math.nan), "temperature"),
        (dict(temperature=math.inf), "temperature"),
        (dict(temperature=True), "temperature"),  # a bool is not a temperature, though Python calls it an int
        (dict(top_k=0), "top_k"),
        (dict(top_k=10), "top_k"),
        (dict(generator=None), "generator"),
        (dict(prompt=torch.tensor([1.0])), "int64"),
        (dict(prompt=torch.zeros(0, dtype=torch.int64)), "empty"),
        (dict(length=-1), "length"),
    ],
)
def test_bad_sampling_arguments_are_named(lm, kwargs, match):
    args = dict(prompt=torch.tensor([1]), length=3, generator=torch.Generator())
    args.update(kwargs)
    prompt, length = args.pop("prompt"), args.pop("length")
    with pytest.raises(ValueError, match=match):
        lm.sample(prompt, length, **args)


# --- the classifier: padding must not matter ---------------------------------------------------


def _padded(seq, T, generator):
    """seq (L, ...) padded to T steps with random garbage (zeros would hide more bugs)."""
    pad = torch.randn((T - len(seq),) + seq.shape[1:], generator=generator)
    if not seq.is_floating_point():
        pad = torch.randint(0, 10, (T - len(seq),), generator=generator)
    return torch.cat([seq, pad])


class LastStepClassifier(SequenceClassifier):
    """The common mistake (errata 18): read ``out[:, -1]`` of the padded batch."""

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class GatherClassifier(SequenceClassifier):
    """Half a fix: read ``out`` at each sequence's own last step, without packing.

    Right for one direction; a backward direction has then started in the padding.
    """

    def forward(self, x, lengths):
        out, _ = self.rnn(x)
        return self.head(out[torch.arange(len(x)), torch.as_tensor(lengths) - 1])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_logits_do_not_depend_on_padding(cell, bidirectional):
    g = torch.Generator().manual_seed(11)
    seed_everything(11)
    model = SequenceClassifier(3, 5, 4, cell, num_layers=2, bidirectional=bidirectional)
    _randomize_biases(model, g)
    model.eval()
    seq, other = torch.randn(5, 3, generator=g), torch.randn(7, 3, generator=g)
    alone = model(seq[None])  # no padding at all
    for T in (7, 12):
        batch = torch.stack([_padded(other, T, g), _padded(seq, T, g)])
        logits = model(batch, torch.tensor([7, 5]))
        assert logits.shape == (2, 4)
        assert_close(logits[1], alone[0], f"logits of a length-5 sequence padded to {T}")
        assert_close(logits[0], model(other[None])[0], f"logits of the length-7 sequence, T = {T}")

    # The same test catches the out[:, -1] model.
    bad = LastStepClassifier(3, 5, 4, cell, num_layers=2, bidirectional=bidirectional)
    bad.load_state_dict(model.state_dict())
    with pytest.raises(AssertionError):
        assert_close(bad(_padded(seq, 12, g)[None])[0], bad(seq[None])[0], "out[:, -1] model")
    gather = GatherClassifier(3, 5, 4, cell, num_layers=2, bidirectional=bidirectional)
    gather.load_state_dict(model.state_dict())
    padded = gather(_padded(seq, 12, g)[None], [5])[0]
    if bidirectional:
        with pytest.raises(AssertionError):
            assert_close(padded, alone[0], "gathering the last step, bidirectional")
    else:
        assert_close(padded, alone[0], "gathering the last step, one direction")


def test_classifier_with_tokens_and_no_lengths():
    seed_everything(2)
    model = SequenceClassifier(4, 6, 3, "gru", vocab_size=10, bidirectional=True).eval()
    x = torch.randint(0, 10, (3, 8))
    assert_close(model(x), model(x, torch.tensor([8, 8, 8])), "lengths=None vs all full")
    assert_close(model(x, [3, 8, 1])[0], model(x[:1, :3])[0], "token input, padded")


@pytest.mark.parametrize(
    "x,lengths,match",
    [
        (torch.randn(2, 4, 3), torch.tensor([5, 1]), r"1 <= length <= T = 4"),
        (torch.randn(2, 4, 3), torch.tensor([0, 1]), r"1 <= length"),
        (torch.randn(2, 4, 3), torch.tensor([1, 2, 3]), r"\(N,\) = \(2,\)"),
        (torch.randn(2, 4, 3), torch.tensor([1.0, 2.0]), "integers"),
        (torch.randn(2, 4, 2), None, "D = 3"),
        (torch.randn(2, 4), None, "D = 3"),
        (torch.zeros(2, 4, 3, dtype=torch.int64), None, "floating-point"),
    ],
)
def test_classifier_bad_input_is_named(x, lengths, match):
    with pytest.raises(ValueError, match=match):
        SequenceClassifier(3, 4, 2)(x, lengths)


def _contains_three(n, generator):
    """Token sequences (0 is padding) of lengths 2..12; label: does the sequence contain 3?"""
    lengths = torch.randint(2, 13, (n,), generator=generator)
    x = torch.randint(1, 10, (n, 12), generator=generator)
    x[torch.arange(12)[None, :] >= lengths[:, None]] = 0
    return x, lengths, (x == 3).any(1).long()


def test_classifier_learns_a_length_invariant_rule():
    g = torch.Generator().manual_seed(0)
    seed_everything(0)
    model = SequenceClassifier(8, 16, 2, "gru", vocab_size=10)
    batches = [_contains_three(64, g) for _ in range(8)]

    def loss_fn(model, batch):
        x, lengths, y = batch
        return F.cross_entropy(model(x, lengths), y)

    fit(model, batches, loss_fn, optimizer=torch.optim.Adam(model.parameters(), lr=0.02),
        epochs=4, device="cpu", progress=False)
    x, lengths, y = _contains_three(1000, g)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x, lengths).argmax(1) == y).double().mean().item()
        # Shorter padding, same sequences: the same predictions.
        short = model(x[lengths <= 6, :6], lengths[lengths <= 6])
        assert_close(short, model(x[lengths <= 6], lengths[lengths <= 6]), "trained model, padding 6 vs 12")
    majority = max(y.double().mean().item(), 1 - y.double().mean().item())
    assert accuracy >= 0.95, f"accuracy {accuracy:.3f}; guessing the majority class gives {majority:.3f}"


# --- the forecaster ---------------------------------------------------------------------------


def test_forecaster_shapes_follow_the_window():
    seed_everything(0)
    uni, multi = Forecaster(1, 5, 3), Forecaster(2, 5, 3, "gru")
    assert uni(torch.randn(4, 10)).shape == (4, 3)
    assert uni(torch.randn(4, 10, 1)).shape == (4, 3, 1)
    assert multi(torch.randn(4, 10, 2)).shape == (4, 3, 2)
    assert uni.rollout(torch.randn(4, 10), 7).shape == (4, 7)
    assert multi.rollout(torch.randn(4, 10, 2), 7).shape == (4, 7, 2)
    assert multi.rollout(torch.randn(4, 10, 2), 0).shape == (4, 0, 2)
    with pytest.raises(ValueError, match="univariate"):
        multi(torch.randn(4, 10))
    with pytest.raises(ValueError, match="D = 2"):
        multi(torch.randn(4, 10, 3))
    with pytest.raises(ValueError, match="steps"):
        uni.rollout(torch.randn(4, 10), -1)


@pytest.mark.parametrize("cell", CELLS)
def test_rollout_equals_rereading_the_extended_window(cell):
    seed_everything(4)
    model = Forecaster(2, 6, 3, cell, num_layers=2)
    _randomize_biases(model, torch.Generator().manual_seed(4))
    window = torch.randn(3, 8, 2)
    got = model.rollout(window, 4)
    expected = []
    for _ in range(4):  # the slow way: predict one step, append, read everything again
        y = model(window)[:, 0]
        expected.append(y)
        window = torch.cat([window, y[:, None]], dim=1)
    assert_close(got, torch.stack(expected, 1), f"{cell} rollout vs re-reading")
    got.sum().backward()  # differentiable end to end
    assert model.rnn.weight_hh_l0.grad.abs().sum() > 0


def _noisy_sine(n, T, horizon, generator):
    start = torch.rand(n, 1, generator=generator) * 2 * math.pi
    t = start + 0.3 * torch.arange(T + horizon)
    series = torch.sin(t) + 0.1 * torch.randn(n, T + horizon, generator=generator)
    return series[:, :T], series[:, T:]


def test_forecaster_beats_the_last_value_baseline():
    g = torch.Generator().manual_seed(0)
    seed_everything(0)
    horizon = 5
    model = Forecaster(1, 16, horizon, "lstm")
    batches = [_noisy_sine(32, 20, horizon, g) for _ in range(6)]
    fit(model, batches, lambda m, b: F.mse_loss(m(b[0]), b[1]),
        optimizer=torch.optim.Adam(model.parameters(), lr=0.02), epochs=5, device="cpu", progress=False)
    window, future = _noisy_sine(500, 20, horizon, g)
    naive = F.mse_loss(window[:, -1:].expand(-1, horizon), future).item()
    with torch.no_grad():
        direct = F.mse_loss(model(window), future).item()
        rolled = F.mse_loss(model.rollout(window, horizon), future).item()
    assert direct < 0.5 * naive, f"direct MSE {direct:.4f} vs last-value baseline {naive:.4f}"
    assert rolled < naive, f"rollout MSE {rolled:.4f} vs last-value baseline {naive:.4f}"
