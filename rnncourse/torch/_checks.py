"""The input checks that several modules of :mod:`rnncourse.torch` share, one home for each message.

- :func:`check_int_type` and :func:`check_tensor`: the type checks of the
  ``torch.nn`` twins (:mod:`~rnncourse.torch.rnn` and :mod:`~rnncourse.torch.cells`);
- :func:`check_input_shape` and :func:`check_state_shape`: the shapes of the
  part-three layers (:mod:`~rnncourse.torch.scan`, :mod:`~rnncourse.torch.minrnn`,
  :mod:`~rnncourse.torch.lru`, :mod:`~rnncourse.torch.ssm`): an input ``x``
  (N, T, D) and an initial state ``h0``.

The scalar checks of the whole package (an integer in a range, a choice, a
random generator) are in :mod:`rnncourse.validation`.
"""

import torch

__all__ = ["check_int_type", "check_tensor", "check_input_shape", "check_state_shape"]


def check_int_type(name, value):
    """Raise ``TypeError`` in ``torch.nn``'s words if ``value`` is not an ``int``.

    ``"input_size should be of type int, got: float (3.0)"``. Only the type:
    the range is the caller's (``torch.nn``'s rules differ from argument to argument).
    """
    if not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__} ({value!r})")


def check_tensor(name, value):
    """Raise ``TypeError`` if ``value`` is not a Tensor: ``"hidden is a list; expected a Tensor"``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} is a {type(value).__name__}; expected a Tensor")


def check_input_shape(x, input_size):
    """Raise ``ValueError`` unless ``x`` is (N, T, D) with D = ``input_size``.

    ``"x has shape (2, 5, 2); expected (N, T, D) with D = 3"``.
    """
    if x.dim() != 3 or x.shape[2] != input_size:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected (N, T, D) with D = {input_size}")


def check_state_shape(h0, shape, dims="N, H"):
    """Raise ``ValueError`` unless the initial state ``h0`` has ``shape``, whose axes ``dims`` names.

    ``"h0 has shape (3, 4); expected (N, H) = (2, 4)"``, or with ``dims="N, D, S"``
    ``"h0 has shape (2, 3, 15); expected (N, D, S) = (2, 3, 16)"``.
    """
    shape = tuple(shape)
    if tuple(h0.shape) != shape:
        raise ValueError(f"h0 has shape {tuple(h0.shape)}; expected ({dims}) = ({', '.join(map(str, shape))})")
