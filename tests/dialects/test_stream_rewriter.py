"""StreamRewriter: per-channel filters that hold text back lose nothing and keep order."""

import json
from pathlib import Path

import pytest

from gateway.dialects.answers import StreamRewriter, map_answer_texts
from gateway.dialects.sse import SSEParser

FIX = Path(__file__).parents[1] / "fixtures"


class Delay3Upper:
    """A test filter: upper-cases, and always holds back the last 3 characters until flush."""

    def __init__(self, kind: str, log: list):
        self.kind, self.held, self.seen = kind, "", []
        log.append(self)

    def feed(self, text: str) -> str:
        self.seen.append(text)
        self.held += text
        out, self.held = self.held[:-3], self.held[-3:]
        return out.upper()

    def flush(self) -> str:
        out, self.held = self.held, ""
        return out.upper()


def rewrite(dialect, endpoint, data: bytes, cuts=()):
    log: list = []
    rw = StreamRewriter(dialect, endpoint, lambda kind: Delay3Upper(kind, log))
    out, prev = [], 0
    for c in list(cuts) + [len(data)]:
        out.append(rw.feed(data[prev:c]))
        prev = c
    out.append(rw.finish())
    return b"".join(out), log


def events(data: bytes):
    p = SSEParser()
    return p.feed(data) + p.finish()


def chat_channels(data: bytes):
    """What an OpenAI client accumulates, per channel, and the order of (channel, finish) markers."""
    texts, order = {}, []
    for ev in events(data):
        if not ev.has_data:
            continue
        if ev.data == "[DONE]":
            order.append("DONE")
            continue
        obj = json.loads(ev.data)
        for ch in obj["choices"]:
            d = ch.get("delta", ch)
            for field in ("content", "text"):
                if d.get(field):
                    texts[(ch["index"], "content")] = texts.get((ch["index"], "content"), "") + d[field]
                    order.append((ch["index"], "content"))
            for call in d.get("tool_calls") or []:
                a = call.get("function", {}).get("arguments")
                if a:
                    key = (ch["index"], "tool", call["index"])
                    texts[key] = texts.get(key, "") + a
                    order.append(key)
            if ch.get("finish_reason"):
                order.append(("finish", ch["index"]))
    return texts, order


@pytest.mark.parametrize("name,endpoint", [("chat_stream.sse", "/v1/chat/completions"),
                                           ("chat_stream_tools.sse", "/v1/chat/completions"),
                                           ("completions_stream.sse", "/v1/completions")])
def test_openai_nothing_lost_order_kept_at_every_split(name, endpoint):
    data = (FIX / "openai" / name).read_bytes()
    want, _ = chat_channels(data)
    want = {k: v.upper() for k, v in want.items()}
    for cut in range(0, len(data) + 1, 3):
        out, log = rewrite("openai", endpoint, data, [cut])
        got, order = chat_channels(out)
        assert got == want, cut
        # every channel's text is complete before its choice's finish chunk, and [DONE] is last
        fin = order.index(("finish", 0))
        assert all(i < fin for i, o in enumerate(order) if o not in (("finish", 0), "DONE"))
        assert order[-1] == "DONE"
        assert len(log) == len(want)  # one filter per channel


def test_openai_tool_calls_get_their_own_filters():
    data = (FIX / "openai/chat_stream_tools.sse").read_bytes()
    out, log = rewrite("openai", "/v1/chat/completions", data)
    assert [(f.kind, "".join(f.seen)) for f in log] == [
        ("tool_arguments", '{"cpf":"[CPF_1]"}'), ("tool_arguments", '{"to":"[EMAIL_1]"}')]
    got, _ = chat_channels(out)
    assert got[(0, "tool", 1)] == '{"TO":"[EMAIL_1]"}'


def test_openai_events_without_text_pass_byte_exactly():
    data = (FIX / "openai/chat_stream.sse").read_bytes()
    out, _ = rewrite("openai", "/v1/chat/completions", data)
    raw_in = [e.raw for e in events(data)]
    raw_out = [e.raw for e in events(out)]
    assert raw_in[0] in raw_out            # role chunk (empty content)
    assert raw_in[-2] in raw_out           # usage chunk
    assert raw_out[-1] == b"data: [DONE]\n\n"
    assert raw_out.index(raw_in[4]) > 0    # the finish chunk is unchanged, preceded by the remainder chunk
    extra = json.loads(events(out)[raw_out.index(raw_in[4]) - 1].data)
    assert extra["id"] == "chatcmpl-123" and extra["choices"][0]["finish_reason"] is None


def test_openai_text_in_the_finish_chunk_itself():
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "abcdef"}, "finish_reason": "stop"}]}
    data = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    out, _ = rewrite("openai", "/v1/chat/completions", data)
    got, order = chat_channels(out)
    assert got == {(0, "content"): "ABCDEF"} and order[-2:] == [("finish", 0), "DONE"]


