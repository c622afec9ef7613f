"""`policy explain` (pure part and the real command), `policy check` and `policy test` as subprocesses."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from gateway.auth.principal import Principal
from gateway.config import load_config
from gateway.inspect.findings import Finding
from gateway.policy import load_policies
from gateway.policy.explain import explain_request, mask, render_text

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "policies"
CPF = "529.982.247-25"
API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3"
BODY = {"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": "Eres un asistente de la administración tributaria."},
    {"role": "user", "content": f"El proveedor brasileño tiene CPF {CPF}; ¿qué retenciones aplican?"}]}


def fake_scan(text: str) -> list[Finding]:
    """A stand-in inspector (the real one is tested in tests/inspect): CPFs, API keys, a health term."""
    out = [Finding("br.cpf", "national_id", "BR", m.start(), m.end()) for m in re.finditer(r"\d{3}\.\d{3}\.\d{3}-\d{2}", text)]
    out += [Finding("secret.api_key", "credentials", None, m.start(), m.end()) for m in re.finditer(r"sk-proj-\w+", text)]
    out += [Finding("health.term", "health", None, m.start(), m.end()) for m in re.finditer(r"diabetes", text)]
    return sorted(out, key=lambda f: f.start)


@pytest.fixture
def config_file(tmp_path) -> Path:
    p = tmp_path / "gateway.yaml"
    p.write_text(f"""\
jurisdiction: BR
policies: {BUNDLED}
auth: {{mode: none}}
upstreams:
  - {{name: foreign-openai, url: "http://127.0.0.1:9/v1", residency: US}}
  - {{name: br-sovereign, url: "http://127.0.0.1:9/v1", residency: BR}}
  - {{name: claude, url: "http://127.0.0.1:9/v1", dialect: anthropic, residency: US}}
