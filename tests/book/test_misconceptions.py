"""The "Common misconceptions" page answers every item of the course's list of corrections."""

import re
from pathlib import Path

import pytest

from booktools import ROOT

ERRATA = Path(__file__).parents[2] / ".." / "shared" / "ERRATA.md"
PAGE = ROOT / "book" / "misconceptions.md"


def errata_items():
    """The item numbers of ERRATA.md: the first cell of each table row, '| 14 | ...'."""
    text = ERRATA.read_text(encoding="utf-8")
    return sorted({int(n) for n in re.findall(r"^\|\s*(\d+)\s*\|", text, flags=re.M)})


def page_labels():
    return re.findall(r"^\((misconception-[\w-]+)\)=\s*$", PAGE.read_text(encoding="utf-8"), flags=re.M)


@pytest.fixture(scope="module")
def items():
    if not ERRATA.is_file():
        pytest.skip(f"no list of corrections at {ERRATA.resolve()} (it lives in the shared folder beside the repository)")
    found = errata_items()
    assert found, f"found no numbered items in {ERRATA}: has its table format changed?"
    return found


def test_page_exists():
    assert PAGE.is_file(), f"{PAGE.relative_to(ROOT)} is missing"


def test_every_item_has_a_section(items):
    labels = page_labels()
    covered = {int(label.split("-")[1]) for label in labels if label.split("-")[1].isdigit()}
    missing = [n for n in items if n not in covered]
    assert not missing, (
        f"{PAGE.name} has no section for ERRATA items {missing}: add a section "
        "starting with a label '(misconception-N)=' and a heading"
    )


def test_conventions_and_references_have_sections():
    labels = page_labels()
    for label in ("misconception-conventions", "misconception-references"):
        assert label in labels, f"{PAGE.name} lacks the section labelled ({label})="


def test_every_label_is_followed_by_a_heading():
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"\(misconception-[\w-]+\)=\s*", line):
            following = next((l for l in lines[i + 1:] if l.strip()), "")
            assert following.startswith("#"), f"label {line!r} is not followed by a heading but by {following!r}"


def test_labels_are_unique():
    labels = page_labels()
    assert len(labels) == len(set(labels)), f"duplicate labels: {sorted(l for l in set(labels) if labels.count(l) > 1)}"
