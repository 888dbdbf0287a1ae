"""Synthetic tasks of part three, small sequence models for them, and one training loop.

Each task isolates one ability that the papers of chapters 8 and 9 measure,
at a size a CPU trains in seconds:

- :func:`selective_copying_batch` (Gu & Dao 2023, after Arjovsky et al.
  2016): a few tokens scattered among noise must be reproduced, in order, at
  the end. The gaps vary, so a fixed convolution cannot know where to look:
  the model must decide, token by token, what to keep (selectivity).
- :func:`parity_batch` (Grazzi et al. 2025): the running parity of a bit
  string, a state that flips sign; trained on short strings, tested on long ones.
- :func:`associative_recall_batch` (Ba et al. 2016; Zoology, Arora et al. 2024):
  key-value pairs, then a key; answer its value.
- :func:`delay_batch`: output the input of ``delay`` steps ago, a memory
  over a fixed distance that a linear recurrence can hold exactly only with
  eigenvalues near the unit circle: where the LRU's design choices matter.

Every batch function takes a ``numpy.random.Generator`` and returns tensors
``(inputs, targets)``; for the token tasks, int64 with ``targets == IGNORE``
where there is nothing to predict. :func:`train` fits a model with Adam;
``run_*`` run one experiment of the book for one model and seed, and
:func:`run_parallel` runs many of them in worker processes.
"""

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .torch.linear_attention import CausalLinearAttention
from .torch.lru import LRU, DenseLinearRNN
from .torch.scan import parallel_scan
from .torch.ssm import SelectiveSSM

__all__ = [
    "IGNORE",
    "selective_copying_batch",
    "parity_batch",
    "associative_recall_batch",
    "delay_batch",
    "DiagonalLinearRNN",
    "TokenModel",
    "DelayModel",
    "classification_loss",
    "accuracy",
    "train",
    "SELECTIVE_COPYING",
    "SELECTIVE_COPYING_MODELS",
    "PARITY",
    "PARITY_MODELS",
    "ASSOCIATIVE_RECALL",
    "ASSOCIATIVE_RECALL_MODELS",
    "LRU_ABLATION",
    "LRU_RUNGS",
    "run_selective_copying",
    "run_parity",
    "run_associative_recall",
    "run_lru_ablation",
    "run_parallel",
]

#: The initial steps of the SSMs: larger than Mamba's default (1e-3, 1e-1), which fits
#: sequences of thousands of steps; ours have tens.
DT_RANGE = (1e-2, 1.0)

#: The target of positions with nothing to predict (``F.cross_entropy``'s ``ignore_index``).
IGNORE = -100


# --- tasks -------------------------------------------------------------------------------


def selective_copying_batch(n, length, n_tokens, n_data, rng, n_noise=1):
    """Selective copying: ``n_tokens`` data tokens at random positions among ``length`` filler tokens, then as many markers.

    Token 0 is the marker, ``1 .. n_noise`` the filler (a single blank with
    ``n_noise=1``, as in Gu & Dao; random noise tokens with more), and
    ``n_noise + 1 .. n_noise + n_data`` the data: the vocabulary has
    ``1 + n_noise + n_data`` tokens. The sequence is the ``length`` positions,
    then ``n_tokens`` markers; at the i-th marker the target is the i-th data
    token in order of appearance, as an index ``0 .. n_data - 1``.

    Returns
    -------
    inputs : Tensor (n, length + n_tokens), int64.
    targets : Tensor (n, length + n_tokens), int64, ``IGNORE`` except at the markers.
    """
    if not 1 <= n_tokens <= length or n_data < 2 or n_noise < 1:
        raise ValueError(f"expected 1 <= n_tokens <= length, n_data >= 2, n_noise >= 1; got n_tokens {n_tokens}, "
                         f"length {length}, n_data {n_data}, n_noise {n_noise}")
    inputs = np.zeros((n, length + n_tokens), np.int64)
    inputs[:, :length] = rng.integers(1, n_noise + 1, (n, length))
    targets = np.full((n, length + n_tokens), IGNORE, np.int64)
    data = rng.integers(0, n_data, (n, n_tokens))
    positions = np.sort(np.argsort(rng.random((n, length)), axis=1)[:, :n_tokens], axis=1)
    np.put_along_axis(inputs, positions, n_noise + 1 + data, axis=1)
    targets[:, length:] = data
    return torch.from_numpy(inputs), torch.from_numpy(targets)


