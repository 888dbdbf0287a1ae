"""Optimizers: step-for-step parity with torch.optim, checkpoints, validation."""

import inspect
import pickle

import numpy as np
import pytest
import torch

from rnncourse.numpy import SGD, Adagrad, Adam, AdamW, RMSprop
from rnncourse.testing import assert_close

SHAPES = {"Wx": (3, 4), "b": (4,), "W3": (2, 3, 2)}
DTYPES = [np.float64, np.float32]
NUM_STEPS = 5

# (our class, torch class, options): every option that changes the update.
CONFIGS = {
    "sgd": (SGD, torch.optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    "sgd_dampening": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3)),
    "sgd_nesterov": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.8, nesterov=True)),
    "sgd_weight_decay": (SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=0.2)),
    "sgd_all": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.7, weight_decay=0.1, nesterov=True)),
    "adagrad": (Adagrad, torch.optim.Adagrad, dict()),
    "adagrad_options": (
        Adagrad,
        torch.optim.Adagrad,
        dict(lr=0.3, eps=1e-3, weight_decay=0.1, initial_accumulator_value=0.5),
    ),
    "rmsprop": (RMSprop, torch.optim.RMSprop, dict()),
    "rmsprop_alpha": (RMSprop, torch.optim.RMSprop, dict(lr=0.05, alpha=0.7, eps=1e-4)),
    "rmsprop_centered": (RMSprop, torch.optim.RMSprop, dict(lr=0.05, centered=True)),
    "rmsprop_momentum": (RMSprop, torch.optim.RMSprop, dict(lr=0.05, momentum=0.9)),
    "rmsprop_all": (
        RMSprop,
        torch.optim.RMSprop,
        dict(lr=0.05, alpha=0.8, weight_decay=0.1, momentum=0.5, centered=True),
    ),
    "adam": (Adam, torch.optim.Adam, dict()),
    "adam_options": (Adam, torch.optim.Adam, dict(lr=0.1, betas=(0.5, 0.8), eps=1e-4)),
    "adam_weight_decay": (Adam, torch.optim.Adam, dict(lr=0.1, weight_decay=0.3)),
    "adamw": (AdamW, torch.optim.AdamW, dict(lr=0.1)),
    "adamw_weight_decay": (AdamW, torch.optim.AdamW, dict(lr=0.1, betas=(0.8, 0.9), weight_decay=0.5)),
}


def random_params(seed, dtype):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def random_grads(rng, dtype):
    """Gradients of mixed magnitudes (so eps and the moment estimates matter)."""
    return {
        k: (rng.standard_normal(s) * 10.0 ** rng.uniform(-2, 1, size=s)).astype(dtype)
        for k, s in SHAPES.items()
    }


def gradient_sequence(seed, dtype, n=NUM_STEPS):
    rng = np.random.default_rng(seed)
    return [random_grads(rng, dtype) for _ in range(n)]


def check_against_torch(ours_cls, torch_cls, options, dtype, seed=0, steps=NUM_STEPS):
    """Run ours and torch side by side; raise AssertionError at the first difference."""
    params = random_params(seed, dtype)
    tparams = {k: torch.tensor(p, requires_grad=True) for k, p in params.items()}
    opt = ours_cls(params, **options)
    topt = torch_cls(list(tparams.values()), foreach=False, **options)
    for t, grads in enumerate(gradient_sequence(seed + 100, dtype, steps), start=1):
        opt.step(grads)
        for k, g in grads.items():
            tparams[k].grad = torch.tensor(g)
        topt.step()
        for k, p in params.items():
            assert_close(p, tparams[k], f"params[{k!r}] after step {t}")
            for name, value in opt.state[k].items():
                assert_close(value, topt.state[tparams[k]][name], f"state[{k!r}][{name!r}] after step {t}")


# ---------------------------------------------------------------- parity with torch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_torch_step_for_step(config, dtype):
    ours_cls, torch_cls, options = CONFIGS[config]
    check_against_torch(ours_cls, torch_cls, options, dtype)


