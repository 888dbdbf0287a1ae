"""Gradient checking by centered finite differences.

To check a backward pass, pick an upstream gradient ``dout`` and look at the
scalar ``L = sum(f(inputs) * dout)``. Its derivative with respect to an input
is exactly what the backward pass returns for that ``dout``, and it can also
be estimated element by element with the centered difference::

    dL/dx[i] ~= (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

whose error is O(eps^2). In float64 with ``eps = 1e-5`` the estimate agrees
with a correct analytic gradient to about 1e-10 relative error; a wrong one
(a missing term, a transposed weight) is off by far more than 1e-7.

Checks are meant for float64: in float32 the rounding error of ``L`` divided
by ``2 eps`` swamps the estimate.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["rel_error", "numerical_gradient", "gradcheck", "GradcheckReport"]


def rel_error(x, y, floor=1e-12):
    """Relative error between two arrays, with a floor on the denominator.

    ``||x - y|| / max(||x|| + ||y||, floor)`` with the Euclidean norm over all
    elements. It is 0 for equal arrays and at most 1. Taken over whole arrays
    rather than element by element, so an element that is zero in truth (and
    tiny noise in a finite-difference estimate) does not dominate the result;
    the floor makes two all-zero arrays compare as equal instead of 0/0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error got shapes {x.shape} and {y.shape}; expected equal shapes")
    return float(np.linalg.norm(x - y) / max(np.linalg.norm(x) + np.linalg.norm(y), floor))


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _objective(f, inputs, dout):
    """``L = sum_k sum(out_k * dout_k)`` over the outputs of ``f(**inputs)``."""
    outs = _as_tuple(f(**inputs))
    return sum(float(np.sum(o * d)) for o, d in zip(outs, dout) if d is not None)


def numerical_gradient(f, inputs, name, dout, eps=1e-5):
    """Centered finite-difference estimate of ``d sum(f(**inputs) * dout) / d inputs[name]``.

    Parameters
    ----------
    f : callable taking ``**inputs`` and returning an array or a tuple of arrays.
    inputs : dict of name -> ndarray (float64). Not modified.
    name : which input to differentiate with respect to.
    dout : upstream gradient: an array, or a tuple with one array (or None,
        for an output that does not enter the objective) per output of ``f``.
    eps : the finite-difference step.

    Returns
    -------
    ndarray with the shape of ``inputs[name]``.
    """
    dout = _as_tuple(dout)
    work = {k: np.array(v, copy=True) for k, v in inputs.items()}
    x = work[name]
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = _objective(f, work, dout)
        x[i] = old - eps
        minus = _objective(f, work, dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


@dataclass
class GradcheckReport:
    """What :func:`gradcheck` found: one relative error per input, and the worst element.

    ``ok`` is True when every relative error is below ``tol``. ``str(report)``
    names the worst input and element with both values, so a failing test
    says where to look.
    """

    errors: dict
    tol: float
    worst_input: str = None
    worst_index: tuple = None
    analytic: float = None
    numeric: float = None
    numeric_grads: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self):
        return all(e < self.tol for e in self.errors.values())

    @property
    def max_error(self):
        return max(self.errors.values(), default=0.0)

    def __str__(self):
        lines = [f"gradcheck {'passed' if self.ok else 'FAILED'} (tolerance {self.tol:.0e})"]
        for name, err in self.errors.items():
            flag = "" if err < self.tol else "   <-- wrong"
            lines.append(f"  d{name}: relative error {err:.2e}{flag}")
        if self.worst_input is not None:
            lines.append(
                f"  largest difference at d{self.worst_input}{list(self.worst_index)}: "
                f"analytic {self.analytic:.10g}, numeric {self.numeric:.10g}"
            )
        return "\n".join(lines)


def gradcheck(f, inputs, analytic, dout, *, eps=1e-5, tol=1e-7):
    """Compare analytic gradients with centered finite differences.

    Parameters
    ----------
    f : callable ``f(**inputs)`` returning an array or a tuple of arrays:
        the forward pass, without its cache.
    inputs : dict name -> float64 ndarray, the point at which to check.
    analytic : dict name -> ndarray, the gradients the backward pass returned
        for ``dout``; every name must be a key of ``inputs``. Only these are checked.
    dout : the upstream gradient used for ``analytic``: an array, or a tuple
        with one entry per output of ``f`` (None for an output without one).
    eps : finite-difference step.
    tol : largest accepted :func:`rel_error` (1e-7 is the project's bar in float64).

    Returns
    -------
    GradcheckReport; ``report.ok`` says whether all passed and ``print(report)``
    says where the largest difference is.

    Example
    -------
    >>> out, cache = rnn_forward(x, h0, Wx, Wh, b)          # doctest: +SKIP
    >>> dx, dh0, dWx, dWh, db = rnn_backward(dout, cache)  # doctest: +SKIP
    >>> report = gradcheck(lambda **a: rnn_forward(**a)[0],
    ...                    dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b),
    ...                    dict(x=dx, h0=dh0, Wx=dWx, Wh=dWh, b=db), dout)  # doctest: +SKIP
    """
    errors, numeric_grads = {}, {}
    worst = (-1.0, None, None, None, None)
    for name, grad in analytic.items():
        if name not in inputs:
            raise ValueError(f"analytic gradient d{name} has no input named {name!r}; inputs are {sorted(inputs)}")
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != np.shape(inputs[name]):
            raise ValueError(
                f"analytic gradient d{name} has shape {grad.shape}; expected the shape of {name}, {np.shape(inputs[name])}"
            )
        num = numerical_gradient(f, inputs, name, dout, eps)
        numeric_grads[name] = num
        errors[name] = rel_error(grad, num)
        if grad.size:
            diff = np.abs(grad - num)
            i = np.unravel_index(np.argmax(diff), diff.shape)
            if diff[i] > worst[0]:
                worst = (diff[i], name, tuple(int(k) for k in i), float(grad[i]), float(num[i]))
    _, wname, widx, wa, wn = worst
    return GradcheckReport(errors, tol, wname, widx, wa, wn, numeric_grads)
