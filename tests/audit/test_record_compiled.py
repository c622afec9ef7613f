"""The compiled record encoder (gateway/audit/_record_c.pyx) against its reference (build_record +
chain.seal): it loads where it was built, writes the very same bytes and chain for every Exchange,
and what it writes passes `soberana audit verify`."""

from __future__ import annotations

import glob
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from audit_helpers import RAW_VALUES, exchange
from gateway.audit import writer
from gateway.audit.record import OUTCOMES, build_record
from gateway.audit.verify import verify_file
from gateway.audit.writer import AuditLog
from gateway.auth.principal import Principal
from gateway.config import Audit, Upstream
from gateway.dialects.segments import Segment
from gateway.exchange import Exchange
from gateway.inspect.findings import Finding
from gateway.keys import init_keys, load_public_keys

ROOT = Path(__file__).resolve().parents[2]
BUILT = bool(glob.glob(str(ROOT / "gateway" / "audit" / "_record_c*.so")) +
             glob.glob(str(ROOT / "gateway" / "audit" / "_record_c*.pyd")))
EXPECT = os.environ.get("SOBERANA_EXPECT_COMPILED") == "1" or BUILT
NO_EXT = os.environ.get("SOBERANA_NO_EXTENSIONS") == "1"
SOBERANA = str(Path(sys.executable).parent / "soberana")

if EXPECT:
    from gateway.audit import _record_c as C
else:
    C = pytest.importorskip("gateway.audit._record_c")


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    return init_keys(tmp_path_factory.mktemp("rc") / "keys")


# ---------------------------------------------------------------------------- loading

@pytest.mark.skipif(NO_EXT, reason="pure-Python build requested")
def test_compiled_encoder_is_what_the_writer_uses_where_it_was_built():
    # Fail, not skip, when a build was expected: a silent fallback would hide a broken build.
    assert writer.IMPLEMENTATION == "cython"
    assert C.__file__.endswith((".so", ".pyd"))


