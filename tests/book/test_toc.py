"""The table of contents and the files of the book agree."""

import pytest

from booktools import BOOK_PAGES, CHAPTERS, ROOT, source_of, toc_files, toc_path


def test_nine_chapters_are_planned():
    names = [c.split("/")[-1] for c in CHAPTERS]
    assert names == ["01_sequence_modeling", "02_rnn", "03_bptt", "04_lstm", "05_gru",
                     "06_attention", "07_applications", "08_linear_recurrences", "09_state_space_models"]


def test_every_toc_entry_has_a_file():
    missing = [page for page in toc_files() if source_of(page) is None]
    assert not missing, (
        f"{toc_path().name} lists pages with no .md or .ipynb file: {missing}. "
        "Add the file or remove the entry."
    )


def test_toc_has_no_duplicates():
    pages = toc_files()
    duplicates = sorted({p for p in pages if pages.count(p) > 1})
    assert not duplicates, f"{toc_path().name} lists these pages more than once: {duplicates}"


@pytest.mark.parametrize("page", CHAPTERS + BOOK_PAGES)
def test_existing_page_is_in_toc(page):
    if source_of(page) is None:
        pytest.skip(f"{page} is planned but not written yet")
    assert page in toc_files(), (
        f"{source_of(page).relative_to(ROOT)} exists but {toc_path().name} does not list it: "
        f"add '- file: {page}' (pages outside the toc are not built)"
    )


def test_chapters_are_in_order():
    pages = toc_files()
    listed = [c for c in CHAPTERS if c in pages]
    in_toc_order = sorted(listed, key=pages.index)
    assert in_toc_order == listed, f"chapters out of order in {toc_path().name}: {in_toc_order}"
