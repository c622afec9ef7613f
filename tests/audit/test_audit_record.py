"""The audit record: SPEC section 9 fields from the Exchange, fingerprints instead of values."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import given, settings, strategies as st

from audit_helpers import CPF, CPF_DIGITS, EMAIL, RAW_VALUES, exchange
from gateway.audit.record import build_record
from gateway.exchange import Exchange
from gateway.keys import KeyRing

SPEC_FIELDS = {"request_id", "decision_id", "principal", "endpoint", "model", "level", "findings", "decision",
               "upstream", "outcome", "bytes_in", "bytes_out"}


def test_forwarded_request_has_every_spec_field():
    ring = KeyRing.ephemeral()
    rec = build_record(exchange(7, detectors=("br.cpf", "intl.email", "intl.card")), ring)
    assert SPEC_FIELDS <= set(rec) and not {"seq", "ts", "prev", "hash"} & set(rec)
    assert rec["request_id"] == "req-00007" and rec["decision_id"] == "dec-00007"
    assert rec["principal"] == {"sub": "analyst-7", "agency": "receita-federal", "jurisdiction": "BR"}
    assert (rec["endpoint"], rec["model"], rec["level"], rec["outcome"]) == (
        "/v1/chat/completions", "gpt-4o-mini", "internal", "forwarded")
    assert rec["decision"] == {"route": "br-sovereign", "residency": "BR", "destination": "domestic",
                               "actions": {"br.cpf": "allow", "intl.email": "allow", "intl.card": "allow"},
                               "rules": ["br.identifiers"], "policy_revision": "rev-2026-11-26"}
    assert rec["upstream"] == {"name": "br-sovereign", "residency": "BR", "status": 200, "latency_ms": 12.346}
    assert (rec["bytes_in"], rec["bytes_out"]) == (1007, 507)
    assert [f["detector"] for f in rec["findings"]] == ["br.cpf", "intl.email", "intl.card"]


def test_fingerprints_are_keyed_hmacs_of_the_normalized_value():
    ring = KeyRing.ephemeral()
    rec = build_record(exchange(1), ring)
    cpf = next(f for f in rec["findings"] if f["detector"] == "br.cpf")
    # the formatted and the bare CPF are one value: counted twice, fingerprinted once
    assert cpf["count"] == 2 and len(cpf["fingerprints"]) == 1
    key = ring.hmac_key("fingerprint")
    assert cpf["fingerprints"][0] == hmac.new(key, CPF_DIGITS.encode(), hashlib.sha256).hexdigest()[:32]
    email = next(f for f in rec["findings"] if f["detector"] == "intl.email")
    assert re.fullmatch(r"[0-9a-f]{32}", email["fingerprints"][0])
    assert email["fingerprints"][0] != hashlib.sha256(EMAIL.encode()).hexdigest()[:32]  # keyed, not a bare hash
    # another keyring (another deployment) gives unrelated fingerprints
    other = build_record(exchange(1), KeyRing.ephemeral())
    assert other["findings"][0]["fingerprints"] != cpf["fingerprints"]
    # the same value in another request joins
    assert build_record(exchange(2), ring)["findings"][0]["fingerprints"] == cpf["fingerprints"]


def test_no_raw_value_in_the_record():
    ring = KeyRing.ephemeral()
    ex = exchange(3, detectors=("br.cpf", "intl.email", "intl.card", "secret.api_key", "health.term"))
    text = str(build_record(ex, ring))
    for v in RAW_VALUES:
        assert v not in text


def test_sensitive_subject_and_free_text_error_are_not_copied():
    ring = KeyRing.ephemeral()
    ex = exchange(4, sub=EMAIL)
    ex.error = f"upstream said: bad CPF {CPF}"
    rec = build_record(ex, ring)
    assert rec["principal"]["sub"].startswith("fp:") and EMAIL not in str(rec)
    assert rec["error"].startswith("fp:") and CPF not in str(rec)
    # the subject fingerprint is stable, so one caller's records still join
    assert build_record(exchange(5, sub=EMAIL), ring)["principal"]["sub"] == rec["principal"]["sub"]


def test_rejected_request_without_principal_or_decision():
    ex = Exchange("req-x", "/v1/chat/completions", "openai")
    ex.error = "unauthorized"
    rec = build_record(ex, KeyRing.ephemeral())
    assert rec["outcome"] == "rejected" and rec["error"] == "unauthorized"
    assert rec["principal"] is None and rec["decision"] is None and rec["decision_id"] is None
    assert rec["upstream"] is None and rec["findings"] == []


def test_blocked_request_keeps_the_actions_that_blocked():
    ex = exchange(6, outcome="blocked", route="foreign-openai", residency="US")
    rec = build_record(ex, KeyRing.ephemeral())
    assert rec["outcome"] == "blocked" and rec["upstream"] is None
    assert rec["decision"]["actions"] == {"br.cpf": "pseudonymize", "intl.email": "pseudonymize"}


def test_an_unknown_outcome_is_recorded_as_rejected():
    ex = exchange(8)
    ex.outcome = "something-else"
    assert build_record(ex, KeyRing.ephemeral())["outcome"] == "rejected"


def test_a_real_policy_decision_maps_into_the_record():
    from gateway.policy.engine import Candidate, Decision
    ex = exchange(9)
    ex.decision = Decision(decision_id="d-1", outcome="route", route=Candidate("br-sovereign", "BR", "llama"),
                           destination="domestic", actions=["allow", "allow", "allow"],
                           by_detector={"br.cpf": "allow", "intl.email": "allow"}, rules=["br.identifiers"],
                           blocked_by=[], policy_revision="abc123", applied=["BR"])
    rec = build_record(ex, KeyRing.ephemeral())
    assert rec["decision_id"] == "d-1"
    assert rec["decision"]["route"] == "br-sovereign" and rec["decision"]["policy_revision"] == "abc123"


def test_client_supplied_strings_that_look_like_personal_data_are_fingerprinted():
    ring = KeyRing.ephemeral()
    ex = exchange(10)
    ex.request_id = CPF  # X-Request-Id is chosen by the client
    ex.model = "+55 11 98765-4321"
    rec = build_record(ex, ring)
    assert rec["request_id"].startswith("fp:") and rec["model"].startswith("fp:")
    assert CPF not in str(rec) and CPF_DIGITS not in str(rec) and "98765" not in str(rec)
    # ordinary identifiers stay readable: our uuids, model names with versions and dates
    ex = exchange(11)
    ex.request_id = "3f2a9c41d0b84e5c9a7f61b2c3d4e5f6"
    ex.model = "gpt-4o-2024-08-06"
    rec = build_record(ex, ring)
    assert (rec["request_id"], rec["model"]) == ("3f2a9c41d0b84e5c9a7f61b2c3d4e5f6", "gpt-4o-2024-08-06")
    assert build_record(exchange(12, sub="llama-3.3-70b"), ring)["principal"]["sub"] == "llama-3.3-70b"


def test_fingerprint_matches_the_transform_stage():
    from gateway.audit.record import fingerprint
    from gateway.transform import tokens
    ring = KeyRing.ephemeral()
    for det, value in [("br.cpf", CPF), ("intl.email", "Ana.Lima@Fazenda.gov.br"), (None, "analyst-7")]:
        assert fingerprint(ring, value, det) == tokens.fingerprint(ring, value, det)


def test_a_broken_exchange_still_yields_a_record_and_no_value():
    ex = exchange(13)
    ex.request_id = "0123456789abcdef0123456789abcdef"
    ex.bytes_in = f"not a number {CPF}"  # a stage left something unexpected
    rec = build_record(ex, KeyRing.ephemeral())
    assert rec["error"] == "audit_record_incomplete" and rec["outcome"] == "forwarded"
    assert rec["request_id"] == "0123456789abcdef0123456789abcdef" and CPF not in str(rec)


@settings(max_examples=400, deadline=None)
@given(detector=st.sampled_from(["br.cpf", "intl.card", "intl.email", "intl.ip", "secret.api_key", "health.term",
                                 "health.icd10", "gov.marking", "intl.uninspectable", "us.ssn", "plugin.x"]),
       value=st.text(st.characters(max_codepoint=0x7F), max_size=30) | st.text(max_size=30)
       | st.sampled_from([CPF, EMAIL, " Ana.Lima@Fazenda.gov.br\t", "５２９.９８２", "DIABETES\x1c  Tipo\u00a02", "\x1fa\x1c b\x1d"]))
def test_fast_normalization_equals_the_transform_stage(detector, value):
    """The audit's ASCII fast path (no NFKC, bytes translate) normalizes exactly as the transform stage,
    so a fingerprint in the record joins with ``hash`` tokens and other records."""
    from gateway.audit.record import _normalized
    from gateway.transform.pseudonymize import normalize_value
    assert _normalized(detector, value) == normalize_value(detector, value).encode()


def test_a_remembered_principal_is_a_copy_and_a_sensitive_one_is_not_remembered():
    from gateway.audit import record
    ring = KeyRing.ephemeral()
    first = build_record(exchange(20, sub="analyst-9"), ring)
    first["principal"]["sub"] = "changed"  # a consumer editing its record must not change the next one
    assert build_record(exchange(21, sub="analyst-9"), ring)["principal"]["sub"] == "analyst-9"
    rec = build_record(exchange(22, sub=EMAIL), ring)
    assert rec["principal"]["sub"].startswith("fp:")
    assert not any(EMAIL in (p.sub, p.agency) for p in record._PRINCIPALS)


def test_clean_remembers_plain_codes_and_agrees_with_judged_safe(tmp_path):
    # _clean returns a code it judged safe and remembers it (so the compiled encoder finds it); a code
    # without digits or @ is judged too (it once skipped the judgement): a health term is fingerprinted
    # and stays out of the memo
    from gateway.audit import record as R

    from gateway.keys import init_keys

    ring = init_keys(tmp_path)
    R._SAFE.clear()
    assert R._clean("stub-model", ring) == "stub-model" and "stub-model" in R._SAFE
    assert R._clean("portador-de-hiv", ring).startswith("fp:") and "portador-de-hiv" not in R._SAFE
    assert R.judged_safe("stub-model") and not R.judged_safe("portador-de-hiv")
    assert R.client_string("portador-de-hiv", ring).startswith("fp:")
    assert "portador-de-hiv" not in R._SAFE


@pytest.mark.parametrize("model", [
    "portador-de-hiv",                                      # a health term: no digit, no @
    "sk-proj-mPIhsgJDoEUiogCPAFchHQEbwFjXeJizZeldAMtw",     # an API key of letters only
    "gpt-sk-proj-dxGsiuvn2l3GT1AOkGrb20jGNfijAaTCvf982suO",  # a key glued to a model-like prefix
    "ghp_dxGsiuvn2l3GT1AOkGrb20jGNfijAaTCvf9",              # a GitHub token, which no detector names
])
def test_a_model_name_that_is_a_credential_or_health_term_is_fingerprinted(model):
    # the model name is the client's string: an unknown one is recorded (404) as the client wrote it,
    # and the record's strings also become the trace's attributes
    ring = KeyRing.ephemeral()
    ex = exchange(30)
    ex.model = ex.request_id = model
    rec = build_record(ex, ring)
    assert rec["model"].startswith("fp:") and rec["request_id"].startswith("fp:"), rec
    assert model not in str(rec)
    # identifiers without such a run stay readable (ULIDs are one case, UUIDs and our ids lowercase)
    for ok in ("claude-3-5-sonnet-20240620", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "01ARZ3NDEKTSV4RRFFQ69G5FAV",
               "00ub0oNGTSWTBKOLGLNR"):
        ex.model = ok
        assert build_record(ex, ring)["model"] == ok
