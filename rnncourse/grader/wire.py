"""The wire between the grader and the runner: frames, and the only messages they carry.

This module is the one place that knows the format. The runner imports it
inside the sandbox (it needs nothing but the standard library); the grader
uses it to write commands and to read, field by field, what comes back.

**A frame** is an 8-byte big-endian length, then that many bytes: a header
(one JSON object, UTF-8, ended by a newline) and an optional body (bytes).

**The conversation is lock-step.** After ``ready``, the grader sends one
command and waits for its one reply before it sends the next (command, body -> reply):

- (the runner has started) -> ``{"t": "ready"}``;
- ``{"t": "code", "i": k}``, body the cell's source (UTF-8)
  -> ``{"t": "done", "i": k, "error": E}``;
- ``{"t": "case", "i": k, "check": C, "case": j}``, body the case's arrays (NPZ)
  -> ``{"t": "outputs", "i": k, "check": C, "case": j}``, body the outputs (NPZ);
- ``{"t": "end"}`` -> the runner exits.

``k`` is the step of the plan, ``C`` a check's name, ``j`` the case's index
in that check, ``E`` ``null`` or the first ``ERROR_LIMIT`` characters of
the error the cell raised.

Everything the runner sends is untrusted as soon as the first student cell
has run (the student's code shares its process). So the grader believes a
reply only when it is exactly the reply to the command it sent:
:func:`check_reply` accepts the fields above and nothing else, of the right
types and values, within ``HEADER_LIMIT`` and ``BODY_LIMIT``; any
other frame is a :class:`FrameError`, which stops that run like a crash
does. The grader's clocks start when it sends a command; no frame can move
them.
"""

import json

LENGTH_BYTES = 8
HEADER_LIMIT = 4096  # bytes of a reply's header (a reply's only text is an error, cut to ERROR_LIMIT)
BODY_LIMIT = 32 * 1024 * 1024  # bytes of one case's outputs
ERROR_LIMIT = 500  # characters of a cell's error sent back

COMMANDS = ("code", "case", "end")
REPLIES = ("ready", "done", "outputs")


class FrameError(ValueError):
    """A frame that is not the expected reply; the message says what is wrong (for the reason column)."""


def encode(header, body=b""):
    """One frame: the length, the header as a JSON line, the body."""
    head = json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
    return (len(head) + len(body)).to_bytes(LENGTH_BYTES, "big") + head + body


# --- commands (grader -> runner) --------------------------------------------------------


def code_command(step, source):
    return encode({"t": "code", "i": step}, source.encode("utf-8", "surrogatepass"))


def case_command(step, check, case, npz):
    return encode({"t": "case", "i": step, "check": check, "case": case}, npz)


def end_command():
    return encode({"t": "end"})


# --- replies (runner -> grader) ---------------------------------------------------------


def ready_reply():
    return encode({"t": "ready"})


def done_reply(step, error):
    return encode({"t": "done", "i": step, "error": None if error is None else str(error)[:ERROR_LIMIT]})


def outputs_reply(step, check, case, npz):
    return encode({"t": "outputs", "i": step, "check": check, "case": case}, npz)


# --- reading ---------------------------------------------------------------------------


class FrameReader:
    """Splits a byte stream into frames, refusing a frame longer than ``limit`` before it is read."""

    def __init__(self, limit=HEADER_LIMIT + BODY_LIMIT):
        self.limit = limit
        self.buffer = bytearray()

    def feed(self, data):
        self.buffer += data

    def next(self):
        """The next whole frame's ``(header bytes, body bytes)``, or None when it has not all come yet."""
        if len(self.buffer) < LENGTH_BYTES:
            return None
        size = int.from_bytes(self.buffer[:LENGTH_BYTES], "big")
        if size > self.limit:
            raise FrameError(f"a frame of {size} bytes (the limit is {self.limit})")
        if len(self.buffer) < LENGTH_BYTES + size:
            return None
        payload = bytes(self.buffer[LENGTH_BYTES : LENGTH_BYTES + size])
        del self.buffer[: LENGTH_BYTES + size]
        head, newline, body = payload.partition(b"\n")
        if not newline:
            raise FrameError("a frame without a header line")
        return head, body


def read_frame(read):
    """The next frame from a blocking ``read(n)`` (the runner's side): ``(header dict, body)``; EOFError at the end."""

    def exactly(n):
        parts, left = [], n
        while left:
            chunk = read(left)
            if not chunk:
                raise EOFError("the grader closed the channel")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    size = int.from_bytes(exactly(LENGTH_BYTES), "big")
    head, _, body = exactly(size).partition(b"\n")
    return json.loads(head), body


def _is_int(value):
    return type(value) is int  # noqa: E721 - bool is an int subclass, and not an index


def check_reply(head, body, expected):
    """The reply ``(head bytes, body bytes)`` as a dict, if it is exactly the reply ``expected`` asks for.

    ``expected`` is the command sent (a dict: ``{"t": "code", "i": k}``,
    ``{"t": "case", "i": k, "check": C, "case": j}``) or ``{"t": "start"}``
    for the first reply. Raises :class:`FrameError` otherwise.
    """
    if len(head) > HEADER_LIMIT:
        raise FrameError(f"a header of {len(head)} bytes (the limit is {HEADER_LIMIT})")
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FrameError("a header that is not JSON") from None
    if not isinstance(header, dict):
        raise FrameError("a header that is not a JSON object")
    kind = header.get("t")
    want = {"start": "ready", "code": "done", "case": "outputs"}[expected["t"]]
    if kind != want:
        shown = kind if isinstance(kind, str) and len(kind) <= 20 else type(kind).__name__
        raise FrameError(f"a {shown!r} frame where a {want!r} reply was due")
    fields = {"ready": {"t"}, "done": {"t", "i", "error"}, "outputs": {"t", "i", "check", "case"}}[kind]
    if set(header) != fields:
        raise FrameError(f"a {kind!r} reply with the fields {sorted(map(str, header))[:8]}; expected {sorted(fields)}")
    if kind != "ready" and not (_is_int(header["i"]) and header["i"] == expected["i"]):
        raise FrameError(f"a {kind!r} reply for another step than step {expected['i']}")
    if kind == "done":
        error = header["error"]
        if error is not None and not isinstance(error, str):
            raise FrameError("a 'done' reply whose error is not text")
        if body:
            raise FrameError("a 'done' reply with a body")
        if error is not None:
            header["error"] = error[:ERROR_LIMIT]
    elif kind == "outputs":
        if header["check"] != expected["check"] or not (_is_int(header["case"]) and header["case"] == expected["case"]):
            raise FrameError(f"outputs for another case than case {expected['case']} of {expected['check']}")
        if len(body) > BODY_LIMIT:
            raise FrameError(f"outputs of {len(body)} bytes (the limit is {BODY_LIMIT})")
    elif body:
        raise FrameError("a 'ready' reply with a body")
    return header
