"""The package the sandbox sees: a copy of ``rnncourse`` without the course's answers to the assignment.

A submission that calls the course's own implementation of a function it was
asked to write must earn nothing for it. The sandbox therefore never sees the
editable source tree: it imports a copy built here, in which these raise
``NotImplementedError`` (their docstrings stay: they are the specification
the learner also has):

1. every top-level function, in any module, whose name is one the assignment
   asks for (the ``functions`` of its checks), wherever it is defined
   (``rnncourse.numpy.rnn.rnn_forward``, ``rnncourse.checks.applications.pad_sequences``);
2. in a check module (``rnncourse/checks/<topic>.py``): the functions its
   ``REFERENCES`` dict declares as right answers, and the trusted fields of
   every ``Check(...)`` (``reference``, ``mistakes``, ``precheck``, ``visible``,
   ``hidden``), replaced by inert values: the sandbox runs only a check's
   ``run``, on cases that come from outside;
3. the course's PyTorch twins of those functions (``TORCH_TWINS``): every
   method of ``rnncourse.torch``'s ``RNN``, ``RNNCell`` and their autograd
   function when the assignment asks for ``rnn_*``, and so on;
4. every private helper (``_name``) that only stripped code used: what is
   left reachable from the module's public functions, its classes, its
   module-level statements and the names other modules import from it stays.

So the helpers an assignment gives (``sigmoid``, ``gradcheck``,
``CharRNN`` in 07, the data helpers of ``rnncourse.checks.applications``)
keep working, and calling ``rnncourse.numpy.rnn_forward``,
``get_check("rnn_forward").reference``, ``rnncourse.numpy.stacked_rnn_forward``
(which calls ``rnn_forward``) or ``rnncourse.torch.RNN`` in 02 earns nothing.

The copy is compiled to bytecode (the sandbox mounts it read-only) with file
names as the sandbox sees them.
"""

import ast
import compileall
import importlib
import os
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # the rnncourse package directory

# Prefix of an assigned function -> the classes and functions of rnncourse.torch that compute the same.
TORCH_TWINS = {
    "rnn_": ("RNN", "RNNCell", "RNNLayer"),
    "lstm_": ("LSTM", "LSTMCell", "LSTMLayer"),
    "gru_": ("GRU", "GRUCell", "GRULayer"),
    "masked_softmax_": ("masked_softmax",),
    "attention_": ("Attention", "DotProductAttention", "ScaledDotProductAttention", "AdditiveAttention", "make_attention"),
    "additive_scores_": ("AdditiveAttention",),
}

_CHECK_FIELDS_REPLACED = {
    "reference": "_grading_only",
    "precheck": "None",
    "mistakes": "()",
    "visible": "()",
    "hidden": "_grading_only",
}
_GRADING_ONLY = '''

def _grading_only(*args, **kwargs):
    raise NotImplementedError("this part of the check runs only on the grader's side")
'''
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


class StripError(RuntimeError):
    """An assigned function could not be removed from the copy (a grader or course bug)."""


def unavailable_message(module, name):
    return f"{module}.{name} is not available while grading: the assignment asks you to write it"


def _helper_message(module, name):
    return f"{module}.{name} is not available while grading: only the course's answers used it"


def _grader_side_message(module, name):
    return f"{module}.{name} runs only on the grader's side"


def _raise(message):
    return ast.parse(f"raise NotImplementedError({message!r})").body


def _docstring(node):
    return node.body[:1] if ast.get_docstring(node) is not None else []


def strip_functions(tree, names, module, message=unavailable_message):
    """Replace, in place, the body of every top-level function of ``tree`` named in ``names``.

    The body becomes ``raise NotImplementedError(message(module, name))``;
    the docstring stays. Returns the names stripped.
    """
    stripped = []
    for node in tree.body:
        if isinstance(node, _FUNCTIONS) and node.name in names:
            node.body = _docstring(node) + _raise(message(module, node.name))
            stripped.append(node.name)
    return stripped


def strip_classes(tree, names, module, message=unavailable_message):
    """Make every method of the top-level classes named in ``names`` raise (construction included)."""
    stripped = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in names:
            for item in node.body:
                if isinstance(item, _FUNCTIONS):
                    item.body = _docstring(item) + _raise(message(module, node.name))
            stripped.append(node.name)
    return stripped


