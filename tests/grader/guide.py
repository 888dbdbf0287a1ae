"""The instructor guide's blocks that tests run, found by their markers.

A block of book/instructor_guide.md that a test runs stands under a line
``% guide-walk: NAME (which tests run it)``, a MyST comment the site does not
show. Tests find blocks by NAME, never by their text, so that rewording a
block runs the new words, and a marker that goes away fails the tests that
read it.
"""

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "book" / "instructor_guide.md"


def guide_blocks():
    """``{name: (language, text)}`` of the guide's blocks marked ``% guide-walk: NAME``."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.findall(r"^% guide-walk: ([\w-]+)[^\n]*\n```(\w+)\n(.*?)^```", text, re.M | re.S)
    return {name: (language, body) for name, language, body in found}


def guide_block(name, language):
    """The text of the block marked ``% guide-walk: name``, which must be a ```language block."""
    blocks = guide_blocks()
    assert name in blocks, f"no block marked '% guide-walk: {name}' in {GUIDE} (found: {sorted(blocks)})"
    found, text = blocks[name]
    assert found == language, f"the block marked '% guide-walk: {name}' is ```{found}, expected ```{language}"
    return text
