"""The line protocol between the grader's process and the child that runs student code.

Both directions are JSON objects, one a line, on two pipes that are not the
child's stdin, stdout or stderr, so that a student's ``print`` cannot be
mistaken for a message.  Large arrays (the test-set predictions) travel as
``.npy`` files in the child's working directory, read back with
``allow_pickle=False`` and checked before use.
"""
from __future__ import annotations

import json
import os

MAX_LINE = 4 * 1024 * 1024  # a description of a very deep model is large, never this large


def encode(msg: dict) -> bytes:
    return (json.dumps(msg, allow_nan=True, default=repr) + "\n").encode()


def write(fd: int, msg: dict) -> None:
    data = encode(msg)
    while data:
        n = os.write(fd, data)
        data = data[n:]


class LineReader:
    """Splits a pipe's bytes into JSON messages; bounded so a flood cannot exhaust memory."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = b""
        self.eof = False

    def feed(self) -> list[dict]:
        """Read what is available (call after select says readable); return whole messages."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
            return []
        self.buf += chunk
        out = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # not ours: the child's own protocol code never writes this
            if isinstance(msg, dict):
                out.append(msg)
        if len(self.buf) > MAX_LINE:
            self.buf = b""
        return out
