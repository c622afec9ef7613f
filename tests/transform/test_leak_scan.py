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
