"""A learner's workflow in JupyterLab, in a real browser: open an exercise, run it, read the checks, validate.

Starts JupyterLab as ``make lab`` does (scripts/lab.sh) on a
free local port, over a temporary copy of an exercise, and drives it with
Debian's headless Chromium:

1. the released notebook of ``02_rnn`` with one realistic mistake written into
   its first answer (``Wh`` used transposed) and the other answers left blank:
   after "Run All", the first test cell shows the check's message naming the
   mistake, the other test cells show the learner's ``NotImplementedError``,
   and nbgrader's Validate button reports a failure;
   the failure shows the check's message without the course's library frames;
   the learner's JupyterLab has no instructor panels (Formgrader, Create
   Assignment, the course and assignment lists) and no news pop-up;
2. the same notebook with every answer, code and written, filled in from the
   solutions (Validate also wants the written answers): every
   visible check says its cases pass, and Validate says "Success!".

Runs as root where the machine runs tests as root (``--allow-root``). Needs
chromium, chromium-driver (scripts/install-test-deps.sh) and selenium.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "02_rnn"
JUPYTER = Path(sys.executable).with_name("jupyter")
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 180

import chromium  # noqa: E402

chromium.skip_unless_installed()

from selenium.webdriver.common.by import By  # noqa: E402  (after the skip: a missing browser is a skip, selenium is a requirement)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


# --- the notebooks --------------------------------------------------------------------


def _read(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _strip_markers(source):
    """A solution cell's code without nbgrader's solution markers: what a learner would have typed."""
    lines = source.splitlines()
    return "\n".join(line for line in lines if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def filled_in(released, solution):
    """The released notebook with every answer (code and written) taken from the solution notebook."""
    answers = {_grade_id(c): "".join(c["source"]) for c in solution["cells"]}
    nb = json.loads(json.dumps(released))
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and _grade_id(cell) in answers:
            cell["source"] = _strip_markers(answers[_grade_id(cell)])
    return nb


WRONG_STEP = '''def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh.T + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)
'''


def with_wrong_first_answer(released):
    """The released notebook with ``rnn_step_forward`` answered wrongly (``Wh`` transposed), the rest blank."""
    nb = json.loads(json.dumps(released))
    for cell in nb["cells"]:
        if _grade_id(cell) == "rnn_step_forward":
            cell["source"] = WRONG_STEP
            return nb
    raise AssertionError(f"no answer cell rnn_step_forward in {ASSIGNMENT}")


# --- JupyterLab and the browser -------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    released = _read(ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    solution = _read(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    folder = tmp_path_factory.mktemp("lab")
    (folder / "wrong.ipynb").write_text(json.dumps(with_wrong_first_answer(released)), encoding="utf-8")
    (folder / "filled.ipynb").write_text(json.dumps(filled_in(released, solution)), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def lab(workdir, tmp_path_factory):
    """JupyterLab on 127.0.0.1, no token, serving ``workdir``; yields its base URL."""
    port = _free_port()
    home = tmp_path_factory.mktemp("jupyter-home")
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),  # none of the machine's own Jupyter settings
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    env.update(JUPYTER=str(JUPYTER), LAB_ROOT=str(workdir))
    # What `make lab` runs (scripts/lab.sh adds --allow-root as root), on workdir rather than exercises/.
    args = [
        "bash", str(ROOT / "scripts" / "lab.sh"), "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=", "--ServerApp.password=",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands and read the model
    ]
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                raise AssertionError("JupyterLab did not start:\n" + (home / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium.start(tmp_path_factory.mktemp("chromium-lab-profile"), 1400, 1000,
                            page_timeout=START_TIMEOUT_S, script_timeout=RUN_TIMEOUT_S)
    yield driver
    driver.quit()


# JavaScript run in the page, through JupyterLab's own application object.
NOTEBOOK_READY = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!w || !w.content || !w.sessionContext || w.context.path !== arguments[0]) return false;
const k = w.sessionContext.session && w.sessionContext.session.kernel;
return !!k && k.status === 'idle' && w.content.widgets.length > 0;
"""

RUN_ALL = "window.jupyterapp.commands.execute('notebook:run-all-cells'); return true;"

# Done when the kernel is idle and every code cell has an execution count.
RUN_STATE = """
const w = window.jupyterapp.shell.currentWidget;
const k = w.sessionContext.session.kernel;
const code = w.content.widgets.filter(c => c.model.type === 'code');
const done = code.filter(c => c.model.executionCount !== null).length;
return [k.status, done, code.length];
"""

# Each graded test cell's grade_id and the text of its outputs (stream text and error messages).
TEST_OUTPUTS = """
const w = window.jupyterapp.shell.currentWidget;
const result = {};
for (const c of w.content.widgets) {
  if (c.model.type !== 'code') continue;
  const meta = c.model.getMetadata('nbgrader') || {};
  if (!meta.grade) continue;
  const parts = [];
  for (const o of c.model.outputs.toJSON()) {
    if (o.text) parts.push(Array.isArray(o.text) ? o.text.join('') : o.text);
    if (o.ename) parts.push(o.ename + ': ' + o.evalue);
  }
  result[meta.grade_id] = parts.join('\\n');
}
return result;
"""


