"""The graded checks of the exercises, written once and run in two ways.

Instructor-side: a check holds the cases (from a seed), the reference (from
:mod:`rnncourse.numpy`) and the diagnosis that names a mistake. A notebook
test cell calls it in the learner's process::

    from rnncourse.checks import check
    check("rnn_step_forward", rnn_step_forward)                    # visible cases
    check("rnn_step_backward", rnn_step_forward, rnn_step_backward) # a backward takes its forward

and a grader runs the very same check across a process boundary, with only
plain arrays crossing it::

    cases = make_cases("rnn_step_forward", seed, hidden=True)   # trusted side
    outputs = run_case("rnn_step_forward", case, namespace)     # sandbox, on the learner's code
    passed, message = judge("rnn_step_forward", case, outputs)  # trusted side

:func:`assignment_points` gives the points table of an assignment. One
module per assignment declares its checks and written questions
(``CHECKS``, ``WRITTEN``, ``ASSIGNMENT``); to add an assignment, write its
module and add it to ``_ASSIGNMENT_MODULES`` below.
"""

from . import applications, attention, bptt, gru, lstm, rnn, sequence_modeling
from ._core import (
    AssignmentPoints,
    Case,
    Check,
    CheckFailure,
    Mistake,
    Written,
    assignment_points,
    assignments,
    check,
    checks_of,
    get_check,
    judge,
    load_arrays,
    make_cases,
    register,
    run_case,
    save_arrays,
    written_of,
)

__all__ = [
    "check",
    "make_cases",
    "run_case",
    "judge",
    "assignment_points",
    "assignments",
    "checks_of",
    "written_of",
    "get_check",
    "save_arrays",
    "load_arrays",
    "AssignmentPoints",
    "Check",
    "Case",
    "Mistake",
    "Written",
    "CheckFailure",
]

# In course order.
_ASSIGNMENT_MODULES = (sequence_modeling, rnn, bptt, lstm, gru, attention, applications)

for _module in _ASSIGNMENT_MODULES:
    register(_module.ASSIGNMENT, _module.CHECKS, _module.WRITTEN)
del _module