models:
  gpt-4o-mini:
    - {{upstream: foreign-openai, model: gpt-4o-mini}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  claude-sonnet-4:
    - {{upstream: claude, model: claude-sonnet-4}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  claude-only:
    - {{upstream: claude, model: claude-sonnet-4}}
""")
    return p


def explain(config_file, body, jurisdiction="MX", endpoint="/v1/chat/completions"):
    config = load_config(config_file)
    return explain_request(config, load_policies(config.path(config.policies)),
                           Principal(sub="ana", agency="sat", jurisdiction=jurisdiction),
                           endpoint, body, scan=fake_scan)


def test_mexican_caller_with_a_cpf_brings_brazils_policy(config_file):
    x = explain(config_file, BODY)
    assert x["principal"] == {"sub": "ana", "agency": "sat", "jurisdiction": "MX"}
    assert [(p["jurisdiction"], p["why"], p["builtin"]) for p in x["policies"]] == [
        ("MX", ["caller's jurisdiction"], False), ("BR", ["subject country of br.cpf"], False)]
    [f] = x["findings"]
    assert (f["detector"], f["where"], f["masked"], f["action"]) == ("br.cpf", "messages[1].content", "***.***.***-25", "pseudonymize")
    assert f["rules"] == ["mx.identifiers", "br.identifiers"]
    assert BODY["messages"][1]["content"][f["start"]:f["end"]] == CPF
    d = x["decision"]
    assert (d["outcome"], d["route"], d["residency"], d["destination"]) == ("route", "foreign-openai", "US", "foreign")
    assert [c["allowed"] for c in x["candidates"]] == [True, True] and x["candidates"][0]["chosen"]
    text = render_text(x)
    assert "BR  Brasil — applies as subject country of br.cpf" in text
    at = f"messages[1].content[{f['start']}:{f['end']}]"
    assert f"br.cpf (national_id, BR) at {at} ***.***.***-25 → pseudonymize by mx.identifiers, br.identifiers" in text
    assert "route to foreign-openai (residency US, foreign for the caller)" in text


def test_explain_never_carries_a_raw_value(config_file):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"CPF {CPF}, key {API_KEY}, diabetes"}]}
    x = explain(config_file, body, jurisdiction="BR")
    dumped = orjson.dumps(x).decode() + render_text(x)
    for raw in (CPF, CPF.replace(".", "").replace("-", ""), "982.247", API_KEY, API_KEY[8:30], "diabetes"):
        assert raw not in dumped
    assert [f["masked"] for f in x["findings"]] == ["***.***.***-25", None, None]
    # health blocks the foreign model: the in-country one is taken and the blocking rule named
    assert x["decision"]["route"] == "br-sovereign" and x["decision"]["blocked_by"] == ["br.sensitive"]
    assert x["candidates"][0]["blocked_by"] == ["br.sensitive"]
    assert "1. foreign-openai (US, foreign) model gpt-4o-mini: blocked by br.sensitive" in render_text(x)


def test_content_the_gateway_cannot_read_stays_home(config_file):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "¿Qué dice este documento?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}
    x = explain(config_file, body, jurisdiction="BR")
    [f] = x["findings"]
    assert (f["detector"], f["category"], f["where"], f["masked"]) == ("intl.uninspectable", "uninspectable", "messages[0].content[1]", None)
    assert (x["decision"]["route"], x["decision"]["blocked_by"]) == ("br-sovereign", ["br.uninspectable"])


def test_unknown_model_and_blocked_requests_are_explained(config_file):
    x = explain(config_file, {"model": "nope", "messages": []})
    assert "unknown model" in x["error"] and x["decision"]["outcome"] == "blocked"
    assert "error       unknown model: no upstream" in render_text(x)
    assert "nope" not in x["error"]


def test_explain_skips_the_upstreams_that_cannot_carry_the_endpoint_as_the_proxy_does(config_file):
    """The proxy decides among the upstreams whose dialect can carry the endpoint (an Anthropic one
    cannot carry embeddings): explain says the same, and lists the skipped ones with the reason."""
    chat = explain(config_file, {"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "oi"}]})
    assert chat["decision"]["route"] == "claude" and "error" not in chat
    emb = explain(config_file, {"model": "claude-sonnet-4", "input": "oi"}, endpoint="/v1/embeddings")
    assert emb["decision"]["route"] == "br-sovereign" and "error" not in emb
    assert [(c["upstream"], c["dialect"], c["carries_endpoint"], c["chosen"]) for c in emb["candidates"]] == [
        ("claude", "anthropic", False, False), ("br-sovereign", "openai", True, True)]
    assert "1. claude (US, foreign) model claude-sonnet-4: skipped: its anthropic dialect cannot carry /v1/embeddings" \
        in render_text(emb)
    alone = explain(config_file, {"model": "claude-only", "input": "oi"}, endpoint="/v1/embeddings")
    assert alone["decision"]["route"] is None and "not available for /v1/embeddings" in alone["error"]
    assert "decision    none (404 not_found)" in render_text(alone)


def test_mask():
    assert mask(CPF, "national_id") == "***.***.***-25"
    assert mask("joana@exemplo.com", "contact") == "*****@*******.*om"
    assert mask("12345", "national_id") is None
    assert mask(API_KEY, "credentials") is None


def run(*args: str, input_code: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", input_code] if input_code else [sys.executable, "-m", "gateway", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_explain_command_real_subprocess(config_file, tmp_path):
    req = tmp_path / "body.json"
    req.write_bytes(orjson.dumps(BODY))
    r = run("policy", "explain", "-c", str(config_file), "--request", str(req),
            "--principal", "jurisdiction=mx", "sub=ana", "agency=sat", "--format", "json")
    assert r.returncode == 0, r.stderr
    x = orjson.loads(r.stdout)
    assert x["principal"]["jurisdiction"] == "MX" and x["policies"][0]["jurisdiction"] == "MX"
    assert CPF not in r.stdout and CPF not in r.stderr
    from gateway.inspect import scan
    if any(f.detector == "br.cpf" for f in scan(BODY["messages"][1]["content"])):
        assert [p["jurisdiction"] for p in x["policies"]] == ["MX", "BR"]
        assert x["decision"]["actions"]["br.cpf"] == "pseudonymize"
    r = run("policy", "explain", "-c", str(config_file), "--request", str(req))
    assert r.returncode == 0 and "principal   explain (agency -, jurisdiction BR)" in r.stdout
    assert run("policy", "explain", "-c", str(config_file), "--request", str(req), "--principal", "role=x").returncode == 2
    req.write_text("{not json")
    r = run("policy", "explain", "-c", str(config_file), "--request", str(req))
    assert r.returncode == 1 and "not valid JSON" in r.stderr


def test_explain_command_done_when_check(config_file, tmp_path):
    """The command path end to end with a stand-in inspector, so this holds whatever the detectors' state."""
    req = tmp_path / "body.json"
    req.write_bytes(orjson.dumps(BODY))
    code = (f"import sys, gateway.inspect, tests.policy.test_policy_explain as t\n"
            f"gateway.inspect.scan = t.fake_scan\n"
            f"from gateway.cli import main\n"
            f"sys.exit(main(['policy', 'explain', '-c', {str(config_file)!r}, '--request', {str(req)!r},"
            f" '--principal', 'jurisdiction=MX', 'agency=sat']))\n")
    r = run(input_code=code)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "MX  México — applies as caller's jurisdiction" in out
    assert "BR  Brasil — applies as subject country of br.cpf" in out
    assert "→ pseudonymize by mx.identifiers, br.identifiers" in out
    assert "decision    route to foreign-openai (residency US, foreign for the caller)" in out
    assert CPF not in out


def test_check_command_names_file_line_and_field(tmp_path):
    d = tmp_path / "p"
    shutil.copytree(BUNDLED, d)
    r = run("policy", "check", str(d))
    assert r.returncode == 0 and r.stdout.startswith("ok: 17 policies, 3 regional agreements")
    f = d / "br.yaml"
    f.write_text(f.read_text().replace("    foreign: pseudonymize\n", "    foreign: pseudonymise\n", 1))
    (d / "mx.yaml").write_text((d / "mx.yaml").read_text().replace("regulator:", "regulador:"))
    r = run("policy", "check", str(d))
    assert r.returncode == 1
    assert re.search(r"br\.yaml:\d+: rules\[4\]\.foreign: Invalid enum value 'pseudonymise'", r.stderr)
    assert re.search(r"mx\.yaml:\d+: regulador: unknown key", r.stderr)
    assert "2 error(s)" in r.stderr


def test_test_command_summary_and_failures(tmp_path):
    r = run("policy", "test", str(BUNDLED))
    assert r.returncode == 0, r.stdout
    assert re.search(r"^\d+ passed, 0 failed", r.stdout, re.M)
    d = tmp_path / "p"
    shutil.copytree(BUNDLED, d)
    t = d / "uy_test.yaml"
    t.write_text(t.read_text().replace("outcome: blocked", "outcome: route", 1))
    r = run("policy", "test", str(d))
    assert r.returncode == 1
    assert f"FAIL {d / 'uy_test.yaml'}: a classified marking is never sent abroad: outcome: expected route, got blocked" in r.stdout
    assert re.search(r"^\d+ passed, 1 failed", r.stdout, re.M)


@pytest.mark.parametrize("jurisdiction", ["", "BRA", "B_", "b1", "é1"])
def test_explain_refuses_a_jurisdiction_no_caller_can_have(config_file, tmp_path, jurisdiction):
    # auth only ever yields two ASCII letters; "jurisdiction=" explained a decision under a policy ""
    req = tmp_path / "body.json"
    req.write_bytes(orjson.dumps(BODY))
    r = run("policy", "explain", "-c", str(config_file), "--request", str(req),
            "--principal", f"jurisdiction={jurisdiction}")
    assert r.returncode == 2 and "two-letter country code" in r.stderr and r.stdout == ""
    assert CPF not in r.stderr


def test_explain_with_a_config_that_is_not_utf8_is_a_clear_error(tmp_path):
    # a binary or Latin-1 config ended in a UnicodeDecodeError traceback
    req = tmp_path / "body.json"
    req.write_bytes(orjson.dumps(BODY))
    cfg = tmp_path / "gateway.yaml"
    cfg.write_bytes("jurisdiction: BR\n# configuração\n".encode("latin-1"))
    r = run("policy", "explain", "-c", str(cfg), "--request", str(req))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{cfg}:2: not UTF-8" in r.stderr  # (the line of the first byte that is not UTF-8)


@pytest.mark.parametrize("name", ["ar.yml", "ar.YAML", "regional/mercosur.yml"])
def test_check_names_a_policy_file_the_loader_passes_over(tmp_path, name):
    # "ar.yml" was ignored without a word: check said ok and the gateway decided for Argentina by the
    # built-in default
    d = tmp_path / "p"
    shutil.copytree(BUNDLED, d)
    src = d / (name.split(".")[0] + ".yaml")
    src.rename(d / name)
    r = run("policy", "check", str(d))
    assert r.returncode == 1 and f"{d / name}: not loaded" in r.stderr and "end in .yaml" in r.stderr


@pytest.mark.parametrize("command, stream", [("test", "stdout"), ("check", "stderr")])
def test_failures_exit_1_even_when_the_reader_has_gone(tmp_path, command, stream):
    # `soberana policy test policies | head -3` (or check 2>&1 | head): the broken pipe made it exit 0
    import os

    d = tmp_path / "p"
    shutil.copytree(BUNDLED, d)
    t = d / "uy_test.yaml"
    t.write_text(t.read_text().replace("outcome: blocked", "outcome: route", 1))
    f = d / "br.yaml"
    f.write_text(f.read_text().replace("    foreign: pseudonymize\n", "    foreign: pseudonymise\n", 1))
    for folder, want in ((d, 1), (BUNDLED, 0)):
        r, w = os.pipe()
        os.close(r)  # the reader is gone before the first line is written
        try:
            streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: w}
            p = subprocess.run([sys.executable, "-m", "gateway", "policy", command, str(folder)], cwd=ROOT,
                               timeout=60, **streams)
        finally:
            os.close(w)
        assert p.returncode == want


@pytest.mark.parametrize("impl", ["0", "1"])
def test_explain_never_prints_a_personal_metadata_key(config_file, tmp_path, impl):
    # only values are inspected and masked: a metadata key that is an e-mail was printed as the
    # finding's place ("metadata.ana.silva@gov.br[4:18]")
    import os

    email = "ana.silva@correio.gov.br"
    body = {"model": "gpt-4o-mini", "metadata": {email: f"CPF {CPF}", "ticket": f"CPF {CPF}"},
            "messages": [{"role": "user", "content": "oi"}]}
    req = tmp_path / "body.json"
    req.write_bytes(orjson.dumps(body))
    for fmt in ("text", "json"):
        r = subprocess.run([sys.executable, "-m", "gateway", "policy", "explain", "-c", str(config_file),
                            "--request", str(req), "--format", fmt], capture_output=True, text=True, cwd=ROOT,
                           timeout=60, env=dict(os.environ, SOBERANA_NO_EXTENSIONS=impl))
        assert r.returncode == 0, r.stderr
        assert email not in r.stdout and "correio" not in r.stdout and CPF not in r.stdout
        assert "metadata.<key>" in r.stdout and "metadata.ticket" in r.stdout


def test_check_and_test_print_to_any_stream_when_called_in_process():
    # `soberana demo` and embedders call gateway.cli.main in-process; with standard output redirected
    # to a stream without a file descriptor the verdict printer raised io.UnsupportedOperation
    import contextlib
    import io

    from gateway.cli import main

    for command in ("check", "test"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["policy", command, str(BUNDLED)]) == 0
        assert re.search(r"^(ok: 17 policies|\d+ passed, 0 failed)", out.getvalue(), re.M)


@pytest.mark.parametrize("impl", ["0", "1"])
def test_explain_reports_a_value_found_in_a_key_without_printing_it(config_file, tmp_path, impl):
    # the keys of caller-chosen objects are inspected: a CPF as a metadata key or as the name of an
    # unknown field is a finding, placed "in the key", and its place prints <key>, never the CPF
    import os

    body = {"model": "gpt-4o-mini", "metadata": {CPF: "x"}, "extra": {f"sobre {CPF}": 1},
            "messages": [{"role": "user", "content": "oi"}]}
    req = tmp_path / "body.json"
    req.write_bytes(orjson.dumps(body))
    out = {}
    for fmt in ("text", "json"):
        r = subprocess.run([sys.executable, "-m", "gateway", "policy", "explain", "-c", str(config_file),
                            "--request", str(req), "--format", fmt], capture_output=True, text=True, cwd=ROOT,
                           timeout=60, env=dict(os.environ, SOBERANA_NO_EXTENSIONS=impl))
        assert r.returncode == 0, r.stderr
        assert CPF not in r.stdout and "982.247" not in r.stdout
        out[fmt] = r.stdout
    assert "br.cpf (national_id, BR) at the key metadata.<key>[0:14]" in out["text"]
    assert "at the key extra.<key>[6:20]" in out["text"]
    found = [(f["where"], f["in_key"], f["start"]) for f in orjson.loads(out["json"])["findings"]]
    assert found == [("metadata.<key>", True, 0), ("extra.<key>", True, 6)]