def parity_batch(n, length, rng):
    """Running parity: random bits (tokens 0, 1) and, at every step, the parity of the bits so far.

    Returns
    -------
    inputs, targets : Tensor (n, length), int64.
    """
    bits = rng.integers(0, 2, (n, length))
    return torch.from_numpy(bits), torch.from_numpy(np.cumsum(bits, axis=1) % 2)


def associative_recall_batch(n, n_pairs, n_keys, n_values, rng):
    """Associative recall: ``k1 v1 k2 v2 ... kP vP q``; the target at ``q`` is the value that followed ``q``.

    Keys are tokens ``0 .. n_keys - 1`` (distinct within a sequence), values
    ``n_keys .. n_keys + n_values - 1``; the query is one of the sequence's keys.

    Returns
    -------
    inputs : Tensor (n, 2 n_pairs + 1), int64.
    targets : Tensor (n, 2 n_pairs + 1), int64, ``IGNORE`` except at the query (the value's index, from 0).
    """
    if n_pairs > n_keys:
        raise ValueError(f"n_pairs {n_pairs} needs as many distinct keys; n_keys is {n_keys}")
    keys = np.argsort(rng.random((n, n_keys)), axis=1)[:, :n_pairs]
    values = rng.integers(0, n_values, (n, n_pairs))
    which = rng.integers(0, n_pairs, n)
    inputs = np.empty((n, 2 * n_pairs + 1), np.int64)
    inputs[:, 0:-1:2] = keys
    inputs[:, 1:-1:2] = n_keys + values
    inputs[:, -1] = keys[np.arange(n), which]
    targets = np.full_like(inputs, IGNORE)
    targets[:, -1] = values[np.arange(n), which]
    return torch.from_numpy(inputs), torch.from_numpy(targets)


def delay_batch(n, length, delay, rng):
    """The delay line: Gaussian noise in, the same noise ``delay`` steps later out.

    Returns
    -------
    inputs : Tensor (n, length, 1), float32.
    targets : Tensor (n, length - delay, 1), float32: ``inputs[:, :-delay]``,
        to be compared with the outputs from step ``delay`` on.
    """
    x = torch.from_numpy(rng.standard_normal((n, length, 1)).astype(np.float32))
    return x, x[:, :-delay]


# --- layers and models ------------------------------------------------------------------


class DiagonalLinearRNN(nn.Module):
    """An input-dependent diagonal linear recurrence, ``h_t = a(x_t) * h_{t-1} + b(x_t)``, h0 = 1.

    ``a(x) = sigmoid(x W_a + b_a)`` takes values in (0, 1) (as in Mamba or
    minGRU, whose gates are positive); with ``negative=True``,
    ``a(x) = 2 sigmoid(x W_a + b_a) - 1`` in (-1, 1), the change Grazzi et al.
    (2025) propose. ``b(x) = x W_b``. Run by
    :func:`rnncourse.torch.scan.parallel_scan`.

    Parameters
    ----------
    input_size, hidden_size : D and H.
    negative : allow negative eigenvalues.
    """

    def __init__(self, input_size, hidden_size, negative=False):
        super().__init__()
        self.negative, self.hidden_size = negative, hidden_size
        self.gate = nn.Linear(input_size, hidden_size)
        self.inp = nn.Linear(input_size, hidden_size, bias=False)

    def forward(self, x):
        a = torch.sigmoid(self.gate(x))
        if self.negative:
            a = 2 * a - 1
        return parallel_scan(a, self.inp(x), x.new_ones(x.shape[0], self.hidden_size))


class _Block(nn.Module):
    """Pre-norm residual block: ``x + layer(norm(x))``."""

    def __init__(self, layer, width):
        super().__init__()
        self.norm, self.layer = nn.LayerNorm(width), layer

    def forward(self, x):
        y = self.layer(self.norm(x))
        return x + (y[0] if isinstance(y, tuple) else y)


