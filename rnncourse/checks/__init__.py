"""The graded checks of the exercises, written once and run in two ways.

A notebook test cell calls a check in the learner's process::

    from rnncourse.checks import check
    check("rnn_step_forward", rnn_step_forward)        # the visible cases
    check("rnn_forward", rnn_forward, rnn_step_forward)  # rnn_forward calls rnn_step_forward: a declared dependency

and a grader runs the very same check across a process boundary, with only
plain arrays crossing it::

    cases = make_cases("rnn_step_forward", seed, hidden=True)   # trusted side
    outputs = run_case("rnn_step_forward", case, namespace)     # sandbox, on the learner's code
    passed, message = judge("rnn_step_forward", case, outputs)  # trusted side

Every check has two sides. :mod:`rnncourse.checks.calls` is the side that
runs next to the learner's code: how each check calls the learner's
function, what each assignment's notebook may import, and the points. The
trusted side is ``_core`` (cases, judge, ``check``) and one module per
assignment (references, cases, known mistakes): ``sequence_modeling``,
``rnn``, ``bptt``, ``lstm``, ``gru``, ``attention``, ``applications``. The
grader's sandbox holds only the first (:mod:`rnncourse.grader.strip`); there,
``check`` is a stand-in that prints a line, since the grader runs the checks
itself. :mod:`rnncourse.checks.char_lm` is the data and the yardstick of
07's training problem, which the notebook uses too.

To add an assignment: its module in ``calls`` (``ASSIGNMENT``, ``CALLS``,
``WRITTEN``, ``NEEDS``), its trusted module here (``CHECKS``, one per call),
and both names in the two lists of modules.
"""

from .calls import (
    AssignmentPoints,
    Call,
    Needs,
    OutputError,
    Written,
    assignment_points,
    assignments,
    get_call,
    load_arrays,
    needs_of,
    run_case,
    save_arrays,
    written_of,
)

try:  # the trusted side, which the grader's sandbox does not hold
    from ._core import Case, Check, CheckFailure, Mistake, check, checks_of, get_check, judge, make_cases, register
except ModuleNotFoundError as err:
    if err.name != f"{__name__}._core":
        raise
    from .calls import check_while_grading as check
else:
    from . import applications, attention, bptt, gru, lstm, rnn, scan, sequence_modeling, ssm

    for _module in (sequence_modeling, rnn, bptt, lstm, gru, attention, applications, scan, ssm):  # in course order
        register(_module.CHECKS)
    del _module

__all__ = [
    "check",
    "make_cases",
    "run_case",
    "judge",
    "assignment_points",
    "assignments",
    "checks_of",
    "written_of",
    "needs_of",
    "get_check",
    "get_call",
    "save_arrays",
    "load_arrays",
    "AssignmentPoints",
    "Call",
    "Check",
    "Case",
    "Mistake",
    "Needs",
    "Written",
    "CheckFailure",
    "OutputError",
]
