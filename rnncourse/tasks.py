"""Synthetic long-memory tasks, and the small experiment the gated-cell chapters run on them.

N: batch size, T: sequence length, H: hidden size.

- :func:`adding_problem`: the adding problem of Hochreiter & Schmidhuber
  (1997), in NumPy: a long sequence of random numbers, two of them marked,
  and one target at the end, the sum of the two marked numbers.
- :class:`AddingBatches`: a seeded, re-iterable stream of such batches as
  tensors, to pass to :func:`rnncourse.torch.train.fit`.
- :class:`LastStateRegressor`: a recurrent layer (``"rnn"``, ``"lstm"`` or
  ``"gru"``, from :mod:`rnncourse.torch`) and a linear read-out of its last
  state: a many-to-one regression model.
- :func:`train_adding`: build, train and test one such model, seeded.
- :func:`lstm_gates`: the gate values of a (NumPy) LSTM at every step, to
  look inside a trained cell.

This module imports PyTorch (``rnncourse`` and ``rnncourse.numpy`` do not).
"""

import dataclasses

import numpy as np
import torch
from torch import nn

from .numpy.lstm import lstm_forward
from .numpy.activations import sigmoid
from .torch.models import recurrent_layers
from .torch.train import History, fit, select_device
from .validation import check_int, check_rng

__all__ = [
    "ADDING_BASELINE_MSE",
    "adding_problem",
    "AddingBatches",
    "LastStateRegressor",
    "AddingResult",
    "train_adding",
    "lstm_gates",
]

#: The mean squared error of always predicting the mean target, 1: the
#: variance of the sum of two independent U(0, 1) numbers, 2 * 1/12 = 1/6.
ADDING_BASELINE_MSE = 1 / 6


def adding_problem(n, length, *, rng, dtype=np.float32):
    """A batch of the adding problem (Hochreiter & Schmidhuber, 1997).

    N: ``n`` sequences, T: ``length`` steps. Each step has two features: a
    value drawn from U(0, 1), and a marker that is 1 at exactly two steps,
    one drawn uniformly from the first half (steps ``0 .. T//2 - 1``) and
    one from the second half (steps ``T//2 .. T-1``), and 0 elsewhere. The
    target, given once at the end, is the sum of the two marked values.
    Predicting the mean, 1, has expected squared error
    :data:`ADDING_BASELINE_MSE` = 1/6; to do better, a model must carry the
    first marked value from the first half of the sequence to its end.

    Parameters
    ----------
    n : int >= 1, N.
    length : int >= 2, T.
    rng : numpy.random.Generator (required: every batch is seeded).
    dtype : float dtype of the arrays, default float32.

    Returns
    -------
    x : ndarray (N, T, 2), ``x[..., 0]`` the values, ``x[..., 1]`` the markers.
    y : ndarray (N, 1), the targets.
    """
    n = check_int("n", n)
    length = check_int("length", length, minimum=2)
    check_rng(rng)
    values = rng.uniform(0.0, 1.0, (n, length))
    half = length // 2
    rows = np.arange(n)
    markers = np.zeros((n, length))
    markers[rows, rng.integers(0, half, n)] = 1.0
    markers[rows, rng.integers(half, length, n)] = 1.0
    x = np.stack([values, markers], axis=2).astype(dtype)
    y = (values * markers).sum(axis=1, keepdims=True).astype(dtype)
    return x, y


class AddingBatches:
    """A seeded stream of ``batches`` adding-problem batches ``(x, y)`` as float32 tensors.

    Re-iterable: every pass yields the same batches (each pass starts a new
    ``numpy.random.Generator(seed)``), drawn one at a time, so a long run
    does not hold its whole training set in memory. For
    :func:`~rnncourse.torch.train.fit`, one epoch over it is ``batches`` steps.

    Parameters
    ----------
    length : T.
    batch_size : N.
    batches : number of batches per pass.
    seed : int, the seed of the stream.

    Yields
    ------
    (x, y) : tensors (N, T, 2) and (N, 1), on the CPU.
    """

    def __init__(self, length, batch_size, batches, seed):
        self.length = check_int("length", length, minimum=2)
        self.batch_size = check_int("batch_size", batch_size)
        self.batches = check_int("batches", batches)
        self.seed = seed

    def __len__(self):
        return self.batches

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        for _ in range(self.batches):
            x, y = adding_problem(self.batch_size, self.length, rng=rng)
            yield torch.from_numpy(x), torch.from_numpy(y)


class LastStateRegressor(nn.Module):
    """Many-to-one regression: a recurrent layer, then a linear map of its last state.

    N: batch size, T: sequence length, D: ``input_size``, H: ``hidden_size``,
    K: ``output_size``. ``y = h_T W_out + b_out``, with ``h_T`` the state
    after the last step (all sequences have length T: nothing is padded).

    Parameters
    ----------
    cell : ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``: :mod:`rnncourse.torch`'s
        ``RNN``, ``LSTM`` or ``GRU``, with their default initialisation.
    input_size : D.
    hidden_size : H.
    output_size : K, default 1.
    forget_bias : float, optional, LSTM only: the forget gate's bias
        (:func:`~rnncourse.torch.init.init_forget_bias_`); None keeps the
        default initialisation.

    Attributes
    ----------
    rnn : the recurrent layer, batch first.
    head : nn.Linear (H -> K).
    """

    def __init__(self, cell, input_size, hidden_size, output_size=1, *, forget_bias=None):
        super().__init__()
        self.cell = cell
        self.rnn = recurrent_layers(cell, input_size, hidden_size, forget_bias=forget_bias)
        self.head = nn.Linear(hidden_size, check_int("output_size", output_size))

    def forward(self, x):
        """(N, T, D) -> (N, K): the read-out of the last state."""
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


