"""Leak scan: sensitive values in an answer that the caller did not send."""

from __future__ import annotations

import re

import pytest

from gateway import inspect
from gateway.inspect.findings import Finding
from gateway.transform import leaks
from gateway.transform.leaks import scan_answer, sent_values

_CPF = re.compile(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}")
_MAIL = re.compile(r"[\w.]+@[\w.]+\w")


def _regex_scan(text):
    """A stand-in inspector (only the filtering of scan_answer is under test here)."""
    found = [Finding("br.cpf", "national_id", "BR", m.start(), m.end()) for m in _CPF.finditer(text)]
    found += [Finding("intl.email", "contact", None, m.start(), m.end()) for m in _MAIL.finditer(text)]
    return sorted(found, key=lambda f: f.start)


@pytest.fixture
def fake_scan(monkeypatch):
    monkeypatch.setattr(leaks, "scan", _regex_scan)


def test_values_the_caller_sent_are_not_leaks_in_any_spelling(fake_scan):
    prompt = "meu CPF 529.982.247-25, e-mail Ana@Example.com"
    sent = sent_values([prompt], [_regex_scan(prompt)])
    answer = "Seu CPF 52998224725 e ana@example.com; o de João é 111.444.777-35 e joao@x.org."
    found = scan_answer(answer, sent)
    assert [answer[f.start:f.end] for f in found] == ["111.444.777-35", "joao@x.org"]
    assert scan_answer("", sent) == [] and scan_answer("nada aqui", sent) == []


def test_with_the_real_inspector():
    text = "CPF 529.982.247-25"
    if not inspect.scan(text):
        pytest.skip("the inspection core does not report CPFs yet")
    assert scan_answer("o CPF é 111.444.777-35", sent_values([text], [inspect.scan(text)]))
    assert not scan_answer("o CPF é 52998224725", sent_values([text], [inspect.scan(text)]))


@pytest.mark.parametrize("impl", ["_scan_py", "_scan_c"])
@pytest.mark.parametrize("encoded", [
    "NTI5Ljk4Mi4yNDctMjU=",                # base64 of the CPF
    "3532392e3938322e3234372d3235",        # hex
    "529%2E982%2E247%2D25",                # URL encoding
    "bWV1IGNwZiA1Mjk5ODIyNDcyNQ==",        # base64 of "meu cpf 52998224725"
], ids=["base64", "hex", "url", "base64-sentence"])
def test_a_value_sent_encoded_is_not_a_leak_when_the_answer_decodes_it(monkeypatch, impl, encoded):
    import importlib

    from gateway.inspect.texts import scan_texts

    mod = importlib.import_module(f"gateway.inspect.{impl}")
    monkeypatch.setattr(leaks, "scan", mod.scan)
    monkeypatch.setattr(leaks, "scan_decoded", mod.scan_decoded)
    prompt = f"decodifique isto: {encoded} por favor"
    per, split = scan_texts([prompt], mod.scan)
    assert [f.detector for f in per[0]] == ["br.cpf"]  # found as the encoded run
    sent = sent_values([prompt], per, split)
    # the model decoded what the caller sent: the caller's own value, in any spelling
    assert scan_answer("O CPF é 529.982.247-25.", sent) == []
    assert scan_answer("o cpf 52998224725", sent) == []
    # someone else's value is still a leak
    answer = "O CPF é 529.982.247-25, o dele 111.444.777-35."
    assert [answer[f.start:f.end] for f in scan_answer(answer, sent)] == ["111.444.777-35"]
