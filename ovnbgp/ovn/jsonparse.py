"""python-ovs's JSON-RPC messages parsed by the standard library's json (process-wide).

Why: python-ovs's C parser (ovs._json) builds a message as a C tree and converts it to python
objects at the end, so a big monitor reply is held twice at once: ~9.5 KB per Port_Binding row
at the peak, the largest part of the agent's peak RSS on a large node (bench/bench_mirror.py;
1 GB at 100k rows). json.loads builds the python objects straight from the text and shares
the repeated object keys: ~4.3 KB per row, plus the text itself while it is parsed.

How: python-ovs's jsonrpc.Connection feeds the text it receives to `ovs.json.Parser()` until
is_done(), then finish() gives the message (or an error string); `ovs.json.PARSER` says
whether feed() counts bytes (C parser) or characters (python parser). `install()` puts
MessageParser there: it only finds where the message ends (its outermost bracket closes,
counted outside strings with regular expressions, chunk by chunk) and keeps the text for
json.loads. `ovs.json.from_string`/`from_stream` (check_trailer) get the same results as
before: a value that is not an object or an array, or text after it, is an error string.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a whole JSON string
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)  # the rest of one, to its quote
_BRACKETS = re.compile(r"[{}\[\]]")
_NEXT = re.compile(r'["{}\[\]]')
_DEPTH = {"{": 1, "[": 1, "}": -1, "]": -1}
_SPACE = " \t\r\n"


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class MessageParser:
    """ovs.json.Parser's contract (feed, is_done, finish) over json.loads (see the module
    docstring). feed() returns how many characters of `s` belong to this message."""

    def __init__(self, check_trailer: bool = False):
        self.check_trailer = check_trailer
        self._chunks: list[str] = []
        self._depth = 0
        self._started = False
        self._in_string = False
        self._escape = False  # a backslash ended the last chunk, inside a string
        self._done = False
        self._error: str | None = None

    def feed(self, s: str) -> int:
        if self._done:
            return 0
        end = self._scan(s) if not self._fast(s) else len(s)
        self._chunks.append(s[:end])
        return end

    def is_done(self) -> bool:
        return self._done

    def finish(self):
        """The parsed value, or a string saying why there is none (as ovs.json does)."""
        text, self._chunks = "".join(self._chunks), []
        if self._error is not None:
            return self._error
        if not text.strip(_SPACE):
            return "empty input stream"
        try:
            value = json.loads(text, parse_constant=_no_constant)
        except ValueError as e:
            return f"syntax error: {e}"
        if not isinstance(value, (dict, list)):
            return "syntax error at beginning of input"
        return value

    # -- scanning ----------------------------------------------------------------------------

    def _fast(self, s: str) -> bool:
        """Take all of `s` when the message cannot end in it (inside a big message: almost
        every chunk), with C-speed regular expressions; False: scan it one token at a time."""
        if not self._started or self._in_string or self._escape:
            return False
        rest = _STRING.sub("", s)
        if '"' in rest:  # a string runs past the end (or an odd backslash): the slow path
            return False
        depths = list(accumulate(map(_DEPTH.__getitem__, _BRACKETS.findall(rest)),
                                 initial=self._depth))
        if min(depths) <= 0:
            return False
        self._depth = depths[-1]
        return True

    def _scan(self, s: str) -> int:
        i, n = 0, len(s)
        while i < n and not self._done:
            if self._escape:
                i, self._escape = i + 1, False
            if self._in_string:
                j = _STRING_REST.match(s, i).end()  # type: ignore[union-attr]
                if j < n and s[j] == '"':
                    self._in_string, i = False, j + 1
                else:  # the string goes on in the next chunk (after a backslash: escaped)
                    self._escape, i = j < n, n
                continue
            m = _NEXT.search(s, i)
            between = s[i:m.start() if m else n]
            if (not self._started or self._depth == 0) and between.strip(_SPACE):
                return self._fail("syntax error at beginning of input" if not self._started
                                  else "trailing garbage at end of input", n)
            if m is None:
                return n
            i, c = m.end(), m.group()
            if c == '"':
                if not self._started or self._depth == 0:
                    return self._fail("syntax error at beginning of input", n)
                self._in_string = True
            elif _DEPTH[c] > 0:
                if self._started and self._depth == 0:
                    return self._fail("trailing garbage at end of input", n)
                self._started, self._depth = True, self._depth + 1
            else:
                self._depth -= 1
                if self._depth < 0:
                    return self._fail("syntax error: unbalanced brackets", n)
                if self._depth == 0 and not self.check_trailer:
                    self._done = True
        return i

    def _fail(self, why: str, consumed: int) -> int:
        self._error = self._error or why
        self._done = True
        return consumed


def install() -> None:
    """Make python-ovs parse every JSON text with MessageParser (idempotent)."""
    import ovs.json

    ovs.json.Parser = MessageParser
    ovs.json.PARSER = ovs.json.PARSER_PY  # feed() counts characters
