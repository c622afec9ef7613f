"""Principle 5: no raw sensitive value in an audit file, checked directly and with the detectors."""

from __future__ import annotations

import re
import unicodedata

import orjson
import pytest

from audit_helpers import EMAIL, RAW_VALUES, exchange
from gateway.audit.export import export
from gateway.audit.query import iter_records
from gateway.audit.record import build_record
from gateway.audit.writer import AuditLog
from gateway.config import Audit
from gateway.inspect import scan
from gateway.keys import init_keys

ALL = ("br.cpf", "intl.email", "intl.card", "secret.api_key", "health.term")
# Fields that are hex or base64 by construction (asserted below); the detectors run over the rest.
_OPAQUE = {"hash", "prev", "head", "sig", "id"}


def _mask(obj):
    if isinstance(obj, dict):
        return {k: ("<opaque>" if k in _OPAQUE else _mask(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask(v) for v in obj]
    return obj


@pytest.mark.parametrize("via", ["append", "record"])
async def test_no_raw_value_in_any_audit_line(tmp_path, via):
    ring = init_keys(tmp_path / "keys")
    log = AuditLog(Audit(checkpoint_every=4), ring, directory=tmp_path / "audit")
    await log.start()
    for i in range(12):
        ex = exchange(i, detectors=ALL, outcome=("forwarded", "blocked", "upstream_error", "client_abort")[i % 4],
                      sub=EMAIL if i % 5 == 0 else f"user-{i}")
        if i % 4 == 3:
            ex.error = f"client went away while we held {RAW_VALUES[0]}"  # a careless message
        if via == "append":
            log.append(build_record(ex, ring))
        else:
            log.record(ex, ring)  # built later, at the end of the loop's turn
    await log.close()
    data = log.path.read_bytes()
    exported = b"".join(orjson.dumps(d) for fmt in ("ocsf", "ecs") for d in export(iter_records([log.path]), fmt))
    for blob in (data, exported):
        text = blob.decode()
        for v in RAW_VALUES:
            assert v not in text
            assert unicodedata.normalize("NFKC", v).casefold() not in text.casefold()
            digits = re.sub(r"\D", "", v)
            if len(digits) >= 8:
                assert digits not in text
    for raw in data.splitlines():
        obj = orjson.loads(raw)
        for f in obj.get("findings", []):
            assert all(re.fullmatch(r"[0-9a-f]{32}", fp) for fp in f["fingerprints"])
        assert re.fullmatch(r"[0-9a-f]{64}", obj["hash"]) and re.fullmatch(r"[0-9a-f]{64}", obj["prev"])
        visible = orjson.dumps(_mask(obj)).decode()
        assert scan(visible) == [], visible
