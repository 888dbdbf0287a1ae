"""minGRU and minLSTM (Feng et al. 2024) as PyTorch modules, trained by a scan.

N: batch size, T: sequence length, D: input size, H: hidden size. The
equations are those of :mod:`rnncourse.numpy.minrnn` (which is the
reference these modules are tested against); with PyTorch's weight layout,
``x_t Wz`` there is ``linear_z(x_t)`` here (``Wz = linear_z.weight.T``).

Inputs are batch-first ``(N, T, D)``. ``mode`` selects how the recurrence runs:

- ``"parallel"`` (default): on logarithms, ``log h = a* + logcumsumexp(log b - a*)``
  (``torch.cumsum`` and ``torch.logcumsumexp`` are scans), as the paper
  trains them; needs ``h0 >= 0``. In float32 its precision falls as the
  running sum ``a*`` of ``log(1 - z)`` grows (``|a*|`` of ``10^4`` leaves
  about three correct digits of ``h``): the log-space form trades precision
  for never underflowing;
- ``"scan"``: :func:`rnncourse.torch.scan.parallel_scan` on ``a`` and ``b``;
- ``"sequential"``: a loop, as at inference.

``step(x_t, h)`` advances one token, for generation.
"""

import torch
from torch import nn
from torch.nn import functional as F

from ..validation import check_choice, check_int
from ._checks import check_input_shape, check_state_shape
from .scan import parallel_scan

__all__ = ["MinGRU", "MinLSTM", "positive_activation", "log_positive_activation"]

MODES = ("parallel", "scan", "sequential")


def positive_activation(a):
    """The paper's ``g``: ``a + 1/2`` for ``a >= 0``, ``sigmoid(a)`` below; always > 0."""
    return torch.where(a >= 0, a + 0.5, torch.sigmoid(a))


def log_positive_activation(a):
    """``log g(a)`` without forming tiny values: ``log(a + 1/2)`` for ``a >= 0``, ``-softplus(-a)`` below."""
    return torch.where(a >= 0, torch.log(F.relu(a) + 0.5), -F.softplus(-a))


def _log_space_recurrence(log_a, log_b, h0):
    """``h`` of ``h_t = a_t h_{t-1} + b_t`` from ``log a``, ``log b`` and ``h0 >= 0`` (N, H)."""
    a_star = torch.cumsum(log_a, dim=1)
    log_h0 = torch.log(h0)[:, None]  # log 0 = -inf: h0 = 0 adds nothing
    terms = torch.cat([log_h0, log_b - a_star], dim=1)
    return torch.exp(a_star + torch.logcumsumexp(terms, dim=1)[:, 1:])


class _MinRNN(nn.Module):
    """What minGRU and minLSTM share: the checks, the three modes and the return values."""

    def __init__(self, input_size, hidden_size, gates, bias, mode, device, dtype):
        super().__init__()
        check_choice("mode", mode, MODES)
        input_size, hidden_size = check_int("input_size", input_size), check_int("hidden_size", hidden_size)
        self.input_size, self.hidden_size, self.mode = input_size, hidden_size, mode
        for gate in gates:
            setattr(self, f"linear_{gate}", nn.Linear(input_size, hidden_size, bias, device=device, dtype=dtype))

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, mode={self.mode!r}"

    def _check(self, x, h0):
        check_input_shape(x, self.input_size)
        N = x.shape[0]
        if h0 is None:
            return x.new_zeros(N, self.hidden_size)
        check_state_shape(h0, (N, self.hidden_size))
        if self.mode == "parallel" and bool((h0 < 0).any()):
            raise ValueError("h0 has negative elements; mode='parallel' runs on logarithms and needs h0 >= 0")
        return h0

    def forward(self, x, h0=None):
        """Every state and the last one.

        Parameters
        ----------
        x : Tensor (N, T, D)
        h0 : Tensor (N, H) or None (zeros); ``>= 0`` in mode ``"parallel"``.

        Returns
        -------
        output : Tensor (N, T, H), every ``h_t``.
        h_n : Tensor (N, H), the last state.
        """
        h0 = self._check(x, h0)
        if self.mode == "parallel":
            h = _log_space_recurrence(*self._log_coefficients(x), h0)
        else:
            a, b = self._coefficients(x)
            if self.mode == "scan":
                h = parallel_scan(a, b, h0)
            else:
                states, h_t = [], h0
                for t in range(x.shape[1]):
                    h_t = a[:, t] * h_t + b[:, t]
                    states.append(h_t)
                h = torch.stack(states, 1)
        return h, h[:, -1]

    def step(self, x, h):
        """One token: ``x`` (N, D), ``h`` (N, H) -> the next ``h`` (N, H)."""
        a, b = self._coefficients(x[:, None])
        return a[:, 0] * h + b[:, 0]


class MinGRU(_MinRNN):
    """minGRU: ``z_t = sigmoid(linear_z(x_t))``, ``h_t = (1 - z_t) h_{t-1} + z_t g(linear_h(x_t))``.

    Parameters
    ----------
    input_size, hidden_size : D and H.
    bias : whether the two linear maps have biases.
    mode : ``"parallel"`` (log-space), ``"scan"`` or ``"sequential"``.
    """

    def __init__(self, input_size, hidden_size, bias=True, mode="parallel", device=None, dtype=None):
        super().__init__(input_size, hidden_size, ("z", "h"), bias, mode, device, dtype)

    def _coefficients(self, x):
        z = torch.sigmoid(self.linear_z(x))
        return 1 - z, z * positive_activation(self.linear_h(x))

    def _log_coefficients(self, x):
        k = self.linear_z(x)
        # log(1 - z) = -softplus(k), log z = -softplus(-k)
        return -F.softplus(k), -F.softplus(-k) + log_positive_activation(self.linear_h(x))


class MinLSTM(_MinRNN):
    """minLSTM: ``h_t = f'_t h_{t-1} + i'_t g(linear_h(x_t))`` with ``f', i' = f, i / (f + i)``.

    Parameters
    ----------
    input_size, hidden_size : D and H.
    bias : whether the three linear maps have biases.
    mode : ``"parallel"`` (log-space), ``"scan"`` or ``"sequential"``.
    """

    def __init__(self, input_size, hidden_size, bias=True, mode="parallel", device=None, dtype=None):
        super().__init__(input_size, hidden_size, ("f", "i", "h"), bias, mode, device, dtype)

    def _coefficients(self, x):
        f, i = torch.sigmoid(self.linear_f(x)), torch.sigmoid(self.linear_i(x))
        return f / (f + i), i / (f + i) * positive_activation(self.linear_h(x))

    def _log_coefficients(self, x):
        # log f' = -softplus(log i - log f), log i' = -softplus(log f - log i)
        log_i_over_f = -F.softplus(-self.linear_i(x)) + F.softplus(-self.linear_f(x))
        return -F.softplus(log_i_over_f), -F.softplus(-log_i_over_f) + log_positive_activation(self.linear_h(x))
