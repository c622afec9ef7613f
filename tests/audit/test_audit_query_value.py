"""`soberana audit query --value V --keys DIR`: where a given value went (a data subject's request,
an incident), and client strings kept as fingerprints found by what they were. Real keys, a real
audit file, the real command."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from audit_helpers import CARD, CPF, CPF_DIGITS, EMAIL, exchange
from gateway.audit.record import build_record
from gateway.audit.writer import AuditLog
from gateway.config import Audit
from gateway.keys import init_keys

SOBERANA = str(Path(sys.executable).parent / "soberana")
PERSONAL_SUB = "ana.lima@fazenda.gov.br"
PERSONAL_ID = "529.982.247-25"  # a request id a client filled with a CPF


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    d = tmp_path_factory.mktemp("qv")
    ring = init_keys(d / "keys")
    exs = [exchange(0),  # br.cpf (two spellings of one CPF) and intl.email
           exchange(1, detectors=("intl.card",)),
           exchange(2, sub=PERSONAL_SUB, detectors=("br.cpf",)),
           exchange(3, detectors=("health.term",))]
    exs[3].request_id = PERSONAL_ID
    exs[1].endpoint, exs[1].model = "/v1/messages", "claude-sonnet-4"

    async def go():
        a = AuditLog(Audit(checkpoint_every=2), ring, directory=d / "audit")
        await a.start()
        for ex in exs:
            a.append(build_record(ex, ring))
        await a.close()
        return a.path

    return d, asyncio.run(go())


def query(d: Path, path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SOBERANA, "audit", "query", str(path), "--format", "json", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def ids(p: subprocess.CompletedProcess) -> list[str]:
    """Which records matched, by number (their decision ids: a request id may be kept as fp:...)."""
    assert p.returncode == 0, p.stderr
    return [orjson.loads(x)["decision_id"].replace("dec-", "req-") for x in p.stdout.splitlines()]


@pytest.mark.parametrize("value, detector, expected", [
    (CPF, None, ["req-00000", "req-00002"]),
    (CPF_DIGITS, None, ["req-00000", "req-00002"]),  # any spelling of the same CPF
    (EMAIL.upper(), None, ["req-00000"]),  # e-mails are kept case-folded
    (CARD, "intl.card", ["req-00001"]),
    (CARD, "intl.", ["req-00001"]),
    (CPF, "intl.email", []),  # found, but not by that detector
    ("DIABETES  TIPO 2", None, ["req-00003"]),  # a health term, as words
    ("111.444.777-35", None, []),  # a valid CPF no request carried
])
def test_value_finds_the_records_that_carried_it(log, value, detector, expected):
    d, path = log
    args = ["--value", value, "--keys", str(d / "keys")] + (["--detector", detector] if detector else [])
    p = query(d, path, *args)
    assert ids(p) == expected
    assert value not in p.stdout + p.stderr and CPF_DIGITS not in p.stdout  # fingerprints only


def test_value_from_standard_input_and_the_table(log):
    d, path = log
    assert ids(query(d, path, "--value", "-", "--keys", str(d / "keys"), stdin=CPF + "\n")) == ["req-00000", "req-00002"]
    p = subprocess.run([SOBERANA, "audit", "query", str(path), "--value", "-", "--keys", str(d / "keys")],
                       input=CPF, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "req-" not in p.stdout.splitlines()[0]  # the header
    assert len(p.stdout.splitlines()) == 2 + 2 and "br.cpf:2" in p.stdout


@pytest.mark.parametrize("args, why", [
    (["--value", CPF], "--value needs the key folder (--keys DIR)"),
    (["--value", "  "], "--value is empty"),
    (["--value", CPF, "--keys", "/nonexistent/keys"], "cannot load the keys in /nonexistent/keys"),
])
def test_value_without_usable_keys_is_a_usage_error_that_does_not_repeat_it(log, args, why):
    d, path = log
    p = query(d, path, *args)
    assert p.returncode == 2 and why in p.stderr and p.stdout == ""
    assert CPF not in p.stderr


def test_client_strings_kept_as_fingerprints_are_found_with_the_keys(log):
    d, path = log
    raw = path.read_text()
    assert PERSONAL_SUB not in raw and PERSONAL_ID not in raw  # kept as fp:...
    p = query(d, path, "--principal", PERSONAL_SUB)
    assert ids(p) == [] and "looks like personal data" in p.stderr
    assert ids(query(d, path, "--principal", PERSONAL_SUB, "--keys", str(d / "keys"))) == ["req-00002"]
    p = query(d, path, "--request-id", PERSONAL_ID)
    assert ids(p) == [] and "--request-id value looks like personal data" in p.stderr
    assert ids(query(d, path, "--request-id", PERSONAL_ID, "--keys", str(d / "keys"))) == ["req-00003"]
    assert ids(query(d, path, "--request-id", "req-00001")) == ["req-00001"]


def test_endpoint_and_model(log):
    d, path = log
    assert ids(query(d, path, "--endpoint", "/v1/messages")) == ["req-00001"]
    assert ids(query(d, path, "--model", "claude-sonnet-4")) == ["req-00001"]
    assert ids(query(d, path, "--model", "gpt-4o-mini", "--endpoint", "/v1/chat/completions")) == \
        ["req-00000", "req-00002", "req-00003"]
