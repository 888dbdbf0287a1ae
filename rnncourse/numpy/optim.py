"""Optimizers for NumPy parameters, in the style of ``torch.optim``.

Parameters and gradients are dicts ``name -> ndarray`` with the same keys and
shapes, e.g. ``{"Wx": Wx, "Wh": Wh, "b": b}``. An optimizer keeps a reference
to the parameter dict and updates its arrays **in place**, so everything that
holds those arrays sees the new values::

    params = {"Wx": Wx, "Wh": Wh, "b": b}
    opt = Adam(params, lr=1e-3)
    for x, y in batches:
        loss, grads = loss_and_grads(params, x, y)
        grads, norm = clip_grad_norm_global(grads, 1.0)
        opt.step(grads)

Every update below is elementwise: ``g`` is one parameter's gradient, ``p``
the parameter, ``t`` the number of steps taken including this one, and
``*``, ``/``, ``sqrt`` act entry by entry.

Each optimizer computes what its ``torch.optim`` twin computes (the
single-tensor, ``foreach=False`` code path), with the same defaults, so a
NumPy training loop and its PyTorch version agree step for step. Options of
PyTorch left out: ``maximize``, ``amsgrad``, Adagrad's ``lr_decay``, and
parameter groups (one learning rate for all parameters here).

Checkpoints: :meth:`Optimizer.state_dict` returns plain dicts of arrays (the
moment estimates, the step count and the hyperparameters);
:meth:`Optimizer.load_state_dict` puts them back, and training resumes exactly
where it stopped.
"""

import numpy as np

from ._checks import fmt_shape

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


def _at_least(name, value, low):
    value = float(value)
    if not value >= low:  # also refuses nan
        raise ValueError(f"{name} is {value}; expected {name} >= {low}")
    return value


def _in_unit_interval(name, value):
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} is {value}; expected 0 <= {name} < 1")
    return value


