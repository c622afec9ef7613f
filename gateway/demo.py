"""`soberana demo`: the main job, end to end, on loopback, in under 15 seconds.

In a temporary folder it creates keys, starts two stub upstreams (an in-country model with residency
BR and a foreign API with residency US) and the gateway with the bundled policies, sends a scripted
set of real requests in the official wire formats, and prints for each what was found, what was
decided, where it went and what the upstream actually received. Then it stops the gateway (which
closes the audit file with a signed checkpoint) and verifies the audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from gateway.testing.harness import CALLERS, Harness

BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() else ("",) * 5

SCENARIOS = [
    {
        "title": "Chat with a CPF, Brazilian caller asks a foreign model",
        "caller": "br", "endpoint": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "Resuma a situação fiscal do contribuinte CPF 123.456.789-09, e-mail joana.silva@exemplo.com.br."}]},
    },
    {
        "title": "Streaming answer: pseudonyms restored token by token",
        "caller": "mx", "endpoint": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "stream": True, "messages": [
            {"role": "user", "content": "Verifica la CURP GODE561231HDFRRN00 del solicitante."}]},
    },
    {
        "title": "Health data stays in the country",
        "caller": "br", "endpoint": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "Paciente com diagnóstico de diabetes tipo 2 (CID E11.9) e hipertensão; sugira um plano de acompanhamento."}]},
    },
    {
        "title": "A classified marking sent to a model served only abroad",
        "caller": "br", "endpoint": "/v1/chat/completions",
        "body": {"model": "gpt-4o", "messages": [
            {"role": "user", "content": "DOCUMENTO CLASSIFICADO — GRAU DE SIGILO: SECRETO. Traduza o relatório anexo."}]},
    },
    {
        "title": "A leaked API key is redacted",
        "caller": "br", "endpoint": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "Why does this fail? client = OpenAI(api_key=\"sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3\")"}]},
    },
    {
        "title": "Anthropic Messages call from a Mexican caller with a Brazilian CPF",
        "caller": "mx", "endpoint": "/v1/messages",
        "body": {"model": "claude-sonnet-4", "max_tokens": 256, "system": "Eres un asistente de la administración tributaria.",
                 "messages": [{"role": "user", "content": "El proveedor brasileño tiene CPF 529.982.247-25; ¿qué retenciones aplican?"}]},
    },
]


def _short(text: str, n: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _findings(h: Harness, scenario: dict):
    """What the gateway finds and decides for this body — the same pure functions the data path runs."""
    from gateway.auth import Principal
    from gateway.dialects import extract_segments
    from gateway.inspect import scan
    from gateway.inspect.texts import scan_texts
    from gateway.policy import decide

    state = h.holder.current
    jur, agency = CALLERS[scenario["caller"]]
    principal = Principal(sub=f"{scenario['caller']}-key", agency=agency, jurisdiction=jur)
    segments = extract_segments(scenario["endpoint"], scenario["body"])
    per, _ = scan_texts([seg.text for seg in segments], scan)  # as the proxy inspects them
    found = [(seg.where, f) for seg, fs in zip(segments, per) for f in fs]
    flat = [f for _, f in found]
    cands = state.registry.by_endpoint[scenario["endpoint"]][scenario["body"]["model"]]
    d = decide(state.policies, principal, flat, cands, "internal", healthy=state.registry.healthy)
    return principal, found, d


def _answer_text(endpoint: str, raw: bytes, stream: bool) -> str:
    if stream:
        out = []
        for line in raw.decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                ev = orjson.loads(line[6:])
                for c in ev.get("choices", []):
                    out.append((c.get("delta") or {}).get("content") or "")
                if ev.get("type") == "content_block_delta":
                    out.append(ev["delta"].get("text", ""))
        return "".join(out)
    data = orjson.loads(raw)
    if endpoint == "/v1/messages":
        return "".join(b.get("text", "") for b in data.get("content", []))
    if "choices" in data:
        return data["choices"][0]["message"]["content"] or ""
    return data.get("error", {}).get("message", "")


async def _run(workdir: Path) -> int:
    t0 = time.monotonic()
    print(f"{BOLD}Soberana demo{RESET} {DIM}(working folder {workdir}){RESET}")
    witness = workdir / "witness" / "audit-witness.jsonl"  # (in production: other storage, or shipped off the host)
    async with Harness(workdir, audit=f"witness: {witness}") as h:
        print(f"gateway {h.url} · in-country model {h.stub_br.url} (BR) · foreign API {h.stub_us.url} (US)\n")
        async with aiohttp.ClientSession() as http:
            for i, sc in enumerate(SCENARIOS, 1):
                principal, found, d = _findings(h, sc)
                before = {r: len(h.received(r)) for r in ("BR", "US")}
                headers = ({"x-api-key": h.keys[sc["caller"]], "anthropic-version": "2023-06-01"}
                           if sc["endpoint"] == "/v1/messages" else {"Authorization": f"Bearer {h.keys[sc['caller']]}"})
                async with http.post(h.url + sc["endpoint"], json=sc["body"], headers=headers) as resp:
                    raw = await resp.read()
                    status, route, residency = resp.status, resp.headers.get("X-Soberana-Route", "-"), resp.headers.get("X-Soberana-Residency", "-")
                print(f"{BOLD}{i}. {sc['title']}{RESET}")
                print(f"   caller     {principal.agency} ({principal.jurisdiction}) → {sc['body']['model']} via {sc['endpoint']}")
                if found:
                    for (where, f), action in zip(found, d.actions or ["-"] * len(found)):
                        print(f"   found      {f.detector} ({f.category}{', ' + f.country if f.country else ''}) in {where} → {action}")
                else:
                    print("   found      nothing sensitive")
                print(f"   decided    {d.outcome}; rules {', '.join(d.rules) or '-'}; policies {', '.join(d.applied)}")
                print(f"   went to    {route} (residency {residency}) — HTTP {status}")
                after = {r: h.received(r) for r in ("BR", "US")}
                got = [b for r in ("BR", "US") for b in after[r][before[r]:]]
                if got:
                    body = got[-1]["body"]
                    msgs = body.get("messages") or []
                    last = msgs[-1]["content"] if msgs else body
                    text = last if isinstance(last, str) else orjson.dumps(last).decode()
                    print(f"   upstream   {GREEN}received{RESET} {_short(text)}")
                else:
                    print(f"   upstream   {RED}received nothing{RESET}")
                print(f"   answer     {_short(_answer_text(sc['endpoint'], raw, sc['body'].get('stream', False)))}\n")
    # the gateway has stopped: its audit file is closed with a signed final checkpoint
    from gateway.cli import main as cli

    files = [str(p) for p in sorted((workdir / "audit").glob("*.jsonl"))]
    print(f"{BOLD}Audit log{RESET} {', '.join(files)}")
    code = cli(["audit", "verify", *files, "--key", str(workdir / "keys" / "audit-signing.pub"), "--witness", str(witness)])
    print(f"\ndemo finished in {time.monotonic() - t0:.1f} s")
    return code


def main(args: argparse.Namespace | None = None) -> int:
    keep = bool(args and args.keep)
    workdir = Path(tempfile.mkdtemp(prefix="soberana-demo-"))
    try:
        return asyncio.run(_run(workdir))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
