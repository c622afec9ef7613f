"""API keys over the gateway's own HTTP server, as bytes on the wire (SDKs cannot send every key)."""

from __future__ import annotations

import asyncio

from gateway.testing.harness import Harness

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"oi"}]}'


async def status(url: str, header: bytes) -> int:
    """The status of a chat request carrying ``header`` (a raw header line, no CRLF)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n" + header +
                 b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY) + BODY)
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return int(line.split()[1])


async def test_a_utf8_api_key_matches_its_configured_digest(tmp_path):
    # The server decodes header bytes as latin-1; the digest in the config is of the key's UTF-8 text
    # (``hash_key``). A key with a non-ASCII character was refused with 401 however it was sent.
    h = Harness(tmp_path)
    h.keys["br"] = "sk-chave-ação-" + h.keys["br"]
    async with h:
        key = h.keys["br"].encode()
        assert await status(h.url, b"x-api-key: " + key) == 200
        assert await status(h.url, b"Authorization: Bearer " + key) == 200
        assert await status(h.url, b"x-api-key: " + key.replace("ç".encode(), b"c")) == 401
        # the same text sent as latin-1 bytes (what RFC 9110 once meant by header text) is the same key
        assert await status(h.url, b"x-api-key: " + h.keys["br"].encode("latin-1")) == 200
