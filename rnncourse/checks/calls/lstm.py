"""How the checks of 04_lstm call the learner's functions (cases and judge: :mod:`rnncourse.checks.lstm`).

The caches, in the layout the notebook and :mod:`rnncourse.numpy.lstm`
state: a step's cache holds the step's inputs, then the four gates and
``tanh(next_c)``; a sequence's holds the sequence's inputs (``c0``, zeros in
the exercise, included), the gates stacked over time (N, T, H), and the
states ``h`` and cells ``c`` from which each step's previous state is read.
"""

from . import Call, Needs, Written

ASSIGNMENT = "04_lstm"

STEP_CACHE = ("x", "prev_h", "prev_c", "Wx", "Wh", "i", "f", "g", "o", "tanh_c")
"""``lstm_step_forward``'s cache; ``tanh_c = tanh(next_c)``."""

SEQUENCE_CACHE = ("x", "h0", "c0", "Wx", "Wh", "i", "f", "g", "o", "tanh_c", "h", "c")
"""``lstm_forward``'s cache; ``c0`` is zeros, the gates, ``tanh_c``, ``h`` and ``c`` are (N, T, H)."""

STEP_GRADS = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")
SEQUENCE_GRADS = ("dx", "dh0", "dWx", "dWh", "db")

CALLS = (
    Call(
        "lstm_step_forward", ASSIGNMENT, 3,
        outputs={"next_h": "N H", "next_c": "N H"},
        args=("x", "prev_h", "prev_c", "Wx", "Wh", "b"), returns=("next_h", "next_c", "cache"),
    ),
    Call(
        "lstm_forward", ASSIGNMENT, 3,
        outputs={"h": "N T H"},
        args=("x", "h0", "Wx", "Wh", "b"), returns=("h", "cache"),
        depends=("lstm_step_forward",),
    ),
    Call(
        "lstm_step_backward", ASSIGNMENT, 4,
        outputs={"dx": "N D", "dprev_h": "N H", "dprev_c": "N H", "dWx": "D 4H", "dWh": "H 4H", "db": "4H"},
        args=("dnext_h", "dnext_c", STEP_CACHE), returns=STEP_GRADS,
    ),
    Call(
        "lstm_backward", ASSIGNMENT, 6,
        outputs={"dx": "N T D", "dh0": "N H", "dWx": "D 4H", "dWh": "H 4H", "db": "4H"},
        args=("dh", SEQUENCE_CACHE), returns=SEQUENCE_GRADS,
        depends=("lstm_step_backward",),
    ),
)  # fmt: skip

WRITTEN = (
    Written("q_exploding", ASSIGNMENT, 2, "why the additive cell path mitigates vanishing but not exploding gradients"),
    Written("q_forget_bias", ASSIGNMENT, 2, "why the forget-gate bias is initialised to 1, from one's own lstm_backward"),
)

NEEDS = Needs(course={"rnncourse.numpy": ("sigmoid",)})
