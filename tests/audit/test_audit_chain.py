"""Chain primitives: line hashing, timestamps, checkpoint signatures."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
from hypothesis import given, settings, strategies as st

from gateway.audit import chain
from gateway.keys import KeyRing


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_iso_ts_is_what_datetime_prints(t):
    assert chain.iso_ts(t) == datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_seal_hashes_the_canonical_line_without_its_hash():
    line = {"seq": 3, "prev": "ab" * 32, "ts": "2026-11-26T00:00:00.000Z", "b": [1, {"z": 1, "a": "ç"}], "a": None}
    raw = chain.seal(line)
    body = dict(line)
    del body["hash"]
    assert raw == orjson.dumps(body, option=orjson.OPT_SORT_KEYS)[:-1] + b',"hash":"' + line["hash"].encode() + b'"}\n'
    assert orjson.loads(raw) == line and chain.check_line(raw, line) is None
    assert "stored form" in chain.check_line(raw.replace(b'"a":null,', b'"a": null,'), line)
    forged = raw.replace(line["hash"].encode(), b"00" * 32)
    assert "does not match" in chain.check_line(forged, orjson.loads(forged))
    body = dict(line)
    h = body.pop("hash")
    assert h == chain.digest(body) and chain.digest({**body, "a": 0}) != h
    assert chain.seal(dict(line)) == raw  # an existing hash is replaced, not hashed


def test_checkpoint_signature_binds_every_field():
    ring = KeyRing.ephemeral()
    kid, key = ring.signing_key()
    keys = ring.public_keys()
    line = orjson.loads(chain.checkpoint(9, "cd" * 32, kid=kid, key=key, epoch="e1", closed=True, records=7))
    assert chain.kind(line) == "checkpoint" and chain.check_signature(line, keys) is None
    for field, value in [("seq", 10), ("prev", "ef" * 32), ("ts", "2020-01-01T00:00:00.000Z")]:
        assert chain.check_signature({**line, field: value}, keys) is not None
    for field, value in [("closed", False), ("head", "ef" * 32), ("records", 8), ("epoch", "e2")]:
        assert chain.check_signature({**line, "checkpoint": {**line["checkpoint"], field: value}}, keys) is not None
    assert "not among" in chain.check_signature(line, {"k2": keys[kid]})
    assert chain.check_signature(line, {"*": keys[kid]}) is None