def test_openai_stream_cut_before_done_still_flushes_at_finish():
    data = (FIX / "openai/chat_stream.sse").read_bytes()
    data = data[:data.index(b'"finish_reason":"stop"')]
    data = data[:data.rindex(b"\n\n") + 2]
    out, _ = rewrite("openai", "/v1/chat/completions", data)
    got, _ = chat_channels(out)
    assert got[(0, "content")] == "OLÁ, O CPF [CPF_1] ESTÁ REGULAR."


def anthropic_blocks(data: bytes):
    texts, order = {}, []
    for ev in events(data):
        obj = json.loads(ev.data)
        if obj["type"] == "content_block_delta":
            d = obj["delta"]
            t = d.get("text") or d.get("partial_json") or ""
            texts[obj["index"]] = texts.get(obj["index"], "") + t
            order.append(("delta", obj["index"]))
        elif obj["type"] in ("content_block_start", "content_block_stop", "message_stop"):
            order.append((obj["type"], obj.get("index")))
    return texts, order


@pytest.mark.parametrize("name", ["messages_stream.sse", "messages_stream_tools.sse"])
def test_anthropic_nothing_lost_order_kept_at_every_split(name):
    data = (FIX / "anthropic" / name).read_bytes()
    want, want_order = anthropic_blocks(data)
    for cut in range(0, len(data) + 1, 3):
        out, log = rewrite("anthropic", "/v1/messages", data, [cut])
        got, order = anthropic_blocks(out)
        assert got == {k: v.upper() for k, v in want.items()}, cut
        for idx in got:  # every delta of a block sits between its start and its stop
            i0, i1 = order.index(("content_block_start", idx)), order.index(("content_block_stop", idx))
            assert all(i0 < i < i1 for i, o in enumerate(order) if o == ("delta", idx))
        assert order[-1] == ("message_stop", None)
    assert [f.kind for f in log] == (["text"] if name == "messages_stream.sse" else ["text", "tool_arguments"])


def test_anthropic_non_text_events_pass_byte_exactly():
    data = (FIX / "anthropic/messages_stream.sse").read_bytes()
    out, _ = rewrite("anthropic", "/v1/messages", data)
    raw_out = [e.raw for e in events(out)]
    for ev in events(data):
        if json.loads(ev.data)["type"] != "content_block_delta":
            assert ev.raw in raw_out


def responses_view(data: bytes):
    deltas, dones, order = {}, {}, []
    for ev in events(data):
        obj = json.loads(ev.data)
        t = obj["type"]
        if t == "response.output_text.delta":
            deltas[("t", obj["output_index"])] = deltas.get(("t", obj["output_index"]), "") + obj["delta"]
            order.append(("delta", obj["output_index"]))
        elif t == "response.function_call_arguments.delta":
            deltas[("a", obj["output_index"])] = deltas.get(("a", obj["output_index"]), "") + obj["delta"]
            order.append(("delta", obj["output_index"]))
        elif t == "response.output_text.done":
            dones[("t", 0, "done")] = obj["text"]
            order.append(("done", obj["output_index"]))
        elif t == "response.function_call_arguments.done":
            dones[("a", 1, "done")] = obj["arguments"]
            order.append(("done", obj["output_index"]))
        elif t == "response.content_part.done":
            dones[("t", 0, "part")] = obj["part"]["text"]
        elif t == "response.output_item.done":
            item = obj["item"]
            dones[(obj["output_index"], "item")] = item["content"][0]["text"] if item["type"] == "message" else item["arguments"]
        elif t == "response.completed":
            out = obj["response"]["output"]
            dones["completed"] = (out[0]["content"][0]["text"], out[1]["arguments"])
    return deltas, dones, order


def test_responses_nothing_lost_and_done_events_carry_the_filtered_text():
    data = (FIX / "openai/responses_stream.sse").read_bytes()
    for cut in range(0, len(data) + 1, 11):
        out, log = rewrite("openai", "/v1/responses", data, [cut])
        deltas, dones, order = responses_view(out)
        text, args = "O CPF [CPF_1] ESTÁ OK.", '{"TO":"[EMAIL_1]"}'
        assert deltas == {("t", 0): text, ("a", 1): args}
        assert dones == {("t", 0, "done"): text, ("t", 0, "part"): text, (0, "item"): text,
                         ("a", 1, "done"): args, (1, "item"): args, "completed": (text, args)}
        for oi in (0, 1):
            assert max(i for i, o in enumerate(order) if o == ("delta", oi)) < order.index(("done", oi))
        assert [f.kind for f in log] == ["text", "tool_arguments"]


