"""The training helpers: seeding, devices, LM batches, and fit (clipping, TBPTT, checkpoints, AMP)."""

import os
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse.testing import assert_close
from rnncourse.torch import train
from rnncourse.torch.models import CharLanguageModel, Forecaster, SequenceClassifier
from rnncourse.torch.train import (
    History,
    batchify_stream,
    fit,
    seed_everything,
    select_device,
    tbptt_chunks,
    to_device,
)

# --- seeding and devices -----------------------------------------------------------------------


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(123)
    a = _draws()
    seed_everything(123)
    assert _draws() == a
    seed_everything(124)
    b = _draws()
    assert all(x != y for x, y in zip(a, b)), "every generator should change with the seed"


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)


def test_select_device():
    assert select_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="prefer"):
        select_device("gpu please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="is_available"):
            select_device("cuda")


def test_to_device_walks_containers():
    batch = {"x": (torch.ones(2), [torch.zeros(1), 3]), "name": "b"}
    moved = to_device(batch, "cpu")
    assert moved["name"] == "b" and moved["x"][1][1] == 3
    assert isinstance(moved["x"], tuple) and isinstance(moved["x"][1], list)
    assert_close(moved["x"][0], torch.ones(2), "moved tensor")


# --- language-model data ------------------------------------------------------------------------


def test_batchify_stream_makes_contiguous_rows():
    data = batchify_stream(torch.arange(23), 4)
    assert data.shape == (4, 5) and data.dtype == torch.int64
    assert data.tolist()[1] == [5, 6, 7, 8, 9], "row n is the stretch n*S .. (n+1)*S - 1"
    assert batchify_stream(list(range(8)), 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError, match="2 \\* batch_size"):
        batchify_stream(torch.arange(7), 4)
    with pytest.raises(ValueError, match="integers"):
        batchify_stream(torch.ones(10), 2)
    with pytest.raises(ValueError, match="batch_size"):
        batchify_stream(torch.arange(10), 0)


@pytest.mark.parametrize("S,k", [(11, 3), (10, 3), (5, 10), (2, 1)])
def test_tbptt_chunks_tile_the_stream(S, k):
    data = torch.arange(3 * S).view(3, S)
    chunks = tbptt_chunks(data, k)
    assert all(x.shape == y.shape for x, y in chunks)
    assert [x.shape[1] for x, _ in chunks[:-1]] == [k] * (len(chunks) - 1)
    assert torch.equal(torch.cat([x for x, _ in chunks], 1), data[:, :-1])
    assert torch.equal(torch.cat([y for _, y in chunks], 1), data[:, 1:])
    with pytest.raises(ValueError, match="k is"):
        tbptt_chunks(data, 0)


def test_tbptt_chunks_rejects_a_stream_too_short():
    with pytest.raises(ValueError, match="S >= 2"):
        tbptt_chunks(torch.zeros(3, 1, dtype=torch.int64), 2)


# --- fit: the loop ------------------------------------------------------------------------------


def _regression_batches(n_batches, generator, N=8, T=6):
    """(window, target) batches of a small forecasting problem."""
    return [(torch.randn(N, T, 2, generator=generator), torch.randn(N, 2, 2, generator=generator))
            for _ in range(n_batches)]


def _mse(model, batch):
    window, target = batch
    return F.mse_loss(model(window), target)


def _forecaster(seed, dropout=0.0):
    seed_everything(seed)
    return Forecaster(2, 8, 2, "lstm", num_layers=2, dropout=dropout)


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _f32(values):
    """History values are Python floats of float32 computations: compare them as float32."""
    return np.array(values, dtype=np.float32)


def _assert_same_params(a, b, what):
    assert a.keys() == b.keys()
    for k in a:
        assert_close(a[k], b[k], f"{what}: {k}")


def test_fit_records_history_and_counts_steps():
    g = torch.Generator().manual_seed(0)
    model = _forecaster(0)
    batches, valid = _regression_batches(4, g), _regression_batches(2, g)
    seen_modes = []

    def eval_fn(m):
        seen_modes.append((m.training, torch.is_grad_enabled()))
        return {"mse": _mse(m, valid[0]), "one": 1}

    h = fit(model, batches, _mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=10,
            device="cpu", valid_batches=valid, eval_fn=eval_fn, progress=False)
    assert isinstance(h, History)
    assert (h.steps, h.epochs, h.epoch_end_step) == (10, 3, [4, 8, 10])
    assert len(h.train_loss) == 10 and len(h.epoch_train_loss) == 3 and h.grad_norm == []
    assert len(h.valid_loss) == 3 and [sorted(m) for m in h.metrics] == [["mse", "one"]] * 3
    assert seen_modes == [(False, False)] * 3, "eval_fn runs in eval mode without gradients"
    assert model.training, "fit leaves the model in the mode it came in"
    last_epoch = np.mean(h.train_loss[8:])
    assert_close(_f32(last_epoch), _f32(h.epoch_train_loss[2]), "mean of the last, partial epoch")
    with torch.no_grad():
        model.eval()
        expected = np.mean([_mse(model, b).item() for b in valid])
        assert_close(_f32(h.valid_loss[-1]), _f32(expected), "valid loss")
        assert_close(_f32(h.metrics[-1]["mse"]), _f32(_mse(model, valid[0]).item()), "metric")


def test_seeded_runs_are_identical_and_seeds_matter():
    def run(seed):
        model = _forecaster(seed, dropout=0.3)
        batches = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.randn(40, 6, 2), torch.randn(40, 2, 2)),
            batch_size=8, shuffle=True)
        h = fit(model, batches, _mse, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                epochs=2, device="cpu", progress=False)
        return h.train_loss, _params(model)

    (loss_a, params_a), (loss_b, params_b) = run(5), run(5)
    assert_close(_f32(loss_a), _f32(loss_b), "losses of two seeded runs")
    _assert_same_params(params_a, params_b, "two seeded runs")
    loss_c, _ = run(6)
    with pytest.raises(AssertionError):
        assert_close(_f32(loss_a), _f32(loss_c), "a different seed")


