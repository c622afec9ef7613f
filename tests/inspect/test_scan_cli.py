"""`soberana scan` as a real subprocess: plain text, a JSON request body, --format json, --country."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = ROOT / ".venv" / "bin" / "soberana"


def run(args: list[str], stdin: str | None = None, impl: str | None = None) -> subprocess.CompletedProcess:
    """``soberana scan ARGS``; ``impl`` "1" forces the pure-Python inspector, "0" the compiled one."""
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "gateway"]
    env = dict(os.environ, SOBERANA_NO_EXTENSIONS=impl or os.environ.get("SOBERANA_NO_EXTENSIONS", "0"))
    return subprocess.run(cmd + ["scan", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)


TEXT = "Cliente Ana, CPF 529.982.247-25, e-mail ana@gov.br; RFC GODE561231GR8.\n"


def test_text_from_stdin():
    p = run([], TEXT)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split("\t")[:4] == ["17-31", "br.cpf", "national_id", "BR"]
    assert "'529.982.247-25'" in lines[0]


def test_json_format_from_file(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text(TEXT, encoding="utf-8")
    p = run([str(f), "--format", "json"])
    assert p.returncode == 0, p.stderr
    objs = [json.loads(line) for line in p.stdout.splitlines()]
    assert objs[0] == {"detector": "br.cpf", "category": "national_id", "country": "BR",
                       "start": 17, "end": 31, "text": "529.982.247-25"}
    assert [o["detector"] for o in objs] == ["br.cpf", "intl.email", "mx.rfc"]
    for o in objs:
        assert TEXT[o["start"]:o["end"]] == o["text"]
        assert "path" not in o


def test_openai_request_body_reports_paths(tmp_path):
    body = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "Você é um assistente."},
        {"role": "user", "content": "Meu CPF é 529.982.247-25 e meu cartão 4111 1111 1111 1111"}]}
    f = tmp_path / "body.json"
    f.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    p = run([str(f), "--format", "json"])
    objs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(o["detector"], o["path"], o["text"]) for o in objs] == [
        ("br.cpf", "messages[1].content", "529.982.247-25"),
        ("intl.card", "messages[1].content", "4111 1111 1111 1111")]
    content = body["messages"][1]["content"]
    assert content[objs[0]["start"]:objs[0]["end"]] == "529.982.247-25"


def test_anthropic_body_and_country_filter():
    body = {"model": "claude-sonnet-4", "max_tokens": 100, "system": "CURP BOXW310820HNERXN09",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "CPF 529.982.247-25"}]}]}
    p = run(["-", "--format", "json", "--country", "mx"], json.dumps(body))
    objs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(o["detector"], o["country"]) for o in objs] == [("mx.curp", "MX")]
    assert objs[0]["path"] == "system"


def test_any_json_is_walked_string_by_string():
    doc = {"cliente": {"docs": ["nada", "RUT 12.531.909-2"], "n": 3}}
    p = run(["--format", "json"], json.dumps(doc))
    (o,) = [json.loads(line) for line in p.stdout.splitlines()]
    assert (o["detector"], o["path"], o["text"]) == ("cl.rut", "cliente.docs[1]", "12.531.909-2")


def test_missing_file_is_exit_2_without_traceback():
    p = run(["/nonexistent/file.txt"])
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and "cannot read" in p.stderr


@pytest.mark.parametrize("text", ["", "nada a declarar\n"])
def test_nothing_found_prints_nothing(text):
    p = run([], text)
    assert p.returncode == 0 and p.stdout == ""


@pytest.mark.parametrize("impl", ["0", "1"])
@pytest.mark.parametrize("messages", ["5", "null", "true"])
def test_body_whose_messages_is_not_a_list_is_still_scanned(messages, impl):
    # guessing the dialect iterated "messages" whatever it held: a traceback instead of findings
    p = run(["--format", "json"], '{"model": "m", "messages": %s, "note": "CPF 529.982.247-25"}' % messages, impl)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    (o,) = [json.loads(line) for line in p.stdout.splitlines()]
    assert (o["detector"], o["path"], o["text"]) == ("br.cpf", "note", "529.982.247-25")


@pytest.mark.parametrize("impl", ["0", "1"])
def test_json_nested_deeper_than_the_parser_goes_is_scanned_as_text(impl):
    # json.loads raises RecursionError (not a ValueError) for such a document
    depth = 5000
    doc = "[" * depth + '"CPF 529.982.247-25"' + "]" * depth
    p = run(["--format", "json"], doc, impl)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-500:]
    (o,) = [json.loads(line) for line in p.stdout.splitlines()]
    assert (o["detector"], o["start"], o["text"]) == ("br.cpf", depth + 5, "529.982.247-25")
    assert "path" not in o


@pytest.mark.parametrize("country", ["BRA", "", "b1"])
def test_a_country_no_finding_can_have_is_a_usage_error(country):
    # "--country BRA" printed nothing and exited 0: the text looked clean
    p = run(["--country", country], TEXT)
    assert p.returncode == 2 and p.stdout == "" and "two-letter" in p.stderr and "Traceback" not in p.stderr
