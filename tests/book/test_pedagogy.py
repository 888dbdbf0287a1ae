"""Every chapter teaches with goals and questions: read from the page sources, no build needed.

- The chapter opens (before its first section) with one "Learning goals"
  admonition of class ``goals``: 3 to 5 bullets of what the reader will be
  able to do.
- Every main section (a ``##`` heading, other than Summary, Exercises and
  References) ends with one "Questions" admonition of class ``questions``:
  2 to 4 numbered questions, each with its answer folded in a
  ``{dropdown}`` (sphinx-design), so a reader can try before looking.

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

from booktools import ROOT, source_of

# Pages held to the rule. Chapters 6 and 7 (and part three) add their pages here when they follow it.
PAGES = ["book/01_sequence_modeling", "book/02_rnn", "book/03_bptt", "book/04_lstm", "book/05_gru",
         "book/08_linear_recurrences", "book/09_state_space_models"]
NOT_TAUGHT = {"Summary", "Exercises", "References", "Further reading"}


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
