"""The references page is the full list: every work the book cites is on it.

A citation in the prose is an author's surname followed by a year,
"Elman (1990)", "Le et al. (2015)", "(Hochreiter & Schmidhuber 1997)",
"Gers, Schmidhuber & Cummins (2000)"; an entry of a chapter's own
"References" list is "- Surname, I. (year). Title ...". For each, the
references page must have an entry (a bullet) that names that surname and
that year. Code cells and math are not read.
"""

import re

import pytest

from booktools import ROOT, source_of, toc_files

REFERENCES = ROOT / "book" / "references.md"

SURNAME = r"[A-Z][A-Za-zÀ-ÖØ-öø-ÿ'’\-]+"
# Surname, optionally "et al." or "& Other" / ", Other & Other", then the year (in parentheses or not).
CITATION = re.compile(
    rf"(?P<name>{SURNAME})(?:\s+et\s+al\.)?(?:(?:,\s+{SURNAME})*,?\s+(?:&|and)\s+{SURNAME})?,?\s+\(?(?P<year>(?:19|20)\d\d)[a-z]?\b"
)
# Capitalised words before a year that are not authors: venues, products, months, sentence openers.
NOT_AUTHORS = {
    "ICML", "NIPS", "NeurIPS", "ICLR", "COLM", "EMNLP", "CVPR", "ICASSP", "ISMIR", "NAACL", "Interspeech", "IJCNN",
    "MAPL", "The", "In", "Since", "From", "By", "Until", "Before", "After", "January", "February", "March", "April",
    "May", "June", "July", "August", "September", "October", "November", "December", "Python", "Proceedings",
}


def prose(text):
    """The text of a MyST page without its code cells, code blocks, math blocks and inline code or math.

    Fenced directives that hold prose (```{admonition}, ```{note}) are kept; code cells and code
    blocks (```{code-cell}, ```python, a bare ```) are dropped.
    """
    code_fence = r"^(```|~~~)(?:\{(?:code-cell|code-block|code)\}[^\n]*|[\w+-]*)[ \t]*\n.*?^\1\s*$"
    text = re.sub(code_fence, "", text, flags=re.S | re.M)
    text = re.sub(r"^\$\$.*?^\$\$\s*$", "", text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.sub(r"\$[^$\n]*\$", "", text)


def reference_entries():
    """The bullets of the references page, each joined onto one line."""
    text = REFERENCES.read_text(encoding="utf-8")
    entries, current = [], None
    for line in text.splitlines():
        if line.startswith("- "):
            current = [line[2:]]
            entries.append(current)
        elif current is not None and line.startswith("  ") and line.strip():
            current.append(line.strip())
        else:
            current = None
    return [" ".join(parts) for parts in entries]


def citations(page):
    """{(surname, year)} cited in the prose of a page, and in its own References list."""
    text = prose(source_of(page).read_text(encoding="utf-8"))
    found = set()
    for m in CITATION.finditer(text):
        if m.group("name") not in NOT_AUTHORS:
            found.add((m.group("name"), m.group("year")))
    for m in re.finditer(rf"^- (?P<name>{SURNAME}), .*?\((?P<year>(?:19|20)\d\d)\)", text, flags=re.M):
        found.add((m.group("name"), m.group("year")))
    return found


PAGES = [page for page in toc_files() if source_of(page) is not None and not page.endswith("references")]


def test_the_references_page_parses():
    entries = reference_entries()
    assert len(entries) > 30, f"found only {len(entries)} entries in {REFERENCES.name}: has its format changed?"
    assert all(re.search(r"\((?:19|20)\d\d\)", e) for e in entries), "an entry without '(year)'"


def test_citation_pattern_reads_the_usual_forms():
    text = ("as Elman (1990) showed, and (Hochreiter & Schmidhuber 1997; Le et al. 2015), "
            "then Gers, Schmidhuber & Cummins (2000) and ICML 2015.")
    found = {(m.group("name"), m.group("year")) for m in CITATION.finditer(prose(text))
             if m.group("name") not in NOT_AUTHORS}
    assert found == {("Elman", "1990"), ("Hochreiter", "1997"), ("Le", "2015"), ("Gers", "2000")}


@pytest.mark.parametrize("page", PAGES)
def test_every_citation_is_on_the_references_page(page):
    entries = reference_entries()
    missing = sorted(
        f"{name} {year}" for name, year in citations(page)
        if not any(name in entry and f"({year}" in entry for entry in entries)
    )
    assert not missing, (
        f"{page} cites works that {REFERENCES.relative_to(ROOT)} does not list: {missing}. "
        "Add each one, with its authors, year, title and venue, under its topic"
    )
