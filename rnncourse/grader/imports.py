"""The import rule inside the grader's sandbox: a notebook imports only what its assignment allows.

What protects the grading is what the sandbox holds: a package with only what
the assignment's notebook needs, and no PyTorch for an assignment that does
not use it (:mod:`rnncourse.grader.strip`). This rule is the message: an
import written in the notebook of a module outside the assignment's list
fails at once with a :class:`ModuleNotFoundError` that names the allowed
modules, rather than with whatever a missing module would give later.

"Written in the notebook": the import comes from code compiled from a cell
(IPython names those ``<ipython-input-...>``) or ``exec``'d in the notebook's
namespace. An import made by a library (numpy's own submodules, matplotlib's
backends) is never refused: the rule is for the learner, not a wall; the
wall is the package.

The sandbox package's ``sitecustomize.py``, which Python runs when it
starts, calls :func:`install` with the assignment's list.
"""

import sys

__all__ = ["ImportRule", "install", "message"]


def message(what, assignment, allowed):
    """What the learner reads when ``what`` (a module, or a name of one) is outside the sandbox."""
    return f"{what} is not available while grading {assignment}: this notebook may import {allowed}"


class ImportRule:
    """A finder at the head of ``sys.meta_path`` that refuses the notebook's imports outside a list.

    ``libraries``: the third-party top-level modules allowed besides the
    standard library. ``course``: the modules of ``rnncourse`` the
    sandbox's package holds. ``allowed``: how a message states the list.
    """

    def __init__(self, assignment, libraries, course, allowed):
        self.assignment = assignment
        self.libraries = frozenset(libraries)
        self.course = frozenset(course)
        self.allowed = allowed

    def permits(self, name):
        """Whether the module ``name`` may be imported from a notebook."""
        top = name.partition(".")[0]
        if top == "rnncourse":
            return name in self.course
        return top in sys.stdlib_module_names or top in self.libraries

    def message(self, name):
        return message(name, self.assignment, self.allowed)

    def find_spec(self, name, path=None, target=None):
        if not self.permits(name) and _from_the_notebook():
            raise ModuleNotFoundError(self.message(name), name=name)
        return None  # not ours to find: the next finder looks


def _from_the_notebook():
    """Whether the import under way was written in the notebook (a cell, or code exec'd in its namespace)."""
    frame = sys._getframe(2)
    while frame is not None:
        code, module = frame.f_code, frame.f_globals.get("__name__", "")
        if code.co_filename.startswith("<frozen importlib") or module == "importlib" or module.startswith("importlib."):
            frame = frame.f_back  # the import machinery itself: look at who called it
            continue
        return module == "__main__" and code.co_filename.startswith("<")
    return False


def install(assignment, libraries, course, allowed):
    """Put the rule of ``assignment`` at the head of ``sys.meta_path`` (see :class:`ImportRule`)."""
    rule = ImportRule(assignment, libraries, course, allowed)
    sys.meta_path.insert(0, rule)
    return rule
