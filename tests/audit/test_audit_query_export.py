"""Query filters and SIEM export over a real audit file."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from audit_helpers import exchange
from gateway.audit.export import export, to_ecs, to_ocsf
from gateway.audit.query import Filter, format_table, iter_records, parse_time, query
from gateway.audit.record import build_record
from gateway.audit.writer import AuditLog
from gateway.config import Audit
from gateway.keys import KeyRing

CASES = [  # (sub, agency, jurisdiction, route, residency, detectors, outcome)
    ("ana", "receita-federal", "BR", "br-sovereign", "BR", ("br.cpf",), "forwarded"),
    ("ana", "receita-federal", "BR", "foreign-openai", "US", ("intl.email",), "forwarded"),
    ("luis", "sat", "MX", "foreign-openai", "US", ("br.cpf", "intl.card"), "blocked"),
    ("luis", "sat", "MX", "br-sovereign", "BR", ("health.term",), "upstream_error"),
    ("zoe", "afip", "AR", "foreign-openai", "US", ("secret.api_key",), "forwarded"),
]


@pytest.fixture(scope="module")
def audit_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("q")
    ring = KeyRing.ephemeral()

    async def go():
        log = AuditLog(Audit(checkpoint_every=2), ring, directory=d)
        await log.start()
        for i, (sub, agency, cc, route, res, dets, outcome) in enumerate(CASES):
            log.append(build_record(exchange(i, sub=sub, agency=agency, jurisdiction=cc, route=route,
                                             residency=res, detectors=dets, outcome=outcome), ring))
        await log.close()
        return log.path

    return asyncio.run(go())


def ids(records) -> list[str]:
    return [r["request_id"] for r in records]


def test_iter_records_skips_epochs_and_checkpoints(audit_file):
    recs = list(iter_records([audit_file]))
    assert ids(recs) == [f"req-{i:05d}" for i in range(5)]
    assert b'"checkpoint"' in audit_file.read_bytes() and b'"epoch"' in audit_file.read_bytes()


@pytest.mark.parametrize("flt, expected", [
    (Filter(), [0, 1, 2, 3, 4]),
    (Filter(principal="ana"), [0, 1]),
    (Filter(agency="sat"), [2, 3]),
    (Filter(detector="br.cpf"), [0, 2]),
    (Filter(detector="intl."), [1, 2]),
    (Filter(detector="secret*"), [4]),
    (Filter(route="foreign-openai"), [1, 2, 4]),
    (Filter(residency="us"), [1, 2, 4]),
    (Filter(outcome="blocked"), [2]),
    (Filter(outcome="forwarded", residency="US"), [1, 4]),
    (Filter(principal="luis", detector="health.term", outcome="upstream_error"), [3]),
    (Filter(principal="nobody"), []),
])
def test_filters(audit_file, flt, expected):
    assert ids(query([audit_file], flt)) == [f"req-{i:05d}" for i in expected]


def test_time_filters(audit_file):
    now = time.time()
    assert len(list(query([audit_file], Filter(since=now - 3600)))) == 5
    assert list(query([audit_file], Filter(since=now + 60))) == []
    assert list(query([audit_file], Filter(until=now - 3600))) == []
    assert len(list(query([audit_file], Filter(since=parse_time("1h"), until=parse_time("2099-01-01"))))) == 5


def test_parse_time_forms():
    now = 1_800_000_000.0
    assert parse_time("1h", now) == now - 3600
    assert parse_time("15m ago", now) == now - 900
    assert parse_time("2d", now) == now - 172800
    assert parse_time("90s", now) == now - 90
    assert parse_time("1w", now) == now - 604800
    assert parse_time("2026-11-26T10:00:00Z") == parse_time("2026-11-26T07:00:00-03:00") == 1795687200.0
    assert parse_time("2026-11-26") == 1795651200.0  # midnight UTC when no zone is given
    with pytest.raises(ValueError):
        parse_time("yesterday-ish")


def test_table_lists_each_record(audit_file):
    table = format_table(query([audit_file], Filter(agency="sat")))
    rows = table.splitlines()
    assert rows[0].split()[:4] == ["ts", "seq", "principal", "agency"]
    assert len(rows) == 4 and "blocked" in rows[2] and "br.cpf:2,intl.card:1" in rows[2]


def test_ocsf_api_activity(audit_file):
    recs = list(iter_records([audit_file]))
    ev = to_ocsf(recs[0])
    assert (ev["class_uid"], ev["category_uid"], ev["activity_id"], ev["type_uid"]) == (6003, 6, 1, 600301)
    assert ev["status_id"] == 1 and ev["severity_id"] == 2  # forwarded, with something sensitive found
    assert ev["actor"]["user"] == {"uid": "ana", "org": {"name": "receita-federal", "uid": "BR"}}
    assert ev["api"]["operation"] == "/v1/chat/completions" and ev["api"]["response"]["code"] == 200
    assert ev["dst_endpoint"] == {"name": "br-sovereign", "location": {"country": "BR"}}
    assert ev["metadata"]["uid"] == "req-00000" and ev["metadata"]["correlation_uid"] == "dec-00000"
    assert abs(ev["time"] / 1000 - time.time()) < 3600
    assert ev["unmapped"]["soberana"]["findings"] == recs[0]["findings"]
    blocked = to_ocsf(recs[2])
    assert blocked["status_id"] == 2 and blocked["severity_id"] == 3 and blocked["status_detail"] == "blocked"


def test_ecs_document(audit_file):
    recs = list(iter_records([audit_file]))
    doc = to_ecs(recs[3])
    assert doc["@timestamp"] == recs[3]["ts"]
    assert doc["event"]["outcome"] == "failure" and doc["event"]["type"] == ["error"]
    assert doc["event"]["duration"] == 3_000_000
    assert doc["user"]["id"] == "luis" and doc["organization"]["name"] == "sat"
    assert doc["destination"]["geo"]["country_iso_code"] == "BR"
    assert doc["rule"]["id"] == ["br.identifiers"] and doc["rule"]["ruleset"] == "rev-2026-11-26"
    assert to_ecs(recs[2])["event"]["type"] == ["denied"]


def test_export_every_record_serializes(audit_file):
    for fmt in ("ocsf", "ecs"):
        docs = [orjson.loads(orjson.dumps(d)) for d in export(iter_records([audit_file]), fmt)]
        assert len(docs) == 5


def test_ecs_duration_is_the_latency_to_the_nanosecond():
    """``latency_ms`` has three decimals (whole microseconds); as a binary float ``1.001 * 1e6`` is
    1000999.99…, and the ECS duration must still be 1001000 ns, not a nanosecond short."""
    for ms in (1.001, 1.003, 12.345, 99.999, 0.001, 3.0):
        doc = to_ecs({"ts": "2026-11-26T10:00:00.000Z", "outcome": "forwarded", "upstream": {"latency_ms": ms}})
        assert doc["event"]["duration"] == int(f"{ms:.3f}".replace(".", "")) * 1000, ms


def test_a_record_of_an_odd_shape_neither_stops_a_query_nor_an_export(audit_file, tmp_path):
    """Query and export do not verify (that is ``audit verify``'s job) and skip what is not JSON; a line
    that is JSON but whose members have other types (a damaged or hand-made file) must not end the
    security team's query or SIEM export at that line with a traceback."""
    odd = {"seq": 99, "ts": 5, "principal": "x", "findings": ["a", {"detector": 7}], "upstream": [1],
           "decision": 7, "outcome": 3}
    path = tmp_path / "odd.jsonl"
    path.write_bytes(audit_file.read_bytes() + orjson.dumps(odd) + b"\n")
    assert len(list(query([path], Filter()))) == len(CASES) + 1
    for flt in (Filter(principal="ana"), Filter(agency="sat"), Filter(route="br-sovereign"), Filter(residency="br"),
                Filter(detector="br."), Filter(detector="br.cpf"), Filter(outcome="forwarded"), Filter(since=0.0)):
        assert 99 not in [r["seq"] for r in query([path], flt)], flt
    assert "99" in format_table(query([path], Filter()))
    for fmt in ("ocsf", "ecs"):
        docs = list(export(iter_records([path]), fmt))
        assert len(docs) == len(CASES) + 1
        orjson.dumps(docs[-1])
