"""How the checks of 04_lstm call the learner's functions (cases and judge: :mod:`rnncourse.checks.lstm`).

The caches, in the layout the notebook and :mod:`rnncourse.numpy.lstm`
state: a step's cache holds the step's inputs, then the four gates and
``tanh(next_c)``; a sequence's holds the sequence's inputs (``c0``, zeros in
the exercise, included), the gates stacked over time (N, T, H), and the
states ``h`` and cells ``c`` from which each step's previous state is read.
"""

from . import Needs, Written, recurrent_calls

ASSIGNMENT = "04_lstm"

STEP_CACHE = ("x", "prev_h", "prev_c", "Wx", "Wh", "i", "f", "g", "o", "tanh_c")
"""``lstm_step_forward``'s cache; ``tanh_c = tanh(next_c)``."""

SEQUENCE_CACHE = ("x", "h0", "c0", "Wx", "Wh", "i", "f", "g", "o", "tanh_c", "h", "c")
"""``lstm_forward``'s cache; ``c0`` is zeros, the gates, ``tanh_c``, ``h`` and ``c`` are (N, T, H)."""

CALLS = recurrent_calls(
    ASSIGNMENT, "lstm", params=("Wx", "Wh", "b"), gates=4, step_cache=STEP_CACHE, sequence_cache=SEQUENCE_CACHE, cell=True
)

WRITTEN = (
    Written("q_exploding", ASSIGNMENT, 2, "why the additive cell path mitigates vanishing but not exploding gradients"),
    Written("q_forget_bias", ASSIGNMENT, 2, "why the forget-gate bias is initialised to 1, from one's own lstm_backward"),
)

NEEDS = Needs(course={"rnncourse.numpy": ("sigmoid",)})
