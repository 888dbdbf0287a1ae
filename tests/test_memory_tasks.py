"""rnncourse.memory_tasks: the synthetic tasks of part three, their models and the experiment runners.

The batches are checked against their definitions (each target recomputed
here from the inputs), the models for their shapes and for learning a task
that needs their mechanism, and the runners for returning the same numbers
in a worker process as in this one (the book's results depend on it).
"""

import numpy as np
import pytest
import torch

import rnncourse.memory_tasks as mt
from rnncourse.memory_tasks import (
    IGNORE,
    DelayModel,
    DiagonalLinearRNN,
    TokenModel,
    accuracy,
    associative_recall_batch,
    classification_loss,
    delay_batch,
    parity_batch,
    run_parallel,
    selective_copying_batch,
    train,
)


def test_selective_copying_targets_are_the_data_tokens_in_order():
    n_noise, n_data = 4, 6
    x, y = selective_copying_batch(50, 20, 3, n_data, np.random.default_rng(0), n_noise)
    assert x.shape == y.shape == (50, 23) and x.dtype == torch.int64
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        body = row_x[:20]
        data = body[body > n_noise] - n_noise - 1  # data tokens, in order of appearance
        assert len(data) == 3
        assert list(row_y[20:]) == list(data)
        assert (row_y[:20] == IGNORE).all() and (row_x[20:] == 0).all()
        assert ((body >= 1) & (body <= n_noise + n_data)).all()
    with pytest.raises(ValueError, match="n_tokens"):
        selective_copying_batch(2, 3, 4, 6, np.random.default_rng(0))


def test_selective_copying_places_tokens_at_varying_positions():
    x, _ = selective_copying_batch(200, 30, 2, 5, np.random.default_rng(1))
    first = (x[:, :30] > 1).float().argmax(1)
    assert len(set(first.tolist())) > 10  # a fixed kernel cannot know where to look


def test_parity_targets_are_running_parities():
    x, y = parity_batch(20, 33, np.random.default_rng(0))
    assert ((np.cumsum(x.numpy(), 1) % 2) == y.numpy()).all()
    assert set(np.unique(x.numpy())) <= {0, 1}


def test_associative_recall_targets_are_the_values_of_the_query():
    n_keys, n_values = 10, 7
    x, y = associative_recall_batch(100, 5, n_keys, n_values, np.random.default_rng(0))
    assert x.shape == (100, 11)
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        keys, values = row_x[0:-1:2], row_x[1:-1:2]
        assert len(set(keys)) == 5 and (keys < n_keys).all() and (values >= n_keys).all()
        (position,) = np.flatnonzero(keys == row_x[-1])
        assert row_y[-1] == values[position] - n_keys and (row_y[:-1] == IGNORE).all()
    with pytest.raises(ValueError, match="n_pairs 5 needs as many distinct keys"):
        associative_recall_batch(2, 5, 4, 3, np.random.default_rng(0))


def test_delay_batch_targets_are_the_inputs_delayed():
    x, y = delay_batch(3, 20, 7, np.random.default_rng(0))
    assert x.shape == (3, 20, 1) and y.shape == (3, 13, 1) and x.dtype == torch.float32
    assert torch.equal(y, x[:, :13])


@pytest.mark.parametrize("kind", ["lstm", "rnn", "s6", "s4", "linear_attention", "diag_positive", "diag_negative",
                                  "lru"])
def test_token_models_map_tokens_to_logits(kind):
    torch.manual_seed(0)
    model = TokenModel(kind, 7, 5, width=8, n_layers=2, state=4, shift=kind == "linear_attention")
    logits = model(torch.randint(0, 7, (3, 11)))
    assert logits.shape == (3, 11, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_token_models_are_causal():
    # changing a later token must not change earlier outputs
    torch.manual_seed(0)
    for kind in ("s6", "linear_attention", "diag_negative", "lru"):
        model = TokenModel(kind, 5, 3, width=8, state=4, shift=True)
        x = torch.randint(0, 5, (2, 9))
        y = x.clone()
        y[:, 6] = (y[:, 6] + 1) % 5
        with torch.no_grad():
            assert torch.allclose(model(x)[:, :6], model(y)[:, :6], atol=1e-6), kind


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind is 'gru'"):
        TokenModel("gru", 3, 3)
    with pytest.raises(ValueError, match="rung is 'deep'"):
        DelayModel("deep", 4, 4)


def test_negative_eigenvalues_allow_a_sign_flip_and_positive_ones_do_not():
    layer = DiagonalLinearRNN(1, 1, negative=True)
    with torch.no_grad():
        layer.gate.weight.fill_(-40.0)  # a(x=1) = 2 sigmoid(-40 + 20) - 1 ~ -1, a(x=0) ~ 1
        layer.gate.bias.fill_(20.0)
        layer.inp.weight.zero_()
    bits = torch.tensor([[1.0, 0.0, 1.0, 1.0]])[..., None]
    assert torch.allclose(layer(bits)[0, :, 0], torch.tensor([-1.0, -1.0, 1.0, -1.0]), atol=1e-6)
    layer.negative = False
    assert (layer(bits) > 0).all()


def test_train_learns_and_reports():
    torch.manual_seed(0)
    model = TokenModel("lstm", 2, 2, width=8)
    result = train(model, lambda rng: parity_batch(16, 6, rng), classification_loss, 60, lr=3e-2,
                   eval_every=30, evaluate=lambda m: 1.0)
    assert len(result["loss"]) == 60 and result["evals"] == [(30, 1.0), (60, 1.0)]
    assert np.mean(result["loss"][-10:]) < np.mean(result["loss"][:10])
    assert result["seconds"] > 0
    x, y = parity_batch(50, 6, np.random.default_rng(5))
    assert 0 <= accuracy(model, x, y) <= 1


def test_runners_are_deterministic(monkeypatch):
    monkeypatch.setitem(mt.PARITY, "steps", 5)  # tiny, so that the test is quick
    jobs = [dict(kind="diag_negative", seed=0), dict(kind="diag_positive", seed=1)]
    here = run_parallel(mt.run_parity, jobs, processes=1)
    again = run_parallel(mt.run_parity, jobs, processes=1)
    for a, b in zip(here, again):
        assert a["within"] == b["within"] and a["beyond"] == b["beyond"] and a["by_position"] == b["by_position"]
        assert set(a) >= {"kind", "seed", "within", "beyond", "by_position", "params", "seconds"}


@pytest.mark.slow
def test_a_spawned_worker_gives_the_numbers_of_this_process():
    # the book runs its experiments in worker processes: their numbers must not depend on that
    # (30 updates are enough: a difference in the process's state shows in the first ones)
    jobs = [dict(kind="diag_negative", seed=0, steps=30), dict(kind="rnn", seed=1, steps=30)]
    local = run_parallel(mt.run_parity, jobs, processes=1)
    remote = run_parallel(mt.run_parity, jobs, processes=2)
    for a, b in zip(local, remote):
        assert a["by_position"] == b["by_position"], a["kind"]