def _clip_(grads, max_norm):
    """Clipping by global norm written out, as the book states it."""
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / (float(total) + 1e-6))
    for g in grads:
        g.mul_(scale)
    return float(total)


def test_fit_clipping_equals_manual_clipping():
    g = torch.Generator().manual_seed(1)
    batches = _regression_batches(3, g)
    model = _forecaster(1)
    start = _params(model)
    h = fit(model, batches, _mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.5), epochs=2,
            device="cpu", clip_grad_norm=0.05, progress=False)

    manual = _forecaster(1)
    manual.load_state_dict(start)
    opt = torch.optim.SGD(manual.parameters(), lr=0.5)
    norms = []
    for _ in range(2):
        for batch in batches:
            opt.zero_grad()
            _mse(manual, batch).backward()
            norms.append(_clip_([p.grad for p in manual.parameters()], 0.05))
            opt.step()
    assert min(norms) > 0.05, "the test must actually clip"
    assert_close(_f32(h.grad_norm), _f32(norms), "recorded pre-clip norms")
    _assert_same_params(_params(model), _params(manual), "fit vs manual clipping")

    unclipped = _forecaster(1)
    fit(unclipped, batches, _mse, optimizer=torch.optim.SGD(unclipped.parameters(), lr=0.5), epochs=2,
        device="cpu", progress=False)
    with pytest.raises(AssertionError):
        _assert_same_params(_params(unclipped), _params(manual), "no clipping")


def _lm_setup(seed=0, dropout=0.0):
    """A 2-layer char LSTM (initialised from ``seed``) and the TBPTT chunks of a fixed random text."""
    ids = torch.randint(0, 7, (124,), generator=torch.Generator().manual_seed(0))
    seed_everything(seed)
    model = CharLanguageModel(7, 10, "lstm", num_layers=2, dropout=dropout)
    return model, tbptt_chunks(batchify_stream(ids, 4), 10)  # 3 chunks of 10 steps


