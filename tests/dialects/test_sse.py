"""The incremental SSE framer: any split, any line ending, raw bytes kept."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.dialects.sse import SSEEvent, SSEParser, format_event

FIX = Path(__file__).parents[1] / "fixtures"

STREAM = (
    ": a comment line, ignored\n"
    "event: first\n"
    "data: line one\n"
    "data: line two\n"
    "id: 7\n"
    "\n"
    ": keep-alive\n"
    "\n"
    "data:no space after the colon\n"
    "data:  two spaces keep one\n"
    "retry: 1500\n"
    "\n"
    "event: last\n"
    "data: olá — ünïcødé 🙂\n"
    "\n"
).encode()


def parse_all(stream: bytes, cuts: list[int]) -> list[SSEEvent]:
    p, out, prev = SSEParser(), [], 0
    for c in cuts + [len(stream)]:
        out += p.feed(stream[prev:c])
        prev = c
    return out + p.finish()


def shape(events):
    return [(e.event, e.data, e.id, e.retry, e.has_data) for e in events]


EXPECTED = [
    ("first", "line one\nline two", "7", None, True),
    (None, "", None, None, False),
    (None, "no space after the colon\n two spaces keep one", None, 1500, True),
    ("last", "olá — ünïcødé 🙂", None, None, True),
]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_single_split_point(eol):
    stream = STREAM.replace(b"\n", eol)
    for cut in range(len(stream) + 1):
        events = parse_all(stream, [cut])
        assert shape(events) == EXPECTED, (eol, cut)
        assert b"".join(e.raw for e in events) == stream  # byte-exact re-serialization


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_byte_by_byte(eol):
    stream = STREAM.replace(b"\n", eol)
    events = parse_all(stream, list(range(1, len(stream))))
    assert shape(events) == EXPECTED
    assert [e.raw for e in events] == [e.raw for e in parse_all(stream, [])]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, len(STREAM) * 2), max_size=12), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_random_splits(cuts, eol):
    stream = STREAM.replace(b"\n", eol)
    events = parse_all(stream, sorted(min(c, len(stream)) for c in cuts))
    assert shape(events) == EXPECTED
    assert b"".join(e.raw for e in events) == stream


def test_golden_streams_reassemble_exactly():
    for f in sorted(FIX.glob("*/*.sse")):
        data = f.read_bytes()
        events = parse_all(data, list(range(7, len(data), 13)))
        assert b"".join(e.raw for e in events) == data
        assert all(e.has_data for e in events)


def test_unterminated_last_event_comes_out_at_finish():
    p = SSEParser()
    assert p.feed(b"data: a\n\ndata: tail") != []
    [ev] = p.finish()
    assert ev.data == "tail" and ev.raw == b"data: tail"
    assert p.finish() == []


def test_cr_at_chunk_end_waits_for_a_possible_lf():
    p = SSEParser()
    assert p.feed(b"data: x\r\n\r") == []
    [ev] = p.feed(b"\n")
    assert ev.data == "x" and ev.raw == b"data: x\r\n\r\n"


def test_format_event_round_trips():
    raw = format_event("a\nb", "message_start", "3")
    assert raw == b"event: message_start\nid: 3\ndata: a\ndata: b\n\n"
    [ev] = SSEParser().feed(raw)
    assert (ev.event, ev.data, ev.id, bytes(ev)) == ("message_start", "a\nb", "3", raw)


def test_byte_order_mark_at_stream_start_is_skipped_but_kept_in_raw():
    stream = b"\xef\xbb\xbfdata: first\n\ndata: second\n\n"
    for cut in range(len(stream) + 1):
        events = parse_all(stream, [cut])
        assert [e.data for e in events] == ["first", "second"], cut
        assert b"".join(e.raw for e in events) == stream


EOLS = st.sampled_from(["\n", "\r\n", "\r"])
LINES = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(LINES, EOLS), min_size=1, max_size=3), EOLS), min_size=1, max_size=5),
       st.lists(st.integers(0, 400), max_size=8))
def test_mixed_line_endings_and_any_splits(events_spec, cuts):
    stream, want = "", []
    for lines, end in events_spec:
        for text, eol in lines:
            stream += f"data: {text}{eol}"
        # a CR line end followed by an LF blank line would read as one CRLF: that is not a blank line
        stream += "\r" if stream.endswith("\r") and end == "\n" else end
        want.append("\n".join(t for t, _ in lines))
    data = stream.encode()
    events = parse_all(data, sorted(min(c, len(data)) for c in cuts))
    assert [e.data for e in events] == want
    assert b"".join(e.raw for e in events) == data
