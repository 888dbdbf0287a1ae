"""Text the instructor reads is safe: student markdown sanitised on its rendered HTML, grades.csv spreadsheet-safe.

Formgrader renders the autograded notebook's markdown cells with nbconvert's
``markdown2html`` and shows the HTML as it is, in the instructor's Jupyter
server. Each payload below is a written answer that runs a script, or
carries a link that does, once rendered that way (``NAIVE`` says which of
them got through the pattern-based filter the grader had before). The test
renders each autograded cell exactly as formgrader does and parses the HTML:
no element that runs code, no event handler, no URL but http, https, mailto
or a fragment.
"""

import csv
import html.parser
import io
import re

import pytest

from rnncourse.grader import GradeError, autograded, rows
from rnncourse.grader.source import load_assignment

from test_grader_units import ROOT, _gid, _notebook

PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "img_onerror": '<img src=x onerror="alert(1)">',
    "js_link": "[click](javascript:alert(1))",
    "entity_js_link": "[click](&#106;avascript:alert(1))",
    "hex_entity_js_link": "[click](&#x6A;avascript&#x3A;alert(1))",
    "tab_in_scheme": '<a href="jav&#x09;ascript:alert(1)">click</a>',
    "reference_link": "[click][1]\n\n[1]: &#106;avascript:alert(1)",
    "autolink": "<javascript:alert(1)>",
    "data_html": "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "svg_onload": '<svg onload="alert(1)"><circle r="1"/></svg>',
    "iframe": '<iframe src="javascript:alert(1)"></iframe>',
    "form_action": '<form action="javascript:alert(1)"><button>go</button></form>',
    "style_expression": '<div style="background:url(javascript:alert(1))">x</div>',
    "broken_comment": "<!-- --!><img src=x onerror=alert(1)>",
    "math_href": r"$$\href{javascript:alert(1)}{x}$$ <a href=javascript:alert(1)>y</a>",
}
NAIVE = {"entity_js_link", "hex_entity_js_link", "reference_link"}  # got past the old patterns

RUNS_CODE = {"script", "iframe", "object", "embed", "form", "svg", "math", "style", "link", "meta", "base", "frame"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "background", "poster", "srcset", "data"}


class Dangers(html.parser.HTMLParser):
    """Collects what in an HTML fragment could run code in a browser.

    ``strict``: any URL scheme but http, https and mailto counts; otherwise only the schemes that run
    code (javascript, vbscript, data), as a browser would treat an unknown one as harmless.
    """

    def __init__(self, strict):
        super().__init__(convert_charrefs=True)
        self.strict = strict
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in RUNS_CODE:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag}[{name}]")
            if name in URL_ATTRIBUTES and value is not None:
                url = re.sub(r"[\x00-\x20]", "", value).lower()
                scheme = url.split(":", 1)[0] if ":" in url.split("/", 1)[0] and not url.startswith("#") else ""
                bad = scheme not in ("", "http", "https", "mailto") if self.strict else scheme in ("javascript", "vbscript", "data")
                if bad:
                    self.found.append(f"{tag}[{name}={value!r}]")


def dangers(fragment, strict=False):
    parser = Dangers(strict)
    parser.feed(fragment)
    parser.close()
    return parser.found


