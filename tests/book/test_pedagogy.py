"""Every chapter teaches with goals and questions: read from the page sources, no build needed.

- The chapter opens (before its first section) with one "Learning goals"
  admonition of class ``goals``: 3 to 5 bullets of what the reader will be
  able to do.
- Every main section (a ``##`` heading, other than Summary, Exercises and
  References) ends with one "Questions" admonition of class ``questions``:
  2 to 4 numbered questions, each with its answer folded in a
  ``{dropdown}`` (sphinx-design), so a reader can try before looking.
- The questions of a page mix their kinds: at least two of derivation,
  prediction and code reading, each named at the start of its question.
- The cells a reader sees carry no ``glue(...)`` bookkeeping (it goes in a
  hidden cell, tagged ``remove-cell``, or ``remove-input`` where the output
  is shown), and no cell is longer than a screen (40 lines): long code lives
  in the package, a cell does one thing.

Every page of chapters 1 to 9 in the toc, a chapter's sections included, is
held to the same rule.

The written form, as the chapters use it::

    ::::::{admonition} Questions
    :class: questions

    1. *(Prediction.)* The question.

       :::{dropdown} Answer
       The answer.
       :::
    ::::::
"""

import re

import pytest

from booktools import CHAPTERS, source_of, toc_files

# The chapters' pages: each chapter of booktools.CHAPTERS and its sections in the toc (book/06_seq2seq, ...).
PAGES = [page for page in toc_files() if re.fullmatch(r"book/0\d_\w+", page)]
NOT_TAUGHT = {"Summary", "Exercises", "References", "Further reading"}
KINDS = ("Derivation", "Prediction", "Code reading")
KIND = re.compile(r"^\d+\. \*\((" + "|".join(KINDS) + r")\.\)\*", re.M)


def test_every_chapter_and_its_sections_are_held_to_the_rule():
    assert set(CHAPTERS) <= set(PAGES), f"chapters missing from the checked pages: {sorted(set(CHAPTERS) - set(PAGES))}"
    assert len(PAGES) > len(CHAPTERS), "no chapter has sections in the toc: chapters 6 and 7 should"


def without_code(text):
    """The page with its code cells and code blocks blanked (a '## ' inside code is not a heading)."""
    return re.sub(r"^(```|~~~).*?^\1\s*$", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)


def sections(text):
    """[(heading, body)] for the text before the first '## ' (heading None) and for each '## ' section."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    found = [(None, parts[0])]
    found += [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]
    return found


def admonitions(body, title):
    """The bodies of the admonitions titled ``title`` in ``body``, with their class option."""
    pattern = re.compile(rf"^(?P<fence>:{{3,}})\{{admonition\}} {re.escape(title)}\s*\n(?P<body>.*?)^(?P=fence)\s*$",
                         re.S | re.M)
    return [(m.group("body"), re.search(r"^:class:\s*(.+)$", m.group("body"), re.M)) for m in pattern.finditer(body)]


def questions(block):
    """[(question text, number of dropdowns under it)] for the numbered items of a questions block."""
    items = re.split(r"^(\d+)\. ", block, flags=re.M)[1:]
    return [(items[i + 1], len(re.findall(r"^\s+:{3,}\{dropdown\}", items[i + 1], re.M)))
            for i in range(0, len(items), 2)]


def page_text(page):
    path = source_of(page)
    assert path is not None, f"{page} has no source file"
    return without_code(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES)
def test_chapter_opens_with_learning_goals(page):
    (_, head), *_ = sections(page_text(page))
    goals = admonitions(head, "Learning goals")
    assert len(goals) == 1, f"{page}: expected one 'Learning goals' admonition before the first section, found {len(goals)}"
    body, klass = goals[0]
    assert klass and "goals" in klass.group(1).split(), f"{page}: the learning goals need ':class: goals'"
    bullets = re.findall(r"^- ", body, re.M)
    assert 3 <= len(bullets) <= 5, f"{page}: {len(bullets)} learning goals; expected 3 to 5"


@pytest.mark.parametrize("page", PAGES)
def test_every_main_section_ends_with_questions(page):
    problems = []
    for heading, body in sections(page_text(page))[1:]:
        if heading in NOT_TAUGHT:
            continue
        blocks = admonitions(body, "Questions")
        if len(blocks) != 1:
            problems.append(f"'{heading}': {len(blocks)} 'Questions' admonitions, expected 1")
            continue
        block, klass = blocks[0]
        if not (klass and "questions" in klass.group(1).split()):
            problems.append(f"'{heading}': the questions need ':class: questions'")
        items = questions(block)
        if not 2 <= len(items) <= 4:
            problems.append(f"'{heading}': {len(items)} questions, expected 2 to 4")
        for n, (_, dropdowns) in enumerate(items, 1):
            if dropdowns != 1:
                problems.append(f"'{heading}', question {n}: {dropdowns} folded answers, expected 1")
        end = body[body.rindex(block):]
        after = re.sub(r"^:{3,}\s*$|^\(.+\)=\s*$", "", end[len(block):], flags=re.M).strip()
        if after:
            problems.append(f"'{heading}': the questions are not at the end of the section ({after[:60]!r} follows)")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_the_questions_mix_their_kinds(page):
    kinds = set(KIND.findall(page_text(page)))
    assert len(kinds) >= 2, (f"{page}: questions of {len(kinds)} kind ({sorted(kinds)}); mix at least two of "
                             f"{KINDS}, named as '1. *(Prediction.)* ...'")


CELL = re.compile(r"```\{code-cell\} ipython3\n(.*?)```", re.S)
MAX_CELL_LINES = 40


def code_cells(page):
    return CELL.findall(source_of(page).read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES)
def test_glue_calls_stay_in_hidden_cells(page):
    visible = []
    for cell in code_cells(page):
        if re.match(r":tags: \[(remove-cell|remove-input)\]", cell):
            continue
        visible += [line.strip() for line in cell.splitlines() if re.search(r"\bglue\(", line)]
    assert not visible, f"{page}: glue(...) in {len(visible)} lines of cells the reader sees: {visible[:3]}"


@pytest.mark.parametrize("page", PAGES)
def test_no_cell_is_longer_than_a_screen(page):
    longest = max((len(cell.splitlines()) for cell in code_cells(page)), default=0)
    assert longest <= MAX_CELL_LINES, f"{page}: a cell of {longest} lines; split it (one cell, one thing)"


def test_the_parser_finds_questions_and_answers():
    text = """# T

::::{admonition} Learning goals
:class: goals

- one
- two
- three
::::

## A section

Text.

::::::{admonition} Questions
:class: questions

1. First?

   :::{dropdown} Answer
   Yes.
   :::

2. Second?

   :::{dropdown} Answer
   No.
   :::
::::::
"""
    (_, head), (heading, body) = sections(text)
    assert heading == "A section"
    assert len(admonitions(head, "Learning goals")) == 1
    (block, klass), = admonitions(body, "Questions")
    assert klass.group(1) == "questions"
    assert [d for _, d in questions(block)] == [1, 1]
    assert KIND.findall("1. *(Prediction.)* What happens?\n2. *(Code reading.)* Which line?\n3. Why?") == [
        "Prediction", "Code reading"]