@pytest.mark.parametrize(
    "ours_cls, torch_cls",
    [(SGD, torch.optim.SGD), (Adagrad, torch.optim.Adagrad), (RMSprop, torch.optim.RMSprop),
     (Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)],
)
def test_defaults_equal_torchs(ours_cls, torch_cls):
    ours = inspect.signature(ours_cls.__init__).parameters
    theirs = inspect.signature(torch_cls.__init__).parameters
    for name, p in ours.items():
        if name in ("self", "params") or p.default is inspect.Parameter.empty:
            continue
        assert p.default == theirs[name].default, f"{ours_cls.__name__}({name}=...)"


# ---------------------------------------------------------------- the checks can fail


class AdamWithoutBiasCorrection(Adam):
    def _update(self, p, g, state, t):
        beta1, beta2 = self.betas
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        state["exp_avg"], state["exp_avg_sq"] = m, v
        p -= self.lr * m / (np.sqrt(v) + self.eps)


class SGDDampingTheFirstStep(SGD):
    """Forgets torch's rule that the first momentum buffer is the raw gradient."""

    def _update(self, p, g, state, t):
        b = self.momentum * state["momentum_buffer"] + (1 - self.dampening) * g
        state["momentum_buffer"] = b
        p -= self.lr * b


class RMSpropNotCentered(RMSprop):
    """Keeps the mean but forgets to subtract its square."""

    def _update(self, p, g, state, t):
        v = self.alpha * state["square_avg"] + (1 - self.alpha) * g * g
        m = self.alpha * state["grad_avg"] + (1 - self.alpha) * g
        state["square_avg"], state["grad_avg"] = v, m
        p -= self.lr * g / (np.sqrt(v) + self.eps)


class AdagradEpsInsideSqrt(Adagrad):
    def _update(self, p, g, state, t):
        s = state["sum"] + g * g
        state["sum"] = s
        p -= self.lr * g / np.sqrt(s + self.eps)


@pytest.mark.parametrize(
    "broken, torch_cls, options",
    [
        (AdamWithoutBiasCorrection, torch.optim.Adam, dict(lr=0.1)),
        (SGDDampingTheFirstStep, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3)),
        (RMSpropNotCentered, torch.optim.RMSprop, dict(lr=0.05, centered=True)),
        (AdagradEpsInsideSqrt, torch.optim.Adagrad, dict(eps=1e-3)),
        (Adam, torch.optim.AdamW, dict(lr=0.1, weight_decay=0.5)),  # coupled vs decoupled decay
    ],
    ids=["adam_no_bias_correction", "sgd_damped_first_step", "rmsprop_not_centered",
         "adagrad_eps_inside_sqrt", "adam_for_adamw"],
)
def test_parity_check_catches_a_wrong_update(broken, torch_cls, options):
    with pytest.raises(AssertionError, match="after step 1"):
        check_against_torch(broken, torch_cls, options, np.float64)


# ---------------------------------------------------------------- in place, and grads untouched


@pytest.mark.parametrize("config", ["sgd_all", "adagrad_options", "rmsprop_all", "adamw_weight_decay"])
def test_updates_the_callers_arrays_in_place_and_leaves_grads_alone(config):
    ours_cls, _, options = CONFIGS[config]
    params = random_params(1, np.float32)
    arrays = dict(params)
    before = {k: p.copy() for k, p in params.items()}
    opt = ours_cls(params, **options)
    grads = gradient_sequence(2, np.float32, 1)[0]
    grads_before = {k: g.copy() for k, g in grads.items()}
    opt.step(grads)
    opt.step(grads)
    for k in params:
        assert params[k] is arrays[k]  # the same array object, updated in place
        assert params[k].dtype == np.float32
        assert not np.array_equal(params[k], before[k])
        np.testing.assert_array_equal(grads[k], grads_before[k])
        for value in opt.state[k].values():
            assert value.dtype == np.float32
            assert not np.shares_memory(value, grads[k])


# ---------------------------------------------------------------- checkpoints