def formgrader_html(cell):
    """The HTML formgrader shows for a markdown cell of the autograded notebook."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(cell["source"])


@pytest.fixture(scope="module")
def built():
    """The autograded notebook of a submission whose written answer and extra cells hold every payload."""
    rnn = load_assignment(ROOT, "02_rnn")
    nb = _notebook("exercises")
    i = next(i for i, c in enumerate(nb["cells"]) if _gid(c) == "q_gradcheck")
    nb["cells"][i]["source"] = "\n\n".join(PAYLOADS.values())
    for name, payload in PAYLOADS.items():
        nb["cells"].append({"cell_type": "markdown", "source": payload, "metadata": {"name": name}})
        nb["cells"].append({"cell_type": "raw", "source": payload, "metadata": {"format": "text/html"}})
    result = {"cells": [{"grade_id": c.grade_id, "points": c.points, "auto": c.auto, "earned": 0,
                         "checks": [{"name": n, "passed": False, "message": "<b>wrong</b>"} for n in c.checks]}
                        for c in rnn.notebooks[0].graded]}
    return autograded.build(rnn.notebooks[0], nb, result)


def test_the_payloads_are_dangerous_without_sanitising():
    """The teeth of the test: rendered as formgrader renders them, each payload runs code or links to some."""
    harmless = [name for name, payload in PAYLOADS.items() if not dangers(formgrader_html({"source": payload}))]
    assert not harmless, harmless


def test_the_old_pattern_filter_lets_some_through():
    """What the grader did before (escape '<', rename javascript: schemes) misses entity-encoded schemes."""

    def inert(text):
        return re.sub(r"(?i)\b(javascript|vbscript|data)(\s*):", r"\1-blocked\2:", text.replace("<", "&lt;"))

    leaked = {name for name in PAYLOADS if dangers(formgrader_html({"source": inert(PAYLOADS[name])}))}
    assert leaked == NAIVE


def test_student_cells_render_to_nothing_that_runs(built):
    problems = []
    for cell in built["cells"]:
        if cell["cell_type"] == "markdown":
            found = dangers(formgrader_html(cell), strict=True)
            if found:
                problems.append((cell["source"][:80], found))
    assert not problems, problems
    assert not any(c["cell_type"] == "raw" for c in built["cells"])  # raw cells are shown as text


def test_ordinary_markdown_still_reads_as_written():
    answer = ("## My answer\n\nThe *relative error* was `1e-10`, see [the book](https://example.org/bptt).\n\n"
              "$h_t = \\tanh(a_t)$\n\n    <script>in a code block</script>")
    shown = formgrader_html({"source": autograded.safe_markdown(answer)})
    for piece in ("<h2", "My answer", "<em>relative error</em>", "<code>1e-10</code>",
                  'href="https://example.org/bptt"', "$h_t = \\tanh(a_t)$", "&lt;script&gt;in a code block"):
        assert piece in shown, (piece, shown)


def test_a_raw_cell_and_a_huge_cell_show_as_escaped_text():
    assert autograded.safe_markdown("<b>x</b>", markdown=False) == '<div class="rnncourse-student-cell"><pre>&lt;b&gt;x&lt;/b&gt;</pre></div>'
    huge = autograded.safe_markdown("[" * (autograded.MARKDOWN_LIMIT + 1))
    assert huge.startswith('<div class="rnncourse-student-cell"><pre>[[[')


# --- grades.csv ---------------------------------------------------------------------------


def test_text_that_a_spreadsheet_would_run_gets_a_leading_quote(tmp_path):
    starts = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    table = [dict(rows.make_row({"student_id": s, "notebook": "02_rnn", "status": "graded", "reason": s,
                                 "auto_score": 1, "max_score": 20}), student_id=s) for s in starts]
    table.append(rows.make_row({"student_id": "alice", "notebook": "02_rnn", "status": "graded", "reason": "",
                                "auto_score": -1, "max_score": 20}))
    rows.write_csv(tmp_path / "grades.csv", table)
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        read = list(csv.DictReader(f))
    for row, start in zip(read, starts):
        assert row["student_id"] == "'" + start, row
        # In a row's text fields, control characters are spaces: a tab or a carriage return cannot start one.
        assert row["reason"] == ("'" + start if start[0] in "=+-@" else " x"), row
    assert read[-1]["student_id"] == "alice" and read[-1]["score"] == "-1"  # numbers stay numbers


def test_every_field_of_a_row_is_bounded_and_on_one_line():
    long = "x\n\x1b[31m" * 100_000
    row = rows.make_row({"student_id": long, "notebook": long, "status": long, "reason": long,
                         "auto_score": 1, "max_score": 2}, note=long)
    for key, limit in rows.LIMITS.items():
        assert len(row[key]) <= limit and row[key].endswith("...") and row[key].isprintable(), key
    buf = io.StringIO()
    csv.writer(buf).writerow(row.values())
    assert buf.getvalue().count("\n") == 1


def test_updating_the_rows_of_some_students_leaves_every_other_line_byte_identical(tmp_path):
    """Fails if update_csv rewrites the others' lines (re-quoting, a lost leading quote, other line ends),
    drops a row, keeps a replaced student's old row, or loses the order by student and notebook."""
    def row(student, notebook, score, reason=""):
        return rows.make_row({"student_id": student, "notebook": notebook, "status": "graded", "reason": reason,
                              "auto_score": score, "max_score": 20})

    table = [row("=cmd", "02_rnn", 1, 'said "hi", then, left'), row("bob", "02_rnn", 3), row("bob", "04_lstm", 4),
             row("carol", "02_rnn", 5, "-2+3")]
    path = tmp_path / "grades.csv"
    rows.write_csv(path, table)
    before = path.read_bytes().splitlines(keepends=True)
    whole = rows.update_csv(path, [row("bob", "02_rnn", 20), row("alice", "02_rnn", 7)], {"bob", "alice"})
    after = path.read_bytes().splitlines(keepends=True)
    assert after[0] == before[0] and after[1] == before[1] and after[-1] == before[-1]  # =cmd and carol as they were
    assert [(r["student_id"], r["notebook"], r["score"]) for r in whole] == [
        ("=cmd", "02_rnn", "1"), ("alice", "02_rnn", 7), ("bob", "02_rnn", 20), ("carol", "02_rnn", "5")]
    assert len(after) == 5 and b"04_lstm" not in b"".join(after)  # bob's rows are the new grading's: a notebook he no longer submits goes, as in a whole re-grade
    assert whole[0]["reason"] == 'said "hi", then, left' and whole[-1]["reason"] == "-2+3"  # read back as given
    path.write_text("student_id,notebook\r\nx,y\r\n")
    with pytest.raises(GradeError, match="columns"):
        rows.update_csv(path, [], {"bob"})
