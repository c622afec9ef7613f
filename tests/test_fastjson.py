"""gateway.fastjson: ``loads`` returns exactly what ``orjson.loads`` returns (or raises what it raises),
whichever parser did the work, so the gateway behaves as it did with orjson alone."""

from __future__ import annotations

import math
import sys

import aiohttp
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import fastjson
from gateway.testing.harness import Harness

EDGE = [
    b'{"a":1,"a":2}', b'{"a":123456789012345678901234567890}', b'{"a":18446744073709551615}',
    b'{"a":18446744073709551616}', b'{"a":-9223372036854775808}', b'{"a":-9223372036854775809}',
    b'{"a":"\\ud800"}', b'{"a":"\\ud800\\udc00"}', b'{"a":"\\udc00x"}', b'{"a":NaN}', b'{"a":Infinity}',
    b'\xef\xbb\xbf{"a":1}', b' {"a":1} \n', b'\t{"a":1}\r\n', b'{"a":"\xff"}', b'{"a":"\xed\xa0\x80"}',
    b'{"a":"\xc0\xaf"}', b'{"a":"\xf4\x90\x80\x80"}', b'{"a":1e400}', b'{"a":-1e400}', b'{"a":1.0}', b'{"a":-0}',
    b'{"a":-0.0}', b'{"a":"x\x00"}', b'{"a":"\x01"}', b'', b' ', b'{"a":1}x', b'{"a":1}\x00', b'{"a" : 1 , }',
    b'{"a":0.1e-400}', b'{"a":1E5}', b'{"a":01}', b'{"a":"\\u0000"}', b'{"a":2.5e-324}', b'{"a":"\\x"}',
    b'{"a":tru}', b'{"a":1.}', b'{"a":.5}', b'{"a":-}', b'{"a":1e}', b'"x"', b'1', b'[]', b'null',
    b'{"\xe2\x80\xa8":1}', b'{"a":"\\/"}', b'{"a":1.7976931348623157e308}',
]
# numbers of 300 to 330 digits (orjson refuses those beyond a float), at every offset against the sample stride
EDGE += [b' ' * pad + b'{"a":' + sign + b'1' + b'0' * n + b'}' for n in (299, 307, 308, 309, 310, 330)
         for pad in (0, 1, 60, 153) for sign in (b'', b'-')]
EDGE += [b'{"a":17976931348623157' + b'0' * 292 + b'}', b'{"a":17976931348623159' + b'0' * 292 + b'}',
         b'{"a":1' + b'0' * 400 + b'.5}', b'{"a":0.' + b'0' * 400 + b'1}', b'{"a":[' + b'9' * 5000 + b']}']
# ints around 64 bits (18, 19 and 20 digits: orjson floats beyond -2**63 .. 2**64-1), at every offset
# against the 9-byte sample stride, bare and inside text
EDGE += [b' ' * pad + b'{"a":' + sign + digits + b'}' for pad in range(9) for sign in (b'', b'-')
         for digits in (b'9' * 18, b'1' + b'0' * 17, b'9223372036854775807', b'9223372036854775808',
                        b'9223372036854775809', b'9999999999999999999', b'18446744073709551615',
                        b'18446744073709551616', b'1' * 25)]
EDGE += [b' ' * pad + b'{"a":"' + b'7' * n + b'","b":' + b'5' * n + b'.25}' for pad in range(9) for n in (17, 18, 19, 20)]
EDGE += [b'[' * n + b']' * n for n in (254, 255, 256, 512, 999, 1000, 1023, 1024, 1025, 2000)]
EDGE += [b'{"a":' * n + b'1' + b'}' * n for n in (1000, 1024, 1025)]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _verdict(fn, data):
    try:
        return "ok", fn(data)
    except orjson.JSONDecodeError:
        return "err", None


def _check(data: bytes) -> None:
    want, got = _verdict(orjson.loads, data), _verdict(fastjson.loads, data)
    assert want[0] == got[0], data[:80]
    if want[0] == "ok":
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(20000)  # the comparison walks documents nested 1024 deep
        try:
            assert _same(want[1], got[1]), data[:80]
        finally:
            sys.setrecursionlimit(limit)