def run(opt, grad_list):
    for grads in grad_list:
        opt.step(grads)


@pytest.mark.parametrize("config", ["sgd_dampening", "adagrad_options", "rmsprop_all", "adam", "adamw_weight_decay"])
def test_state_dict_round_trip_resumes_identically(config):
    ours_cls, _, options = CONFIGS[config]
    grad_list = gradient_sequence(3, np.float64, 6)

    params = random_params(4, np.float64)
    opt = ours_cls(params, **options)
    run(opt, grad_list[:3])
    checkpoint = pickle.loads(pickle.dumps((opt.state_dict(), {k: p.copy() for k, p in params.items()})))
    run(opt, grad_list[3:])  # the uninterrupted run

    saved_state, saved_params = checkpoint
    resumed_params = {k: p.copy() for k, p in saved_params.items()}
    resumed = ours_cls(resumed_params, **options)
    resumed.load_state_dict(saved_state)
    assert resumed.num_steps == 3
    run(resumed, grad_list[3:])
    for k in params:
        np.testing.assert_array_equal(resumed_params[k], params[k], err_msg=f"params[{k!r}]")

    # Without the state the run goes elsewhere: the check above can fail.
    fresh_params = {k: p.copy() for k, p in saved_params.items()}
    run(ours_cls(fresh_params, **options), grad_list[3:])
    assert any(not np.array_equal(fresh_params[k], params[k]) for k in params)


def test_state_dict_is_a_copy():
    params = random_params(5, np.float64)
    opt = Adam(params, lr=0.1)
    grad_list = gradient_sequence(6, np.float64, 2)
    opt.step(grad_list[0])
    saved = opt.state_dict()
    m = saved["state"]["Wx"]["exp_avg"].copy()
    opt.step(grad_list[1])
    np.testing.assert_array_equal(saved["state"]["Wx"]["exp_avg"], m)
    assert saved["num_steps"] == 1


def test_load_state_dict_restores_hyperparameters_and_casts_to_the_param_dtype():
    params64 = random_params(7, np.float64)
    opt = SGD(params64, lr=0.1, momentum=0.9)
    opt.step(gradient_sequence(8, np.float64, 1)[0])
    opt.lr = 0.01  # a schedule changed it
    saved = opt.state_dict()
    params32 = random_params(7, np.float32)
    other = SGD(params32, lr=0.5)  # no momentum: the state dict brings it
    other.load_state_dict(saved)
    assert (other.lr, other.momentum) == (0.01, 0.9)
    assert other.state["Wx"]["momentum_buffer"].dtype == np.float32
    assert repr(other) == "SGD(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)"


def test_load_state_dict_errors():
    params = random_params(9, np.float64)
    opt = Adam(params)
    opt.step(gradient_sequence(10, np.float64, 1)[0])
    good = opt.state_dict()

    def modified(change):
        sd = opt.state_dict()
        change(sd)
        return sd

    with pytest.raises(ValueError, match=r"state_dict is from a SGD optimizer; expected Adam"):
        Adam(params).load_state_dict(SGD(params, lr=0.1).state_dict())
    with pytest.raises(ValueError, match=r"state_dict has no key 'state'"):
        Adam(params).load_state_dict(modified(lambda sd: sd.pop("state")))
    with pytest.raises(ValueError, match=r"state_dict\['state'\] has parameters \['Wx', 'b'\]; expected those of params"):
        Adam(params).load_state_dict(modified(lambda sd: sd["state"].pop("W3")))
    with pytest.raises(ValueError, match=r"state_dict\['state'\]\['b'\] has entries \['exp_avg'\]; expected \['exp_avg', 'exp_avg_sq'\]"):
        Adam(params).load_state_dict(modified(lambda sd: sd["state"]["b"].pop("exp_avg_sq")))
    with pytest.raises(
        ValueError,
        match=r"state_dict\['state'\]\['Wx'\]\['exp_avg'\] has shape \(4, 3\); expected the shape of params\['Wx'\] = \(3, 4\)",
    ):
        Adam(params).load_state_dict(
            modified(lambda sd: sd["state"]["Wx"].update(exp_avg=np.zeros((4, 3))))
        )
    with pytest.raises(ValueError, match=r"beta1 is 1.5; expected 0 <= beta1 < 1"):
        Adam(params).load_state_dict(
            modified(lambda sd: sd["hyperparameters"].update(betas=(1.5, 0.9)))
        )
    Adam(params).load_state_dict(good)  # and the unmodified one loads


