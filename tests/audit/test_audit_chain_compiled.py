"""The compiled chaining of a group (``_record_c.chain``, what ``AuditLog._flush`` calls once per
turn of the loop) against the reference (``build_record`` + ``chain.seal``, one record at a time):
the same bytes, the same chain, checkpoints in the same places, and the same failure behaviour."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from audit_helpers import RAW_VALUES, exchange
from gateway.audit import chain, writer
from gateway.audit.verify import verify_file
from gateway.audit.writer import AuditLog
from gateway.config import Audit
from gateway.keys import init_keys, load_public_keys
from test_record_compiled import C, exchanges

T0 = 1764201600.0  # 2025-11-27T00:00:00Z


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cc") / "keys"
    init_keys(d)
    return d


@pytest.fixture(scope="module")
def ring(keydir):
    from gateway.keys import KeyRing
    return KeyRing.load(keydir)


@pytest.fixture
def fixed_clock(monkeypatch):
    """Checkpoints read the clock; both logs of a comparison must sign the same text."""
    monkeypatch.setattr(chain.time, "time", lambda: T0 + 0.5)


def _chained(items, ring, tmp_path, *, compiled: bool, every: int = 0, stdout: bool = False) -> AuditLog:
    """An unstarted log (no disk) that chained ``items`` the way ``_flush`` does."""
    log = AuditLog(Audit(checkpoint_every=every, stdout=stdout), ring, directory=tmp_path)
    saved = writer._c
    writer._c = C if compiled else None
    try:
        log._chain(list(items))
    finally:
        writer._c = saved
    return log


def _assert_same(a: AuditLog, b: AuditLog) -> None:
    assert bytes(a._buf) == bytes(b._buf)
    assert (a._seq, a._head, a._since_cp, a._epoch_records, a._buf_records, a._checkpoints) == \
           (b._seq, b._head, b._since_cp, b._epoch_records, b._buf_records, b._checkpoints)


# ------------------------------------------------------------------------------- the hash

@pytest.mark.parametrize("portable", [False, True])
def test_sha256_of_every_length_matches_hashlib(portable):
    # Both the CPU's SHA extensions (where present) and the portable rounds, across padding edges.
    for n in list(range(0, 200)) + [447, 448, 511, 512, 966, 4096, 65537]:
        data = os.urandom(n)
        assert C.sha256_hex(data, portable) == hashlib.sha256(data).hexdigest(), n


# ------------------------------------------------------------------------------- same bytes

def test_a_group_of_typical_exchanges_is_chained_in_one_call_and_identical(ring, tmp_path):
    items = []
    for i in range(40):
        ex = exchange(i, outcome=("forwarded", "blocked", "upstream_error")[i % 3],
                      detectors=("br.cpf", "intl.email", "intl.card", "secret.api_key", "health.term"))
        ex.request_id = uuid.uuid4().hex
        items.append((T0 + i * 0.0173, ex, ring))
    buf = bytearray(b"kept")
    j, seq, head = C.chain(items, 0, buf, 7, chain.GENESIS, 1000)
    assert j == 40 and seq == 47 and buf.startswith(b"kept")
    ref = AuditLog(Audit(checkpoint_every=0), ring, directory=tmp_path)
    ref._seq = 7
    saved, writer._c = writer._c, None
    try:
        ref._chain(items)
    finally:
        writer._c = saved
    assert bytes(buf[4:]) == bytes(ref._buf) and head == ref._head
    assert not any(v.encode() in buf for v in RAW_VALUES)


def test_timestamps_match_iso_ts_at_rounding_edges(ring):
    ex = exchange(1)
    ts = [T0, T0 + 0.0005, T0 + 0.0004999, T0 + 0.9994999, T0 + 0.9995, T0 + 0.9999996, T0 + 59.9999999,
          1e9 + 0.25, 4102444799.9996, 1764201601.123456, 1764201601.1234565]
    items = [(t, ex, ring) for t in ts]
    buf = bytearray()
    C.chain(items, 0, buf, 1, chain.GENESIS, 100)
    got = [orjson.loads(x)["ts"] for x in bytes(buf).splitlines()]
    assert got == [chain.iso_ts(t) for t in ts]


@pytest.mark.usefixtures("fixed_clock")
@pytest.mark.parametrize("every", [0, 1, 3, 7])
def test_checkpoints_fall_where_the_reference_puts_them(ring, tmp_path, every):
    items = [(T0 + i, exchange(i), ring) for i in range(20)]
    a = _chained(items, ring, tmp_path / "a", compiled=False, every=every)
    b = _chained(items, ring, tmp_path / "b", compiled=True, every=every)
    _assert_same(a, b)
    assert b._checkpoints == (20 // every if every else 0)


@pytest.mark.usefixtures("fixed_clock")
def test_appended_dicts_and_unusual_exchanges_take_the_reference_in_between(ring, tmp_path):
    from gateway.audit.record import build_record

    odd = exchange(3)
    odd.decision.by_detector = {1: "allow"}  # orjson refuses a non-str key: the reference's invalid_record
    items = [(T0, exchange(0), ring), (T0 + 1, build_record(exchange(1), ring), None), (T0 + 2, exchange(2), ring),
             (T0 + 3, odd, ring), (T0 + 4, exchange(4), ring), (T0 + 5, exchange(5), ring)]
    assert C.chain(items, 0, bytearray(), 1, chain.GENESIS, 100)[0] == 1  # stops before the dict
    assert C.chain(items, 2, bytearray(), 1, chain.GENESIS, 100)[0] == 3  # ... and before the odd one
    a = _chained([(t, dict(o) if isinstance(o, dict) else o, r) for t, o, r in items], ring, tmp_path / "a",
                 compiled=False, every=2)
    b = _chained(items, ring, tmp_path / "b", compiled=True, every=2)
    _assert_same(a, b)
    assert b"invalid_record" in bytes(b._buf)


def test_stdout_copies_are_the_chained_lines(ring, tmp_path):
    items = [(T0 + i, exchange(i), ring) for i in range(5)]
    log = _chained(items, ring, tmp_path, compiled=True, every=2, stdout=True)
    # every line, checkpoints included: the shipped stream can serve as a witness
    assert log._out == bytes(log._buf).splitlines(keepends=True)
    assert len(log._out) == 5 + 2 and all(type(x) is bytes for x in log._out)


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(exchanges(), min_size=1, max_size=6),
       st.lists(st.floats(min_value=0, max_value=4102444800, allow_nan=False), min_size=6, max_size=6))
def test_any_group_chains_to_the_same_bytes(ring, tmp_path, batch, times):
    items = [(times[k], ex, ring) for k, ex in enumerate(batch)]
    a = _chained(items, ring, tmp_path / "a", compiled=False)
    b = _chained(items, ring, tmp_path / "b", compiled=True)
    _assert_same(a, b)


# ------------------------------------------------------------------------------- failure paths

async def test_a_record_that_fails_to_build_loses_only_itself(tmp_path, ring, keydir, monkeypatch):
    real = writer.build_record
    bad = exchange(2)
    bad.findings = 7  # the compiled encoder leaves it to the reference ...

    def build(ex, r):
        if ex is bad:
            raise RuntimeError("boom 123.456.789-09")  # ... which fails here (a bug, say)
        return real(ex, r)

    monkeypatch.setattr(writer, "build_record", build)
    log = AuditLog(Audit(checkpoint_every=2), ring, directory=tmp_path)
    await log.start()
    for ex in (exchange(0), exchange(1), bad, exchange(3), exchange(4)):
        log.record(ex, ring)
    await asyncio.sleep(0)
    await log.close()
    assert log.lag == 0
    ids = [o.get("request_id") for o in map(orjson.loads, log.path.read_bytes().splitlines()) if "request_id" in o]
    assert ids == ["req-00000", "req-00001", "req-00003", "req-00004"]
    assert verify_file(log.path, load_public_keys(keydir)).ok


async def test_a_failing_sink_turns_the_log_unhealthy_under_record(tmp_path, ring):
    log = AuditLog(Audit(), ring, directory=tmp_path)
    await log.start()
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log._fd)  # every write now fails with ENOSPC
    os.close(full)
    for i in range(20):
        log.record(exchange(i), ring)
    await asyncio.sleep(0)
    for _ in range(500):
        if not log.healthy:
            break
        await asyncio.sleep(0.01)
    assert not log.healthy and log.error == "ENOSPC"
    with pytest.raises(writer.AuditUnavailable):
        log.record(exchange(99), ring)
    for _ in range(500):
        if log.lag == 0:
            break
        await asyncio.sleep(0.01)
    assert log.lag == 0
    await log.close()


async def test_close_chains_and_writes_everything_recorded_in_the_same_turn(tmp_path, ring, keydir):
    log = AuditLog(Audit(checkpoint_every=10), ring, directory=tmp_path)
    await log.start()
    for i in range(95):
        log.record(exchange(i), ring)
    await log.close()  # no turn of the loop in between: close itself must chain them
    rep = verify_file(log.path, load_public_keys(keydir))
    assert rep.ok and rep.closed and rep.records == 95 and rep.checkpoints == 10


async def test_queue_bound_and_health_hold_within_one_turn_of_record_calls(tmp_path, ring, keydir):
    """record() checks the bound once per turn of the loop and then counts down; it must refuse
    exactly where the per-record checks would."""
    log = AuditLog(Audit(), ring, directory=tmp_path)
    log.max_queue = 3
    await log.start()
    for i in range(3):
        log.record(exchange(i), ring)  # one turn: no await in between
    with pytest.raises(writer.AuditUnavailable, match="behind"):
        log.record(exchange(3), ring)
    await log.close()
    assert verify_file(log.path, load_public_keys(keydir)).records == 3

    sick = AuditLog(Audit(), ring, directory=tmp_path / "sick")
    await sick.start()
    sick.record(exchange(0), ring)
    sick._healthy, sick.error = False, "EIO"  # as the writer thread's _fail leaves it, mid-turn
    with pytest.raises(writer.AuditUnavailable, match="EIO"):
        sick.record(exchange(1), ring)
    sick._healthy = True
    await sick.close()


def test_latency_text_matches_orjson_of_round_at_ties_and_every_magnitude(ring):
    # The encoder writes round(latency, 3) itself (no decimal conversion); orjson of the rounded
    # float is the specification. Exact ties (k/16, k/2000 where representable) round half to even.
    import random

    rnd = random.Random(8)
    values = [0.0, -0.0, 0.0005, 0.0015, 0.0625, 0.1875, 2.5e-4, 999999999.9994, 999999999.9996, 41.7, 1e-9,
              -0.0004, -12.3455, 123456.0005]
    values += [k / 16 for k in range(-40, 40)] + [k / 2000 for k in range(-50, 50)]
    values += [rnd.uniform(0, 10.0 ** e) * rnd.choice((1, -1)) for e in range(-6, 10) for _ in range(150)]
    ex = exchange(1)
    for x in values:
        ex.upstream_latency_ms = x
        want = orjson.dumps(round(float(x), 3))
        got = bytearray()
        assert C.chain([(T0, ex, ring)], 0, got, 1, chain.GENESIS, 1)[0] == 1
        assert b'"latency_ms":' + want + b"," in got, (x, want, got)


def test_an_exchange_with_an_unset_slot_takes_the_reference(ring, tmp_path):
    ex = exchange(1)
    del ex.model  # the reference's record is incomplete (and says so); the compiled one must not guess
    items = [(T0, exchange(0), ring), (T0 + 1, ex, ring), (T0 + 2, exchange(2), ring)]
    assert C.chain(items, 1, bytearray(), 1, chain.GENESIS, 100)[0] == 1
    a = _chained(items, ring, tmp_path / "a", compiled=False)
    b = _chained(items, ring, tmp_path / "b", compiled=True)
    _assert_same(a, b)
    assert b"audit_record_incomplete" in bytes(b._buf)
