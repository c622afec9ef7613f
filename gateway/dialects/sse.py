"""Server-sent events (the WHATWG ``text/event-stream`` framing), parsed incrementally.

Upstream bytes arrive in arbitrary pieces: an event, a line, even a CRLF pair may be split across
chunks. :class:`SSEParser` buffers only the current unfinished event and hands back whole events, each
with the exact bytes it came from so that a proxy can pass untouched events on byte for byte.
"""

from __future__ import annotations

import re

_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"

MAX_EVENT_BYTES = 8 * 1024 * 1024
"""The most an unfinished event may hold. Without a bound, an upstream that never ends its event (or
its line) made the gateway keep it all, and rescan it on every chunk: 20 MB took seven seconds of a
worker's event loop. The largest real events (a Responses ``response.completed`` with its whole
output, a partial image) stay well below it."""


class SSEEventTooLarge(ValueError):
    """An event grew past ``MAX_EVENT_BYTES`` before its end (the message holds no stream bytes)."""


class SSEEvent:
    """One event block of a stream, as framed by a blank line."""

    __slots__ = ("event", "data", "id", "retry", "has_data", "raw")

    def __init__(self, event: str | None, data: str, id: str | None = None, retry: int | None = None,
                 has_data: bool = True, raw: bytes | None = None):
        self.event = event
        """The ``event:`` field, ``None`` when absent."""
        self.data = data
        """The ``data:`` lines joined with ``\\n``."""
        self.id = id
        self.retry = retry
        self.has_data = has_data
        """False for a block of only comments or fields without data (browsers do not dispatch it)."""
        self.raw = raw if raw is not None else format_event(data, event, id)
        """The exact bytes of the block, terminating blank line included."""

    def __bytes__(self) -> bytes:
        return self.raw

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data!r})"


def format_event(data: str, event: str | None = None, id: str | None = None) -> bytes:
    """Serialize one event; multi-line data becomes several ``data:`` lines."""
    out = []
    if event is not None:
        out.append(f"event: {event}\n")
    if id is not None:
        out.append(f"id: {id}\n")
    for line in data.split("\n"):
        out.append(f"data: {line}\n")
    out.append("\n")
    return "".join(out).encode()


class SSEParser:
    """Incremental SSE framer: ``feed`` bytes, get the events completed by them."""

    __slots__ = ("_buf", "_pos", "_event", "_data", "_id", "_retry", "_seen_data", "_bom")

    def __init__(self):
        self._bom = True
        self._buf = b""   # bytes of the unfinished event block (and the unread tail)
        self._pos = 0     # where the next unread line starts in _buf
        self._reset()

    def _reset(self) -> None:
        self._event = None
        self._data: list[str] = []
        self._id = None
        self._retry = None
        self._seen_data = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Take the next bytes of the stream; return the events they complete, in order."""
        buf = self._buf + chunk if self._buf else bytes(chunk)
        pos, start, out = self._pos, 0, []
        if self._bom:  # a UTF-8 byte order mark may open the stream: skip it for parsing, keep it in raw
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf
                return out
            self._bom = False
            if buf.startswith(_BOM):
                pos = 3
        n = len(buf)
        if buf.find(b"\r") < 0:  # (find: ``bytes in bytes`` formats and discards a TypeError first)
            # the common case, LF-only framing: find whole events with bytes.find (C speed), not line by line
            while pos < n:
                if buf[pos] == 10:  # an empty line: the event ends here
                    pos += 1
                    out.append(self._dispatch(buf[start:pos]))
                    start = pos
                    continue
                j = buf.find(b"\n\n", pos)
                if j < 0:
                    k = buf.rfind(b"\n", pos)
                    if k >= 0:
                        for line in buf[pos:k].split(b"\n"):
                            self._field(line)
                        pos = k + 1
                    break
                for line in buf[pos:j].split(b"\n"):
                    self._field(line)
                pos = j + 2
                out.append(self._dispatch(buf[start:pos]))
                start = pos
            self._buf = buf[start:]
            self._pos = pos - start
            self._bounded()
            return out
        while True:
            m = _EOL.search(buf, pos)
            if m is None:
                break
            if m.group() == b"\r" and m.end() == n:
                break  # a CR at the end of the chunk may be the first half of CRLF: wait for more
            line = buf[pos:m.start()]
            pos = m.end()
            if line:
                self._field(line)
            else:
                out.append(self._dispatch(buf[start:pos]))
                start = pos
        self._buf = buf[start:]
        self._pos = pos - start
        self._bounded()
        return out

    def _bounded(self) -> None:
        if len(self._buf) > MAX_EVENT_BYTES:
            self._buf, self._pos = b"", 0  # (and nothing of it is kept)
            raise SSEEventTooLarge(f"an event grew past {MAX_EVENT_BYTES} bytes before its end")

    def finish(self) -> list[SSEEvent]:
        """At end of stream: an unterminated last block, if any, as an event (its raw bytes as they came)."""
        buf, pos = self._buf, self._pos
        self._buf, self._pos = b"", 0
        if not buf:
            return []
        tail = buf[pos:]
        for line in _EOL.split(tail):
            if line:
                self._field(line)
        return [self._dispatch(buf)]

    def _field(self, line: bytes) -> None:
        if line[:1] == b":":
            return  # comment
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
            self._seen_data = True
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if value.find(b"\0") < 0:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value.isdigit():
                self._retry = int(value)

    def _dispatch(self, raw: bytes) -> SSEEvent:
        ev = SSEEvent(self._event, "\n".join(self._data), self._id, self._retry, self._seen_data, raw)
        self._reset()
        return ev
