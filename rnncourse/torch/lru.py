"""The linear recurrent unit (Orvieto et al. 2023) and the rungs of its ablation, as PyTorch modules.

N: batch size, T: sequence length, D: input (and output) size, H: state size.
:class:`LRU` with its defaults computes what :func:`rnncourse.numpy.lru.lru_forward`
computes (the reference it is tested against), with the same parameter names::

    lambda = exp(-exp(nu_log) + i exp(theta_log)),   gamma = exp(gamma_log)
    h_t = lambda * h_{t-1} + gamma * (x_t B),        y_t = Re(h_t C) + skip * x_t

The options take the LRU apart, rung by rung of the paper's ablation
(its Table 2), for the experiment of chapter 9:

- ``parametrization="real_imag"``: ``lambda = lambda_re + i lambda_im``,
  trained directly: nothing keeps ``|lambda| < 1``;
- ``"exp"``: ``lambda = exp(-nu + i theta)``, ``nu`` and ``theta`` trained
  directly: ``|lambda| < 1`` only while ``nu > 0``;
- ``"stable_exp"`` (the LRU's): ``nu = exp(nu_log) > 0`` always;
- ``normalize=False`` drops ``gamma`` (it is then 1);

and :class:`DenseLinearRNN` is the first rung, a real linear RNN with a
dense ``A``. All are initialised on the same ring of eigenvalues (the dense
one with Glorot's uniform weights, whose eigenvalues fill a disk).

The recurrence runs by :func:`rnncourse.torch.scan.parallel_scan`
(``mode="parallel"``, complex tensors) or a loop (``mode="sequential"``).
"""

import math

import torch
from torch import nn

from ..validation import check_choice
from ._checks import check_input_shape, check_state_shape
from .scan import parallel_scan

__all__ = ["LRU", "DenseLinearRNN"]

PARAMETRIZATIONS = ("stable_exp", "exp", "real_imag")