@pytest.mark.parametrize("data", EDGE)
def test_edge_cases_have_orjsons_verdict_and_value(data):
    _check(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_generated_documents_parse_alike(doc):
    try:
        data = orjson.dumps(doc)
    except orjson.JSONEncodeError:  # an int orjson cannot write: write it as text
        import json
        data = json.dumps(doc).encode()
    _check(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(alphabet='{}[]",:0123456789.eE+-tfnrulsa\\u \x00\xe9', max_size=40).map(str.encode))
def test_arbitrary_bytes_get_orjsons_verdict(data):
    _check(data)


# --- the data path, end to end: with fastjson and with orjson alone, the same bytes go out --------

BIG = 123456789012345678901234567890


def _bodies():
    cpf = "Contribuinte CPF 529.982.247-25, e-mail ana.souza@example.gov.br."
    return [
        # transformed (pseudonymised for the foreign upstream), renamed, a big int riding along
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "seed": BIG, "messages": [{"role": "user", "content": cpf}]}),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "max_tokens": BIG, "messages": [{"role": "user", "content": "oi"}]}),
        # translated OpenAI -> Anthropic (max_tokens read by the translation)
        ("/v1/chat/completions", {"model": "claude-sonnet-4", "max_tokens": BIG, "temperature": -BIG,
                                  "messages": [{"role": "user", "content": cpf}]}),
        ("/v1/chat/completions", {"model": "claude-sonnet-4", "max_completion_tokens": 0, "max_tokens": -BIG,
                                  "messages": [{"role": "user", "content": "oi"}]}),
        # translated Anthropic -> OpenAI
        ("/v1/messages", {"model": "gpt-4o-mini", "max_tokens": BIG, "top_p": BIG,
                          "messages": [{"role": "user", "content": cpf}]}),
        # token arrays: a big int is not a token (orjson: a float), so this is a 400 either way
        ("/v1/completions", {"model": "gpt-4o-mini", "prompt": [1, 2, BIG]}),
        ("/v1/completions", {"model": "gpt-4o-mini", "prompt": [[1, 2], [BIG]]}),
        ("/v1/completions", {"model": "gpt-4o-mini", "prompt": [1, 2, 18446744073709551615]}),
        ("/v1/embeddings", {"model": "gpt-4o-mini", "input": [5, -BIG]}),
        # no change at all: the caller's bytes go as they are
        ("/v1/chat/completions", {"model": "llama-3.3-70b", "n": BIG, "messages": [{"role": "user", "content": "oi"}]}),
    ]


def _raw(body: dict) -> bytes:
    import json
    return json.dumps(body, ensure_ascii=False).encode()


def _stable(v):
    """An answer without the parts that differ per run (ids, timestamps, the request id)."""
    if isinstance(v, dict):
        return {k: _stable(x) for k, x in v.items() if k not in ("id", "created", "created_at")}
    if isinstance(v, list):
        return [_stable(x) for x in v]
    return v


async def _run(tmp_path, name: str) -> list:
    out = []
    async with Harness(tmp_path / name) as h:
        async with aiohttp.ClientSession() as s:
            for path, body in _bodies():
                headers = {"Authorization": f"Bearer {h.keys['br']}", "Content-Type": "application/json"}
                if path == "/v1/messages":
                    headers = {"x-api-key": h.keys["br"], "anthropic-version": "2023-06-01",
                               "Content-Type": "application/json"}
                async with s.post(h.url + path, data=_raw(body), headers=headers) as r:
                    out.append((path, r.status, _stable(orjson.loads(await r.read()))))
        out.append([(_stable(x["body"]), x["path"]) for x in h.received("US") + h.received("BR")])
    return out


async def test_the_data_path_sends_and_answers_what_orjson_alone_did(tmp_path, monkeypatch):
    fast = await _run(tmp_path, "fast")
    monkeypatch.setattr(fastjson, "_decode", orjson.loads)  # the specification
    want = await _run(tmp_path, "orjson")
    assert fast == want
    assert any(status != 200 for _, status, _ in fast[:-1]) and any(status == 200 for _, status, _ in fast[:-1])