class Optimizer:
    """Base class: holds the parameters, the per-parameter state and the step count.

    A subclass sets its hyperparameters as attributes (``self.lr``, ...),
    lists their names in ``hyperparameters``, and defines ``_init_state(p)``
    (the state of one parameter before the first step: a dict of arrays) and
    ``_update(p, g, state, t)`` (one step for one parameter: update ``p`` in
    place, store the new state in ``state``).

    Attributes
    ----------
    params : dict of str -> ndarray
        The dict passed in; its arrays are updated in place.
    state : dict of str -> dict of str -> ndarray
        Per-parameter state (moment estimates, momentum buffers), named as in
        ``torch.optim`` so the two can be compared.
    num_steps : int
        Steps taken so far (``t`` of the last step).
    """

    hyperparameters = ()

    def __init__(self, params):
        if not isinstance(params, dict):
            raise ValueError(
                f"params is a {type(params).__name__}; expected a dict name -> ndarray"
            )
        for name, p in params.items():
            if not isinstance(p, np.ndarray):
                raise ValueError(
                    f"params[{name!r}] is a {type(p).__name__}; expected an ndarray "
                    "(the optimizer updates it in place)"
                )
            if not np.issubdtype(p.dtype, np.floating):
                raise ValueError(
                    f"params[{name!r}] has dtype {p.dtype}; expected a floating-point "
                    "array (float32 or float64)"
                )
            if not p.flags.writeable:
                raise ValueError(f"params[{name!r}] is read-only; the optimizer updates it in place")
        self.params = params
        self.state = {name: self._init_state(p) for name, p in params.items()}
        self.num_steps = 0

    def _init_state(self, p):
        return {}

    def _update(self, p, g, state, t):
        raise NotImplementedError

    def step(self, grads):
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : dict of str -> ndarray
            One gradient per parameter: the same keys as ``params``, each of
            its parameter's shape and dtype. Not modified.

        Raises
        ------
        ValueError
            If a key is missing or extra, or a gradient's shape or dtype
            differs from its parameter's.
        """
        grads = self._checked_grads(grads)
        self.num_steps += 1
        for name, p in self.params.items():
            self._update(p, grads[name], self.state[name], self.num_steps)

    def _checked_grads(self, grads):
        if not isinstance(grads, dict):
            raise ValueError(
                f"grads is a {type(grads).__name__}; expected a dict name -> ndarray"
            )
        expected = list(self.params)
        for name in expected:
            if name not in grads:
                raise ValueError(f"grads has no key {name!r}; expected the keys of params: {expected}")
        for name in grads:
            if name not in self.params:
                raise ValueError(f"grads has unexpected key {name!r}; expected the keys of params: {expected}")
        checked = {}
        for name, p in self.params.items():
            g = np.asarray(grads[name])
            if g.shape != p.shape:
                raise ValueError(
                    f"grads[{name!r}] has shape {fmt_shape(g.shape)}; expected the shape of "
                    f"params[{name!r}] = {fmt_shape(p.shape)}"
                )
            if g.dtype != p.dtype:
                raise ValueError(
                    f"grads[{name!r}] has dtype {g.dtype}; expected {p.dtype}, "
                    f"the dtype of params[{name!r}]"
                )
            checked[name] = g
        return checked

    def state_dict(self):
        """Everything needed to resume: plain dicts of copied arrays.

        Returns
        -------
        dict
            ``{"type": class name, "num_steps": int, "hyperparameters": {name:
            value}, "state": {param name: {state name: ndarray}}}``. The
            arrays are copies: later steps do not change a saved state dict.
        """
        return {
            "type": type(self).__name__,
            "num_steps": self.num_steps,
            "hyperparameters": {name: getattr(self, name) for name in self.hyperparameters},
            "state": {
                name: {key: a.copy() for key, a in s.items()} for name, s in self.state.items()
            },
        }

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` saved; the next step continues from there.

        The hyperparameters are taken from ``state_dict`` too (a learning rate
        changed during training is restored). Arrays are copied, and cast to
        the dtype of their parameter.

        Raises
        ------
        ValueError
            If ``state_dict`` comes from another optimizer class, names other
            parameters or state entries, or holds arrays of the wrong shape.
        """
        kind = type(self).__name__
        for key in ("type", "num_steps", "hyperparameters", "state"):
            if key not in state_dict:
                raise ValueError(f"state_dict has no key {key!r}; expected the output of {kind}.state_dict()")
        if state_dict["type"] != kind:
            raise ValueError(f"state_dict is from a {state_dict['type']} optimizer; expected {kind}")
        num_steps = int(state_dict["num_steps"])
        if num_steps < 0:
            raise ValueError(f"state_dict['num_steps'] is {num_steps}; expected >= 0")
        # Building a fresh optimizer validates the hyperparameters and gives the
        # state entries they imply (a momentum buffer only with momentum, ...).
        template = type(self)(self.params, **state_dict["hyperparameters"])
        saved = state_dict["state"]
        if set(saved) != set(self.params):
            raise ValueError(
                f"state_dict['state'] has parameters {sorted(saved)}; "
                f"expected those of params: {sorted(self.params)}"
            )
        state = {}
        for name, p in self.params.items():
            if set(saved[name]) != set(template.state[name]):
                raise ValueError(
                    f"state_dict['state'][{name!r}] has entries {sorted(saved[name])}; "
                    f"expected {sorted(template.state[name])}"
                )
            state[name] = {}
            for key, a in saved[name].items():
                a = np.array(a, dtype=p.dtype)  # a copy
                if a.shape != p.shape:
                    raise ValueError(
                        f"state_dict['state'][{name!r}][{key!r}] has shape {fmt_shape(a.shape)}; "
                        f"expected the shape of params[{name!r}] = {fmt_shape(p.shape)}"
                    )
                state[name][key] = a
        for hp in self.hyperparameters:
            setattr(self, hp, getattr(template, hp))
        self.state = state
        self.num_steps = num_steps

    def __repr__(self):
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparameters)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum and weight decay.

    Shapes: every parameter and its gradient share a shape; all operations
    are elementwise. With ``lambda = weight_decay``, ``mu = momentum``,
    ``tau = dampening``, ``eta = lr``, one step is::

        g = g + lambda * p                            (L2 penalty lambda/2 ||p||^2)
        b = g  if t = 1  else  mu * b + (1 - tau) * g (momentum buffer; only if mu > 0)
        g = g + mu * b  if nesterov  else  b          (only if mu > 0)
        p = p - eta * g

    Momentum is Polyak's heavy ball (1964); the Nesterov variant is the one
    of Sutskever, Martens, Dahl and Hinton (2013), "On the importance of
    initialization and momentum in deep learning". This is ``torch.optim.SGD``
    exactly, quirks included: on the first step the buffer is the gradient
    itself, without the ``(1 - tau)`` factor; and ``eta`` multiplies the
    buffer, so changing ``lr`` mid-training rescales past momentum too (in the
    form ``v = mu v - eta g; p = p + v`` of Goodfellow et al. it would not).

    Parameters
    ----------
    params : dict of str -> ndarray
        Parameters (float32 or float64), updated in place.
    lr : float
        Learning rate ``eta`` >= 0. Required (``torch.optim.SGD`` defaults to
        1e-3; no value suits every problem).
    momentum : float, default 0
        ``mu`` >= 0; 0 is plain SGD.
    dampening : float, default 0
        ``tau``: the buffer takes ``(1 - tau)`` of each new gradient.
    weight_decay : float, default 0
        ``lambda`` >= 0, an L2 penalty added to the gradient.
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.

    State per parameter: ``momentum_buffer`` (``b``), only if ``momentum > 0``.
    """

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.lr = _at_least("lr", lr, 0.0)
        self.momentum = _at_least("momentum", momentum, 0.0)
        self.dampening = float(dampening)
        self.weight_decay = _at_least("weight_decay", weight_decay, 0.0)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening == 0; got "
                f"momentum={self.momentum}, dampening={self.dampening}"
            )
        super().__init__(params)

    def _init_state(self, p):
        return {"momentum_buffer": np.zeros_like(p)} if self.momentum > 0 else {}

    def _update(self, p, g, state, t):
        lam, mu, tau, eta = self.weight_decay, self.momentum, self.dampening, self.lr
        if lam != 0:
            g = g + lam * p
        if mu > 0:
            b = g.copy() if t == 1 else mu * state["momentum_buffer"] + (1 - tau) * g
            state["momentum_buffer"] = b
            g = g + mu * b if self.nesterov else b
        p -= eta * g


class Adagrad(Optimizer):
    """Adagrad: each entry's step shrinks with the sum of its past squared gradients.

    Duchi, Hazan and Singer (2011), "Adaptive subgradient methods for online
    learning and stochastic optimization". Shapes: every parameter and its
    gradient share a shape; all operations are elementwise. With
    ``lambda = weight_decay``, ``eta = lr``, one step is::

        g = g + lambda * p
        s = s + g * g
        p = p - eta * g / (sqrt(s) + eps)

    ``s`` starts at ``initial_accumulator_value``. This is ``torch.optim.Adagrad``
    with ``lr_decay=0``.

    Parameters
    ----------
    params : dict of str -> ndarray
        Parameters (float32 or float64), updated in place.
    lr : float, default 1e-2
    eps : float, default 1e-10
        Added to ``sqrt(s)`` so an entry whose gradients were all zero does
        not divide by zero.
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0

    State per parameter: ``sum`` (``s``).
    """

    hyperparameters = ("lr", "eps", "weight_decay", "initial_accumulator_value")

    def __init__(self, params, lr=1e-2, eps=1e-10, weight_decay=0.0, initial_accumulator_value=0.0):
        self.lr = _at_least("lr", lr, 0.0)
        self.eps = _at_least("eps", eps, 0.0)
        self.weight_decay = _at_least("weight_decay", weight_decay, 0.0)
        self.initial_accumulator_value = _at_least(
            "initial_accumulator_value", initial_accumulator_value, 0.0
        )
        super().__init__(params)

    def _init_state(self, p):
        return {"sum": np.full_like(p, self.initial_accumulator_value)}

    def _update(self, p, g, state, t):
        lam, eta, eps = self.weight_decay, self.lr, self.eps
        if lam != 0:
            g = g + lam * p
        s = state["sum"] + g * g
        state["sum"] = s
        p -= eta * g / (np.sqrt(s) + eps)


class RMSprop(Optimizer):
    """RMSprop: divide each step by a running root mean square of the gradient.

    Tieleman and Hinton (2012), Coursera "Neural networks for machine
    learning", lecture 6.5; the centered variant is from Graves (2013),
    "Generating sequences with recurrent neural networks". Shapes: every
    parameter and its gradient share a shape; all operations are
    elementwise. With ``lambda = weight_decay``, ``mu = momentum``,
    ``eta = lr``, one step is::

        g = g + lambda * p
        v = alpha * v + (1 - alpha) * g * g           (mean square)
        m = alpha * m + (1 - alpha) * g               (mean; only if centered)
        d = sqrt(v - m * m) + eps  if centered  else  sqrt(v) + eps
        b = mu * b + g / d;  p = p - eta * b          if mu > 0
        p = p - eta * g / d                           if mu = 0

    ``v``, ``m`` and ``b`` start at zero. This is ``torch.optim.RMSprop``. One
    difference: centered, ``v - m * m`` (never negative in exact arithmetic)
    is clamped at 0, so rounding cannot make ``sqrt`` return ``nan``.

    Parameters
    ----------
    params : dict of str -> ndarray
        Parameters (float32 or float64), updated in place.
    lr : float, default 1e-2
    alpha : float, default 0.99
        Decay of the running averages, 0 <= alpha < 1.
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum : float, default 0
    centered : bool, default False
        Divide by an estimate of the standard deviation of the gradient
        rather than its root mean square.

    State per parameter: ``square_avg`` (``v``); ``grad_avg`` (``m``) if
    centered; ``momentum_buffer`` (``b``) if ``momentum > 0``.
    """

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.lr = _at_least("lr", lr, 0.0)
        self.alpha = _in_unit_interval("alpha", alpha)
        self.eps = _at_least("eps", eps, 0.0)
        self.weight_decay = _at_least("weight_decay", weight_decay, 0.0)
        self.momentum = _at_least("momentum", momentum, 0.0)
        self.centered = bool(centered)
        super().__init__(params)

    def _init_state(self, p):
        state = {"square_avg": np.zeros_like(p)}
        if self.centered:
            state["grad_avg"] = np.zeros_like(p)
        if self.momentum > 0:
            state["momentum_buffer"] = np.zeros_like(p)
        return state

    def _update(self, p, g, state, t):
        lam, alpha, mu, eta, eps = self.weight_decay, self.alpha, self.momentum, self.lr, self.eps
        if lam != 0:
            g = g + lam * p
        v = alpha * state["square_avg"] + (1 - alpha) * g * g
        state["square_avg"] = v
        if self.centered:
            m = alpha * state["grad_avg"] + (1 - alpha) * g
            state["grad_avg"] = m
            d = np.sqrt(np.maximum(v - m * m, 0)) + eps
        else:
            d = np.sqrt(v) + eps
        if mu > 0:
            b = mu * state["momentum_buffer"] + g / d
            state["momentum_buffer"] = b
            p -= eta * b
        else:
            p -= eta * g / d


class Adam(Optimizer):
    """Adam: momentum and RMSprop together, with bias-corrected moment estimates.

    Kingma and Ba (2015), "Adam: A method for stochastic optimization",
    Algorithm 1. Shapes: every parameter and its gradient share a shape; all
    operations are elementwise. With ``lambda = weight_decay``,
    ``eta = lr``, ``(beta1, beta2) = betas``, one step is::

        g = g + lambda * p                            (L2 penalty, coupled)
        m = beta1 * m + (1 - beta1) * g               (first moment)
        v = beta2 * v + (1 - beta2) * g * g           (second moment)
        m_hat = m / (1 - beta1 ** t)                  (bias correction)
        v_hat = v / (1 - beta2 ** t)
        p = p - eta * m_hat / (sqrt(v_hat) + eps)

    ``m`` and ``v`` start at zero, hence the bias corrections: without them
    the first steps would be too small by a factor ``1 - beta1`` (and divided
    by a ``v`` too small by ``1 - beta2``). This is ``torch.optim.Adam`` with
    ``amsgrad=False``. For weight decay decoupled from the gradient, use
    :class:`AdamW`.

    Parameters
    ----------
    params : dict of str -> ndarray
        Parameters (float32 or float64), updated in place.
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay of the first and second moment estimates, each in [0, 1).
    eps : float, default 1e-8
    weight_decay : float, default 0

    State per parameter: ``exp_avg`` (``m``) and ``exp_avg_sq`` (``v``).
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    _decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = _at_least("lr", lr, 0.0)
        if len(betas) != 2:
            raise ValueError(f"betas is {betas!r}; expected two numbers (beta1, beta2)")
        beta1, beta2 = betas
        self.betas = (_in_unit_interval("beta1", beta1), _in_unit_interval("beta2", beta2))
        self.eps = _at_least("eps", eps, 0.0)
        self.weight_decay = _at_least("weight_decay", weight_decay, 0.0)
        super().__init__(params)

    def _init_state(self, p):
        return {"exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}

    def _update(self, p, g, state, t):
        lam, eta, eps = self.weight_decay, self.lr, self.eps
        beta1, beta2 = self.betas
        if lam != 0:
            if self._decoupled_weight_decay:
                p *= 1 - eta * lam
            else:
                g = g + lam * p
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        state["exp_avg"], state["exp_avg_sq"] = m, v
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p -= eta * m_hat / (np.sqrt(v_hat) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay.

    Loshchilov and Hutter (2019), "Decoupled weight decay regularization".
    The same as :class:`Adam` except for the weight decay, which shrinks the
    parameters directly instead of entering the gradient (and so the moment
    estimates)::

        p = p * (1 - eta * lambda)                    (before the Adam step)
        m, v, m_hat, v_hat as in Adam, from g alone
        p = p - eta * m_hat / (sqrt(v_hat) + eps)

    With Adam's coupled L2 term, an entry with large past gradients (large
    ``v``) is decayed less; here every entry decays at the same rate. This is
    ``torch.optim.AdamW``, whose default ``weight_decay`` is 1e-2.

    Parameters
    ----------
    params, lr, betas, eps
        As for :class:`Adam`, with the same defaults.
    weight_decay : float, default 1e-2

    State per parameter: ``exp_avg`` (``m``) and ``exp_avg_sq`` (``v``).
    """

    _decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