def test_no_extensions_switch_gives_the_reference():
    env = dict(os.environ, SOBERANA_NO_EXTENSIONS="1")
    out = subprocess.run([sys.executable, "-c", "import gateway.audit.writer as w; print(w.IMPLEMENTATION, w._c)"],
                         env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["python", "None"]


# ---------------------------------------------------------------------------- same bytes

@pytest.fixture(autouse=True)
def compiled_writer(monkeypatch):
    """The writer chains records with the compiled module even where the reference was selected
    (SOBERANA_NO_EXTENSIONS=1): the comparison needs both, whichever is in use."""
    monkeypatch.setattr(writer, "_c", C)


def _pair(ring, tmp_path):
    """Two unstarted logs (no disk touched): one seals reference records, one compiled ones."""
    return (AuditLog(Audit(checkpoint_every=0), ring, directory=tmp_path, worker=1),
            AuditLog(Audit(checkpoint_every=0), ring, directory=tmp_path, worker=2))


def _taken(ex, ring, t=1764201600.123456) -> bool:
    """Whether the compiled encoder chains ``ex`` itself (rather than leaving it to the reference)."""
    return C.chain([(t, ex, ring)], 0, bytearray(), 0, "0" * 64, 1)[0] == 1


def _both(ref_log, c_log, ex, ring, t=1764201600.123456):
    """(reference line, the line the writer chains with the compiled encoder, whether it took it)."""
    a = ref_log._seal_record(t, build_record(ex, ring))
    c_log._buf = bytearray()
    c_log._chain([(t, ex, ring)])
    return a, bytes(c_log._buf), _taken(ex, ring, t)


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("detectors", [(), ("br.cpf", "intl.email"),
                                       ("br.cpf", "intl.email", "intl.card", "secret.api_key", "health.term")])
def test_typical_exchanges_are_encoded_compiled_and_identical(ring, tmp_path, outcome, detectors):
    r, c = _pair(ring, tmp_path)
    for i in range(3):
        ex = exchange(i, outcome=outcome, detectors=detectors)
        ex.request_id = uuid.uuid4().hex if i else ex.request_id
        a, b, compiled = _both(r, c, ex, ring)
        assert compiled, "a common Exchange fell back to the Python path"
        assert a == b
        assert not any(v.encode() in b for v in RAW_VALUES)
    assert r._head == c._head and r._seq == c._seq


def test_every_escape_and_non_ascii_matches_orjson(ring, tmp_path):
    r, c = _pair(ring, tmp_path)
    weird = "".join(chr(i) for i in range(0x20)) + '\x7f"\\/\u2028é ñ 中文 \U0001F600'
    ex = exchange(1)
    ex.error, ex.model = weird, weird[::-1]
    ex.principal = Principal(sub="José Ñúñez", agency="Secretaría de Salud", jurisdiction="MX")
    ex.decision.by_detector = {"ñ.x": "allow", "a\n": "redact", "é": weird, "z": "hash"}
    ex.decision.rules = ["r\u0000", "ü", weird]
    ex.route = SimpleNamespace(cfg=SimpleNamespace(name=weird, residency="ÉU"))
    for latency in (0.00001, 1e16, 12.3456, float("nan"), float("inf"), -0.0, 123456789.1239):
        ex.upstream_latency_ms = latency
        a, b, compiled = _both(r, c, ex, ring)
        assert compiled and a == b


def test_unusual_values_fall_back_and_still_match(ring, tmp_path):
    r, c = _pair(ring, tmp_path)
    cases = []
    ex = exchange(1); ex.decision.by_detector = {1: "allow"}; cases.append(ex)        # orjson refuses
    ex = exchange(2); ex.bytes_in = 2 ** 70; cases.append(ex)                         # beyond int64
    ex = exchange(3); ex.error = "bad \ud800 surrogate"; cases.append(ex)             # not UTF-8
    ex = exchange(4); ex.findings = [[("br.cpf", "x", None, 0, 3)], 7]; cases.append(ex)  # not a list
    ex = exchange(5); ex.decision.rules = {"a"}; cases.append(ex)                     # a set
    ex = exchange(6); ex.outcome = None; cases.append(ex)
    for ex in cases:
        a, b, _ = _both(r, c, ex, ring)
        assert a == b
    assert not _taken(cases[0], ring)


# Detectors of every normalization kind (identifiers, folded, exact secrets, text), plus unknown ones.
DETECTORS = ["br.cpf", "br.cnpj", "mx.curp", "us.ssn", "intl.card", "intl.iban", "intl.email", "intl.ip",
             "secret.api_key", "secret.jwt", "health.term", "health.icd10", "gov.marking", "intl.uninspectable",
             "intl.phone", "x.ünïcode"]
TEXT = st.text(alphabet=st.sampled_from("0123456789.-/ @abcXYZ \t\nÑñé５中\u00ad\u200b\"\\"), max_size=60) | st.text(max_size=30)
STRING = st.one_of(st.none(), st.sampled_from(["gpt-4o-mini", "claude-3-5-sonnet", "tax-office", "BR",
                                                "analyst.7@agency.gov", "529.982.247-25", "/v1/chat/completions",
                                                "internal", "a" * 70]), TEXT)
FLOAT = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.00001, 41.7, 1e16, 3.0])


