"""Reading the events out of one file: one event, a JSON array of events, or JSON Lines.

The file is read in chunks and decoded one value at a time, so a file of a million events is never held
whole in memory. Which form a file has is decided by its first character: `[` is an array, anything else is
a sequence of JSON values separated by whitespace (one value, or JSON Lines; a value may span lines).

A file is taken whole or not at all: any syntax error, text after the closing `]`, bytes that are not
UTF-8, or no JSON at all raise `FormatError` with the line and column, and the caller drops what it already
read of that file. A cut-off file (a relay that died mid-write) is therefore rejected, never half applied.
Values that are valid JSON but not events (`5`, `"x"`, an array inside JSON Lines) are not a format error:
they reach the rules, which record them as invalid events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, NoReturn, TextIO

CHUNK_CHARS = 1 << 20
# A value longer than this is not an event; stopping here bounds the memory a broken file can take.
MAX_VALUE_CHARS = 16 << 20

_WHITESPACE = re.compile(r"[ \t\n\r]*")


class FormatError(Exception):
    """The file is not one of the three forms; the message says where and what, for a person."""


def _refuse_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity; JSON does not, and the service never sends them.
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


class _Buffer:
    """A window on the text: what is read and not yet consumed, and enough to name a line on error."""

    def __init__(self, stream: TextIO, chunk: int) -> None:
        self.stream = stream
        self.chunk = chunk
        self.text = ""
        self.pos = 0
        self.eof = False
        self.dropped = 0  # characters already dropped from the window
        self.lines_before = 0  # newlines among them
        self.last_newline = -1  # where the last of them was, counted from the start of the file

    def fill(self) -> bool:
        """Read one more chunk; False at the end of the file."""
        if self.eof:
            return False
        try:
            data = self.stream.read(self.chunk)
        except UnicodeDecodeError as exc:
            raise FormatError(f"is not UTF-8 text ({exc.reason} near byte {exc.start})") from None
        if not data:
            self.eof = True
            return False
        if self.pos:
            self.lines_before += self.text.count("\n", 0, self.pos)
            newline = self.text.rfind("\n", 0, self.pos)
            if newline >= 0:
                self.last_newline = self.dropped + newline
            self.dropped += self.pos
            self.text = self.text[self.pos :]
            self.pos = 0
        self.text += data
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end), without consuming it."""
        while True:
            match = _WHITESPACE.match(self.text, self.pos)
            assert match is not None  # the pattern matches the empty string
            self.pos = match.end()
            if self.pos < len(self.text) or not self.fill():
                return self.text[self.pos : self.pos + 1]

    def value(self) -> tuple[Any, str]:
        """The JSON value that starts here (after `peek`) and its text exactly as in the file."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # The value may just be cut by the chunk boundary: read on, up to a sane size.
                if len(self.text) - self.pos < MAX_VALUE_CHARS and self.fill():
                    continue
                self.fail(exc.pos, exc.msg)
            except ValueError as exc:
                self.fail(self.pos, str(exc))
            except RecursionError:
                self.fail(self.pos, "nested too deeply")
            # A number near the end of the window may go on in the next chunk: "12" of "12345", "1" of
            # "1.5" or "1e+5" (the scanner stops before "." or "e+" with no digit after them yet).
            if len(self.text) - end < 3 and self.fill():
                continue
            text = self.text[self.pos : end]
            self.pos = end
            return value, text

    def fail(self, pos: int, what: str) -> NoReturn:
        line = self.lines_before + self.text.count("\n", 0, pos) + 1
        newline = self.text.rfind("\n", 0, pos)
        column = pos - newline if newline >= 0 else self.dropped + pos - self.last_newline
        raise FormatError(f"is not valid JSON at line {line}, column {column}: {what}")


def read_values(stream: TextIO, *, chunk: int = CHUNK_CHARS) -> Iterator[tuple[Any, str]]:
    """Each value of the file with its text as received; `FormatError` when the file is not well-formed.

    Values are yielded as they are decoded: the caller must not act on them until the iterator is
    exhausted, since a later error rejects the whole file.
    """
    buffer = _Buffer(stream, chunk)
    first = buffer.peek()
    if first == "":
        raise FormatError("holds no JSON (it is empty)")
    if first != "[":
        while buffer.peek() != "":
            yield buffer.value()
        return
    buffer.pos += 1
    if buffer.peek() == "]":
        buffer.pos += 1
    else:
        while True:
            yield buffer.value()
            after = buffer.peek()
            buffer.pos += 1
            if after == "]":
                break
            if after != ",":
                what = "the file ends inside the array" if after == "" else "expected ',' or ']'"
                buffer.fail(buffer.pos - 1, what)
            buffer.peek()
    if buffer.peek() != "":
        buffer.fail(buffer.pos, "unexpected text after the array")
