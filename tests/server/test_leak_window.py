"""The window of a streamed answer kept for the leak scan: bounded, and cheap per delta."""

from __future__ import annotations

import time

from gateway.server.proxy import LEAK_WINDOW, _LeakTap, _LeakWindow


def test_many_small_deltas_cost_linear_time():
    # every delta used to sum the lengths of all pieces kept so far: 20 000 deltas of two characters
    # took 10 s of the event loop; 30 000 now take milliseconds
    window = _LeakWindow()
    tap = _LeakTap(None, window)
    t0 = time.perf_counter()
    for _ in range(30000):
        assert tap.feed("ab") == "ab"
    assert time.perf_counter() - t0 < 3.0
    assert window.text() == "ab" * 30000


def test_the_window_is_bounded_and_keeps_the_start_and_the_held_back_ends():
    window = _LeakWindow()
    tap = _LeakTap(None, window)
    piece = "x" * 1000
    for _ in range(LEAK_WINDOW // 1000 + 50):
        tap.feed(piece)
    assert LEAK_WINDOW <= window.size < LEAK_WINDOW + 1000
    window.add("erro", always=True)  # an error event is scanned whatever the fill, on a line of its own
    assert window.text().endswith("x\nerro") and window.size == len(window.text())


OTHER_CPF = "111.444.777-35"  # a valid CPF the caller never sent


def _two_choices_interleaved(self, req):
    """A stream of two choices (``n=2``) whose deltas alternate, as OpenAI sends them: choice 0 names
    someone else's CPF, choice 1 says something else."""
    import orjson

    def chunk(i, text):
        return b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                         "choices": [{"index": i, "delta": {"content": text}, "finish_reason": None}]}) + b"\n\n"

    zero, one = ["O CPF dele é ", "111", ".444", ".777", "-35", "."], ["Não", " sei", " o", " CPF", " dele", "."]
    body = b"".join(chunk(0, a) + chunk(1, b) for a, b in zip(zero, one))
    body += b"".join(b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                                "choices": [{"index": i, "delta": {}, "finish_reason": "stop"}]}) + b"\n\n"
                     for i in (0, 1)) + b"data: [DONE]\n\n"
    self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"content-length: %d\r\n\r\n" % len(body) + body)


async def test_each_choice_of_a_stream_is_leak_scanned_on_its_own(tmp_path, monkeypatch):
    import openai
    import orjson

    from gateway.testing import stub
    from gateway.testing.harness import Harness

    monkeypatch.setattr(stub._StubProtocol, "_answer", _two_choices_interleaved)
    async with Harness(tmp_path) as h:
        client = openai.AsyncOpenAI(base_url=h.url + "/v1", api_key=h.keys["br"], max_retries=0)
        s = await client.chat.completions.create(model="gpt-4o-mini", n=2, stream=True,
                                                 messages=[{"role": "user", "content": "qual é o CPF dele?"}])
        got = {0: "", 1: ""}
        async for c in s:
            for choice in c.choices:
                got[choice.index] += choice.delta.content or ""
        files = h.audit_files()
    assert got == {0: f"O CPF dele é {OTHER_CPF}.", 1: "Não sei o CPF dele."}
    records = [orjson.loads(x) for f in files for x in f.read_bytes().splitlines() if b'"request_id"' in x]
    # interleaved, the two choices read "111Não.444 sei..." and the CPF was no leak at all
    assert records[-1].get("leaks", 0) == 1
