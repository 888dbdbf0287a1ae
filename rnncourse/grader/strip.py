"""The package the sandbox sees: ``rnncourse`` stripped down to what one assignment's notebook needs.

An allow-list, not a deny-list. A submission that computes an assigned
function with another model of the course must earn nothing for it, so the
sandbox holds only:

1. what runs the learner's code: the runner (:mod:`rnncourse.grader.runner`,
   with what it imports) and the sandbox side of the checks,
   :mod:`rnncourse.checks.calls`, all of it (how each check calls the
   learner's function; no reference, case, known mistake or judge: the
   trusted side of :mod:`rnncourse.checks` stays out, and there ``check``
   only prints a line);
2. what the assignment's notebook may import, as its module in
   :mod:`rnncourse.checks.calls` declares (``NEEDS``): for 02_rnn,
   ``gradcheck`` and ``rel_error`` from :mod:`rnncourse.numpy`, so its
   ``gradcheck`` module and nothing of the RNN;
3. the modules of ``rnncourse`` those two import, found by reading their
   import statements (a module's ``from .rnn import rnn_forward`` brings
   ``rnn``). A package's ``__init__`` comes in reduced: it keeps the import
   statements of its submodules that are there, and ``__all__`` what they
   give.

The build fails (:class:`StripError`) when a module that would be copied
defines a function or a class named like one the assignment asks for, when
a module of :mod:`rnncourse.checks` other than its calls and those a
notebook's ``NEEDS`` names (``char_lm`` in 07) would be copied, and when a
name the notebook imports does not exist. PyTorch: an assignment whose ``NEEDS`` does
not list ``torch`` gets, at the top of the package folder, stand-ins for
``torch`` and its companions that raise ``ModuleNotFoundError``; the sandbox
covers the real ones in ``site-packages`` with them. Python runs the
package's ``sitecustomize.py`` at start-up; it installs the assignment's
import rule (:mod:`rnncourse.grader.imports`), so that an import outside the
list fails with a message that names the allowed modules.

The copy is compiled to bytecode (the sandbox mounts it read-only) with file
names as the sandbox sees them.
"""

import ast
import compileall
import importlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .imports import message

PACKAGE = Path(__file__).resolve().parents[1]  # the rnncourse package directory

RUNNER = ("rnncourse.grader.runner", "rnncourse.grader.imports")
"""What runs the learner's code in the sandbox, whatever the assignment."""

SANDBOX_SIDE = "rnncourse.checks.calls"
"""The sandbox side of the checks; the other modules of :mod:`rnncourse.checks` are trusted."""

TORCH_FAMILY = ("torch", "functorch", "torchgen", "triton")
"""Top-level modules that stand in for PyTorch: hidden together when an assignment does not use it."""

__all__ = ["SandboxPackage", "StripError", "build", "plan", "assigned_functions"]


class StripError(RuntimeError):
    """The package for an assignment cannot be built as declared (a course bug, not a submission's)."""


@dataclass(frozen=True)
class SandboxPackage:
    """What :func:`build` put in the package folder, for one assignment.

    ``modules``: the modules of ``rnncourse`` copied, sorted.
    ``hidden``: the top-level modules replaced by stand-ins that raise
    (the sandbox must cover them in ``site-packages`` with the folder's).
    ``libraries``: the third-party modules the notebook may import.
    ``allowed``: the list as the messages state it.
    """

    assignment: str
    modules: tuple
    hidden: tuple
    libraries: tuple
    allowed: str


def assigned_functions(assignment):
    """The names of the functions ``assignment`` asks the learner to write."""
    from rnncourse.checks.calls import calls_of

    return sorted({c.name for c in calls_of(assignment)})


# --- which modules -----------------------------------------------------------------------


def _source(module):
    """``(path, is_package)`` of a module of rnncourse in the source tree, or None."""
    rel = Path(*module.split(".")[1:])
    if (PACKAGE / rel / "__init__.py").is_file():
        return PACKAGE / rel / "__init__.py", True
    if (PACKAGE / rel).with_suffix(".py").is_file():
        return (PACKAGE / rel).with_suffix(".py"), False
    return None


def _exists(module):
    return module == "rnncourse" or (module.startswith("rnncourse.") and _source(module) is not None)


def _trusted(module):
    """The trusted side of the checks (cases, references, known mistakes), unless a notebook's NEEDS names it."""
    return module.startswith("rnncourse.checks.") and not (module == SANDBOX_SIDE or module.startswith(SANDBOX_SIDE + "."))


def _defining_module(package, name):
    """The module of rnncourse that ``from package import name`` brings: a submodule, or where ``name`` lives."""
    if _exists(f"{package}.{name}"):
        return f"{package}.{name}"
    mod = importlib.import_module(package)
    if not hasattr(mod, name):
        raise StripError(f"{package} has no {name}")
    obj = getattr(mod, name)
    defined_in = getattr(obj, "__module__", None)
    if isinstance(defined_in, str) and _exists(defined_in) and not isinstance(obj, type(mod)):
        return defined_in
    for sub_name, sub in vars(mod).items():  # a constant: the submodule whose namespace holds it
        if isinstance(sub, type(mod)) and sub.__name__.startswith(package + ".") and vars(sub).get(name) is obj:
            return sub.__name__
    return package


def _imports(module, tree, is_package):
    """The rnncourse modules ``module``'s import statements bring, anywhere in the file.

    A package's imports of its own submodules are left out: a submodule
    comes in only when something else needs it (the ``__init__`` is reduced).
    """
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("rnncourse")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if not source.startswith("rnncourse"):
                continue
            own = is_package and node.level == 1 and (source == module or source.startswith(module + "."))
            if own:
                continue
            for alias in node.names:
                found.add(_defining_module(source, alias.name) if alias.name != "*" else source)
            found.add(source)
    return found


