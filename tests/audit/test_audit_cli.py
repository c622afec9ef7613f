"""`soberana audit verify|query|export` as real subprocesses."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from audit_helpers import write_log
from gateway.keys import init_keys

SOBERANA = str(Path(sys.executable).parent / "soberana")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SOBERANA, "audit", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    ring = init_keys(d / "keys")

    async def go():
        a = await write_log(d / "audit", ring, 6, checkpoint_every=2, worker=0)
        b = await write_log(d / "audit", ring, 3, checkpoint_every=2, worker=1)
        c = await write_log(d / "open", ring, 3, checkpoint_every=2, close=False)
        return a, b, c

    a, b, c = asyncio.run(go())
    return d, a, b, c


def test_verify_ok_with_key(files):
    d, a, b, _ = files
    p = run("verify", str(a), str(b), "--key", str(d / "keys" / "audit-signing.pub"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count(": OK:") == 2 and "signatures verified (key ids k1)" in p.stdout
    assert "NOT checked" not in p.stdout
    assert run("verify", str(a), "--key", str(d / "keys")).returncode == 0


def test_verify_without_key_says_signatures_were_not_checked(files):
    _, a, _, _ = files
    p = run("verify", str(a))
    assert p.returncode == 0 and "signatures were NOT checked" in p.stdout


def test_verify_names_the_first_bad_seq_and_why(files, tmp_path):
    d, a, _, _ = files
    lines = a.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    i = 4  # a record line
    assert b'"level":"internal"' in lines[i]
    bad.write_bytes(b"".join(lines[:i] + [lines[i].replace(b'"level":"internal"', b'"level":"public__"')] + lines[i + 1:]))
    p = run("verify", str(a), str(bad), "--key", str(d / "keys"))
    assert p.returncode == 1
    seq = orjson.loads(lines[i])["seq"]
    assert f"{bad}: FAILED at seq {seq}: changed" in p.stdout and f"{a}: OK" in p.stdout
    bad.write_bytes(b"".join(lines[:-1]))
    p = run("verify", str(bad), "--key", str(d / "keys"))
    assert p.returncode == 1 and f"FAILED at seq {len(lines)}: truncated" in p.stdout


def test_verify_open_file_needs_live(files):
    d, _, _, c = files
    p = run("verify", str(c), "--key", str(d / "keys"))
    assert p.returncode == 1 and "truncated" in p.stdout and "--live" in p.stdout
    p = run("verify", str(c), "--key", str(d / "keys"), "--live")
    assert p.returncode == 0 and "open" in p.stdout


def test_verify_with_a_bad_key_path_is_an_error(files, tmp_path):
    _, a, _, _ = files
    p = run("verify", str(a), "--key", str(tmp_path / "nope.pub"))
    assert p.returncode == 2 and "cannot load verification keys" in p.stderr


def test_query_json_and_table(files):
    _, a, b, _ = files
    p = run("query", str(a), str(b), "--outcome", "blocked", "--since", "1h", "--format", "json")
    assert p.returncode == 0
    recs = [orjson.loads(x) for x in p.stdout.splitlines()]
    assert [r["request_id"] for r in recs] == ["req-00001", "req-00004", "req-00001"]
    p = run("query", str(a), "--principal", "analyst-7", "--detector", "br.cpf")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 2 + 6
    p = run("query", str(a), "--since", "last tuesday")
    assert p.returncode == 2 and "bad time" in p.stderr


@pytest.mark.parametrize("fmt, key", [("ocsf", "class_uid"), ("ecs", "@timestamp")])
def test_export(files, fmt, key):
    _, a, _, _ = files
    p = run("export", str(a), "--format", fmt)
    assert p.returncode == 0
    docs = [orjson.loads(x) for x in p.stdout.splitlines()]
    assert len(docs) == 6 and all(key in doc for doc in docs)


def test_query_outcome_is_checked_and_case_blind(files):
    # "--outcome block" used to match nothing and exit 0: a security team read "nothing was blocked"
    _, a, _, _ = files
    p = run("query", str(a), "--outcome", "block", "--format", "json")
    assert p.returncode == 2 and p.stdout == ""
    assert "bad outcome" in p.stderr and "blocked" in p.stderr and "Traceback" not in p.stderr
    p = run("query", str(a), "--outcome", "BLOCKED", "--format", "json")
    assert p.returncode == 0
    assert [orjson.loads(x)["request_id"] for x in p.stdout.splitlines()] == ["req-00001", "req-00004"]


def test_query_by_a_personal_subject_says_records_hold_only_its_fingerprint(tmp_path):
    # a JWT subject that is an e-mail is stored as fp:<fingerprint>; querying by the e-mail found
    # nothing and said nothing, which reads as "this caller made no requests"
    from audit_helpers import EMAIL, exchange
    from gateway.audit.record import build_record
    from gateway.audit.writer import AuditLog
    from gateway.config import Audit

    ring = init_keys(tmp_path / "keys")

    async def go():
        log = AuditLog(Audit(checkpoint_every=2), ring, directory=tmp_path / "audit", worker=0)
        await log.start()
        log.append(build_record(exchange(1, sub=EMAIL), ring))
        log.append(build_record(exchange(2, sub="analyst-7"), ring))
        await log.close()
        return log.path

    path = asyncio.run(go())
    stored = [orjson.loads(x)["principal"]["sub"] for x in run("query", str(path), "--format", "json").stdout.splitlines()]
    assert stored[0].startswith("fp:") and stored[1] == "analyst-7"
    p = run("query", str(path), "--principal", EMAIL, "--format", "json")
    assert p.returncode == 0 and p.stdout == ""
    assert "fingerprint" in p.stderr and "--principal" in p.stderr and EMAIL not in p.stderr
    p = run("query", str(path), "--principal", stored[0], "--format", "json")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 1 and p.stderr == ""
    p = run("query", str(path), "--principal", "analyst-7", "--agency", "receita-federal", "--format", "json")
    assert len(p.stdout.splitlines()) == 1 and p.stderr == ""


def test_verify_fails_even_when_its_reader_has_gone(files, tmp_path):
    # `soberana audit verify bad.jsonl | head -1` (or | true): the broken pipe made it exit 0
    import os

    d, a, _, _ = files
    lines = a.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines[:3] + lines[4:]))  # a record removed
    for path, want in ((bad, 1), (a, 0)):
        r, w = os.pipe()
        os.close(r)  # the reader is gone before the first line is written
        try:
            p = subprocess.run([SOBERANA, "audit", "verify", str(a), str(path), "--key", str(d / "keys")],
                               stdout=w, stderr=subprocess.PIPE, text=True, timeout=60)
        finally:
            os.close(w)
        assert p.returncode == want and "Traceback" not in p.stderr, p.stderr


def test_query_with_since_after_until_is_a_usage_error(files):
    # "--since 1h --until 2h" (meaning from 2 h ago to 1 h ago) printed an empty table and exited 0
    _, a, _, _ = files
    p = run("query", str(a), "--since", "1h", "--until", "2h")
    assert p.returncode == 2 and "--since is later than --until" in p.stderr and p.stdout == ""
    p = run("query", str(a), "--since", "2h", "--until", "0s", "--format", "json")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 6


def test_query_and_export_say_when_lines_are_not_records(files, tmp_path):
    # a logrotate-compressed archive (or any wrong file) gave an empty table / no output and exit 0,
    # which reads as "no such requests"
    import gzip

    _, a, _, _ = files
    gz = tmp_path / "audit-w0.jsonl.1.gz"
    gz.write_bytes(gzip.compress(a.read_bytes()))
    for args in (("query", str(gz), "--format", "json"), ("export", str(gz), "--format", "ocsf")):
        p = run(*args)
        assert p.returncode == 0 and p.stdout == ""
        assert f"note: {gz}:" in p.stderr and "not audit records" in p.stderr
    p = run("query", str(a), "--format", "json")
    assert len(p.stdout.splitlines()) == 6 and p.stderr == "", "an intact file says nothing extra"
