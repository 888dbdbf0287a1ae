"""rnncourse.torch.dropout and the regularisation options of CharLanguageModel, against independent truths."""

import pytest
import torch
from torch import nn

from rnncourse.testing import assert_close
from rnncourse.torch.dropout import drop_recurrent_units, run_recurrent, variational_dropout
from rnncourse.torch.models import CharLanguageModel
from rnncourse.torch.rnn import GRU, LSTM, RNN

MODULES = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


def _random_biases(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "bias" in name:
                p.copy_(torch.randn(p.shape, generator=g))
    return module


# --- the masks -------------------------------------------------------------------------------------


def test_variational_masks_are_the_same_at_every_step_and_differ_between_sequences():
    torch.manual_seed(0)
    x = torch.ones(64, 9, 50)
    y = variational_dropout(x, 0.3)
    kept = y != 0
    assert (kept == kept[:, :1]).all(), "a unit dropped at one step must be dropped at every step"
    assert (kept[0] != kept[1]).any(), "each sequence draws its own mask"
    assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7), "kept units are scaled by 1 / (1 - p)")
    assert abs((~kept[:, 0]).double().mean().item() - 0.3) < 0.03  # 3200 draws: sd of the share 0.008


def test_plain_dropout_would_change_its_mask_from_step_to_step():
    # The contrast the book draws: torch's dropout draws a new mask at every step.
    torch.manual_seed(0)
    kept = nn.functional.dropout(torch.ones(64, 9, 50), 0.3) != 0
    assert (kept != kept[:, :1]).any()


def test_no_dropout_when_not_training_or_p_is_zero():
    x = torch.randn(2, 3, 4)
    assert variational_dropout(x, 0.5, training=False) is x
    assert variational_dropout(x, 0.0) is x
    w = torch.randn(6, 2)
    assert drop_recurrent_units(w, 0.5, 2, training=False) is w


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=torch.zeros(2, 3), p=0.1), r"x is \(2, 3\); expected a \(N, T, D\)"),
    (dict(x=torch.zeros(2, 3, 4), p=1.0), r"p is 1.0; expected a probability in \[0, 1\)"),
    (dict(x=torch.zeros(2, 3, 4), p=True), "p is True"),
])
def test_bad_dropout_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        variational_dropout(**kwargs)


def test_drop_recurrent_units_zeroes_whole_columns():
    torch.manual_seed(1)
    w = drop_recurrent_units(torch.ones(12, 4), 0.5, 4)  # a GRU's (3H, H)
    dropped = (w == 0).all(dim=0)
    assert ((w == 0) == dropped[None]).all(), "a unit is dropped from every gate's row or from none"
    assert_close(w[:, ~dropped], torch.full_like(w[:, ~dropped], 2.0), "kept columns scaled by 1 / (1 - p)")
    with pytest.raises(ValueError, match=r"weight_hh has shape \(12, 4\); expected \(G\*H, H\) with H = 3"):
        drop_recurrent_units(torch.ones(12, 4), 0.5, 3)


# --- run_recurrent against independent computations ------------------------------------------------


def test_recurrent_dropout_is_a_fixed_mask_on_the_previous_state():
    """A tanh RNN written as a loop, h_t = tanh(x_t W_ih^T + b_ih + (h_{t-1} * m / (1 - p)) W_hh^T + b_hh)."""
    N, T, D, H, p = 3, 6, 4, 5, 0.4
    rnn = _random_biases(RNN(D, H, batch_first=True), 2)
    x, h0 = torch.randn(N, T, D), torch.randn(1, N, H)
    torch.manual_seed(7)
    out, h_n = run_recurrent(rnn, x, h0, recurrent_dropout=p)
    torch.manual_seed(7)
    m = torch.empty(H).bernoulli_(1 - p)  # the one draw run_recurrent makes, in the same order
    assert 0 < m.sum() < H, "the seed must drop some units and keep some, or the check proves little"
    h, expected = h0[0], []
    with torch.no_grad():
        for t in range(T):
            h = torch.tanh(x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
                           + (h * m / (1 - p)) @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
            expected.append(h)
    assert_close(out.detach(), torch.stack(expected, 1), "outputs with h_{t-1} masked")
    assert_close(h_n[0].detach(), h, "final state")


@pytest.mark.parametrize("cell", list(MODULES))
@pytest.mark.parametrize("variational", [True, False])
def test_layer_by_layer_equals_three_separate_torch_nn_layers(cell, variational):
    """Our 3-layer module, run by run_recurrent, against three one-layer torch.nn modules fed the same masks."""
    N, T, D, H, p, q = 4, 5, 3, 6, 0.3, 0.2
    ours = _random_biases(MODULES[cell](D, H, num_layers=3, batch_first=True), 3)
    twins = []
    for k in range(3):
        twin = getattr(nn, cell.upper())(D if k == 0 else H, H, batch_first=True)
        twin.load_state_dict({name: getattr(ours, name.replace("_l0", f"_l{k}"))
                              for name, _ in twin.named_parameters()})
        twins.append(twin)
    x = torch.randn(N, T, D)
    h0 = torch.randn(3, N, H)
    state = (h0, torch.randn(3, N, H)) if cell == "lstm" else h0

    torch.manual_seed(11)
    out, final = run_recurrent(ours, x, state, dropout=p, variational=variational, recurrent_dropout=q)

    torch.manual_seed(11)
    recurrent_masks = [torch.empty(H).bernoulli_(1 - q) for _ in range(3)]  # drawn first, one per layer
    layer_input, finals = x, []
    for k, twin in enumerate(twins):
        if k > 0:
            layer_input = (variational_dropout(layer_input, p) if variational
                           else nn.functional.dropout(layer_input, p))
        with torch.no_grad():
            twin.weight_hh_l0.mul_(recurrent_masks[k] / (1 - q))
        s = (state[0][k : k + 1], state[1][k : k + 1]) if cell == "lstm" else state[k : k + 1]
        layer_input, f = twin(layer_input, s)
        finals.append(f)
    assert_close(out.detach(), layer_input.detach(), f"{cell} output, variational={variational}")
    if cell == "lstm":
        assert_close(final[0].detach(), torch.cat([f[0] for f in finals]).detach(), "h_n")
        assert_close(final[1].detach(), torch.cat([f[1] for f in finals]).detach(), "c_n")
    else:
        assert_close(final.detach(), torch.cat(finals).detach(), "h_n")


def test_gradients_reach_the_module_s_own_parameters():
    rnn = GRU(3, 4, num_layers=2, batch_first=True)
    out, _ = run_recurrent(rnn, torch.randn(2, 5, 3), dropout=0.5, variational=True, recurrent_dropout=0.5)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rnn.parameters())