def _lm_loss(model, batch, state):
    x, y = batch
    logits, state = model(x, state)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten()), state


def test_tbptt_carries_the_state_and_cuts_the_gradient():
    model, chunks = _lm_setup()
    start = _params(model)
    received, returned = [], []

    def lm_loss(model, batch, state):
        received.append(state)
        x, y = batch
        logits, state = model(x, state)
        returned.append(tuple(s.detach().clone() for s in state))
        return F.cross_entropy(logits.flatten(0, 1), y.flatten()), state

    fit(model, chunks, lm_loss, optimizer=torch.optim.SGD(model.parameters(), lr=0.3), epochs=2,
        device="cpu", tbptt=True, progress=False)
    n = len(chunks)
    assert n > 2 and len(received) == 2 * n
    assert received[0] is None and received[n] is None, "the state restarts at every epoch"
    for j in [j for j in range(1, 2 * n) if j != n]:
        for got, expected in zip(received[j], returned[j - 1]):
            assert not got.requires_grad, f"chunk {j} received a state still attached to the graph"
            assert_close(got, expected, f"state into chunk {j} vs state out of chunk {j - 1}")

    # The same as a loop written by hand, with the detach the book explains.
    manual = CharLanguageModel(7, 10, "lstm", num_layers=2)
    manual.load_state_dict(start)
    opt = torch.optim.SGD(manual.parameters(), lr=0.3)
    for _ in range(2):
        state = None
        for x, y in chunks:
            logits, state = manual(x, state)
            opt.zero_grad()
            F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
            opt.step()
            state = tuple(s.detach() for s in state)
    _assert_same_params(_params(model), _params(manual), "fit(tbptt=True) vs manual TBPTT")


def test_without_the_detach_the_second_chunk_cannot_backpropagate():
    model, chunks = _lm_setup()
    state = None
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        for x, y in chunks[:2]:
            logits, state = model(x, state)  # state not detached: the graph reaches chunk 1
            F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()


def test_amp_is_ignored_on_cpu_with_a_warning():
    g = torch.Generator().manual_seed(2)
    batches = _regression_batches(2, g)
    plain = _forecaster(3)
    fit(plain, batches, _mse, optimizer=torch.optim.SGD(plain.parameters(), lr=0.1), epochs=1, device="cpu",
        progress=False)
    amp = _forecaster(3)
    with pytest.warns(UserWarning, match="ignored on cpu"):
        fit(amp, batches, _mse, optimizer=torch.optim.SGD(amp.parameters(), lr=0.1), epochs=1, device="cpu",
            amp=True, progress=False)
    _assert_same_params(_params(amp), _params(plain), "amp=True on the CPU")


