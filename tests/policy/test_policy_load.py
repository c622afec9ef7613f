"""The policy loader: strict files, errors that name file, line and field; the revision."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.policy import load_policies
from gateway.policy.load import check_directory
from gateway.yamlfile import ConfigError

BUNDLED = Path(__file__).resolve().parents[2] / "policies"

GOOD = """\
jurisdiction: BR
name: Brasil
law: [{name: "LGPD, Lei 13.709/2018", articles: "art. 33"}]
regulator: ANPD
version: "2026-11-26"
adequate: [DE, NO]
rules:
  - id: br.identifiers
    match: {categories: [national_id, tax_id]}
    domestic: allow
    adequate: pseudonymize
    foreign: pseudonymize
default: {domestic: allow, adequate: allow, foreign: allow}
"""


def write(d: Path, name: str, text: str) -> Path:
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def error_of(d: Path) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        load_policies(d)
    return e.value


def test_good_file_loads_and_keeps_norway_a_country(tmp_path):
    write(tmp_path, "br.yaml", GOOD)
    ps = load_policies(tmp_path)
    assert set(ps.jurisdictions) == {"BR"}
    assert ps.jurisdictions["BR"].adequate == ["DE", "NO"]  # YAML 1.1 would read NO as false
    assert len(ps.revision) == 16


def test_bundled_policies_cover_17_jurisdictions_and_two_agreements():
    ps = load_policies(BUNDLED)
    assert sorted(ps.jurisdictions) == sorted("AR BO BR CA CL CO CR DO EC GT MX PA PE PY US UY VE".split())
    assert {a.agreement for a in ps.agreements} >= {"mercosur", "pacific_alliance"}
    for p in ps.jurisdictions.values():
        assert p.law and p.regulator and p.version
        for r in p.rules:
            assert r.id.startswith(p.jurisdiction.lower() + ".")


def test_bad_action_names_file_line_and_field(tmp_path):
    write(tmp_path, "br.yaml", GOOD.replace("adequate: pseudonymize", "adequate: pseudonymise"))
    e = error_of(tmp_path)
    assert e.file.endswith("br.yaml") and e.line == 11 and e.field == "rules[0].adequate"
    assert "Invalid enum value" in e.message
    assert str(e).startswith(f"{e.file}:11: rules[0].adequate:")


def test_unknown_key_is_an_error_with_its_line(tmp_path):
    write(tmp_path, "br.yaml", GOOD.replace("    match: {", "    matches: {"))
    e = error_of(tmp_path)
    assert (e.line, e.field, e.message) == (9, "rules[0].matches", "unknown key")


def test_a_key_given_twice_is_an_error_not_the_last_one_silently(tmp_path):
    # a second `rules:` would otherwise replace the first list without a word
    write(tmp_path, "br.yaml", GOOD + "rules: []\n")
    e = error_of(tmp_path)
    assert (e.line, e.field) == (14, "rules") and "first on line 7" in e.message


def test_unknown_category_and_bad_country_code(tmp_path):
    write(tmp_path, "br.yaml", GOOD.replace("tax_id]", "taxid]"))
    e = error_of(tmp_path)
    assert e.line == 9 and e.field == "rules[0].match.categories[1]"
    write(tmp_path, "br.yaml", GOOD.replace("[DE, NO]", "[DE, Germany]"))
    e = error_of(tmp_path)
    assert e.line == 6 and e.field == "adequate[1]"


def test_missing_required_field(tmp_path):
    write(tmp_path, "br.yaml", GOOD.replace("regulator: ANPD\n", ""))
    e = error_of(tmp_path)
    assert "regulator" in str(e) and e.file.endswith("br.yaml")


def test_file_name_must_match_jurisdiction(tmp_path):
    write(tmp_path, "ar.yaml", GOOD)
    e = error_of(tmp_path)
    assert (e.line, e.field) == (1, "jurisdiction") and "AR" in e.message


def test_rule_ids_carry_the_prefix_and_are_unique_across_files(tmp_path):
    write(tmp_path, "br.yaml", GOOD.replace("id: br.identifiers", "id: mx.identifiers"))
    e = error_of(tmp_path)
    assert (e.line, e.field) == (8, "rules[0].id")
    dup = GOOD.replace("default:", """\
  - id: br.identifiers
    match: {categories: [contact]}
    domestic: allow
    adequate: allow
    foreign: allow
