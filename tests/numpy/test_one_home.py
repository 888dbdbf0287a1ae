"""rnncourse.numpy keeps one home for each helper and reads like the equations.

Read from the source (nothing runs): no module imports a private name of
another (a helper several modules use lives in ``_checks`` or ``activations``
with a public name), one sigmoid, and the recurrent cells return values rather
than write into ``out=`` buffers (at most 4 left in rnn.py, lstm.py and gru.py).
"""

import ast
from pathlib import Path

import rnncourse.numpy

PACKAGE = Path(rnncourse.numpy.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def _tree(path):
    return ast.parse(path.read_text(), filename=str(path))


def test_no_module_imports_a_private_name_of_another():
    found = [
        f"{path.name}:{node.lineno}: from {'.' * node.level}{node.module or ''} import {alias.name}"
        for path in MODULES
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom) and node.level > 0
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not found, "private helpers imported across modules (give them a public name):\n" + "\n".join(found)


def test_one_sigmoid():
    defined = [
        f"{path.name}:{node.lineno}: {node.name}"
        for path in MODULES
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef) and "sigmoid" in node.name.lower()
    ]
    assert defined == [f"activations.py:{_line_of('activations.py', 'sigmoid')}: sigmoid"], defined


def _line_of(module, name):
    nodes = ast.walk(_tree(PACKAGE / module))
    return next(n.lineno for n in nodes if isinstance(n, ast.FunctionDef) and n.name == name)


def test_the_cells_return_values_not_buffers():
    buffers = [
        f"{name}:{node.lineno}"
        for name in ("rnn.py", "lstm.py", "gru.py")
        for node in ast.walk(_tree(PACKAGE / name))
        if isinstance(node, ast.keyword) and node.arg == "out"
    ]
    assert len(buffers) <= 4, f"{len(buffers)} out= buffers in the cells; at most 4: {buffers}"
