"""Every ``*_test.yaml`` beside the bundled policies, one pytest case per file (so CI names them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.policy import load_policies
from gateway.policy.cases import run_all, run_file, untested_rules
from gateway.policy.load import case_files

BUNDLED = Path(__file__).resolve().parents[2] / "policies"
POLICIES = load_policies(BUNDLED)
FILES = case_files(BUNDLED)


def test_every_policy_and_agreement_has_a_test_file():
    names = {f.name for f in FILES}
    for j in POLICIES.jurisdictions:
        assert f"{j.lower()}_test.yaml" in names
    assert {"mercosur_test.yaml", "pacific_alliance_test.yaml", "coe108_test.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=[f.relative_to(BUNDLED).as_posix() for f in FILES])
def test_policy_table(path: Path):
    result = run_file(POLICIES, path)
    failures = list(result.failures)
    if path.parent == BUNDLED:
        failures += untested_rules(POLICIES, path.name[: -len("_test.yaml")].upper(), result.rules_seen, str(path))
    assert not failures, "\n".join(map(str, failures))
    assert result.passed >= 3


def test_a_wrong_expectation_and_an_untested_rule_are_both_reported(tmp_path):
    d = tmp_path / "p"
    shutil.copytree(BUNDLED, d)
    t = d / "br_test.yaml"
    t.write_text(t.read_text().replace("actions: {br.cpf: pseudonymize}", "actions: {br.cpf: allow}", 1))
    p = d / "ar.yaml"
    p.write_text(p.read_text().replace("  - id: ar.financial\n", """\
  - id: ar.untested
    match: {detectors: [cu.ni]}
    domestic: allow
    adequate: allow
    foreign: hash
  - id: ar.financial
""", 1))
    (d / "regional" / "pacific_alliance_test.yaml").unlink()
    failures = [f for r in run_all(load_policies(d), d) for f in r.failures]
    got = sorted((Path(f.file).name, f.case) for f in failures)
    assert got == [("ar_test.yaml", "ar.untested"), ("br_test.yaml", "br.cpf goes abroad pseudonymized"),
                   ("pacific_alliance_test.yaml", "-")]
    br = next(f for f in failures if f.file.endswith("br_test.yaml"))
    assert str(br).endswith("actions: expected {'br.cpf': 'allow'}, got {'br.cpf': 'pseudonymize'}")


@pytest.mark.parametrize("path", FILES, ids=[f.relative_to(BUNDLED).as_posix() for f in FILES])
def test_case_findings_of_real_detectors_are_shaped_as_the_inspector_reports_them(path: Path):
    # a case that gives a detector another category or country tests a finding that never happens
    from gateway.inspect.detectors import BY_ID
    from gateway.policy.load import load_cases

    wrong = [(c.name, f.detector, f.category, f.country) for c in load_cases(path).cases for f in c.findings
             if f.detector in BY_ID and (BY_ID[f.detector].category, BY_ID[f.detector].country) != (f.category, f.country)]
    assert wrong == []
