"""JSON text (tool arguments, tool results): escape sequences are separators for the detectors."""

from __future__ import annotations

import json

import pytest

from gateway.inspect import scan
from gateway.inspect.escapes import scan_text
from gateway.inspect.findings import Finding
from gateway.keys import KeyRing
from gateway.transform.apply import apply
from gateway.transform.leaks import scan_answer
from gateway.transform.pseudonymize import PlaceholderMap

CPF, MAIL = "529.982.247-25", "ana@example.com"
RING = KeyRing.ephemeral()


def _json_texts(value: str) -> list[str]:
    """``value`` inside JSON text after each escape a JSON encoder writes (and after none)."""
    return [json.dumps({"nota": f"linha{sep}{value}"}, ensure_ascii=False)
            for sep in ("\n", "\t", "\r", "\b", "\f", '"', "\\")] + \
        [json.dumps({"nota": f"Jos\u00e9{value}"}), json.dumps({"nota": f"x/{value}"}).replace("/", "\\/")]


@pytest.mark.parametrize("text", _json_texts(CPF) + _json_texts("52998224725"))
def test_an_identifier_right_after_an_escape_is_found(text):
    found = [f for f in scan_text(scan, text) if f.detector == "br.cpf"]
    assert len(found) == 1, text
    assert text[found[0].start:found[0].end] in (CPF, "52998224725")


@pytest.mark.parametrize("text", _json_texts(MAIL))
def test_an_email_after_an_escape_does_not_take_its_letter(text):
    found = [text[f.start:f.end] for f in scan_text(scan, text) if f.detector == "intl.email"]
    assert found == [MAIL], text


@pytest.mark.parametrize("text", _json_texts(CPF) + _json_texts(MAIL))
def test_pseudonymized_json_text_stays_valid_and_holds_no_value(text):
    found = scan_text(scan, text)
    pm = PlaceholderMap()
    out = apply([text], [found], [["pseudonymize"] * len(found)], RING, "BR", pm)[0]
    assert CPF not in out and "982" not in out and MAIL not in out
    assert json.loads(out)["nota"].endswith("]")  # still JSON, the value a placeholder


def test_plain_text_is_scanned_as_it_is():
    calls = []

    def spy(text):
        calls.append(text)
        return scan(text)

    assert scan_text(spy, f"CPF {CPF}") == scan(f"CPF {CPF}") and calls == [f"CPF {CPF}"]
    calls.clear()
    scan_text(spy, r"C:\temp\x 5" + CPF)  # backslashes, none a JSON escape but \t
    assert calls == [r"C:  emp\x 5" + CPF]


def test_findings_are_trimmed_to_whole_escapes():
    def fake(view):  # a detector whose match runs into the blanked escapes on both sides
        return [Finding("intl.phone", "contact", None, 4, len(view) - 1)]

    text = '"ab\\n5511912345678\\u00e9"'
    (f,) = scan_text(fake, text)
    assert text[f.start:f.end] == "5511912345678"
    assert scan_text(lambda v: [Finding("intl.phone", "contact", None, 4, 5)], text) == []  # all escape


def test_a_leak_after_an_escape_in_tool_arguments_is_found_whole():
    args = json.dumps({"to": f"x\n{MAIL}", "cpf": f"\t{CPF}"})
    leaks = scan_answer(args, set())
    assert sorted(args[f.start:f.end] for f in leaks) == sorted([CPF, MAIL])
    redacted = apply([args], [leaks], [["redact"] * len(leaks)], RING, "BR", PlaceholderMap())[0]
    assert json.loads(redacted) == {"to": "x\n[REDACTED:EMAIL]", "cpf": "\t[REDACTED:CPF]"}