def test_responses_text_that_never_streamed_is_filtered_whole():
    data = (FIX / "openai/responses_stream.sse").read_bytes()
    # keep only the final event: its full texts must still pass through a filter
    last = [e for e in events(data) if b"response.completed" in e.raw][0].raw
    out, log = rewrite("openai", "/v1/responses", last)
    _, dones, _ = responses_view(out)
    assert dones["completed"] == ("O CPF [CPF_1] ESTÁ OK.", '{"TO":"[EMAIL_1]"}')


def load(name):
    return json.loads((FIX / name).read_text())


def test_map_answer_texts_every_dialect():
    seen = []

    def fn(text, kind):
        seen.append((kind, text))
        return text.replace("[CPF_1]", "123.456.789-09").replace("[EMAIL_1]", "maria@example.com")

    a = load("openai/chat_response.json")
    map_answer_texts("openai", "/v1/chat/completions", a, fn)
    assert a["choices"][0]["message"]["content"] == "The taxpayer with CPF 123.456.789-09 is regular."
    a = load("openai/chat_response_tools.json")
    map_answer_texts("openai", "/v1/chat/completions", a, fn)
    assert json.loads(a["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"cpf": "123.456.789-09"}
    a = load("openai/completions_response.json")
    map_answer_texts("openai", "/v1/completions", a, fn)
    assert a["choices"][0]["text"] == "\n\nHello maria@example.com!"
    a = load("openai/responses_response.json")
    map_answer_texts("openai", "/v1/responses", a, fn)
    assert a["output"][0]["content"][0]["text"] == "O CPF 123.456.789-09 está regular."
    assert a["output"][1]["arguments"] == '{"to":"maria@example.com"}'
    a = load("anthropic/messages_response_tools.json")
    map_answer_texts("anthropic", "/v1/messages", a, fn)
    assert a["content"][1]["input"] == {"to": "maria@example.com", "cc": ["[EMAIL_2]"]}
    a = load("openai/embeddings_response.json")
    before = json.dumps(a)
    map_answer_texts("openai", "/v1/embeddings", a, fn)
    assert json.dumps(a) == before
    kinds = {k for k, _ in seen}
    assert kinds == {"text", "tool_arguments"}


def test_responses_sequence_numbers_never_go_back():
    data = (FIX / "openai/responses_stream.sse").read_bytes()
    out, _ = rewrite("openai", "/v1/responses", data)
    seqs = [json.loads(e.data)["sequence_number"] for e in events(out)]
    assert seqs == sorted(seqs) and len(seqs) > len(events(data))  # extra deltas were added


def test_unreadable_data_is_dropped_not_passed_unfiltered():
    data = b'data: {"choices": [{"index": 0, "delta": {"content": "abcdef"}}]}\n\ndata: not json CPF 123\n\n: comment\n\ndata: [DONE]\n\n'
    out, _ = rewrite("openai", "/v1/chat/completions", data)
    assert b"not json" not in out and b": comment\n\n" in out and out.endswith(b"data: [DONE]\n\n")
    got, _ = chat_channels(out)
    assert got == {(0, "content"): "ABCDEF"}


def test_several_choices_are_separate_channels():
    def chunk(i, text, fin=None):
        return b"data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [
            {"index": i, "delta": {"content": text} if text else {}, "finish_reason": fin}]}).encode() + b"\n\n"
    data = chunk(0, "zero one") + chunk(1, "uno dos") + chunk(0, " two") + chunk(1, "", "stop") + chunk(0, "", "stop")
    out, log = rewrite("openai", "/v1/chat/completions", data + b"data: [DONE]\n\n")
    got, order = chat_channels(out)
    assert got == {(0, "content"): "ZERO ONE TWO", (1, "content"): "UNO DOS"} and len(log) == 2
    assert order.index(("finish", 1)) > max(i for i, o in enumerate(order) if o == (1, "content"))


def test_anthropic_thinking_has_its_own_channel_and_signatures_pass_untouched():
    def ev(obj):
        return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode()
    sig = ev({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}})
    data = b"".join([
        ev({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                                 "model": "claude", "stop_reason": None, "stop_sequence": None,
                                                 "usage": {"input_tokens": 1, "output_tokens": 1}}}),
        ev({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ev({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think hard"}}),
        sig,
        ev({"type": "content_block_stop", "index": 0}),
        ev({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ev({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "answer"}}),
        ev({"type": "content_block_stop", "index": 1}),
        ev({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 5}}),
        ev({"type": "message_stop"}),
    ])
    out, log = rewrite("anthropic", "/v1/messages", data, [50, 300])
    assert sig in out
    got = {}
    for e in events(out):
        obj = json.loads(e.data)
        if obj["type"] == "content_block_delta":
            d = obj["delta"]
            got[obj["index"]] = got.get(obj["index"], "") + (d.get("thinking") or d.get("text") or "")
    assert got == {0: "THINK HARD", 1: "ANSWER"}
    assert ["".join(f.seen) for f in log] == ["think hard", "answer"]
