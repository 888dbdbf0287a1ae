"""The numbers the book quotes are the numbers it should produce.

For each chapter, tests/book/expected/<chapter>.json lists values the chapter
glues (``myst_nb.glue``) with what they should be and how far they may move:

    {
      "page": "book/01_sequence_modeling",
      "values": {
        "ppl_bigram": {"value": 10.14, "rel": 0.03, "why": "..."},
        "window_k":   {"value": 8, "why": "exact: a setting of the experiment"}
      }
    }

``abs`` and ``rel`` are tolerances as in math.isclose (a value passes if it is
within either; both default to 0, i.e. exact). ``why`` says where the
tolerance comes from: the values are seeded, so a tolerance allows for
floating-point differences between machines and library versions, or for
data that changes with the Python release, never for an unseeded run.
Strings and booleans must match exactly. The glued values are read from the
last build (``make book``; the lead's ``make test`` builds first). To cover a
new chapter, add its JSON file: nothing else changes.
"""

import json
import math
from pathlib import Path

import pytest

from booktools import build_dir, glue_values, source_of

EXPECTED = sorted((Path(__file__).parent / "expected").glob("*.json"))


def load(path):
    spec = json.loads(path.read_text(encoding="utf-8"))
    assert set(spec) >= {"page", "values"}, f"{path.name}: expected keys 'page' and 'values'"
    return spec


@pytest.mark.parametrize("path", EXPECTED, ids=[p.stem for p in EXPECTED])
def test_expected_file_is_well_formed(path):
    spec = load(path)
    assert source_of(spec["page"]) is not None, f"{path.name}: page {spec['page']} has no source file"
    for name, entry in spec["values"].items():
        assert "value" in entry, f"{path.name}: {name} has no 'value'"
        assert "why" in entry and entry["why"].strip(), f"{path.name}: {name} has no 'why'"
        unknown = set(entry) - {"value", "abs", "rel", "why"}
        assert not unknown, f"{path.name}: {name} has unknown keys {sorted(unknown)}"
        for key in ("abs", "rel"):
            assert entry.get(key, 0) >= 0, f"{path.name}: {name}: {key} must be >= 0"


def matches(actual, entry):
    expected = entry["value"]
    if isinstance(expected, bool) or isinstance(expected, str):
        return actual == expected or str(actual) == str(expected)
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        return False
    return math.isclose(actual, expected, rel_tol=entry.get("rel", 0.0), abs_tol=entry.get("abs", 0.0))


@pytest.mark.parametrize("path", EXPECTED, ids=[p.stem for p in EXPECTED])
def test_glued_values_match(path):
    spec = load(path)
    glued = glue_values(spec["page"])
    if glued is None:
        pytest.skip(
            f"{spec['page']} has no glued results in {build_dir()}: build the book first "
            "(make book, or jupyter-book build --all . ; set RNNCOURSE_BUILD_DIR for another build folder)"
        )
    problems = []
    for name, entry in spec["values"].items():
        if name not in glued:
            problems.append(f"  {name}: not glued by the page any more (renamed or removed?)")
        elif not matches(glued[name], entry):
            tol = ", ".join(f"{k} {entry[k]}" for k in ("abs", "rel") if k in entry) or "exact"
            problems.append(f"  {name}: got {glued[name]!r}, expected {entry['value']!r} ({tol}; {entry['why']})")
    assert not problems, f"{spec['page']}: results moved:\n" + "\n".join(problems)