def plan(assignment):
    """The modules of rnncourse the sandbox package of ``assignment`` holds, sorted."""
    from rnncourse.checks.calls import needs_of

    needs = needs_of(assignment)
    side = PACKAGE / Path(*SANDBOX_SIDE.split(".")[1:])
    todo = [*RUNNER, "rnncourse.checks", SANDBOX_SIDE, *(f"{SANDBOX_SIDE}.{p.stem}" for p in side.glob("[!_]*.py"))]
    for module, names in needs.course.items():
        if not _exists(module):
            raise StripError(f"{assignment} declares that its notebook imports from {module}, which does not exist")
        todo.append(module)
        todo += [_defining_module(module, name) for name in names]
    declared = set(needs.course) | {_defining_module(m, n) for m, names in needs.course.items() for n in names}
    chosen = set()
    while todo:
        module = todo.pop()
        if module in chosen or not _exists(module):
            continue
        if _trusted(module) and module not in declared:
            raise StripError(f"the trusted module {module} would be in the sandbox of {assignment}")
        chosen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:k]) for k in range(1, len(parts))]  # the packages above it
        path, is_package = _source(module) if module != "rnncourse" else (PACKAGE / "__init__.py", True)
        todo += _imports(module, ast.parse(path.read_text(encoding="utf-8")), is_package)
    return sorted(chosen)


# --- writing the copy --------------------------------------------------------------------


_MISSING_NAMES = """
from rnncourse.grader.imports import message as _message


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise ImportError(_message(f"{module}.{{name}}", {assignment!r}, {allowed!r}), name={module!r})
"""


def _reduce_init(tree, module, chosen, assignment, allowed):
    """A package ``__init__`` keeps the top-level imports of its submodules that are in the copy.

    ``__all__`` keeps the names that remain, and asking for one of the others
    (``from rnncourse.numpy import rnn_forward`` in 02) raises ``ImportError``
    with the assignment's list. Imports nested in ``try`` (the checks'
    trusted side) stay as they are: they handle the absence themselves.
    """
    kept, dropped = [], set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            if f"{module}.{node.module}" not in chosen:
                dropped |= {alias.asname or alias.name for alias in node.names}
                continue
        kept.append(node)
    tree.body = kept
    if dropped:
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                if isinstance(node.value, (ast.List, ast.Tuple)):
                    node.value.elts = [e for e in node.value.elts if not (isinstance(e, ast.Constant) and e.value in dropped)]
        tree.body += ast.parse(_MISSING_NAMES.format(module=module, assignment=assignment, allowed=allowed)).body
    return tree


def _verify(assignment, chosen):
    """No copied module defines what the assignment asks for."""
    assigned = set(assigned_functions(assignment))
    for module in chosen:
        path = _source(module)[0] if module != "rnncourse" else PACKAGE / "__init__.py"
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in assigned:
                raise StripError(
                    f"{module} defines {node.name}, which {assignment} asks the learner to write, and the "
                    "notebook's imports need that module: the sandbox would hold the course's answer"
                )


_STAND_IN = '''"""{name} is not in the grader's sandbox for {assignment} (written by rnncourse.grader.strip)."""

raise ModuleNotFoundError({message!r}, name={name!r})
'''

_SITECUSTOMIZE = '''"""Python runs this at start-up in the grader's sandbox for {assignment} (written by rnncourse.grader.strip)."""

from rnncourse.grader.imports import install

install({assignment!r}, {libraries!r}, {course!r}, {allowed!r})
'''


def build(assignment, dest, *, mount_point):
    """Write the sandbox's package for ``assignment`` into ``dest``: ``dest/rnncourse``, and more.

    ``dest`` then holds ``rnncourse/`` (the modules of :func:`plan`, package
    ``__init__`` files reduced), ``sitecustomize.py`` (the import rule) and,
    when the assignment does not use PyTorch, stand-ins for
    ``TORCH_FAMILY``. ``mount_point`` is where the sandbox will see
    ``dest`` (bytecode carries file names). Returns a :class:`SandboxPackage`;
    raises :class:`StripError` when the package cannot be built as declared.
    """
    from rnncourse.checks.calls import needs_of

    needs = needs_of(assignment)
    chosen = plan(assignment)
    _verify(assignment, chosen)
    dest = Path(dest)
    allowed = needs.describe()
    for module in chosen:
        src, is_package = _source(module) if module != "rnncourse" else (PACKAGE / "__init__.py", True)
        target = dest / src.relative_to(PACKAGE.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_package:
            tree = _reduce_init(ast.parse(src.read_text(encoding="utf-8")), module, set(chosen), assignment, allowed)
            target.write_text(ast.unparse(ast.fix_missing_locations(tree)) + "\n", encoding="utf-8")
        else:
            shutil.copyfile(src, target)
    hidden = () if "torch" in needs.libraries else TORCH_FAMILY
    for name in hidden:
        (dest / name).mkdir()
        (dest / name / "__init__.py").write_text(
            _STAND_IN.format(name=name, assignment=assignment, message=message(name, assignment, allowed)), encoding="utf-8"
        )
    (dest / "sitecustomize.py").write_text(
        _SITECUSTOMIZE.format(assignment=assignment, libraries=tuple(needs.libraries), course=tuple(chosen), allowed=allowed),
        encoding="utf-8",
    )
    compileall.compile_dir(str(dest), ddir=str(mount_point), quiet=1, workers=1)
    for root, _, files in os.walk(dest):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return SandboxPackage(assignment, tuple(chosen), hidden, tuple(needs.libraries), allowed)