@st.composite
def exchanges(draw):
    ex = Exchange(draw(st.one_of(st.just(uuid.uuid4().hex), st.just(str(uuid.uuid4())), STRING,
                                 st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))),
                  draw(STRING), "openai")
    ex.principal = draw(st.one_of(
        st.none(),
        st.builds(Principal, sub=STRING.filter(lambda s: s is not None), agency=STRING.filter(lambda s: s is not None),
                  jurisdiction=STRING.filter(lambda s: s is not None)),
        st.builds(SimpleNamespace, sub=STRING, agency=STRING, jurisdiction=STRING | st.integers())))
    ex.model, ex.level = draw(STRING), draw(STRING)
    texts = draw(st.lists(TEXT, max_size=4))
    ex.segments = [Segment(("messages", i, "content"), t, "message") for i, t in enumerate(texts)]
    ex.findings = []
    for i in range(draw(st.integers(0, len(texts) + 1))):  # one more than the segments: none to cut from
        n = len(texts[i]) if i < len(texts) else 5
        ex.findings.append([Finding(draw(st.sampled_from(DETECTORS)), "national_id", draw(st.sampled_from(["BR", None])),
                                    s, s + draw(st.integers(-1, 12)))
                            for s in draw(st.lists(st.integers(-1, n), max_size=6))])
    if draw(st.booleans()):
        route = draw(st.one_of(st.none(), st.builds(SimpleNamespace, upstream=STRING, residency=STRING)))
        ex.decision = SimpleNamespace(
            decision_id=draw(STRING), route=route, destination=draw(STRING),
            by_detector=draw(st.dictionaries(st.sampled_from(DETECTORS) | TEXT, STRING, max_size=4)),
            rules=draw(st.lists(TEXT, max_size=3)), policy_revision=draw(STRING))
    if draw(st.booleans()):
        ex.route = SimpleNamespace(cfg=draw(st.one_of(
            st.builds(SimpleNamespace, name=STRING, residency=STRING),
            st.just(Upstream(name="br-sovereign", url="http://127.0.0.1:9/v1", residency="BR")))))
    ex.upstream_status = draw(st.none() | st.integers(100, 599))
    ex.upstream_latency_ms = draw(st.none() | FLOAT)
    ex.outcome = draw(st.sampled_from(OUTCOMES + ("weird", "")))
    ex.bytes_in = draw(st.none() | st.integers(0, 2 ** 40))
    ex.bytes_out = draw(st.integers(0, 2 ** 40))
    ex.error = draw(st.none() | STRING)
    ex.leaks = draw(st.sampled_from([0, 0, 1, 3]))
    return ex


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(exchanges(), min_size=1, max_size=4))
def test_compiled_and_reference_write_the_same_bytes_and_chain(ring, tmp_path, batch):
    r, c = _pair(ring, tmp_path)
    for k, ex in enumerate(batch):
        a, b, _ = _both(r, c, ex, ring, t=1764201600.0 + k * 0.0017)
        assert a == b
        assert orjson.loads(b)["hash"] == c._head
    assert r._head == c._head and r._seq == c._seq


# ---------------------------------------------------------------------------- real files

@pytest.mark.skipif(NO_EXT, reason="pure-Python build requested")
async def test_files_written_through_the_compiled_path_verify(tmp_path):
    ring = init_keys(tmp_path / "keys")
    log = AuditLog(Audit(checkpoint_every=4), ring, directory=tmp_path / "audit")
    await log.start()
    for i in range(11):
        ex = exchange(i, outcome=OUTCOMES[i % len(OUTCOMES)],
                      detectors=("br.cpf", "intl.email", "intl.card", "secret.api_key", "health.term"))
        ex.request_id = uuid.uuid4().hex
        log.record(ex)
    await log.close()
    raw = log.path.read_bytes()
    assert not any(v.encode() in raw for v in RAW_VALUES)
    rep = verify_file(log.path, load_public_keys(tmp_path / "keys"))
    assert rep.ok, rep
    p = subprocess.run([SOBERANA, "audit", "verify", str(log.path), "--key", str(tmp_path / "keys" / "audit-signing.pub")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and ": OK:" in p.stdout, p.stdout + p.stderr
    records = [orjson.loads(x) for x in raw.splitlines() if b'"findings"' in x]
    assert len(records) == 11 and all(math.isfinite(r["seq"]) for r in records)


def test_fingerprints_of_every_padding_length_match(ring, tmp_path):
    # SHA-256 padding edges: values of 0-130 bytes, around 55/56 and 64 (one or two more blocks).
    r, c = _pair(ring, tmp_path)
    for n in range(1, 131):
        text = "k" * n + " Ñ" * (n % 3)
        ex = exchange(n)
        ex.segments = [Segment(("messages", 0, "content"), text, "message")]
        ex.findings = [[Finding("secret.api_key", "credentials", None, 0, len(text)),
                        Finding("intl.email", "contact", None, 0, n)]]
        a, b, compiled = _both(r, c, ex, ring)
        assert compiled and a == b
