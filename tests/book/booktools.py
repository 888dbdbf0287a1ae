"""Paths and small parsers shared by the book's tests."""

import ast
import os
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# The chapters, in order. A chapter that exists as a file
# must be in _toc.yml; the others are planned and may not exist yet.
CHAPTERS = [
    "book/01_sequence_modeling",
    "book/02_rnn",
    "book/03_bptt",
    "book/04_lstm",
    "book/05_gru",
    "book/06_attention",
    "book/07_applications",
    "book/08_linear_recurrences",
    "book/09_state_space_models",
]

# Book-wide pages: each one that exists must be in _toc.yml too.
BOOK_PAGES = ["book/appendix_fast", "book/instructor_guide", "book/notation", "book/glossary",
              "book/misconceptions", "book/references", "book/api"]

SOURCE_SUFFIXES = (".md", ".ipynb")


def build_dir():
    """The book's build folder: _build, or $RNNCOURSE_BUILD_DIR (a build made with --path-output X has X/_build)."""
    return Path(os.environ.get("RNNCOURSE_BUILD_DIR", ROOT / "_build"))


def toc_path():
    return Path(os.environ.get("RNNCOURSE_TOC", ROOT / "_toc.yml"))


def toc_files(path=None):
    """Every page of a jupyter-book _toc.yml, root first, in reading order (paths without suffix)."""
    toc = yaml.safe_load((path or toc_path()).read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(toc)
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in files]


def source_of(page):
    """The source file of a page ('book/intro' -> ROOT/book/intro.md), or None if there is none."""
    for suffix in SOURCE_SUFFIXES:
        path = ROOT / (page + suffix)
        if path.is_file():
            return path
    return None


def glue_values(page):
    """{name: value} of everything a page glued, from the build's <page>.glue.json; None if not built.

    myst-nb writes the glued outputs of each executed page to
    _build/jupyter_execute/<page>.glue.json, whether the page ran in this
    build or came from the execution cache. Values are the text/plain form
    of what was glued, turned back into Python values where possible.
    """
    import json

    path = build_dir() / "jupyter_execute" / (page + ".glue.json")
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: _parse_plain(output.get("data", {})) for name, output in data.items()}


def _parse_plain(bundle):
    text = next((v for k, v in bundle.items() if k.endswith("text/plain")), None)
    if text is None:
        return None
    if isinstance(text, list):
        text = "".join(text)
    # NumPy 2 scalars print as np.float64(0.5): keep the number inside.
    match = re.fullmatch(r"np\.\w+\((.*)\)", text.strip())
    if match:
        text = match.group(1)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