class LRU(nn.Module):
    """A linear recurrent unit: a complex diagonal linear recurrence with a real input and output.

    Parameters
    ----------
    input_size : D, also the output size.
    state_size : H, the number of complex modes.
    r_min, r_max : the ring ``r_min <= |lambda| <= r_max`` of the initial eigenvalues.
    max_phase : the initial phases are uniform in ``[0, max_phase]``.
    parametrization : ``"stable_exp"`` (default), ``"exp"`` or ``"real_imag"`` (see the module docstring).
    normalize : multiply the input by ``gamma`` (initialised to ``sqrt(1 - |lambda|^2)``).
    mode : ``"parallel"`` (the scan) or ``"sequential"`` (a loop).
    """

    def __init__(self, input_size, state_size, *, r_min=0.0, r_max=1.0, max_phase=2 * math.pi,
                 parametrization="stable_exp", normalize=True, mode="parallel", device=None, dtype=None):
        super().__init__()
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization is {parametrization!r}; expected one of {', '.join(PARAMETRIZATIONS)}")
        check_choice("mode", mode, ("parallel", "sequential"))
        if not 0 <= r_min < r_max <= 1:
            raise ValueError(f"r_min, r_max are {r_min}, {r_max}; expected 0 <= r_min < r_max <= 1")
        self.input_size, self.state_size = input_size, state_size
        self.parametrization, self.normalize, self.mode = parametrization, normalize, mode
        kw = dict(device=device, dtype=dtype or torch.get_default_dtype())
        D, H = input_size, state_size
        # |lambda|^2 uniform on [r_min^2, r_max^2]: lambda uniform in area on the ring
        modulus_sq = torch.rand(H, **kw) * (r_max**2 - r_min**2) + r_min**2
        nu = -0.5 * torch.log(modulus_sq)  # |lambda| = exp(-nu)
        theta = max_phase * torch.rand(H, **kw)
        if parametrization == "stable_exp":
            self.nu_log, self.theta_log = nn.Parameter(torch.log(nu)), nn.Parameter(torch.log(theta))
        elif parametrization == "exp":
            self.nu, self.theta = nn.Parameter(nu), nn.Parameter(theta)
        else:
            modulus = torch.exp(-nu)
            self.lambda_re = nn.Parameter(modulus * torch.cos(theta))
            self.lambda_im = nn.Parameter(modulus * torch.sin(theta))
        if normalize:
            self.gamma_log = nn.Parameter(0.5 * torch.log(1 - modulus_sq))
        self.B_re = nn.Parameter(torch.randn(D, H, **kw) / math.sqrt(2 * D))
        self.B_im = nn.Parameter(torch.randn(D, H, **kw) / math.sqrt(2 * D))
        self.C_re = nn.Parameter(torch.randn(H, D, **kw) / math.sqrt(2 * H))
        self.C_im = nn.Parameter(torch.randn(H, D, **kw) / math.sqrt(2 * H))
        self.skip = nn.Parameter(torch.randn(D, **kw))

    def extra_repr(self):
        return (f"{self.input_size}, {self.state_size}, parametrization={self.parametrization!r}, "
                f"normalize={self.normalize}, mode={self.mode!r}")

    def eigenvalues(self):
        """``lambda`` (H,), complex."""
        if self.parametrization == "stable_exp":
            return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
        if self.parametrization == "exp":
            return torch.exp(torch.complex(-self.nu, self.theta))
        return torch.complex(self.lambda_re, self.lambda_im)

    def forward(self, x, h0=None):
        """The outputs and the last state.

        Parameters
        ----------
        x : Tensor (N, T, D), real.
        h0 : Tensor (N, H), complex, or None (zeros).

        Returns
        -------
        y : Tensor (N, T, D), real.
        h_n : Tensor (N, H), complex.
        """
        check_input_shape(x, self.input_size)
        N, T, _ = x.shape
        lam = self.eigenvalues()
        u = torch.complex(x @ self.B_re, x @ self.B_im)  # x_t B
        if self.normalize:
            u = torch.exp(self.gamma_log) * u
        if h0 is None:
            h0 = u.new_zeros(N, self.state_size)
        else:
            check_state_shape(h0, (N, self.state_size))
        h0 = h0.to(u.dtype)
        a = lam.expand(N, T, -1)
        if self.mode == "parallel":
            h = parallel_scan(a, u, h0)
        else:
            states, h_t = [], h0
            for t in range(T):
                h_t = lam * h_t + u[:, t]
                states.append(h_t)
            h = torch.stack(states, 1)
        y = (h @ torch.complex(self.C_re, self.C_im)).real + self.skip * x
        return y, h[:, -1]


class DenseLinearRNN(nn.Module):
    """The ablation's first rung: ``h_t = h_{t-1} A + x_t B``, ``y_t = h_t C + skip * x_t``, real, ``A`` dense.

    ``A`` (H, H) is initialised like ``torch.nn.RNN``'s recurrent weights
    (uniform in ``[-1/sqrt(H), 1/sqrt(H)]``), whose eigenvalues fill a disk
    of radius about ``1/sqrt(3)``; ``B`` and ``C`` as in :class:`LRU`.

    Parameters
    ----------
    input_size : D, also the output size. state_size : H.
    """

    def __init__(self, input_size, state_size, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        D, H = input_size, state_size
        self.input_size, self.state_size = D, H
        self.A = nn.Parameter(torch.empty(H, H, **kw).uniform_(-1 / math.sqrt(H), 1 / math.sqrt(H)))
        self.B = nn.Parameter(torch.randn(D, H, **kw) / math.sqrt(D))
        self.C = nn.Parameter(torch.randn(H, D, **kw) / math.sqrt(H))
        self.skip = nn.Parameter(torch.randn(D, **kw))

    def extra_repr(self):
        return f"{self.input_size}, {self.state_size}"

    def forward(self, x, h0=None):
        """``y`` (N, T, D) and the last state (N, H), by a loop (a dense ``A`` has no elementwise scan)."""
        check_input_shape(x, self.input_size)
        u = x @ self.B
        if h0 is not None:
            check_state_shape(h0, (x.shape[0], self.state_size))
        h_t = u.new_zeros(x.shape[0], self.state_size) if h0 is None else h0
        states = []
        for t in range(x.shape[1]):
            h_t = h_t @ self.A + u[:, t]
            states.append(h_t)
        h = torch.stack(states, 1)
        return h @ self.C + self.skip * x, h_t
