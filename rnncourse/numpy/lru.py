"""The linear recurrent unit (LRU, Orvieto et al. 2023), forward and backward by hand.

N: batch size, T: sequence length, D: input (and output) size, H: state size.
The state is complex, ``h_t`` in C^H, and the recurrence diagonal (row vectors)::

    lambda = exp(-exp(nu_log) + i exp(theta_log))        (H,), |lambda| = exp(-exp(nu_log)) < 1
    gamma  = exp(gamma_log)                               (H,), initialised to sqrt(1 - |lambda|^2)
    h_t = lambda * h_{t-1} + gamma * (x_t B)              B = B_re + i B_im  (D, H)
    y_t = Re(h_t C) + skip * x_t                          C = C_re + i C_im  (H, D)

What each piece is for:

- *diagonal*: a dense linear recurrence ``h_t = h_{t-1} A + ...`` becomes a
  diagonal one in the eigenbasis of ``A`` (complex for a real ``A`` with
  rotating modes), and a diagonal recurrence is elementwise, a
  :func:`~rnncourse.numpy.scan.parallel_scan`;
- *stable exponential parametrisation*: ``|lambda| = exp(-exp(nu_log))`` is
  below 1 for every value of the parameter, so no gradient step makes the
  recurrence blow up, and near 1 the modulus moves finely with ``nu_log``;
- *ring initialisation* (:func:`lru_init`): ``|lambda|`` uniform on a ring
  ``[r_min, r_max]`` near the unit circle, so that some modes remember far;
- *normalisation*: a mode with ``|lambda|`` near 1 sums many inputs and its
  variance grows like ``1 / (1 - |lambda|^2)``; ``gamma`` divides that out
  at initialisation (and is trained).

The skip path's weight is the paper's ``D``, named ``skip`` here because D is
the input size. Gradients of the real parameters are real; the complex
intermediate ones follow PyTorch's convention (:mod:`rnncourse.numpy.scan`).

The cache of :func:`lru_forward` is ``(x, h0, nu_log, theta_log, B_re, B_im,
C_re, C_im, skip, lam, gamma, u, h)``, with ``u = x B`` (N, T, H) complex.
"""

import numpy as np

from ..validation import check_choice
from ._checks import at_least_one_step, dims, expect_shape, float_array, upstream_gradient
from .scan import MODES, linear_recurrence, linear_recurrence_backward, parallel_scan

__all__ = ["lru_init", "lru_lambda", "lru_forward", "lru_backward"]


def lru_init(D, H, *, r_min=0.0, r_max=1.0, max_phase=2 * np.pi, rng=None):
    """The LRU's initial parameters: eigenvalues uniform on a ring, ``gamma`` normalising each mode.

    ``|lambda|`` is drawn so that ``lambda`` is uniform (in area) on the ring
    ``r_min <= |lambda| <= r_max``, its phase uniform in ``[0, max_phase]``;
    ``B`` and ``C`` are complex Gaussians of variance ``1/D`` and ``1/H``
    (real and imaginary parts each half of it), ``skip`` standard normal.

    Parameters
    ----------
    D : input (and output) size. H : state size.
    r_min, r_max : the ring, ``0 <= r_min < r_max <= 1``.
    max_phase : the largest phase.
    rng : a ``numpy.random.Generator`` (a fresh default one if None).

    Returns
    -------
    dict with ``nu_log``, ``theta_log``, ``gamma_log`` (H,), ``B_re``, ``B_im``
    (D, H), ``C_re``, ``C_im`` (H, D), ``skip`` (D,), all float64.
    """
    if not 0 <= r_min < r_max <= 1:
        raise ValueError(f"r_min, r_max are {r_min}, {r_max}; expected 0 <= r_min < r_max <= 1")
    rng = np.random.default_rng() if rng is None else rng
    u1, u2 = rng.random(H), rng.random(H)
    # |lambda|^2 uniform in [r_min^2, r_max^2] makes lambda uniform in area on the ring
    modulus_sq = u1 * (r_max**2 - r_min**2) + r_min**2
    nu_log = np.log(-0.5 * np.log(modulus_sq))
    theta_log = np.log(max_phase * u2)
    gamma_log = 0.5 * np.log(1 - modulus_sq)  # log sqrt(1 - |lambda|^2)
    return dict(
        nu_log=nu_log, theta_log=theta_log, gamma_log=gamma_log,
        B_re=rng.standard_normal((D, H)) / np.sqrt(2 * D), B_im=rng.standard_normal((D, H)) / np.sqrt(2 * D),
        C_re=rng.standard_normal((H, D)) / np.sqrt(2 * H), C_im=rng.standard_normal((H, D)) / np.sqrt(2 * H),
        skip=rng.standard_normal(D),
    )  # fmt: skip


def lru_lambda(nu_log, theta_log):
    """The eigenvalues ``lambda = exp(-exp(nu_log) + i exp(theta_log))``; ``|lambda| < 1`` always."""
    return np.exp(-np.exp(nu_log) + 1j * np.exp(theta_log))


