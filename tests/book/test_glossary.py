"""The bilingual glossary and the chapters agree.

- Every key term that the glossary says a chapter introduces is given its
  Chinese name in that chapter (on one of its pages, for a chapter split into
  sections): somewhere the English term, or its hyphenated form, is followed,
  within a few words, by the glossary's Chinese term ("constant error
  carousel (恒定误差传送带, CEC)"). A glossary row whose English form the
  chapter never uses (a concept shown by a formula) is not checked.
- The glossary writes the beam width with the symbol the attention chapter
  uses.
"""

import re
from pathlib import Path

import pytest

from booktools import ROOT, source_of, toc_files
from test_references import prose

GLOSSARY = ROOT / "book" / "glossary.md"
# Chapters whose terms are checked, by how the glossary's "Introduced in" column names them.
CHAPTERS = {
    "01_sequence_modeling": "book/01_sequence_modeling",
    "02_rnn": "book/02_rnn",
    "Chapter 3,": "book/03_bptt",
    "Chapter 4,": "book/04_lstm",
    "Chapter 5,": "book/05_gru",
    "Chapter 6,": "book/06_attention",
    "Chapter 7,": "book/07_applications",
    "08_linear_recurrences": "book/08_linear_recurrences",
    "09_state_space_models": "book/09_state_space_models",
}
WINDOW = 80  # characters after the English term in which its Chinese must appear


def rows():
    """(English, 中文, definition, introduced in) for every row of the glossary's tables."""
    found = re.findall(r"^\| (.+?) \| (.+?) \| (.+?) \| (.+?) \|\s*$", GLOSSARY.read_text(encoding="utf-8"), re.M)
    return [row for row in found if row[0] != "English" and not set(row[0]) <= set("-|: ")]


def english_form(term):
    """The form a chapter writes: 'input gate $i$' -> 'input gate', 'recurrent neural network (RNN)' -> ..."""
    term = re.sub(r"\s*\([^)]*\)", "", term)
    return re.sub(r"\s+", " ", re.sub(r"\$[^$]*\$", "", term)).strip()


def chinese_forms(term):
    return [part.strip() for part in re.split(r"[/（）()、]", term) if part.strip()]


def flat(text):
    return re.sub(r"\s+", " ", re.sub(r"\*\*|\*", "", prose(text)))


def named_with_chinese(text, english, chinese):
    """Whether the English term occurs in text with one of its Chinese forms right after it; None if absent."""
    ends = [m.end() for m in re.finditer(re.escape(english), text, re.I)]
    if not ends:
        return None
    return any(any(c in text[end: end + WINDOW] for c in chinese) for end in ends)


def checked_rows():
    out = []
    for english, chinese, _, where in rows():
        chapter = next((page for key, page in CHAPTERS.items() if key in where), None)
        if chapter is not None:
            out.append((english, chinese, chapter))
    return out


def chapter_pages(chapter):
    """The pages of a chapter in the toc: 'book/07_applications' -> it and its sections book/07_*."""
    prefix = chapter.split("_")[0] + "_"
    return [page for page in toc_files() if page.startswith(prefix)]


def missing_chinese(text, english, chinese):
    """Whether the text uses the term (as written, or hyphenated) but never with its Chinese right after it."""
    forms = {english_form(english), english_form(english).replace(" ", "-")}
    found = [named_with_chinese(text, form, chinese_forms(chinese)) for form in forms]
    return True not in found and False in found


def test_the_glossary_parses():
    assert len(rows()) > 100
    assert len(checked_rows()) > 60


def test_the_check_finds_a_term_without_its_chinese():
    assert named_with_chinese("the constant error carousel (恒定误差传送带, CEC) keeps", "constant error carousel",
                              ["恒定误差传送带"])
    assert named_with_chinese("the constant error carousel: along it", "constant error carousel",
                              ["恒定误差传送带"]) is False
    assert named_with_chinese("no such words", "constant error carousel", ["恒定误差传送带"]) is None
    # A chapter may write the term hyphenated; then that form must carry the Chinese.
    assert missing_chinese("the teacher-forcing (教师强制) loop", "teacher forcing", "教师强制") is False
    assert missing_chinese("the teacher-forcing loop", "teacher forcing", "教师强制") is True
    assert missing_chinese("no such words", "teacher forcing", "教师强制") is False


@pytest.mark.parametrize("chapter", list(CHAPTERS.values()))
def test_each_key_term_gets_its_chinese_in_its_chapter(chapter):
    pages = chapter_pages(chapter)
    assert chapter in pages, f"{chapter} is not in the toc"
    text = flat("\n".join(source_of(page).read_text(encoding="utf-8") for page in pages))
    missing = [f"{english} ({chinese})" for english, chinese, where in checked_rows()
               if where == chapter and missing_chinese(text, english, chinese)]
    assert not missing, (
        f"{chapter} (pages {', '.join(pages)}) uses these glossary terms but never gives their Chinese name: "
        f"{missing}. At the term's first use, write it as **term** (中文)"
    )


def test_the_beam_width_has_the_attention_chapter_symbol():
    (definition,) = [row[2] for row in rows() if row[0] == "beam search"]
    chapter = "\n".join(p.read_text(encoding="utf-8") for p in sorted(Path(ROOT / "book").glob("06*.md")))
    symbols = set(re.findall(r"keeps the \$(\w)\$ (?:best|most probable)", chapter))
    assert symbols, "chapter 6 no longer says 'keeps the $X$ best ...': update this test"
    glossary_symbols = set(re.findall(r"keep(?:s|ing)? (?:the )?\$(\w)\$|\$(\w)\$ is the beam width", definition))
    glossary_symbols = {s for pair in glossary_symbols for s in pair if s}
    assert glossary_symbols == symbols, (
        f"the glossary's beam search writes the beam width as {sorted(glossary_symbols)}, "
        f"chapter 6 as {sorted(symbols)}: {definition!r}")