def test_progress_is_plain_text_lines(capsys):
    g = torch.Generator().manual_seed(0)
    batches, valid = _regression_batches(2, g), _regression_batches(1, g)
    model = _forecaster(0)
    kwargs = dict(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), device="cpu", valid_batches=valid,
                  eval_fn=lambda m: {"acc": 0.5})
    fit(model, batches, _mse, epochs=3, **kwargs)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "\r" not in "".join(lines)
    assert lines[0].startswith("epoch 1/3  step 2  train_loss ")
    assert "valid_loss" in lines[0] and "acc 0.5" in lines[0]
    fit(model, batches, _mse, epochs=5, progress=2, **kwargs)
    assert [line.split("  ")[0] for line in capsys.readouterr().out.splitlines()] == [
        "epoch 2/5", "epoch 4/5", "epoch 5/5"]
    fit(model, batches, _mse, steps=3, progress=False, **kwargs)
    assert capsys.readouterr().out == ""


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    g = torch.Generator().manual_seed(0)
    batches = _regression_batches(2, g)
    model = _forecaster(0)
    path = tmp_path / "ckpt.pt"
    fit(model, batches, _mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, device="cpu",
        checkpoint_path=path, progress=False)
    saved = path.read_bytes()
    calls = []

    def nan_at_second_call(model, batch):
        calls.append(1)
        return _mse(model, batch) * (float("nan") if len(calls) == 2 else 1.0)

    with pytest.raises(FloatingPointError, match="became nan at step 4"):
        fit(model, batches, nan_at_second_call,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, device="cpu",
            checkpoint_path=path, resume=True, progress=False)
    assert path.read_bytes() == saved


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(), "exactly one"),
        (dict(epochs=1, steps=1), "exactly one"),
        (dict(epochs=0), "epochs"),
        (dict(epochs=1, clip_grad_norm=0.0), "clip_grad_norm"),
        (dict(epochs=1, amp="fp8"), "amp"),
        (dict(epochs=1, resume=True), "checkpoint_path"),
        (dict(epochs=1, loss_fn=lambda m, b: _mse(m, b)[None]), "scalar"),
        (dict(epochs=1, loss_fn=lambda m, b, s: _mse(m, b), tbptt=True), r"\(loss, state\)"),
        (dict(epochs=2, train_batches="generator"), "generator is used up"),
    ],
)
def test_fit_bad_arguments_are_named(kwargs, match):
    model = _forecaster(0)
    batches = _regression_batches(2, torch.Generator().manual_seed(0))
    if kwargs.get("train_batches") == "generator":
        kwargs["train_batches"] = (b for b in batches)
    args = dict(train_batches=batches, loss_fn=_mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                device="cpu", progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit(model, args.pop("train_batches"), args.pop("loss_fn"), **args)


# --- fit: checkpoints ----------------------------------------------------------------------------


def _lm_run(tmp_path=None, *, epochs, crash_at_step=None, resume=False, seed=0):
    """A char LM with dropout, TBPTT and Adam: every piece of state a resume must restore."""
    model, chunks = _lm_setup(seed, dropout=0.2)
    steps = [0]

    def lm_loss(model, batch, state):
        steps[0] += 1
        if steps[0] == crash_at_step:
            raise KeyboardInterrupt("simulated crash")
        return _lm_loss(model, batch, state)

    path = None if tmp_path is None else tmp_path / "lm.pt"
    h = fit(model, chunks, lm_loss, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
            epochs=epochs, device="cpu", tbptt=True, clip_grad_norm=1.0, checkpoint_path=path,
            resume=resume, progress=False)
    return h, model


def test_a_crashed_run_resumes_exactly(tmp_path):
    h_full, full = _lm_run(epochs=4)
    n = len(h_full.train_loss) // 4
    with pytest.raises(KeyboardInterrupt):  # dies in the middle of epoch 3
        _lm_run(tmp_path, epochs=4, crash_at_step=2 * n + 2)
    assert torch.load(tmp_path / "lm.pt", weights_only=True)["history"]["epochs"] == 2
    assert os.listdir(tmp_path) == ["lm.pt"], "no temporary file left behind"

    h, resumed = _lm_run(tmp_path, epochs=4, resume=True, seed=99)  # another seed: nothing leaks in
    assert (h.epochs, h.steps) == (4, 4 * n)
    assert_close(_f32(h.train_loss), _f32(h_full.train_loss), "losses, resumed vs uninterrupted")
    _assert_same_params(_params(resumed), _params(full), "resumed vs uninterrupted")

    # A resume that loads only the weights, or forgets the RNG states, does not match.
    ckpt = torch.load(tmp_path / "lm.pt", weights_only=True)
    for with_optimizer in (False, True):
        model, chunks = _lm_setup(7, dropout=0.2)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        model.load_state_dict(ckpt["model"])
        if with_optimizer:  # everything but the RNG states
            opt.load_state_dict(ckpt["optimizer"])
        fit(model, chunks, _lm_loss, optimizer=opt, epochs=2, device="cpu", tbptt=True, clip_grad_norm=1.0,
            progress=False)
        with pytest.raises(AssertionError):
            _assert_same_params(_params(model), _params(full), "naive resume")


def test_resume_after_the_last_epoch_trains_no_more(tmp_path):
    h1, m1 = _lm_run(tmp_path, epochs=1)
    h2, m2 = _lm_run(tmp_path, epochs=1, resume=True, seed=5)
    assert h2 == h1
    _assert_same_params(_params(m2), _params(m1), "nothing left to train")


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    _lm_run(tmp_path, epochs=1)
    saved = (tmp_path / "lm.pt").read_bytes()
    real_save = torch.save

    def dying_save(obj, f):
        real_save(obj, f)
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(train.torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        _lm_run(tmp_path, epochs=2, resume=True)
    assert (tmp_path / "lm.pt").read_bytes() == saved
    assert os.listdir(tmp_path) == ["lm.pt"]


def _other_models():
    seed_everything(0)
    return {
        "bigger": (CharLanguageModel(7, 12, "lstm", num_layers=2), "shape"),
        "other cell": (CharLanguageModel(7, 10, "gru", num_layers=2), "shape"),
        "other class": (SequenceClassifier(3, 10, 7), "SequenceClassifier"),
    }


@pytest.mark.parametrize("which", ["bigger", "other cell", "other class", "other optimizer", "garbage"])
def test_a_checkpoint_that_does_not_match_is_refused_and_kept(tmp_path, which):
    _lm_run(tmp_path, epochs=1)
    path = tmp_path / "lm.pt"
    if which == "garbage":
        path.write_bytes(b"not a checkpoint")
    saved = path.read_bytes()
    if which in ("other optimizer", "garbage"):
        model, match = _lm_setup(0)[0], ("optimizer" if which == "other optimizer" else "could not be read")
    else:
        model, match = _other_models()[which]
    before = _params(model)
    opt = (torch.optim.SGD if which == "other optimizer" else torch.optim.Adam)(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=match):
        fit(model, _lm_setup(0)[1], lambda m, b, s: (m(b[0])[0].sum(), None), optimizer=opt, epochs=2,
            device="cpu", tbptt=True, checkpoint_path=path, resume=True, progress=False)
    assert path.read_bytes() == saved, "the checkpoint must not be touched"
    _assert_same_params(_params(model), before, "the model must not be touched")


def test_an_existing_checkpoint_is_not_overwritten_without_resume(tmp_path):
    _lm_run(tmp_path, epochs=1)
    saved = (tmp_path / "lm.pt").read_bytes()
    with pytest.raises(FileExistsError, match="resume=True"):
        _lm_run(tmp_path, epochs=1)
    assert (tmp_path / "lm.pt").read_bytes() == saved


def test_resume_without_a_checkpoint_starts_afresh(tmp_path):
    h, model = _lm_run(tmp_path, epochs=1, resume=True)
    h_plain, plain = _lm_run(epochs=1)
    assert h == h_plain and (tmp_path / "lm.pt").exists()
    _assert_same_params(_params(model), _params(plain), "fresh start")


# --- CUDA -------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_fit_with_amp_on_cuda(tmp_path, amp):
    g = torch.Generator().manual_seed(0)
    batches = _regression_batches(3, g)
    model = _forecaster(0)
    h = fit(model, batches, _mse, optimizer=torch.optim.Adam(model.parameters(), lr=0.01), epochs=2,
            device="cuda", amp=amp, clip_grad_norm=1.0, checkpoint_path=tmp_path / "c.pt", progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert len(h.train_loss) == 6 and all(np.isfinite(h.train_loss)) and all(np.isfinite(h.grad_norm))
    assert h.train_loss[-1] < h.train_loss[0]
    ckpt = torch.load(tmp_path / "c.pt", weights_only=True)
    assert (ckpt["scaler"] is not None) == (amp == "fp16")
    h2 = fit(model, batches, _mse, optimizer=torch.optim.Adam(model.parameters(), lr=0.01), epochs=3,
             device="cuda", amp=amp, clip_grad_norm=1.0, checkpoint_path=tmp_path / "c.pt", resume=True,
             progress=False)
    assert h2.epochs == 3
