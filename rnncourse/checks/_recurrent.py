"""What the checks of the three recurrent models (02 RNN, 04 LSTM, 05 GRU) share: the trusted side only.

The upstream gradients a backward case gets, the states before each step,
the hidden cases (three float64, one float32; for the LSTM and the GRU with
their truth from ``torch.nn``), that truth itself, the references, and the
wiring of a check to them (:func:`recurrent_check`).
"""

import numpy as np

from ._core import Check, random_cases
from .calls import get_call

# An input of a hidden case that asks for the truth from torch.nn rather than rnncourse.numpy.
TORCH_TRUTH = "truth_from_torch"


# --- the same words for the three models -----------------------------------------------
# Known mistakes and output hints that the RNN, the LSTM and the GRU checks state alike, the
# equations being the same for the three: each module's Check uses them next to its own words.

OFF_BY_ONE_IN_TIME = (
    "Off by one in time: h[:, t] must be the state *after* step t, so h[:, 0] is not h0 "
    "and the last state is included."
)
"""A sequence forward's mistake: ``h[:, t]`` holding the state before step ``t`` (see :func:`shifted_states`)."""

LOOP_RUNS_FORWARDS = "The loop runs forwards in time; backpropagation goes from t = T-1 down to 0."
"""A sequence backward's mistake: the loop over time run from ``t = 0``."""

DWH_OF_THE_WRONG_STATE = "dWh uses the wrong state: step t multiplies h_{t-1} (h0 at t = 0) by Wh, not h_t."
"""A sequence backward's mistake: ``dWh`` summing ``h_t^T da_t`` instead of ``h_{t-1}^T da_t``."""

AFFINE_STEP_HINTS = {
    "dx": "dx = da Wx^T.",
    "dprev_h": "dprev_h = da Wh^T.",
    "dWx": "dWx = x^T da.",
    "dWh": "dWh = prev_h^T da.",
    "db": "b is added to every row: db sums da over the batch.",
}
"""The output hints of a step backward whose pre-activation is ``a = x Wx + prev_h Wh + b`` (the RNN, the LSTM)."""

AFFINE_SEQUENCE_HINTS = {
    "dWh": "Step t multiplies h_{t-1} (h0 at t = 0) by Wh, so dWh sums h_{t-1}^T da_t.",
    "db": "db sums da_t over the batch and over time.",
}
"""The output hints of the same model's sequence backward for ``dWh`` and ``db``."""


def with_dnext(inputs, rng, dtype=np.float64, *, names=("dnext_h",), zero=()):
    """``inputs`` with random upstream gradients ``names`` shaped like ``prev_h``; those in ``zero`` are 0."""
    N, H = inputs["prev_h"].shape
    for name in names:
        inputs[name] = (np.zeros((N, H)) if name in zero else rng.standard_normal((N, H))).astype(dtype)
    return inputs


def step_backward_inputs(step_inputs, names=("dnext_h",)):
    """The inputs of a step backward's case: ``step_inputs``'s, then the upstream gradients ``names``."""

    def make(rng, N, D, H, dtype=np.float64, *, zero=(), **options):
        return with_dnext(step_inputs(rng, N, D, H, dtype, **options), rng, dtype, names=names, zero=zero)

    return make


def sequence_backward_inputs(sequence_inputs):
    """The inputs of a sequence backward's case: ``sequence_inputs``'s, then ``dh`` (see :func:`with_dh`)."""

    def make(rng, N, T, D, H, dtype=np.float64, *, only=None, **options):
        return with_dh(sequence_inputs(rng, N, T, D, H, dtype, **options), rng, dtype, only=only)

    return make


def with_dh(inputs, rng, dtype=np.float64, only=None):
    """``inputs`` with ``dh`` (N, T, H), a gradient on every state; only at the steps ``only`` when given."""
    N, T, _ = inputs["x"].shape
    inputs["dh"] = gradient_on_states(rng, (N, T, inputs["h0"].shape[1]), dtype, only=only)
    return inputs