def _check(x, h0, nu_log, theta_log, gamma_log, B_re, B_im, C_re, C_im, skip, mode):
    check_choice("mode", mode, MODES)
    x = float_array("x", x)
    dims("x", x, "N T D")
    at_least_one_step("x", x)
    N, T, D = x.shape
    nu_log = float_array("nu_log", nu_log)
    dims("nu_log", nu_log, "H")
    H = nu_log.shape[0]
    out = [x]
    if h0 is None:
        h0 = np.zeros((N, H), complex)
    h0 = np.asarray(h0)
    if not np.issubdtype(h0.dtype, np.inexact):
        raise ValueError(f"h0 has dtype {h0.dtype}; expected a complex (or floating-point) array")
    dims("h0", h0, "N H")
    expect_shape("h0", h0, "N H", (N, H))
    out.append(h0)
    for name, value, symbols, shape in (
        ("nu_log", nu_log, "H", (H,)), ("theta_log", theta_log, "H", (H,)), ("gamma_log", gamma_log, "H", (H,)),
        ("B_re", B_re, "D H", (D, H)), ("B_im", B_im, "D H", (D, H)),
        ("C_re", C_re, "H D", (H, D)), ("C_im", C_im, "H D", (H, D)), ("skip", skip, "D", (D,)),
    ):  # fmt: skip
        value = float_array(name, value)
        dims(name, value, symbols)
        expect_shape(name, value, symbols, shape)
        out.append(value)
    return out


def lru_forward(x, h0, nu_log, theta_log, gamma_log, B_re, B_im, C_re, C_im, skip, *, mode="sequential"):
    """One LRU layer over a sequence.

    N: batch size, T: sequence length, D: input (and output) size, H: state size.

    Parameters
    ----------
    x : ndarray (N, T, D), real inputs.
    h0 : ndarray (N, H), complex, the initial state; None for zeros.
    nu_log, theta_log, gamma_log : ndarray (H,), the eigenvalues' and the normalisation's parameters.
    B_re, B_im : ndarray (D, H), the input matrix ``B = B_re + i B_im``.
    C_re, C_im : ndarray (H, D), the output matrix ``C = C_re + i C_im``.
    skip : ndarray (D,), the direct path's weights (the paper's D).
    mode : ``"sequential"`` (:func:`~rnncourse.numpy.scan.linear_recurrence`) or
        ``"parallel"`` (:func:`~rnncourse.numpy.scan.parallel_scan`).

    Returns
    -------
    y : ndarray (N, T, D), real.
    cache : ``(x, h0, nu_log, theta_log, B_re, B_im, C_re, C_im, skip, lam, gamma, u, h)``.
    """
    x, h0, nu_log, theta_log, gamma_log, B_re, B_im, C_re, C_im, skip = _check(
        x, h0, nu_log, theta_log, gamma_log, B_re, B_im, C_re, C_im, skip, mode)
    N, T, _ = x.shape
    H = nu_log.shape[0]
    lam = lru_lambda(nu_log, theta_log)
    gamma = np.exp(gamma_log)
    u = x @ B_re + 1j * (x @ B_im)  # x_t B for every step, (N, T, H)
    recurrence = linear_recurrence if mode == "sequential" else parallel_scan
    h = recurrence(np.broadcast_to(lam, (N, T, H)), gamma * u, h0)
    y = (h @ (C_re + 1j * C_im)).real + skip * x
    return y, (x, h0, nu_log, theta_log, B_re, B_im, C_re, C_im, skip, lam, gamma, u, h)


def lru_backward(dy, cache):
    """Backward pass of :func:`lru_forward` (either mode).

    Parameters
    ----------
    dy : ndarray (N, T, D), upstream gradient of ``y``.

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, H), complex in PyTorch's convention (real if ``h0`` was real).
    dnu_log, dtheta_log, dgamma_log : ndarray (H,)
    dB_re, dB_im : ndarray (D, H)
    dC_re, dC_im : ndarray (H, D)
    dskip : ndarray (D,)
    """
    x, h0, nu_log, theta_log, B_re, B_im, C_re, C_im, skip, lam, gamma, u, h = cache
    N, T, D = x.shape
    H = lam.shape[0]
    dy = upstream_gradient("dy", dy, "N T D", x.shape)

    # y = Re(h C) + skip x = Re(h) C_re - Im(h) C_im + skip x
    rows_h = h.reshape(N * T, H)
    rows_dy = dy.reshape(N * T, D)
    dC_re = rows_h.real.T @ rows_dy
    dC_im = -rows_h.imag.T @ rows_dy
    dskip = (dy * x).sum(axis=(0, 1))
    dh = dy @ (C_re - 1j * C_im).T  # dL/dRe h + i dL/dIm h = dy conj(C)^T

    # the recurrence h_t = lambda h_{t-1} + gamma u_t
    dlam_t, db, dh0 = linear_recurrence_backward(dh, np.broadcast_to(lam, (N, T, H)), h, h0)
    if not np.iscomplexobj(h0):
        dh0 = dh0.real  # a real input of a complex computation gets the real part, as in PyTorch
    dlam = dlam_t.sum(axis=(0, 1))
    dgamma = (db * np.conj(u)).real.sum(axis=(0, 1))  # gamma is real
    du = db * gamma

    # u = x B_re + i x B_im
    rows_x = x.reshape(N * T, D)
    rows_du = du.reshape(N * T, H)
    dB_re = rows_x.T @ rows_du.real
    dB_im = rows_x.T @ rows_du.imag
    dx = (du.real @ B_re.T + du.imag @ B_im.T) + dy * skip

    # lambda = exp(w), w = -exp(nu_log) + i exp(theta_log): holomorphic, dw = dlam conj(lambda)
    dw = dlam * np.conj(lam)
    dnu_log = dw.real * -np.exp(nu_log)
    dtheta_log = dw.imag * np.exp(theta_log)
    dgamma_log = dgamma * gamma
    return dx, dh0, dnu_log, dtheta_log, dgamma_log, dB_re, dB_im, dC_re, dC_im, dskip
