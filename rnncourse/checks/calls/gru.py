"""How the checks of 05_gru call the learner's functions (cases and judge: :mod:`rnncourse.checks.gru`).

The caches, in the layout the notebook and :mod:`rnncourse.numpy.gru` state:
a step's cache holds the step's inputs, then the gates ``r, z, n`` and
``hn = prev_h Whn + bhn`` (what the reset gate multiplies); a sequence's
holds the sequence's inputs with ``h0``, the same four stacked over time
(N, T, H), and the states ``h``.
"""

from . import Call, Needs, Written

ASSIGNMENT = "05_gru"

STEP_CACHE = ("x", "prev_h", "Wx", "Wh", "r", "z", "n", "hn")
"""``gru_step_forward``'s cache; ``hn = prev_h Wh[:, 2H:] + bh[2H:]``."""

SEQUENCE_CACHE = ("x", "h0", "Wx", "Wh", "r", "z", "n", "hn", "h")
"""``gru_forward``'s cache; the gates, ``hn`` and ``h`` are (N, T, H)."""

STEP_GRADS = ("dx", "dprev_h", "dWx", "dWh", "dbx", "dbh")
SEQUENCE_GRADS = ("dx", "dh0", "dWx", "dWh", "dbx", "dbh")

CALLS = (
    Call(
        "gru_step_forward", ASSIGNMENT, 3,
        outputs={"next_h": "N H"},
        args=("x", "prev_h", "Wx", "Wh", "bx", "bh"), returns=("next_h", "cache"),
    ),
    Call(
        "gru_forward", ASSIGNMENT, 3,
        outputs={"h": "N T H"},
        args=("x", "h0", "Wx", "Wh", "bx", "bh"), returns=("h", "cache"),
        depends=("gru_step_forward",),
    ),
    Call(
        "gru_step_backward", ASSIGNMENT, 4,
        outputs={"dx": "N D", "dprev_h": "N H", "dWx": "D 3H", "dWh": "H 3H", "dbx": "3H", "dbh": "3H"},
        args=("dnext_h", STEP_CACHE), returns=STEP_GRADS,
    ),
    Call(
        "gru_backward", ASSIGNMENT, 6,
        outputs={"dx": "N T D", "dh0": "N H", "dWx": "D 3H", "dWh": "H 3H", "dbx": "3H", "dbh": "3H"},
        args=("dh", SEQUENCE_CACHE), returns=SEQUENCE_GRADS,
        depends=("gru_step_backward",),
    ),
)  # fmt: skip

WRITTEN = (
    Written("q_update_weighting", ASSIGNMENT, 2, "the two weightings of the update gate in the literature"),
    Written("q_reset_position", ASSIGNMENT, 2, "when resetting before and after the product differ, and why torch resets after"),
)

NEEDS = Needs(course={"rnncourse.numpy": ("sigmoid",)})