# ---------------------------------------------------------------- validation


def test_step_validates_the_gradients():
    params = random_params(11, np.float64)
    opt = RMSprop(params)
    grads = gradient_sequence(12, np.float64, 1)[0]
    with pytest.raises(ValueError, match=r"grads is a list; expected a dict"):
        opt.step(list(grads.values()))
    with pytest.raises(ValueError, match=r"grads has no key 'b'; expected the keys of params: \['Wx', 'b', 'W3'\]"):
        opt.step({k: g for k, g in grads.items() if k != "b"})
    with pytest.raises(ValueError, match=r"grads has unexpected key 'Wy'"):
        opt.step({**grads, "Wy": np.zeros(2)})
    with pytest.raises(
        ValueError, match=r"grads\['Wx'\] has shape \(4, 3\); expected the shape of params\['Wx'\] = \(3, 4\)"
    ):
        opt.step({**grads, "Wx": grads["Wx"].T})
    with pytest.raises(ValueError, match=r"grads\['b'\] has dtype float32; expected float64, the dtype of params\['b'\]"):
        opt.step({**grads, "b": grads["b"].astype(np.float32)})
    assert opt.num_steps == 0  # nothing happened
    opt.step(grads)
    assert opt.num_steps == 1


def test_constructors_validate_params_and_hyperparameters():
    with pytest.raises(ValueError, match=r"params is a list; expected a dict name -> ndarray"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match=r"params\['b'\] is a list; expected an ndarray \(the optimizer updates it in place\)"):
        SGD({"b": [0.0, 1.0]}, lr=0.1)
    with pytest.raises(ValueError, match=r"params\['b'\] has dtype int64; expected a floating-point array"):
        Adam({"b": np.arange(3)})
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\['b'\] is read-only"):
        Adam({"b": frozen})
    params = random_params(13, np.float64)
    with pytest.raises(ValueError, match=r"lr is -0.1; expected lr >= 0"):
        SGD(params, lr=-0.1)
    with pytest.raises(ValueError, match=r"momentum is -0.5; expected momentum >= 0"):
        SGD(params, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match=r"nesterov=True needs momentum > 0 and dampening == 0"):
        SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"nesterov=True needs momentum > 0 and dampening == 0"):
        SGD(params, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"eps is -1.0; expected eps >= 0"):
        Adagrad(params, eps=-1.0)
    with pytest.raises(ValueError, match=r"alpha is 1.0; expected 0 <= alpha < 1"):
        RMSprop(params, alpha=1.0)
    with pytest.raises(ValueError, match=r"beta2 is 1.0; expected 0 <= beta2 < 1"):
        Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"betas is \(0.9,\); expected two numbers"):
        Adam(params, betas=(0.9,))
    with pytest.raises(ValueError, match=r"weight_decay is nan; expected weight_decay >= 0"):
        AdamW(params, weight_decay=float("nan"))


# ---------------------------------------------------------------- extreme gradients


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", ["sgd_all", "adagrad", "rmsprop_all", "adam", "adamw"])
def test_extreme_gradients_give_finite_parameters_without_warnings(config, dtype):
    ours_cls, _, options = CONFIGS[config]
    params = random_params(14, dtype)
    opt = ours_cls(params, **options)
    rng = np.random.default_rng(15)
    for scale in (1e4, 1e-30, 0.0, 1e4):
        opt.step({k: (scale * rng.choice([-1.0, 1.0], size=s)).astype(dtype) for k, s in SHAPES.items()})
    for k, p in params.items():
        assert np.all(np.isfinite(p)), f"params[{k!r}]"
