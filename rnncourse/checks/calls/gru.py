"""How the checks of 05_gru call the learner's functions (cases and judge: :mod:`rnncourse.checks.gru`).

The caches, in the layout the notebook and :mod:`rnncourse.numpy.gru` state:
a step's cache holds the step's inputs, then the gates ``r, z, n`` and
``hn = prev_h Whn + bhn`` (what the reset gate multiplies); a sequence's
holds the sequence's inputs with ``h0``, the same four stacked over time
(N, T, H), and the states ``h``.
"""

from . import Needs, Written, recurrent_calls

ASSIGNMENT = "05_gru"

STEP_CACHE = ("x", "prev_h", "Wx", "Wh", "r", "z", "n", "hn")
"""``gru_step_forward``'s cache; ``hn = prev_h Wh[:, 2H:] + bh[2H:]``."""

SEQUENCE_CACHE = ("x", "h0", "Wx", "Wh", "r", "z", "n", "hn", "h")
"""``gru_forward``'s cache; the gates, ``hn`` and ``h`` are (N, T, H)."""

CALLS = recurrent_calls(
    ASSIGNMENT, "gru", params=("Wx", "Wh", "bx", "bh"), gates=3, step_cache=STEP_CACHE, sequence_cache=SEQUENCE_CACHE
)

WRITTEN = (
    Written("q_update_weighting", ASSIGNMENT, 2, "the two weightings of the update gate in the literature"),
    Written("q_reset_position", ASSIGNMENT, 2, "when resetting before and after the product differ, and why torch resets after"),
)

NEEDS = Needs(course={"rnncourse.numpy": ("sigmoid",)})
