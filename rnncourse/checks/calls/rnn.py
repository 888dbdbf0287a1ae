"""How the checks of 02_rnn call the learner's functions (the cases and the judge: :mod:`rnncourse.checks.rnn`).

The caches, in the layout the notebook and :mod:`rnncourse.numpy.rnn` state:
a step's cache holds the step's inputs, then what it computed that its
backward needs; a sequence's holds the sequence's inputs with ``h0``, then
the states ``h`` from which each step's previous state is read
(``h0`` at ``t = 0``, else ``h[:, t-1]``).
"""

from . import Needs, Written, recurrent_calls

ASSIGNMENT = "02_rnn"

STEP_CACHE = ("x", "prev_h", "Wx", "Wh", "next_h")
"""``rnn_step_forward``'s cache: ``next_h = tanh(x Wx + prev_h Wh + b)``."""

SEQUENCE_CACHE = ("x", "h0", "Wx", "Wh", "h")
"""``rnn_forward``'s cache: ``h`` (N, T, H) holds the state after every step."""

CALLS = recurrent_calls(
    ASSIGNMENT, "rnn", params=("Wx", "Wh", "b"), gates=1, step_cache=STEP_CACHE, sequence_cache=SEQUENCE_CACHE
)

WRITTEN = (
    Written("q_gradcheck", ASSIGNMENT, 2, "what the gradient check of one's own functions showed, and why float64"),
    Written("q_parameter_sharing", ASSIGNMENT, 2, "parameters of an RNN against a window MLP as T grows"),
)

NEEDS = Needs(course={"rnncourse.numpy": ("gradcheck", "rel_error")})
