"""What chapters 6 and 7 hold to beyond the whole book's rules: they are split into pages a learner can
finish in one sitting, and every question names its kind. Reads the sources.

The rules every chapter page follows live elsewhere, one home each: learning goals, questions with folded
answers at the end of every main section and their mix of kinds, glue(...) in hidden cells and cells no
longer than a screen in test_pedagogy.py; the Chinese name of each key term at its first use in
test_glossary.py. Chapters 1-5, 8 and 9 leave some questions without a named kind (25 of them, most asking
"why" or "name one"), so that rule holds for chapters 6 and 7 only.
"""

import re

import pytest

from booktools import ROOT, toc_files
from test_pedagogy import admonitions, questions, sections, without_code

PAGES = [p for p in toc_files() if re.fullmatch(r"book/0[67]_\w+", p)]
KIND = re.compile(r"^\*\((Derivation|Prediction|Code reading)\.\)\*")


def source(page):
    return (ROOT / f"{page}.md").read_text(encoding="utf-8")


def test_chapters_6_and_7_are_split_into_pages():
    assert len([p for p in PAGES if p.startswith("book/06")]) >= 3
    assert len([p for p in PAGES if p.startswith("book/07")]) >= 6


@pytest.mark.parametrize("page", PAGES)
def test_every_question_names_its_kind(page):
    unnamed = []
    for heading, body in sections(without_code(source(page)))[1:]:
        for block, _ in admonitions(body, "Questions"):
            unnamed += [f"'{heading}', question {n}" for n, (text, _) in enumerate(questions(block), 1)
                        if not KIND.match(text)]
    assert not unnamed, f"{page}: questions without '*(Derivation.)*', '*(Prediction.)*' or '*(Code reading.)*': {unnamed}"
