"""The pages of chapters 6 and 7 as a learner meets them: goals first, questions at the end of every main
section, answers folded, and no glue(...) bookkeeping in the cells a reader sees. Reads the sources."""

import re

import pytest

from booktools import ROOT, toc_files

PAGES = [p for p in toc_files() if re.fullmatch(r"book/0[67]_\w+", p)]
UNQUESTIONED = {"Summary", "References", "Exercises"}


def source(page):
    return (ROOT / f"{page}.md").read_text(encoding="utf-8")


def test_chapters_6_and_7_are_split_into_pages():
    assert len([p for p in PAGES if p.startswith("book/06")]) >= 3
    assert len([p for p in PAGES if p.startswith("book/07")]) >= 6


@pytest.mark.parametrize("page", PAGES)
def test_the_page_opens_with_three_to_five_learning_goals(page):
    text = source(page)
    goals = re.findall(r":::\{admonition\} Learning goals\n:class: goals\n(.*?)\n:::", text, flags=re.S)
    assert len(goals) == 1, f"{page}: expected one 'Learning goals' admonition"
    bullets = re.findall(r"^- ", goals[0], flags=re.M)
    assert 3 <= len(bullets) <= 5, f"{page}: {len(bullets)} learning goals; expected 3 to 5"
    first_section = text.find("\n## ")
    assert text.index("Learning goals") < first_section, f"{page}: the goals come after the first section"


def sections(text):
    """(title, body) of each '## ' section."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


@pytest.mark.parametrize("page", PAGES)
def test_every_main_section_ends_with_two_to_four_questions_with_folded_answers(page):
    problems = []
    for title, body in sections(source(page)):
        if title.strip() in UNQUESTIONED:
            continue
        blocks = re.findall(r"::::::\{admonition\} Questions\n:class: questions\n(.*?)\n::::::", body, flags=re.S)
        if len(blocks) != 1:
            problems.append(f"'{title}': {len(blocks)} question blocks")
            continue
        questions = re.findall(r"^\d+\. \*\((Derivation|Prediction|Code reading)\.\)\*", blocks[0], flags=re.M)
        answers = blocks[0].count(":::{dropdown} Answer")
        if not 2 <= len(questions) <= 4 or answers != len(questions):
            problems.append(f"'{title}': {len(questions)} questions, {answers} folded answers")
        # After the questions, only hidden cells and the label of the next section may follow.
        tail = body[body.rindex("::::::") + 6:]
        tail = re.sub(r"```\{code-cell\} ipython3\n:tags: \[remove-cell\]\n.*?```", "", tail, flags=re.S)
        tail = re.sub(r"^\([\w-]+\)=$", "", tail, flags=re.M)
        if tail.strip():
            problems.append(f"'{title}': the questions are not at the end of the section ({tail.strip()[:60]!r})")
    assert not problems, f"{page}: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_the_questions_mix_their_kinds(page):
    kinds = set(re.findall(r"^\d+\. \*\((Derivation|Prediction|Code reading)\.\)\*", source(page), flags=re.M))
    assert len(kinds) >= 2, f"{page}: questions of one kind only ({kinds})"


@pytest.mark.parametrize("page", PAGES)
def test_glue_calls_stay_in_hidden_cells(page):
    visible = []
    for cell in re.findall(r"```\{code-cell\} ipython3\n(.*?)```", source(page), flags=re.S):
        if cell.startswith(":tags: [remove-cell]") or cell.startswith(":tags: [remove-input]"):
            continue
        visible += [line for line in cell.splitlines() if re.match(r"\s*glue\(", line)]
    assert not visible, f"{page}: glue(...) in a cell the reader sees: {visible[:3]}"


@pytest.mark.parametrize("page", PAGES)
def test_no_cell_is_longer_than_a_screen(page):
    longest = max((len(c.splitlines()) for c in re.findall(r"```\{code-cell\} ipython3\n(.*?)```", source(page),
                                                           flags=re.S)), default=0)
    assert longest <= 40, f"{page}: a cell of {longest} lines; split it (one cell, one thing)"


@pytest.mark.parametrize("chapter", ["6", "7"])
def test_each_key_term_of_the_chapter_gets_its_chinese_on_one_of_its_pages(chapter):
    """The glossary's terms "introduced in" chapter 6 or 7, as test_glossary checks chapters 1-5: somewhere on
    the chapter's pages the English term (or its hyphenated form) is followed by its Chinese."""
    from test_glossary import chinese_forms, english_form, flat, named_with_chinese, rows

    text = flat("\n".join(source(p) for p in PAGES if p.startswith(f"book/0{chapter}")))
    missing = []
    for english, chinese, _, where in rows():
        if not where.startswith(f"Chapter {chapter},"):
            continue
        forms = {english_form(english), english_form(english).replace(" ", "-")}
        found = [named_with_chinese(text, form, chinese_forms(chinese)) for form in forms]
        if True not in found and False in found:
            missing.append(f"{english} ({chinese})")
    assert not missing, f"chapter {chapter} uses these glossary terms but never gives their Chinese: {missing}"