@dataclasses.dataclass
class AddingResult:
    """What :func:`train_adding` returns.

    Attributes
    ----------
    model : the trained :class:`LastStateRegressor`, in eval mode, on ``device``.
    history : the :class:`~rnncourse.torch.train.History` of :func:`~rnncourse.torch.train.fit`
        (``train_loss`` and ``grad_norm``, the norm before clipping, per step).
    test_mse : float, the mean squared error on ``test_size`` fresh sequences.
    """

    model: nn.Module
    history: History
    test_mse: float


def train_adding(cell, length, *, hidden_size=32, steps=1000, batch_size=64, lr=1e-2,
                 clip_grad_norm=1.0, forget_bias=None, seed=0, test_size=2000, device=None):
    """Train a :class:`LastStateRegressor` on the adding problem; report its test error.

    T: ``length``. Everything is seeded from ``seed``: the initial weights
    (``torch.manual_seed(seed)``), the training batches
    (``AddingBatches(length, batch_size, steps, seed)``) and, independently
    of ``seed``, the test set (``numpy.random.default_rng(10**6 + length)``,
    the same for every model of a given length, so models are compared on
    the same sequences). Adam with learning rate ``lr`` minimises the mean
    squared error, with the global gradient norm clipped to
    ``clip_grad_norm``, for ``steps`` steps of ``batch_size`` fresh sequences.

    Parameters
    ----------
    cell : ``"rnn"``, ``"lstm"`` or ``"gru"``.
    length : T >= 2.
    hidden_size, steps, batch_size : ints >= 1.
    lr : float > 0.
    clip_grad_norm : float > 0, or None for no clipping (then
        ``history.grad_norm`` stays empty).
    forget_bias : float or None (LSTM only); see :class:`LastStateRegressor`.
    seed : int in [0, 2**32).
    test_size : int >= 1, sequences in the test set.
    device : where to train; default :func:`~rnncourse.torch.train.select_device`
        (CUDA when there is a GPU).

    Returns
    -------
    AddingResult
    """
    device = select_device(device)
    torch.manual_seed(seed)
    model = LastStateRegressor(cell, 2, hidden_size, forget_bias=forget_bias)
    batches = AddingBatches(length, batch_size, steps, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def loss_fn(model, batch):
        x, y = batch
        return nn.functional.mse_loss(model(x), y)

    history = fit(model, batches, loss_fn, optimizer=optimizer, epochs=1, device=device,
                  clip_grad_norm=clip_grad_norm, progress=False)
    x_test, y_test = adding_problem(check_int("test_size", test_size), length,
                                    rng=np.random.default_rng(10**6 + length))
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x_test).to(device)).cpu()
    test_mse = float(nn.functional.mse_loss(pred, torch.from_numpy(y_test)))
    return AddingResult(model, history, test_mse)


def lstm_gates(x, h0, Wx, Wh, b, c0=None):
    """The gate values of an LSTM at every step, and its cell states.

    N: batch size, T: sequence length, D: input size, H: hidden size. The
    LSTM is :func:`rnncourse.numpy.lstm.lstm_forward` (gates stacked
    ``i, f, g, o``); this recomputes its pre-activations
    ``a_t = x_t Wx + h_{t-1} Wh + b`` from the states it returns, to expose
    what ``lstm_forward`` keeps internal.

    Parameters
    ----------
    x : (N, T, D). h0 : (N, H). Wx : (D, 4H). Wh : (H, 4H). b : (4H,).
    c0 : (N, H) or None for zeros.

    Returns
    -------
    dict of ndarray (N, T, H): ``"i"``, ``"f"``, ``"o"`` (sigmoid gates),
    ``"g"`` (the tanh cell candidate), ``"c"`` (cell states) and ``"h"``
    (hidden states); ``c[:, t] = f[:, t] * c[:, t-1] + i[:, t] * g[:, t]``.
    """
    h, _ = lstm_forward(x, h0, Wx, Wh, b, c0)  # checks every shape
    x, h0, Wx, Wh, b = (np.asarray(a) for a in (x, h0, Wx, Wh, b))
    N, T, _ = x.shape
    H = h0.shape[1]
    h_prev = np.concatenate([h0[:, None].astype(h.dtype), h[:, :-1]], axis=1)
    a = x @ Wx + h_prev @ Wh + b
    gates = {"i": sigmoid(a[..., :H]), "f": sigmoid(a[..., H : 2 * H]),
             "g": np.tanh(a[..., 2 * H : 3 * H]), "o": sigmoid(a[..., 3 * H :])}
    c = np.empty_like(h)
    prev_c = np.zeros((N, H), h.dtype) if c0 is None else np.asarray(c0)
    for t in range(T):
        prev_c = c[:, t] = gates["f"][:, t] * prev_c + gates["i"][:, t] * gates["g"][:, t]
    return {**gates, "c": c, "h": h}
