"""``decide``: applicable policies, strictest action, candidate walk, missing facts, levels."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.principal import Principal
from gateway.inspect.findings import Finding
from gateway.policy import Candidate, decide, load_policies
from gateway.policy.engine import NO_CANDIDATES, UNKNOWN_RESIDENCY

BUNDLED = Path(__file__).resolve().parents[2] / "policies"
PS = load_policies(BUNDLED)

US = Candidate("openai", "US", "gpt-4o-mini")
BR = Candidate("br-sovereign", "BR", "llama-3.3-70b")
DE = Candidate("eu-model", "DE", "mistral")
AR = Candidate("ar-model", "AR", "llama")
CN = Candidate("cn-model", "CN", "qwen")

CPF = Finding("br.cpf", "national_id", "BR", 4, 18)
CURP = Finding("mx.curp", "national_id", "MX", 0, 18)
SSN = Finding("us.ssn", "national_id", "US", 0, 11)
EMAIL = Finding("intl.email", "contact", None, 20, 40)
HEALTH = Finding("health.term", "health", None, 50, 58)
KEY = Finding("secret.api_key", "credentials", None, 60, 100)
MARK = Finding("gov.marking", "gov_classified", None, 0, 20)


def who(j: str) -> Principal:
    return Principal(sub="t", agency="a", jurisdiction=j)


def test_nothing_found_takes_the_first_candidate():
    d = decide(PS, who("BR"), [], [US, BR])
    assert (d.outcome, d.route, d.destination) == ("route", US, "foreign")
    assert d.actions == [] and d.rules == [] and d.blocked_by == [] and d.applied == ["BR"]
    assert d.policy_revision == PS.revision and len(d.decision_id) == 32


def test_decision_id_passed_in_is_kept_and_otherwise_unique():
    assert decide(PS, who("BR"), [], [US], decision_id="req-1").decision_id == "req-1"
    assert decide(PS, who("BR"), [], [US]).decision_id != decide(PS, who("BR"), [], [US]).decision_id


def test_actions_follow_findings_order_and_by_detector_takes_the_strictest():
    d = decide(PS, who("BR"), [EMAIL, CPF, KEY, EMAIL], [US])
    assert d.actions == ["pseudonymize", "pseudonymize", "redact", "pseudonymize"]
    assert d.by_detector == {"intl.email": "pseudonymize", "br.cpf": "pseudonymize", "secret.api_key": "redact"}
    assert d.finding_rules == [["br.contact"], ["br.identifiers"], ["br.credentials"], ["br.contact"]]
    assert d.rules == ["br.contact", "br.identifiers", "br.credentials"]


def test_a_cpf_brings_brazils_policy_to_a_mexican_caller():
    d = decide(PS, who("MX"), [CPF], [US, BR])
    assert d.applied == ["MX", "BR"]
    assert (d.route, d.actions) == (US, ["pseudonymize"])
    assert d.finding_rules == [["mx.identifiers", "br.identifiers"]]


def test_strictest_policy_wins_even_at_the_subjects_home():
    # Brazil's policy allows a CPF at home; Mexico's sees Brazil as foreign and pseudonymizes
    d = decide(PS, who("MX"), [CPF], [BR])
    assert d.actions == ["pseudonymize"] and d.rules == ["mx.identifiers"]
    # and a Brazilian caller keeps it as is at home
    assert decide(PS, who("BR"), [CPF], [BR]).actions == ["allow"]


def test_health_walks_past_the_foreign_model_and_names_the_blocking_rule():
    d = decide(PS, who("BR"), [HEALTH, CPF], [US, BR])
    assert (d.outcome, d.route, d.destination) == ("route", BR, "domestic")
    assert d.actions == ["allow", "allow"]
    assert d.blocked_by == ["br.sensitive"] and "br.sensitive" in d.rules


def test_adequacy_list_and_blocked_outcome():
    assert decide(PS, who("BR"), [HEALTH], [DE]).actions == ["pseudonymize"]
    assert decide(PS, who("BR"), [HEALTH], [DE]).destination == "adequate"
    d = decide(PS, who("AR"), [HEALTH], [US])  # AR's list excludes the US
    assert (d.outcome, d.route, d.blocked_by) == ("blocked", None, ["ar.sensitive"])
    assert d.actions == ["block"]  # the first candidate's actions show what blocked
    co = decide(PS, who("CO"), [HEALTH], [US])  # the SIC list includes the US
    assert (co.outcome, co.destination, co.actions) == ("route", "adequate", ["pseudonymize"])


def test_regional_agreement_widens_only_covered_categories():
    d = decide(PS, who("BR"), [EMAIL, CPF], [AR])
    assert d.actions == ["allow", "pseudonymize"]
    assert d.destination == "foreign"  # relative to the caller, without a category
    assert decide(PS, who("BR"), [HEALTH], [AR]).outcome == "blocked"


def test_compliant_but_unhealthy_is_unavailable_never_a_fallback():
    d = decide(PS, who("BR"), [HEALTH], [US, BR], healthy=lambda n: n != "br-sovereign")
    assert (d.outcome, d.route, d.destination) == ("unavailable", None, None)
    assert d.blocked_by == ["br.sensitive"]
    d = decide(PS, who("BR"), [CPF], [US, BR], healthy=lambda n: n != "openai")
    assert (d.outcome, d.route, d.actions) == ("route", BR, ["allow"])


def test_unknown_residency_is_never_routed():
    mystery = Candidate("mystery", None, "m")
    d = decide(PS, who("BR"), [], [mystery, BR])
    assert d.route == BR and d.blocked_by == [UNKNOWN_RESIDENCY]
    d = decide(PS, who("BR"), [CPF], [mystery])
    assert (d.outcome, d.actions, d.blocked_by) == ("blocked", ["block"], [UNKNOWN_RESIDENCY])
    assert decide(PS, who("BR"), [], [Candidate("empty", "", "m")]).outcome == "blocked"


def test_no_candidates_is_blocked():
    d = decide(PS, who("BR"), [CPF], [])
    assert (d.outcome, d.actions, d.blocked_by) == ("blocked", ["block"], [NO_CANDIDATES])


def test_prohibited_destinations_receive_nothing():
    d = decide(PS, who("US"), [], [CN, US])
    assert (d.route, d.blocked_by) == (US, ["us.prohibited"])
    # a US subject's SSN brings the US list to a Brazilian caller
    d = decide(PS, who("BR"), [SSN], [CN, BR])
    assert d.route == BR and d.blocked_by == ["us.prohibited"] and d.actions == ["pseudonymize"]
    assert decide(PS, who("BR"), [], [CN]).outcome == "route"  # Brazil has no such list


def test_classified_and_credentials():
    assert decide(PS, who("BR"), [MARK], [US]).blocked_by == ["br.classified"]
    assert decide(PS, who("BR"), [MARK], [US, BR]).route == BR
    assert decide(PS, who("BR"), [KEY], [BR]).actions == ["redact"]


@pytest.mark.parametrize("level,route", [("public", US), ("internal", US), ("confidential", US),
                                         ("restricted", BR), ("secret", BR), ("top-secret?", BR)])
def test_levels_keep_restricted_requests_home_and_unknown_levels_fail_closed(level, route):
    d = decide(PS, who("BR"), [], [US, BR], level=level)
    assert d.route == route
    if route == BR:
        assert d.blocked_by == ["br.restricted"]


def test_caller_without_a_policy_file_gets_the_protective_default():
    d = decide(PS, who("CU"), [EMAIL], [US])
    assert d.applied == ["CU"] and d.actions == ["pseudonymize"] and d.rules == ["cu.default"]
    assert decide(PS, who("CU"), [HEALTH], [US]).blocked_by == ["cu.builtin.sensitive"]
    assert decide(PS, who("CU"), [KEY], [Candidate("home", "CU", "m")]).actions == ["redact"]
    assert decide(PS, who("CU"), [], [US], level="secret").blocked_by == ["cu.builtin.restricted"]
    assert decide(PS, who("CU"), [MARK], [US]).blocked_by == ["cu.builtin.domestic_only"]
    assert decide(PS, who("CU"), [], [US]).outcome == "route"  # nothing found, nothing to protect


def test_subject_country_without_a_file_brings_the_default_too():
    cuban = Finding("cu.ni", "national_id", "CU", 0, 11)
    d = decide(PS, who("US"), [cuban], [US])
    assert d.applied == ["US", "CU"] and d.actions == ["pseudonymize"]
    assert "cu.default" in d.rules


def test_finding_without_country_brings_only_the_callers_policy():
    assert decide(PS, who("MX"), [EMAIL, HEALTH], [BR]).applied == ["MX"]


def test_memoized_evaluations_are_not_shared_with_the_caller():
    # the per-candidate evaluation is memoized per PolicySet; a caller changing its Decision's lists
    # (or a later decision) must not change what the next request with the same shape gets
    ps = load_policies(BUNDLED)
    first = decide(ps, who("BR"), [CPF, KEY], [US])
    first.actions[0] = "allow"
    first.finding_rules[0].append("forged")
    again = decide(ps, who("BR"), [CPF, KEY], [US])
    assert again.actions == ["pseudonymize", "redact"]
    assert again.finding_rules == [["br.identifiers"], ["br.credentials"]]
    assert len(ps.eval_memo) == 1  # the second decision came from the memo


def test_memo_keys_on_each_findings_country_and_the_level():
    ps = load_policies(BUNDLED)
    mx_caller_cpf = decide(ps, who("MX"), [CPF], [US, BR])
    other_country = Finding("br.cpf", "national_id", "MX", 4, 18)  # same detector, another subject country
    assert decide(ps, who("MX"), [other_country], [US, BR]).applied == ["MX"]
    assert mx_caller_cpf.applied == ["MX", "BR"]
    assert decide(ps, who("BR"), [], [US, BR]).route == US  # memoized at level internal ...
    secret = decide(ps, who("BR"), [], [US, BR], level="secret")  # ... must not answer for secret
    assert (secret.route, secret.blocked_by) == (BR, ["br.restricted"])