def test_without_dropout_or_training_it_is_the_module_itself():
    rnn = _random_biases(LSTM(3, 4, num_layers=2, batch_first=True), 4)
    x = torch.randn(2, 5, 3)
    expected, _ = rnn(x)
    for kwargs in (dict(), dict(dropout=0.5, recurrent_dropout=0.5, training=False)):
        out, _ = run_recurrent(rnn, x, **kwargs)
        assert torch.equal(out, expected)


@pytest.mark.parametrize("module, match", [
    (GRU(3, 4, bidirectional=True, batch_first=True), "one direction"),
    (GRU(3, 4, batch_first=False), "batch first"),
    (GRU(3, 4, num_layers=2, dropout=0.2, batch_first=True), "its own dropout"),
])
def test_modules_it_cannot_run_are_refused(module, match):
    with pytest.raises(ValueError, match=match):
        run_recurrent(module, torch.randn(2, 5, 3), dropout=0.1)


# --- CharLanguageModel's options ---------------------------------------------------------------------


def test_tied_weights_are_one_parameter():
    tied = CharLanguageModel(13, 8, "gru", tie_weights=True)
    untied = CharLanguageModel(13, 8, "gru")
    assert tied.head.weight is tied.embedding.weight
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(untied) - n(tied) == 13 * 8
    tied(torch.randint(0, 13, (2, 4)))[0].sum().backward()
    assert tied.embedding.weight.grad is not None  # one gradient, from both uses
    with pytest.raises(ValueError, match="embed_size == hidden_size"):
        CharLanguageModel(13, 8, embed_size=4, tie_weights=True)


def test_dropout_options_change_training_only_not_the_parameters():
    torch.manual_seed(0)
    plain = CharLanguageModel(9, 6, "lstm", num_layers=2)
    torch.manual_seed(0)
    regular = CharLanguageModel(9, 6, "lstm", num_layers=2, dropout=0.4, variational=True, recurrent_dropout=0.3)
    assert list(plain.state_dict()) == list(regular.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), regular.state_dict().values()))
    x = torch.randint(0, 9, (3, 7))
    plain.eval(), regular.eval()
    assert torch.equal(plain(x)[0], regular(x)[0]), "in eval mode no dropout is left"
    regular.train()
    assert not torch.equal(plain(x)[0], regular(x)[0])


def test_the_model_s_variational_masks_hold_over_time():
    model = CharLanguageModel(9, 6, "gru", dropout=0.5, variational=True).train()
    torch.manual_seed(3)
    kept = model._drop(torch.ones(8, 10, 6)) != 0
    assert (kept == kept[:, :1]).all() and (~kept).any()
    model.variational = False
    kept = model._drop(torch.ones(8, 10, 6)) != 0
    assert (kept != kept[:, :1]).any()


@pytest.mark.parametrize("kwargs, match", [
    (dict(recurrent_dropout=1.0), "recurrent_dropout is 1.0"),
    (dict(dropout=-0.1), "dropout is -0.1"),
])
def test_bad_regularisation_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CharLanguageModel(9, 6, **kwargs)
