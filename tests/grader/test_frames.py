"""What comes out of the sandbox is data: every reply is checked field by field against the command it answers.

The end-to-end side (a cell that garbles the channel, or forges frames to
extend its time limit, is stopped there and costs only itself) is in
test_stops.py; here, :func:`rnncourse.grader.wire.check_reply` on every kind
of malformed reply, and the frame reader's limits.
"""

import json

import pytest

from rnncourse.grader import wire
from rnncourse.grader.wire import FrameError, FrameReader, check_reply

CODE = {"t": "code", "i": 3}
CASE = {"t": "case", "i": 4, "check": "rnn_forward", "case": 2}


def split(frame):
    reader = FrameReader()
    reader.feed(frame)
    return reader.next()


def reply(header, body=b""):
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return head, body


def test_the_replies_the_runner_sends_are_accepted():
    assert check_reply(*split(wire.ready_reply()), {"t": "start"}) == {"t": "ready"}
    assert check_reply(*split(wire.done_reply(3, None)), CODE) == {"t": "done", "i": 3, "error": None}
    assert check_reply(*split(wire.done_reply(3, "E" * 10_000)), CODE)["error"] == "E" * wire.ERROR_LIMIT
    head, body = split(wire.outputs_reply(4, "rnn_forward", 2, b"PK npz"))
    assert check_reply(head, body, CASE)["check"] == "rnn_forward" and body == b"PK npz"


MALFORMED = {
    "not_json": (reply(b"{not json"), CODE, "not JSON"),
    "deep_json": (reply(b"[" * 2000 + b"]" * 2000), CODE, "not JSON"),
    "not_an_object": (reply([1, 2]), CODE, "not a JSON object"),
    "huge_header": (reply({"t": "done", "i": 3, "error": "x" * 10_000}), CODE, "a header of"),
    "wrong_kind": (reply({"t": "step", "i": 3}), CODE, "a 'step' frame where a 'done' reply was due"),
    "ready_again": (reply({"t": "ready"}), CODE, "a 'ready' frame where a 'done' reply was due"),
    "other_step": (reply({"t": "done", "i": 4, "error": None}), CODE, "another step"),
    "bool_step": (reply({"t": "done", "i": True, "error": None}), {"t": "code", "i": 1}, "another step"),
    "float_step": (reply({"t": "done", "i": 3.0, "error": None}), CODE, "another step"),
    "extra_field": (reply({"t": "done", "i": 3, "error": None, "score": 16}), CODE, "with the fields"),
    "missing_field": (reply({"t": "done", "i": 3}), CODE, "with the fields"),
    "error_not_text": (reply({"t": "done", "i": 3, "error": {"passed": True}}), CODE, "not text"),
    "done_with_body": (reply({"t": "done", "i": 3, "error": None}, b"extra"), CODE, "with a body"),
    "other_check": (reply({"t": "outputs", "i": 4, "check": "rnn_backward", "case": 2}), CASE, "another case"),
    "other_case": (reply({"t": "outputs", "i": 4, "check": "rnn_forward", "case": 1}), CASE, "another case"),
    "outputs_for_a_cell": (reply({"t": "outputs", "i": 3, "check": "x", "case": 0}), CODE, "where a 'done' reply"),
    "huge_body": (reply({"t": "outputs", "i": 4, "check": "rnn_forward", "case": 2}, b"0" * (wire.BODY_LIMIT + 1)),
                  CASE, "outputs of"),
    "kind_not_text": (reply({"t": ["done"] * 100}), CODE, "a 'list' frame"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_reply_that_is_not_exactly_the_one_due_is_refused(name):
    """A grader that believed a frame's own say (its kind, its step) would accept each of these."""
    (head, body), expected, message = MALFORMED[name]
    with pytest.raises(FrameError, match=message):
        check_reply(head, body, expected)


def test_the_frame_reader_refuses_a_length_over_its_limit_before_reading_it():
    reader = FrameReader(limit=1000)
    reader.feed((2**62).to_bytes(8, "big") + b"garbage")
    with pytest.raises(FrameError, match="a frame of 4611686018427387904 bytes"):
        reader.next()


def test_the_frame_reader_waits_for_a_whole_frame_and_needs_a_header_line():
    frame = wire.done_reply(1, None)
    reader = FrameReader()
    reader.feed(frame[:-3])
    assert reader.next() is None
    reader.feed(frame[-3:] + (5).to_bytes(8, "big") + b"abcde")
    assert reader.next()[0] == json.dumps({"t": "done", "i": 1, "error": None}, separators=(",", ":")).encode()
    with pytest.raises(FrameError, match="without a header line"):
        reader.next()


def test_commands_and_replies_share_one_format():
    data = bytearray(wire.code_command(7, "x = 'é'"))

    def read(n):
        chunk = bytes(data[:n])
        del data[:n]
        return chunk

    header, body = wire.read_frame(read)
    assert header == {"t": "code", "i": 7} and body.decode() == "x = 'é'"
