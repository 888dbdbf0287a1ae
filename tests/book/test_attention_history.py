"""Error 10 of issue 17: who introduced attention, and what the chapter's model is.

Content-based soft attention predates its use in translation (Graves, 2013;
Graves, Wayne & Danihelka, 2014); Bahdanau et al. (2015) brought it to
neural machine translation. And the chapter's Seq2Seq is a simplified
version of their model, not their model. These checks read the sources, so
they need no build.
"""

import re

import pytest

from booktools import ROOT

BOOK = ROOT / "book"


def sentences(text):
    text = re.sub(r"\s+", " ", text)
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(*])", text)


def test_no_page_credits_bahdanau_with_inventing_attention():
    """A sentence that says Bahdanau et al. introduced attention must say: to neural machine translation."""
    offenders = []
    for path in sorted(BOOK.glob("*.md")):
        for sentence in sentences(path.read_text(encoding="utf-8")):
            if "Bahdanau" in sentence and re.search(r"\b(introduced|invented|proposed)\b.*\battention\b|"
                                                    r"\battention\b.*\b(introduced|invented)\b", sentence):
                if "machine translation" not in sentence:
                    offenders.append(f"{path.name}: {sentence[:160]}")
    assert not offenders, "attention credited to Bahdanau et al. without 'to neural machine translation':\n" + \
        "\n".join(offenders)


@pytest.mark.parametrize("page", ["06_attention.md", "06_decoding.md", "misconceptions.md"])
def test_the_earlier_soft_attention_is_cited(page):
    text = re.sub(r"\s+", " ", (BOOK / page).read_text(encoding="utf-8"))
    assert "Graves, 2013" in text or "Graves (2013)" in text, f"{page} does not cite Graves (2013)"
    assert "Graves et al., 2014" in text or "Graves, Wayne & Danihelka (2014)" in text, \
        f"{page} does not cite Graves, Wayne & Danihelka (2014)"
    assert re.search(r"brought (it|attention) to neural machine translation", text), page


def test_the_chapter_model_is_called_a_simplified_version_of_bahdanau_s():
    text = re.sub(r"\s+", " ", (BOOK / "06_seq2seq.md").read_text(encoding="utf-8"))
    assert "is a simplified version of the model of Bahdanau et al. (2015)" in text
    assert not re.search(r"Seq2Seq`? is the model of Bahdanau", text)


def test_the_references_list_both_graves_papers():
    text = re.sub(r"\s+", " ", (BOOK / "references.md").read_text(encoding="utf-8"))
    assert "Graves, A. (2013). Generating sequences with recurrent neural networks." in text
    assert "Graves, A., Wayne, G., & Danihelka, I. (2014). Neural Turing machines." in text