default:""")
    write(tmp_path, "br.yaml", dup)
    e = error_of(tmp_path)
    assert (e.line, e.field) == (13, "rules[1].id") and "duplicate" in e.message


def test_reserved_rule_ids_and_contradictory_lists(tmp_path):
    write(tmp_path, "br.yaml", GOOD.replace("id: br.identifiers", "id: br.default"))
    assert "duplicate" in error_of(tmp_path).message
    write(tmp_path, "br.yaml", GOOD.replace("adequate: [DE, NO]", "adequate: [DE, NO]\nprohibited: [DE]"))
    e = error_of(tmp_path)
    assert e.field == "prohibited" and e.line == 7


def test_not_yaml_empty_and_missing_folder(tmp_path):
    write(tmp_path, "br.yaml", "jurisdiction: [BR\n")
    assert "not valid YAML" in str(error_of(tmp_path))
    write(tmp_path, "br.yaml", "")
    assert "empty" in str(error_of(tmp_path))
    assert "not found" in str(error_of(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no policy files" in str(error_of(empty))


def test_agreement_errors(tmp_path):
    write(tmp_path, "br.yaml", GOOD)
    write(tmp_path, "regional/m.yaml", "agreement: m\nmembers: [BR, AR]\ncovers: [contact, helth]\n")
    e = error_of(tmp_path)
    assert e.file.endswith("m.yaml") and (e.line, e.field) == (3, "covers[1]")
    write(tmp_path, "regional/m.yaml", "agreement: m\nmembers: [BR]\ncovers: [contact]\n")
    e = error_of(tmp_path)
    assert e.field == "members" and e.line == 2


def test_test_files_are_not_policies_but_are_checked(tmp_path):
    write(tmp_path, "br.yaml", GOOD)
    write(tmp_path, "br_test.yaml", "cases:\n  - name: x\n    principal: BR\n    candidates: []\n    expect: {outcome: routed}\n")
    assert set(load_policies(tmp_path).jurisdictions) == {"BR"}
    ps, errors = check_directory(tmp_path)
    assert ps is None and len(errors) == 1
    assert errors[0].file.endswith("br_test.yaml") and errors[0].line == 5 and errors[0].field == "cases[0].expect.outcome"


def test_check_directory_reports_every_bad_file(tmp_path):
    write(tmp_path, "br.yaml", GOOD.replace("domestic: allow\n    adequate", "domestic: alow\n    adequate"))
    write(tmp_path, "mx.yaml", GOOD.replace("BR", "MX").replace("br.", "mx.").replace("ANPD", "SABG")
          .replace("name: Brasil", "name: México\nextra: 1"))
    ps, errors = check_directory(tmp_path)
    assert ps is None
    assert sorted((Path(e.file).name, e.line, e.field) for e in errors) == [
        ("br.yaml", 10, "rules[0].domestic"), ("mx.yaml", 3, "extra")]


def test_revision_follows_the_bytes(tmp_path):
    shutil.copytree(BUNDLED, tmp_path / "p")
    r1 = load_policies(tmp_path / "p").revision
    assert load_policies(tmp_path / "p").revision == r1
    f = tmp_path / "p" / "regional" / "mercosur.yaml"
    f.write_text(f.read_text() + "\n# a comment changes the revision too\n")
    assert load_policies(tmp_path / "p").revision != r1
    (tmp_path / "p" / "br_test.yaml").write_text("cases: []\n")  # test files are not part of the revision
    assert load_policies(tmp_path / "p").revision == load_policies(tmp_path / "p").revision


def test_a_detector_the_inspector_does_not_have_is_an_error(tmp_path):
    # a misspelt detector id (br.cfp) has a valid shape but would never match: the rule would be
    # silently dead and the CPFs it was written for would get the default instead
    write(tmp_path, "br.yaml", GOOD.replace("match: {categories: [national_id, tax_id]}",
                                            "match: {detectors: [br.cpf, br.cfp]}"))
    e = error_of(tmp_path)
    assert (e.line, e.field) == (9, "rules[0].match.detectors[1]") and "br.cfp" in e.message
    _, errors = check_directory(tmp_path)
    assert [(x.line, x.field) for x in errors] == [(9, "rules[0].match.detectors[1]")]
    # every detector of the catalogue, and the finding the proxy makes of uninspectable content, loads
    write(tmp_path, "br.yaml", GOOD.replace("match: {categories: [national_id, tax_id]}",
                                            "match: {detectors: [br.cpf, intl.uninspectable, gov.marking]}"))
    assert load_policies(tmp_path).jurisdictions["BR"].rules[0].match.detectors[1] == "intl.uninspectable"
