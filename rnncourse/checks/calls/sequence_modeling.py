"""How the checks of 01_sequence_modeling call the learner's functions (cases and judge: :mod:`rnncourse.checks.sequence_modeling`)."""

from . import Call, Needs, Written

ASSIGNMENT = "01_sequence_modeling"

EMBEDDING_CACHE = ("idx", "W")
"""``embedding_forward``'s cache: its two inputs, the ids ``idx (N, T)`` and the matrix ``W (V, D)``."""

CALLS = (
    Call("one_hot", ASSIGNMENT, 2, outputs={"out": "N T V"}, args=("idx", "V"), returns=("out",)),
    Call("embedding_forward", ASSIGNMENT, 2, outputs={"out": "N T D"}, args=("idx", "W"), returns=("out", "cache")),
    Call("embedding_backward", ASSIGNMENT, 3, outputs={"dW": "V D"}, args=("dout", EMBEDDING_CACHE), returns=("dW",)),
    Call("perplexity", ASSIGNMENT, 3, outputs={"perplexity": ""}, args=("probs", "y"), returns=("perplexity",)),
)

WRITTEN = (
    Written("q_task_shapes", ASSIGNMENT, 3, "shapes of the arrays in four sequence tasks"),
    Written("q_one_hot_vs_embedding", ASSIGNMENT, 2, "one-hot against a learned embedding for words"),
)

NEEDS = Needs()
