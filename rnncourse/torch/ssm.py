"""The selective state-space layer (Mamba's S6) and its time-invariant twin, as a PyTorch module.

N: batch size, T: sequence length, D: channels, S: state size per channel.
With ``selective=True`` the layer computes what
:func:`rnncourse.numpy.ssm.selective_ssm_forward` computes (its reference),
with PyTorch's weight layout (``W_delta = delta_proj.weight.T``,
``b_delta = delta_proj.bias``, ``W_B = B_proj.weight.T``, ``W_C = C_proj.weight.T``)::

    delta_t = softplus(delta_proj(x_t)),  B_t = B_proj(x_t),  C_t = C_proj(x_t)
    h_t[d, s] = exp(delta_t[d] A[d, s]) h_{t-1}[d, s] + delta_t[d] B_t[s] x_t[d]
    y_t[d] = sum_s h_t[d, s] C_t[s] + skip[d] x_t[d],        A = -exp(A_log)

With ``selective=False``, ``delta`` (D,), ``B`` and ``C`` (D, S) are
parameters, the same at every step: a diagonal linear time-invariant system
discretised by the same rules, as in S4D (Gu et al. 2022). It is the
"S4 (no gate)" row of Mamba's selective-copying table: the same layer, minus
selectivity.

Initialisation as in Mamba: ``A[d, s] = -(s + 1)`` (S4D-real), steps
``softplus(b_delta)`` log-uniform in ``[dt_min, dt_max]``, ``skip = 1``.
Mamba projects ``delta`` through a low rank (``dt_rank``); here
``delta_proj`` is a full (D, D) map. The recurrence runs by
:func:`rnncourse.torch.scan.parallel_scan` over the ``D S`` channels
(``mode="parallel"``) or a loop (``mode="sequential"``).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..validation import check_choice
from ._checks import check_input_shape, check_state_shape
from .scan import parallel_scan

__all__ = ["SelectiveSSM"]


def _inverse_softplus(y):
    """``x`` with ``softplus(x) = y``, for ``y > 0``."""
    return y + torch.log(-torch.expm1(-y))


class SelectiveSSM(nn.Module):
    """A selective (S6) or time-invariant (S4D-like) diagonal state-space layer.

    Parameters
    ----------
    d_model : D, the channels in and out.
    state_size : S, the states per channel.
    selective : whether ``delta``, ``B``, ``C`` depend on the input.
    dt_min, dt_max : the range of the initial steps.
    mode : ``"parallel"`` (scan) or ``"sequential"`` (loop).
    """

    def __init__(self, d_model, state_size=16, *, selective=True, dt_min=1e-3, dt_max=1e-1, mode="parallel",
                 device=None, dtype=None):
        super().__init__()
        check_choice("mode", mode, ("parallel", "sequential"))
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min, dt_max are {dt_min}, {dt_max}; expected 0 < dt_min <= dt_max")
        kw = dict(device=device, dtype=dtype)
        D, S = d_model, state_size
        self.d_model, self.state_size, self.selective, self.mode = D, S, selective, mode
        A = torch.arange(1, S + 1, device=device, dtype=dtype or torch.get_default_dtype())
        self.A_log = nn.Parameter(torch.log(A).repeat(D, 1))
        dt = torch.exp(torch.rand(D, **kw) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        if selective:
            self.delta_proj = nn.Linear(D, D, **kw)
            with torch.no_grad():
                self.delta_proj.weight.mul_(0.1)  # start near the initial steps; the input moves them
                self.delta_proj.bias.copy_(_inverse_softplus(dt))
            self.B_proj = nn.Linear(D, S, bias=False, **kw)
            self.C_proj = nn.Linear(D, S, bias=False, **kw)
        else:
            self.delta_bias = nn.Parameter(_inverse_softplus(dt))
            self.B = nn.Parameter(torch.randn(D, S, **kw) / math.sqrt(S))
            self.C = nn.Parameter(torch.randn(D, S, **kw) / math.sqrt(S))
        self.skip = nn.Parameter(torch.ones(D, **kw))

    def extra_repr(self):
        return f"{self.d_model}, state_size={self.state_size}, selective={self.selective}, mode={self.mode!r}"

    def discretize(self, x):
        """``A_bar = exp(delta A)`` (N, T, D, S) and the input term ``delta B x`` (N, T, D, S)."""
        A = -torch.exp(self.A_log)
        if self.selective:
            delta = F.softplus(self.delta_proj(x))  # (N, T, D)
            B = self.B_proj(x)[:, :, None, :]  # (N, T, 1, S): shared by the channels
        else:
            delta = F.softplus(self.delta_bias).expand_as(x)
            B = self.B  # (D, S): one per channel, the same at every step
        return torch.exp(delta[..., None] * A), (delta * x)[..., None] * B

    def forward(self, x, h0=None):
        """The outputs and the last state.

        Parameters
        ----------
        x : Tensor (N, T, D)
        h0 : Tensor (N, D, S) or None (zeros).

        Returns
        -------
        y : Tensor (N, T, D)
        h_n : Tensor (N, D, S)
        """
        check_input_shape(x, self.d_model)
        N, T, D = x.shape
        S = self.state_size
        if h0 is None:
            h0 = x.new_zeros(N, D, S)
        else:
            check_state_shape(h0, (N, D, S), dims="N, D, S")
        A_bar, u = self.discretize(x)
        if self.mode == "parallel":
            h = parallel_scan(A_bar.reshape(N, T, D * S), u.reshape(N, T, D * S), h0.reshape(N, D * S))
            h = h.view(N, T, D, S)
        else:
            states, h_t = [], h0
            for t in range(T):
                h_t = A_bar[:, t] * h_t + u[:, t]
                states.append(h_t)
            h = torch.stack(states, 1)
        C = self.C_proj(x)[:, :, None, :] if self.selective else self.C
        y = (h * C).sum(-1) + self.skip * x
        return y, h[:, -1]
