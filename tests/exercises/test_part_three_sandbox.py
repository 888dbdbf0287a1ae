"""Part three's assignments, graded in the sandbox: the course's own scan, minGRU and SSM earn nothing.

``rnncourse.numpy`` holds the reference of every function 08 asks for
(``linear_recurrence``, ``parallel_scan``, ``min_gru_forward``...). A
submission that imports it, or reaches it round the import statement
(``importlib``, ``__import__``, reading the file from the package's folder),
must score zero on those functions when graded with ``rnncourse grade``: the
sandbox's package does not hold those modules (:mod:`rnncourse.grader.strip`),
and the notebook's import rule names what it may import. The functions the
submission wrote itself keep their points.
"""

import csv
import json
import os
import subprocess
import sys

import pytest

from exercisetools import ROOT, SOLUTIONS, notebook, read_notebook
from rnncourse.checks import assignment_points

pytestmark = pytest.mark.slow

# grade_id -> the learner's cell: each reaches rnncourse's own answer in another way.
REACHING = {
    "08_scan": {
        "linear_recurrence": "from rnncourse.numpy.scan import linear_recurrence\n",
        "linear_recurrence_backward": (
            "import importlib\n"
            "linear_recurrence_backward = importlib.import_module('rnncourse.numpy.scan').linear_recurrence_backward\n"
        ),
        "parallel_scan": (
            "import os\nimport rnncourse\n"
            "_path = os.path.join(os.path.dirname(rnncourse.__file__), 'numpy', 'scan.py')\n"
            "_found = {}\n"
            "exec(compile(open(_path).read(), _path, 'exec'), _found)\n"
            "parallel_scan = _found['parallel_scan']\n"
        ),
        "min_gru_forward": "min_gru_forward = __import__('rnncourse.numpy', fromlist=['min_gru_forward']).min_gru_forward\n",
    },
    "09_ssm": {
        "zoh_discretize": "from rnncourse.numpy.ssm import zoh_discretize\n",
        "selective_ssm_step_forward": "from rnncourse.numpy import selective_ssm_step_forward\n",
        "linear_attention_rnn_forward": (
            "import importlib\n"
            "linear_attention_rnn_forward = importlib.import_module('rnncourse.numpy.linear_attention').linear_attention_rnn_forward\n"
        ),
    },
}


def _submission(assignment, cells):
    nb = read_notebook(notebook(SOLUTIONS, assignment))
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in cells:
            cell["source"] = cells[grade_id]
    nb["cells"] = [c for c in nb["cells"] if c["cell_type"] != "code" or c.get("metadata", {}).get("nbgrader")]
    return nb


@pytest.mark.parametrize("assignment", sorted(REACHING))
def test_a_submission_that_reaches_the_course_s_answers_scores_zero_on_them(assignment, tmp_path):
    student = tmp_path / "submitted" / "reacher"
    student.mkdir(parents=True)
    (student / f"{assignment}.ipynb").write_text(json.dumps(_submission(assignment, REACHING[assignment])))
    (tmp_path / "secret").write_bytes(b"a fixed secret\n")
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "rnncourse", "grade", assignment, str(tmp_path / "submitted"), "--out", str(out),
        "--db", f"sqlite:///{tmp_path / 'gradebook.db'}", "--secret-file", str(tmp_path / "secret"), "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", course_id="rnncourse") as gb:
        found = gb.find_submission_notebook(assignment, assignment, "reacher").grades
        grades = {g.name: g.auto_score for g in found if g.auto_score is not None}
    points = assignment_points(assignment).auto
    reached = REACHING[assignment]
    assert {f: grades[f"test_{f}"] for f in reached} == {f: 0 for f in reached}, grades
    # What the submission wrote itself keeps its points, unless it calls a function that reached.
    own = {f for f in points if f not in reached and not set(_depends(f)) & set(reached)}
    assert own and {f: grades[f"test_{f}"] for f in own} == {f: points[f] for f in own}, grades
    with open(out / "grades.csv") as f:
        [row] = list(csv.DictReader(f))
    assert row["status"] == "graded", row


def _depends(name):
    from rnncourse.checks import get_check

    return get_check(name).call.depends
