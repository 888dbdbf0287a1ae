"""How the checks of 09_ssm call the learner's functions (cases and judge: :mod:`rnncourse.checks.ssm`).

The learner writes the twins of :func:`rnncourse.numpy.ssm.zoh_discretize`,
:func:`~rnncourse.numpy.ssm.selective_ssm_step_forward`,
:func:`rnncourse.numpy.linear_attention.linear_attention_rnn_step` and
:func:`~rnncourse.numpy.linear_attention.linear_attention_rnn_forward`
(normalised, the feature map ``elu + 1``). The sequence function calls the
step (a declared dependency); its cache is not judged.
"""

from . import Call, Needs, Written

ASSIGNMENT = "09_ssm"

LINEAR_ATTENTION_CACHE = ("q", "k", "v", "phi_q", "phi_k", "S", "z", "out", "den")
"""``linear_attention_rnn_forward``'s cache, as :mod:`rnncourse.numpy.linear_attention` returns it (not judged)."""

CALLS = (
    Call("zoh_discretize", ASSIGNMENT, 4, outputs={"A_bar": "D S", "B_bar": "D S"}, args=("A", "B", "delta"),
         returns=("A_bar", "B_bar")),
    Call("selective_ssm_step_forward", ASSIGNMENT, 6, outputs={"y": "N D", "next_h": "N D S"},
         args=("x", "prev_h", "A_log", "W_delta", "b_delta", "W_B", "W_C", "skip"), returns=("y", "next_h")),
    Call("linear_attention_rnn_step", ASSIGNMENT, 3, outputs={"out": "N E", "S": "N F E", "z": "N F"},
         args=("q", "k", "v", "prev_S", "prev_z"), returns=("out", "S", "z")),
    Call("linear_attention_rnn_forward", ASSIGNMENT, 3, outputs={"out": "N T E"}, args=("q", "k", "v"),
         returns=("out", "cache"), depends=("linear_attention_rnn_step",)),
)  # fmt: skip

WRITTEN = (
    Written("q_discretisation", ASSIGNMENT, 2, "A_bar as delta goes to 0 and to infinity, and why A is negative"),
    Written("q_matrix_memory", ASSIGNMENT, 2, "cost per token of linear against softmax attention, and the memory's capacity"),
)

NEEDS = Needs()
"""NumPy only: nothing of rnncourse.numpy, whose SSM and linear attention would answer the exercises."""