def gradient_on_states(rng, shape, dtype=np.float64, *, only=None):
    """A random upstream gradient ``dh`` of ``shape`` (N, T, H); zero except at the steps ``only`` when given."""
    dh = rng.standard_normal(shape)
    if only is not None:
        keep = np.zeros(shape[1], bool)
        keep[only] = True
        dh[:, ~keep] = 0
    return dh.astype(dtype)


def transposed_gate_blocks(Wh):
    """``Wh`` (H, kH) with each gate's (H, H) block transposed: a learner who reads torch's layout block by block."""
    H = Wh.shape[0]
    return np.concatenate([Wh[:, k * H : (k + 1) * H].T for k in range(Wh.shape[1] // H)], axis=1)


def previous_states(first, states):
    """The state each step starts from: ``first`` at ``t = 0``, else ``states[:, t-1]``."""
    return np.concatenate([first[:, None], states[:, :-1]], axis=1)


def shifted_states(h, h0):
    """A mistake's outputs: ``h[:, t]`` holding the state *before* step ``t``, ``[h0, h_1, ..., h_{T-1}]``."""
    return {"h": previous_states(h0, h)}


def hidden_cases(rng, make, *, from_torch=False, **ranges):
    """Random shapes and non-zero biases: three float64 cases and one float32 (their truth from torch.nn if asked)."""
    cases = random_cases(rng, make, **ranges)
    if from_torch:
        for _, inputs in cases:
            inputs[TORCH_TRUTH] = np.array(True)
    return cases


def reference(forward, backward=None, *, torch_kind=None):
    """The reference outputs of a check of a recurrent model, as a function of a case's inputs.

    ``forward``'s outputs (its cache left out), or with ``backward`` the
    gradients ``backward`` computes from ``forward``'s cache, from
    :mod:`rnncourse.numpy` (whose functions are named like the checks: the
    arguments and the names of the outputs are the calls'). For a hidden
    case of the LSTM or the GRU (``torch_kind``), the truth is torch.nn's.
    """
    forward_call = get_call(forward.__name__)
    outputs = [name for name in forward_call.returns if name != "cache"]
    backward_call = get_call(backward.__name__) if backward is not None else None

    def compute(i):
        if torch_kind is not None and torch_truth(i):
            return torch_outputs(torch_kind, i, step="prev_h" in forward_call.args, backward=backward is not None)
        *values, cache = forward(*(i[a] for a in forward_call.args))
        if backward is None:
            return dict(zip(outputs, values))
        upstream = [i[a] for a in backward_call.args if isinstance(a, str)]
        return dict(zip(backward_call.returns, backward(*upstream, cache)))

    return compute


def cache_of(forward, layout):
    """The ``given`` of a backward check: what the cache ``forward`` returns holds besides the case's inputs.

    ``forward`` is rnncourse.numpy's (its caches have the layouts the
    notebooks state); ``layout`` names the cache's fields in order.
    """
    args = get_call(forward.__name__).args

    def given(i):
        *_, cache = forward(*(i[a] for a in args))
        if len(cache) != len(layout):
            raise ValueError(f"{forward.__name__} returned a cache of {len(cache)} fields; the notebook states {layout}")
        return {name: value for name, value in zip(layout, cache) if name not in i}

    return given


def recurrent_check(forward, backward=None, *, cache=None, torch_kind=None, **declaration):
    """The ``Check`` of ``forward``, or of ``backward`` when given, named after the function it checks.

    Its reference is :func:`reference` ``(forward, backward, torch_kind=...)``;
    a backward's ``given`` is :func:`cache_of` ``(forward, cache)``, ``cache``
    naming the fields of the cache. ``declaration``: the rest of the check
    (the cases, the hints, the known mistakes), as ``Check`` takes it.
    """
    checked, given = (forward, None) if backward is None else (backward, cache_of(forward, cache))
    return Check(
        name=checked.__name__,
        reference=reference(forward, backward, torch_kind=torch_kind),
        given=given,
        **declaration,
    )


def torch_truth(i):
    """Whether case ``i`` takes its truth from torch.nn: a hidden case, with PyTorch installed.

    PyTorch is imported only here and only for such cases, on the trusted
    side, so that ``import rnncourse.checks`` stays light.
    """
    if not bool(i.get(TORCH_TRUTH, False)):
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_twin(kind, i, *, step):
    """``torch.nn``'s LSTM or GRU (``kind``), its cell when ``step``, in float64, holding case ``i``'s weights.

    Returns ``(module, (W_ih, W_hh, b_ih, b_hh))``, the module's parameters.
    Ours are the transposes of torch's weights; the LSTM of the exercises has
    one bias ``b`` (torch's ``bias_hh`` is then zero), the GRU two, ``bx`` and
    ``bh``. Creating the module does not touch the learner's torch random state.
    """
    import torch

    D, H = i["Wx"].shape[0], i["Wh"].shape[0]
    cell, layer = {"LSTM": (torch.nn.LSTMCell, torch.nn.LSTM), "GRU": (torch.nn.GRUCell, torch.nn.GRU)}[kind]
    with torch.random.fork_rng(devices=[]):
        module = (cell(D, H) if step else layer(D, H, batch_first=True)).double()
    suffix = "" if step else "_l0"
    params = tuple(getattr(module, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    W_ih, W_hh, b_ih, b_hh = params
    with torch.no_grad():
        W_ih.copy_(torch.tensor(i["Wx"].T))
        W_hh.copy_(torch.tensor(i["Wh"].T))
        if kind == "LSTM":
            b_ih.copy_(torch.tensor(i["b"]))
            b_hh.zero_()
        else:
            b_ih.copy_(torch.tensor(i["bx"]))
            b_hh.copy_(torch.tensor(i["bh"]))
    return module, params


def torch_outputs(kind, i, *, step, backward):
    """What torch.nn's ``kind`` (LSTM or GRU) computes on case ``i``, in float64, as the exercise names it.

    The forward's outputs (``next_h`` and, for the LSTM, ``next_c``; or
    ``h``), or with ``backward`` the gradients of the loss
    ``sum(output * upstream)`` in the order of the exercise's backward.
    """
    import torch

    module, (W_ih, W_hh, b_ih, b_hh) = torch_twin(kind, i, step=step)
    lstm = kind == "LSTM"

    def tensor(name):
        return torch.tensor(i[name], dtype=torch.float64, requires_grad=True)

    if step:
        x, prev_h = tensor("x"), tensor("prev_h")
        leaves = {"dx": x, "dprev_h": prev_h}
        if lstm:
            leaves["dprev_c"] = prev_c = tensor("prev_c")
            next_h, next_c = module(x, (prev_h, prev_c))
            out, upstream = {"next_h": next_h, "next_c": next_c}, {"next_h": "dnext_h", "next_c": "dnext_c"}
        else:
            out, upstream = {"next_h": module(x, prev_h)}, {"next_h": "dnext_h"}
    else:
        x, h0 = tensor("x"), tensor("h0")
        leaves = {"dx": x, "dh0": h0}
        h, _ = module(x, (h0[None], torch.zeros_like(h0)[None]) if lstm else h0[None])
        out, upstream = {"h": h}, {"h": "dh"}
    if backward:
        sum((out[k] * torch.tensor(i[d])).sum() for k, d in upstream.items()).backward()
        out = {k: v.grad for k, v in leaves.items()}
        out.update(dWx=W_ih.grad.T, dWh=W_hh.grad.T)
        out.update({"db": b_ih.grad} if lstm else {"dbx": b_ih.grad, "dbh": b_hh.grad})
    return {k: v.detach().numpy().copy() for k, v in out.items()}