class TokenModel(nn.Module):
    """Tokens -> embedding -> ``n_layers`` residual blocks of one kind -> per-step class logits.

    Parameters
    ----------
    kind : the sequence layer of every block:

        - ``"lstm"``, ``"rnn"`` (tanh): ``torch.nn.LSTM`` / ``RNN`` of width ``width``;
        - ``"s6"``: :class:`~rnncourse.torch.ssm.SelectiveSSM`, ``"s4"``: the same with ``selective=False``;
        - ``"linear_attention"``: :class:`~rnncourse.torch.linear_attention.CausalLinearAttention`
          with ``state`` keys and values (``state`` x ``state`` memory);
        - ``"diag_positive"``, ``"diag_negative"``: :class:`DiagonalLinearRNN` (eigenvalues in (0, 1) or (-1, 1));
        - ``"lru"``: :class:`~rnncourse.torch.lru.LRU` with ``state`` modes on the ring ``[r_min, 1)``.

    vocab : input tokens. n_classes : output classes.
    width : embedding and block width. n_layers : blocks.
    state : the SSMs' states per channel, the attention's key/value size, the LRU's modes.
    shift : feed each step its token and the previous one (concatenated
        embeddings), so that a single layer can see a key next to its value.
    r_min : the LRU's inner radius.
    """

    def __init__(self, kind, vocab, n_classes, width=32, n_layers=1, state=16, shift=False, r_min=0.0):
        super().__init__()
        self.kind, self.shift = kind, shift
        self.embed = nn.Embedding(vocab, width // 2 if shift else width)
        self.blocks = nn.ModuleList(_Block(self._layer(kind, width, state, r_min), width) for _ in range(n_layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_classes)

    @staticmethod
    def _layer(kind, width, state, r_min):
        # torch.nn's LSTM and RNN: the same models as rnncourse.torch's (a tested drop-in), whose
        # C++ loop is several times faster at these tiny sizes on a CPU
        if kind == "lstm":
            return nn.LSTM(width, width, batch_first=True)
        if kind == "rnn":
            return nn.RNN(width, width, batch_first=True)
        if kind in ("s6", "s4"):
            return SelectiveSSM(width, state, selective=kind == "s6", dt_min=DT_RANGE[0], dt_max=DT_RANGE[1])
        if kind == "linear_attention":
            return CausalLinearAttention(width, state, state, width)
        if kind in ("diag_positive", "diag_negative"):
            return nn.Sequential(DiagonalLinearRNN(width, width, negative=kind == "diag_negative"),
                                 nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
        if kind == "lru":
            return LRU(width, state, r_min=r_min)
        raise ValueError(f"kind is {kind!r}; expected one of lstm, rnn, s6, s4, linear_attention, diag_positive, "
                         "diag_negative, lru")

    def forward(self, tokens):
        """``tokens`` (N, T) int64 -> logits (N, T, n_classes)."""
        x = self.embed(tokens)
        if self.shift:
            x = torch.cat([x, F.pad(x, (0, 0, 1, 0))[:, :-1]], dim=2)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


# --- training ---------------------------------------------------------------------------


def classification_loss(model, inputs, targets):
    """Cross-entropy of the positions with a target (``targets != IGNORE``)."""
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)


def accuracy(model, inputs, targets):
    """The fraction of the positions with a target (not ``IGNORE``) that ``model`` predicts right."""
    with torch.no_grad():
        predicted = model(inputs).argmax(-1)
    mask = targets != IGNORE
    return float((predicted[mask] == targets[mask]).float().mean())


def train(model, batch, loss, steps, *, lr=1e-2, clip=1.0, seed=0, eval_every=None, evaluate=None):
    """Adam with a cosine-decayed learning rate and a clipped gradient norm; a fresh batch every step.

    Parameters
    ----------
    model : the module to train (initialised by the caller).
    batch : ``batch(rng) -> (inputs, targets)``.
    loss : ``loss(model, inputs, targets) -> scalar tensor``.
    steps : the number of updates.
    lr : Adam's initial learning rate. clip : the cap on the gradient's norm.
    seed : seeds the batches' generator.
    eval_every, evaluate : every ``eval_every`` steps, ``(step, evaluate(model))`` is recorded.

    Returns
    -------
    dict with ``loss`` (per step), ``evals`` and ``seconds`` (CPU time of the process).
    """
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + np.cos(np.pi * s / steps)))
    start = time.process_time()
    losses, evals = [], []
    for step in range(steps):
        value = loss(model, *batch(rng))
        optimizer.zero_grad()
        value.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        schedule.step()
        losses.append(value.item())
        if eval_every and evaluate and (step + 1) % eval_every == 0:
            evals.append((step + 1, evaluate(model)))
    return dict(loss=losses, evals=evals, seconds=time.process_time() - start)


def _count(model):
    return sum(p.numel() for p in model.parameters())


# --- the book's experiments: one model, one seed each -----------------------------------

#: Chapter 9, selective copying: 3 tokens among 32 fillers (4 noise tokens), 6 data tokens.
SELECTIVE_COPYING = dict(length=32, n_tokens=3, n_data=6, n_noise=4, batch=16, steps=400, lr=1e-2, eval_every=50)
#: the models compared: the same two-layer SSM with and without selectivity, and an LSTM, wider and with a
#: smaller learning rate than ``SELECTIVE_COPYING["lr"]`` (its own ``lr``): at the SSMs' width it learns this task far
#: more slowly, and at width 64 and the SSMs' rate its accuracy after 400 steps ranged from 0.57 to 0.92 over six
#: seeds (width 96 at 3e-3: 0.88 to 1.00)
SELECTIVE_COPYING_MODELS = {"s4": dict(width=16, state=8), "s6": dict(width=16, state=8),
                            "lstm": dict(width=96, lr=3e-3)}