def _names_used(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_check_call(node):
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Check"


def _declared_references(tree):
    """The function names a check module's ``REFERENCES = {name: function}`` holds."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "REFERENCES" for t in node.targets):
            if isinstance(node.value, ast.Dict):
                names |= {v.id for v in node.value.values if isinstance(v, ast.Name)}
    return names


def strip_private_helpers(tree, module, roots=(), message=_helper_message):
    """Strip the private top-level functions nothing kept can reach (after the other stripping)."""
    functions = {n.name: n for n in tree.body if isinstance(n, _FUNCTIONS)}
    reached = set(roots)
    for node in tree.body:
        if isinstance(node, _FUNCTIONS):
            if not node.name.startswith("_"):
                reached.add(node.name)
        else:
            reached |= _names_used(node)
    todo = [n for n in reached if n in functions]
    while todo:
        for name in _names_used(functions[todo.pop()]):
            if name in functions and name not in reached:
                reached.add(name)
                todo.append(name)
    unreached = {n for n in functions if n.startswith("_") and n not in reached}
    return strip_functions(tree, unreached, module, message)


def strip_check_module(tree, module, assigned=(), roots=()):
    """A check module keeps only what the sandbox runs (see the module docstring)."""
    for call in [n for n in ast.walk(tree) if _is_check_call(n)]:
        for kw in call.keywords:
            if kw.arg in _CHECK_FIELDS_REPLACED:
                kw.value = ast.parse(_CHECK_FIELDS_REPLACED[kw.arg], mode="eval").body
    stripped = strip_functions(tree, set(assigned), module)
    strip_functions(tree, _declared_references(tree) - set(assigned), module, _grader_side_message)
    strip_private_helpers(tree, module, roots, _grader_side_message)
    tree.body[1:1] = ast.parse(_GRADING_ONLY).body  # after the docstring; before any use
    return stripped


def assigned_functions(assignment):
    """The names of the functions ``assignment`` asks the learner to write."""
    from rnncourse.checks import checks_of

    return sorted({f for c in checks_of(assignment) for f in c.functions})


def torch_twins(names):
    """The names in rnncourse.torch that compute what the functions ``names`` compute."""
    return sorted({twin for prefix, twins in TORCH_TWINS.items() if any(n.startswith(prefix) for n in names) for twin in twins})


def _module_name(path, dest):
    rel = path.relative_to(dest).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__"), path.name == "__init__.py"


def _imported_names(modules):
    """module -> the names other modules of the package import from it (``from .rnn import _helper``)."""
    imported = {m: set() for m in modules}
    for module, (_, tree, is_package) in modules.items():
        package = module if is_package else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if source in imported:
                imported[source] |= {alias.name for alias in node.names}
    return imported


def build(assignment, dest, *, mount_point):
    """Write the stripped copy of the package for ``assignment`` to ``dest/rnncourse``.

    ``mount_point`` is where the sandbox will see ``dest`` (bytecode carries
    file names). Returns the assigned functions that were found and stripped.
    Raises :class:`~rnncourse.grader.strip.StripError` when an assigned function that
    :mod:`rnncourse.numpy` exports was not found as a plain ``def``.
    """
    names = set(assigned_functions(assignment))
    twins = set(torch_twins(names))
    dest = Path(dest)
    target = dest / "rnncourse"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "tests"))
    modules = {}
    for path in sorted(target.rglob("*.py")):
        module, is_package = _module_name(path, dest)
        if not module.startswith("rnncourse.grader"):
            modules[module] = (path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), is_package)
    imported = _imported_names(modules)
    stripped = {}
    for module, (path, tree, _) in modules.items():
        if module.startswith("rnncourse.checks.") and module != "rnncourse.checks._core":
            done = strip_check_module(tree, module, names, imported[module])
        else:
            done = strip_functions(tree, names, module)
            if module.startswith("rnncourse.torch"):
                strip_classes(tree, twins, module)
                strip_functions(tree, twins, module)
            strip_private_helpers(tree, module, imported[module])
        for name in done:
            stripped[name] = module
        path.write_text(ast.unparse(ast.fix_missing_locations(tree)) + "\n", encoding="utf-8")
    _verify(names, stripped)
    compileall.compile_dir(str(target), ddir=f"{mount_point}/rnncourse", quiet=1, workers=1)
    for root, dirs, files in os.walk(dest):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return sorted(stripped)


def _verify(names, stripped):
    """Every assigned function the real rnncourse.numpy exports must have been stripped where it is defined."""
    reference = importlib.import_module("rnncourse.numpy")
    for name in sorted(names):
        fn = getattr(reference, name, None)
        if fn is None:
            continue  # not part of rnncourse.numpy (one_hot, perplexity): nothing there to hide
        module = getattr(fn, "__module__", None)
        if stripped.get(name) != module:
            raise StripError(
                f"rnncourse.numpy.{name} (defined in {module}) was not found as a top-level def; "
                "the sandbox would see the course's implementation"
            )