def open_and_run(browser, lab, name):
    """Open ``name`` in JupyterLab, run all cells, and return the graded test cells' output text."""
    browser.get(f"{lab}/lab/tree/{name}")
    WebDriverWait(browser, START_TIMEOUT_S).until(lambda d: d.execute_script(NOTEBOOK_READY, name))
    browser.execute_script(RUN_ALL)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    state = None
    while time.monotonic() < deadline:
        state = browser.execute_script(RUN_STATE)
        status, done, total = state
        if status == "idle" and done == total:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{name}: the notebook did not finish running in {RUN_TIMEOUT_S} s (kernel, done, total = {state})")
    outputs = browser.execute_script(TEST_OUTPUTS)
    # What the learner sees: the same messages are drawn on the page.
    page = browser.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden)").text
    return outputs, page


def validate(browser):
    """Click nbgrader's Validate button; return ``(passed, dialog text)``."""
    button = WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button")
    )
    button.click()

    def dialog(d):
        found = d.find_elements(By.CSS_SELECTOR, ".validation-success, .validation-failed")
        return found[0] if found else False

    box = WebDriverWait(browser, RUN_TIMEOUT_S).until(dialog)
    text = box.text
    passed = "validation-success" in box.get_attribute("class")
    for close in browser.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept, .jp-Dialog .jp-mod-reject"):
        close.click()
        break
    return passed, text


def test_a_wrong_answer_shows_the_message_that_names_it(browser, lab):
    outputs, page = open_and_run(browser, lab, "wrong.ipynb")
    first = outputs["test_rnn_step_forward"]
    assert "Wh is used transposed" in first, f"the first check's message does not name the mistake:\n{first}"
    assert "Wh is used transposed" in page, "the message is in the model but not drawn on the page"
    # the message alone: no frame of the course's library, no source around check()'s raise
    assert "Traceback" not in first, first  # (the blank answers' cells show the learner's own frames)
    for noise in ("rnncourse/checks", "_core.py", "raise _for_the_learner", "site-packages"):
        assert noise not in first and noise not in page, f"the learner sees {noise!r}:\n{page}"
    for grade_id, text in outputs.items():
        if grade_id != "test_rnn_step_forward":
            assert "NotImplementedError" in text, f"{grade_id}: a blank answer should show NotImplementedError, got:\n{text}"
        assert len(text.splitlines()) <= 40, f"{grade_id}: {len(text.splitlines())} lines of output; a check says a few"
    passed, text = validate(browser)
    assert not passed, f"Validate passed a notebook with a wrong and blank answers:\n{text}"
    assert re.search(r"test_rnn_step_forward|rnn_step_forward|failed", text, re.I), text


def test_the_filled_in_notebook_passes_every_visible_check(browser, lab):
    outputs, page = open_and_run(browser, lab, "filled.ipynb")
    assert outputs, "no graded test cells found"
    for grade_id, text in outputs.items():
        name = grade_id.removeprefix("test_")
        assert re.search(rf"{name}: (the|all) \d+ visible cases? pass", text), f"{grade_id}: expected a pass message, got:\n{text}"
        assert "Error" not in text, f"{grade_id}: {text}"
    assert "visible cases pass" in page
    passed, text = validate(browser)
    assert passed, f"Validate failed the filled-in notebook:\n{text}"
    assert "Success" in text


# Commands of nbgrader's instructor extensions, and JupyterLab's news pop-up (its announcements plugin).
INSTRUCTOR_COMMANDS = """
const ids = window.jupyterapp.commands.listCommands();
return ids.filter(id => /formgrader|create-assignment|course-list|assignment-list/i.test(id));
"""

PLUGINS = "return window.jupyterapp.hasPlugin(arguments[0]);"


def test_the_learners_lab_has_no_instructor_panels_and_no_pop_ups(browser, lab):
    """Fails if `make lab` loads nbgrader's instructor extensions (in the page or on the server) or the news pop-up,
    or loses the Validate button (nbgrader's validate extension stays on)."""
    browser.get(f"{lab}/lab/tree/wrong.ipynb")
    WebDriverWait(browser, START_TIMEOUT_S).until(lambda d: d.execute_script(NOTEBOOK_READY, "wrong.ipynb"))
    assert browser.execute_script(INSTRUCTOR_COMMANDS) == []
    assert not browser.execute_script(PLUGINS, "@jupyterlab/apputils-extension:announcements")
    assert browser.execute_script(PLUGINS, "@jupyter/nbgrader:validate-assignment")
    shown = browser.find_element(By.TAG_NAME, "body").text
    for panel in ("Formgrader", "Create Assignment", "Assignment List", "Course List"):
        assert panel not in shown, panel
    assert not browser.find_elements(By.CSS_SELECTOR, ".jp-Notification-Toast, .Toastify__toast")
    assert browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button")
    for path in ("formgrader", "assignments", "formgraders"):  # nbgrader's instructor and exchange handlers are off
        try:
            code = urllib.request.urlopen(f"{lab}/{path}", timeout=10).status
        except urllib.error.HTTPError as err:
            code = err.code
        assert code == 404, (path, code)