def run_selective_copying(kind, seed):
    """Train one model of :data:`SELECTIVE_COPYING_MODELS` on selective copying; accuracy on 1000 held-out sequences."""
    c = SELECTIVE_COPYING
    sizes = dict(SELECTIVE_COPYING_MODELS[kind])
    lr = sizes.pop("lr", c["lr"])
    torch.manual_seed(seed)
    model = TokenModel(kind, 1 + c["n_noise"] + c["n_data"], c["n_data"], n_layers=2, **sizes)
    test = selective_copying_batch(1000, c["length"], c["n_tokens"], c["n_data"], np.random.default_rng(10_000 + seed),
                                   c["n_noise"])
    result = train(model, lambda rng: selective_copying_batch(c["batch"], c["length"], c["n_tokens"], c["n_data"], rng,
                                                              c["n_noise"]),
                   classification_loss, c["steps"], lr=lr, seed=seed, eval_every=c["eval_every"],
                   evaluate=lambda m: accuracy(m, *test))
    return dict(kind=kind, seed=seed, accuracy=accuracy(model, *test), curve=result["evals"],
                params=_count(model), seconds=result["seconds"])


#: Chapter 8, running parity: trained on 16 bits, tested on 128.
PARITY = dict(train_length=16, test_length=128, batch=32, steps=400, lr=1e-2, width=16)
#: the models compared: diagonal linear recurrences with eigenvalues in (0, 1) and in (-1, 1), a tanh RNN, an LSTM
PARITY_MODELS = ("diag_positive", "diag_negative", "rnn", "lstm")


def run_parity(kind, seed, steps=None):
    """Train one model of :data:`PARITY_MODELS` on running parity; accuracy within and beyond the training length.

    ``steps`` overrides :data:`PARITY`'s number of updates (the tests train briefly).
    """
    c = PARITY
    steps = c["steps"] if steps is None else steps
    torch.manual_seed(seed)
    model = TokenModel(kind, 2, 2, width=c["width"], n_layers=1)
    inputs, targets = parity_batch(500, c["test_length"], np.random.default_rng(10_000 + seed))
    within, beyond = targets.clone(), targets.clone()
    within[:, c["train_length"]:] = IGNORE
    beyond[:, : c["train_length"]] = IGNORE
    result = train(model, lambda rng: parity_batch(c["batch"], c["train_length"], rng), classification_loss,
                   steps, lr=c["lr"], seed=seed)
    with torch.no_grad():
        right = (model(inputs).argmax(-1) == targets).float().mean(0).numpy()  # per position
    return dict(kind=kind, seed=seed, within=accuracy(model, inputs, within), beyond=accuracy(model, inputs, beyond),
                by_position=right.tolist(), params=_count(model), seconds=result["seconds"])


#: Chapter 9, associative recall: 8 key-value pairs over 16 keys and 16 values, then a query.
ASSOCIATIVE_RECALL = dict(n_pairs=8, n_keys=16, n_values=16, batch=64, steps=500, lr=1e-2, eval_every=50)
#: linear attention with a 16 x 16 memory, and an LSTM with about as many parameters
ASSOCIATIVE_RECALL_MODELS = {"linear_attention": dict(width=32, state=16), "lstm": dict(width=16)}


def run_associative_recall(kind, seed):
    """Train one model of :data:`ASSOCIATIVE_RECALL_MODELS` on associative recall; accuracy on 1000 held-out queries."""
    c = ASSOCIATIVE_RECALL
    torch.manual_seed(seed)
    model = TokenModel(kind, c["n_keys"] + c["n_values"], c["n_values"], n_layers=1, shift=True,
                       **ASSOCIATIVE_RECALL_MODELS[kind])
    test = associative_recall_batch(1000, c["n_pairs"], c["n_keys"], c["n_values"], np.random.default_rng(10_000 + seed))
    result = train(model, lambda rng: associative_recall_batch(c["batch"], c["n_pairs"], c["n_keys"], c["n_values"], rng),
                   classification_loss, c["steps"], lr=c["lr"], seed=seed, eval_every=c["eval_every"],
                   evaluate=lambda m: accuracy(m, *test))
    return dict(kind=kind, seed=seed, accuracy=accuracy(model, *test), curve=result["evals"], params=_count(model),
                seconds=result["seconds"])


