"""TeX in the book that MathJax would read differently from what the author wrote.

MathJax's ``aligned``, ``gathered``, ``alignedat`` and ``array`` take an
optional argument in square brackets, and it skips spaces and a newline to
find it. An equation whose first line starts with ``[``, such as the LSTM's
``[a_i, a_f, a_g, a_o] = ...``, right after ``\\begin{aligned}`` therefore
loses that bracketed text as an "argument": the page renders without it and
reports no error. Write ``{[a_i, ...]}`` instead. (The browser test checks the
rendered LSTM equation as well.)
"""

import re

import pytest

from booktools import source_of, toc_files

OPTIONAL_ARGUMENT = re.compile(r"\\begin\{(aligned|gathered|alignedat|array)\}(\{[^}]*\})?\s*\[")

PAGES = [page for page in toc_files() if source_of(page) is not None]


def swallowed(text):
    """The snippets where an environment would take a '[' meant as math for its optional argument."""
    return [text[m.start(): m.end() + 30].replace("\n", " ") for m in OPTIONAL_ARGUMENT.finditer(text)]


def test_the_pattern_finds_the_lstm_mistake_and_passes_its_fix():
    assert swallowed("$$\n\\begin{aligned}\n[a_i, a_f] &= x W\n\\end{aligned}\n$$")
    assert not swallowed("$$\n\\begin{aligned}\n{[a_i, a_f]} &= x W\n\\end{aligned}\n$$")
    assert not swallowed("$$\n\\begin{aligned}\nc_t &= [a, b]\n\\end{aligned}\n$$")


@pytest.mark.parametrize("page", PAGES)
def test_no_environment_swallows_a_bracket(page):
    found = swallowed(source_of(page).read_text(encoding="utf-8"))
    assert not found, (
        f"{page}: MathJax reads the '[...]' after these environments as their optional argument and drops it "
        f"from the rendered equation; write '{{[...]}}': {found}"
    )
