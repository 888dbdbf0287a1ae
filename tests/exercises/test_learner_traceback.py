"""What a learner sees when a visible check fails in JupyterLab: the message, without the course's frames.

Runs the cells in IPython (the shell behind JupyterLab's kernel) in a fresh
process and reads the traceback IPython prints. The browser test
(tests/browser/test_lab.py) checks the same in a real JupyterLab.
"""

import re
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.run_cell("import numpy as np\\nfrom rnncourse.checks import check")
    for body in {bodies!r}:
        shell.run_cell("def rnn_step_forward(x, prev_h, Wx, Wh, b):\\n" + body)
        print("=== cell")
        shell.run_cell('check("rnn_step_forward", rnn_step_forward)')
''')

WRONG = "    return np.tanh(x @ Wx + prev_h @ Wh.T + b), None\n"  # Wh transposed
RAISES = "    h = x @ Wx\n    return h + undefined_name, None\n"  # the learner's own error
STUB = "    raise NotImplementedError()\n"


def shown(*bodies):
    code = SCRIPT.format(bodies=list(bodies))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    return text.split("=== cell")[1:]


def test_a_failed_check_shows_its_message_without_the_course_frames_and_keeps_the_learners():
    """Fails if IPython shows check()'s frame (the course's source around its raise) or loses the learner's."""
    wrong, raises, stub = shown(WRONG, RAISES, STUB)
    for text in (wrong, raises, stub):
        assert "rnncourse" not in text and "site-packages" not in text and "_core.py" not in text, text
    assert wrong.strip().startswith("CheckFailure: rnn_step_forward, case"), wrong
    assert "Wh is used transposed" in wrong and "Traceback" not in wrong
    # the learner's own code stays in the traceback, with their line
    assert "return h + undefined_name, None" in raises and "NameError" in raises and "CheckFailure:" in raises
    assert "raise NotImplementedError()" in stub and "is not written yet" in stub


def test_outside_ipython_the_exception_is_the_usual_one():
    import pytest

    from rnncourse.checks import CheckFailure, check

    def rnn_step_forward(x, prev_h, Wx, Wh, b):
        import numpy as np

        return np.tanh(x @ Wx + prev_h @ Wh.T + b), None

    with pytest.raises(CheckFailure, match="Wh is used transposed"):
        check("rnn_step_forward", rnn_step_forward)