#: Chapter 9, the LRU's ablation in miniature: a delay of 64 steps in sequences of 128 (tested on 2048 too).
LRU_ABLATION = dict(length=128, delay=64, batch=32, steps=300, lr=1e-2, width=8, state=32, eval_every=50,
                    long_length=2048)
#: the rungs, in the paper's order: what each adds to the one before
LRU_RUNGS = {
    "dense": "a real linear RNN with a dense A (torch.nn.RNN's initialisation)",
    "diagonal": "complex diagonal, lambda = re + i im trained directly, eigenvalues uniform in the unit disk",
    "stable": "lambda = exp(-exp(nu_log) + i exp(theta_log)), eigenvalues on the ring 0.9 <= |lambda| <= 0.999",
    "lru": "and the normalisation gamma = sqrt(1 - |lambda|^2): the LRU",
}


class DelayModel(nn.Module):
    """``Linear(1, width)``, a linear recurrent layer (one rung of :data:`LRU_RUNGS`), ``Linear(width, 1)``."""

    def __init__(self, rung, width, state):
        super().__init__()
        if rung not in LRU_RUNGS:
            raise ValueError(f"rung is {rung!r}; expected one of {', '.join(LRU_RUNGS)}")
        self.inp, self.out = nn.Linear(1, width), nn.Linear(width, 1)
        if rung == "dense":
            self.core = DenseLinearRNN(width, state)
        elif rung == "diagonal":
            self.core = LRU(width, state, parametrization="real_imag", normalize=False)
        else:
            self.core = LRU(width, state, r_min=0.9, r_max=0.999, normalize=rung == "lru")

    def eigenvalues(self):
        """The recurrence's eigenvalues (complex)."""
        if isinstance(self.core, DenseLinearRNN):
            return torch.linalg.eigvals(self.core.A.detach())
        return self.core.eigenvalues().detach()

    def forward(self, x):
        return self.out(self.core(self.inp(x))[0])


def _delay_loss(delay):
    def loss(model, inputs, targets):
        return ((model(inputs)[:, delay:] - targets) ** 2).mean()

    return loss


def run_lru_ablation(rung, seed):
    """Train one rung of :data:`LRU_RUNGS` on the delay line; R^2 of the delayed signal on held-out noise.

    R^2 = 1 - MSE / variance of the target (1 for unit Gaussian noise): 1 is a
    perfect delay line, 0 what predicting 0 achieves, and below 0 worse. It
    is measured at the training length and, for the same trained model, on
    sequences 16 times longer, where a mode with ``|lambda| > 1`` grows
    without bound (``r2_long`` is ``-inf`` if the outputs overflow).
    """
    c = LRU_ABLATION
    torch.manual_seed(seed)
    model = DelayModel(rung, c["width"], c["state"])
    test = delay_batch(500, c["length"], c["delay"], np.random.default_rng(10_000 + seed))
    test_long = delay_batch(20, c["long_length"], c["delay"], np.random.default_rng(20_000 + seed))
    loss = _delay_loss(c["delay"])

    def r2(m, data=test):
        with torch.no_grad():
            value = 1 - float(loss(m, *data)) / float(data[1].var())
        return value if np.isfinite(value) else -np.inf

    initial = model.eigenvalues().abs()
    result = train(model, lambda rng: delay_batch(c["batch"], c["length"], c["delay"], rng), loss, c["steps"],
                   lr=c["lr"], seed=seed, eval_every=c["eval_every"], evaluate=r2)
    return dict(rung=rung, seed=seed, r2=r2(model), r2_long=r2(model, test_long), curve=result["evals"],
                params=_count(model), modulus_before=initial.numpy().tolist(),
                modulus_after=model.eigenvalues().abs().numpy().tolist(), seconds=result["seconds"])


# --- running many ------------------------------------------------------------------------


def _one_thread():
    torch.set_num_threads(1)


def _call(function, kwargs):
    return function(**kwargs)


def run_parallel(function, jobs, processes=2):
    """``[function(**job) for job in jobs]``, in ``processes`` worker processes (1: in this one).

    The workers are spawned (fresh interpreters, one thread each), so
    ``function`` must be importable, as the ``run_*`` functions are. Each run
    seeds its own generators: the results do not depend on the process it ran in.
    """
    if processes <= 1:
        return [function(**job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_one_thread) as pool:
        return list(pool.map(_call, [function] * len(jobs), jobs))
