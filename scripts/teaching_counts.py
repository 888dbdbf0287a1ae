"""Per chapter page: its figures, learning goals and questions, as a Markdown table.

    .venv/bin/python scripts/teaching_counts.py [BUILD_DIR]

Figures come from the built site (BUILD_DIR, default _build; a page not built
shows "-"): the images of the page's article, split into diagrams drawn by
rnncourse.drawing (their PNG carries its record) and the other images (plots).
Goals and questions come from the sources, read with the parsers of
tests/book/test_pedagogy.py (the test that holds every page to the rule):
goals are the bullets of "Learning goals", questions the numbered items of
the "Questions" blocks, counted with their named kinds.
"""

import re
import sys
from collections import Counter
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "book"))

from booktools import toc_files  # noqa: E402
from test_pedagogy import KIND, NOT_TAUGHT, PAGES, admonitions, page_text, questions, sections  # noqa: E402

from rnncourse import drawing  # noqa: E402


def figures(site, page):
    """(diagrams, other images) of the built page, or None if it is not built."""
    html = site / (page + ".html")
    if not html.is_file():
        return None
    text = html.read_text(encoding="utf-8")
    article = text[text.find("<article"):text.rfind("</article>")]
    diagrams = plots = 0
    for src in re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', article):
        path = (html.parent / src).resolve()
        is_diagram = False
        if path.suffix.lower() == ".png" and path.is_file():
            with Image.open(path) as png:
                is_diagram = drawing.PNG_KEY in png.text
        diagrams += is_diagram
        plots += not is_diagram
    return diagrams, plots


def teaching(page):
    """(goals, sections with questions, questions, Counter of named kinds) from the page's source."""
    (_, head), *rest = sections(page_text(page))
    goals = sum(len(re.findall(r"^- ", body, re.M)) for body, _ in admonitions(head, "Learning goals"))
    blocks = [block for heading, body in rest if heading not in NOT_TAUGHT
              for block, _ in admonitions(body, "Questions")]
    items = [text for block in blocks for text, _ in questions(block)]
    kinds = Counter(KIND.findall("\n".join(f"1. {text}" for text in items)))
    return goals, len(blocks), len(items), kinds


def main():
    site = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "_build") / "html"
    assert PAGES == [p for p in toc_files() if p in PAGES]
    print("| page | diagrams | plots | goals | sections with questions | questions | derivation / prediction / "
          "code reading / other |")
    print("|---|---:|---:|---:|---:|---:|---|")
    total = Counter()
    for page in PAGES:
        built = figures(site, page)
        goals, blocks, count, kinds = teaching(page)
        other = count - sum(kinds.values())
        d, p = built if built else ("-", "-")
        print(f"| {page.removeprefix('book/')} | {d} | {p} | {goals} | {blocks} | {count} | "
              f"{kinds['Derivation']} / {kinds['Prediction']} / {kinds['Code reading']} / {other} |")
        total.update(goals=goals, blocks=blocks, questions=count)
        if built:
            total.update(diagrams=d, plots=p)
    print(f"| all {len(PAGES)} pages | {total['diagrams']} | {total['plots']} | {total['goals']} | {total['blocks']} "
          f"| {total['questions']} | |")


if __name__ == "__main__":
    main()
