"""The diagrams of part three (rnncourse.drawing): readable on a phone, and the scan diagrams right."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from rnncourse import drawing  # noqa: E402

DIAGRAMS = {
    "compose_steps": {},
    "scan_rounds": {"T": 8, "method": "hillis_steele"},
    "scan_rounds_blelloch": {"T": 8, "method": "blelloch"},
    "backward_recurrence": {"steps": 4},
    "min_gru_cell": {},
    "newton_solve": {},
    "lru_cell": {},
    "selective_ssm_step": {},
    "linear_attention_memory": {},
}


@pytest.mark.parametrize("name", DIAGRAMS)
def test_every_diagram_is_readable_on_a_phone(name):
    fig = getattr(drawing, name.replace("_blelloch", ""))(**DIAGRAMS[name])
    assert drawing.check_text_size(fig) >= drawing.MIN_TEXT_PX
    assert fig.get_figwidth() <= drawing.MAX_WIDTH
    assert drawing.png_bytes(fig)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("method, depth, work", [("hillis_steele", 3, 17), ("blelloch", 5, 11)])
def test_scan_diagrams_show_the_scans_rounds(method, depth, work):
    # the rounds drawn are those of rnncourse.numpy's scans: same depth and work for T = 8,
    # and every position ends holding its whole prefix 1:t
    rounds = drawing._scan_rounds(8, method)
    assert len(rounds) == depth and sum(len(pairs) for _, pairs in rounds) == work
    start = {t: t for t in range(1, 9)}
    for _, pairs in rounds:
        new = dict(start)
        for source, target in pairs:
            assert start[target] == source + 1, "a combination must join adjacent ranges"
            new[target] = start[source]
        start = new
    assert all(start[t] == 1 for t in range(1, 9))


def test_scan_rounds_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="method is 'ladner'"):
        drawing.scan_rounds(8, "ladner")


def test_the_part_three_diagrams_are_exported():
    for name in ("compose_steps", "scan_rounds", "backward_recurrence", "min_gru_cell", "newton_solve", "lru_cell",
                 "selective_ssm_step", "linear_attention_memory"):
        assert name in drawing.__all__
