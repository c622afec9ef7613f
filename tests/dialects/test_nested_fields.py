"""Every field of every object inside a request (a message, a content part, a tool call, a Responses
input item, an Anthropic block, a citation, a source) with a CPF in it: a segment, written back.

The objects' tables are ``openai.SHAPES`` and ``anthropic.SHAPES`` (see ``gateway.dialects.fields``).
Each field a table lists as read by its extractor (``READ``) or as a link (``URL``) needs a case in
``CASES`` below (``test_every_read_field_has_a_case`` fails otherwise); every setting and id gets a
CPF where its words or its id belong, automatically. Tool names (``NAME``) and base64 content
(``BINARY``) are the documented exceptions, checked here as such.
"""

import base64
import copy
import json

import pytest

from gateway.dialects import DialectError, anthropic, extract_segments, openai, write_segments
from gateway.dialects.fields import BINARY, NAME, READ, URL

CPF = "529.982.247-25"
DIGITS = "52998224725"
T = f"CPF {CPF}"
SHAPES = {**openai.SHAPES, **anthropic.SHAPES}

CHAT, RESPONSES, MESSAGES = "/v1/chat/completions", "/v1/responses", "/v1/messages"


def _chat(*msgs):
    return {"model": "m", "messages": list(msgs)}


def _input(*items):
    return {"model": "m", "input": list(items)}


def _claude(role, *blocks):
    return {"model": "m", "max_tokens": 16, "messages": [{"role": role, "content": list(blocks)}]}


HOMES = {
    # shape: (endpoint, the object as the API takes it, the request body holding it)
    "chat message": (CHAT, {"role": "assistant", "content": "oi"}, lambda o: _chat(o)),
    "chat tool call": (CHAT, {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                       lambda o: _chat({"role": "assistant", "tool_calls": [o]})),
    "chat function call": (CHAT, {"name": "f", "arguments": "{}"}, lambda o: _chat(
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": o}]})),
    "chat custom call": (CHAT, {"name": "f", "input": "x"}, lambda o: _chat(
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": o}]})),
    "text part": (CHAT, {"type": "text", "text": "oi"}, lambda o: _chat({"role": "user", "content": [o]})),
    "refusal part": (CHAT, {"type": "refusal", "refusal": "não"}, lambda o: _chat({"role": "assistant", "content": [o]})),
    "annotation": (RESPONSES, {"type": "url_citation", "url": "https://a.example/", "title": "t", "start_index": 0,
                               "end_index": 1}, lambda o: _input({"type": "message", "role": "assistant", "content": [
                                   {"type": "output_text", "text": "oi", "annotations": [o]}]})),
    "image_url part": (CHAT, {"type": "image_url", "image_url": {"url": "https://a.example/x.png"}},
                       lambda o: _chat({"role": "user", "content": [o]})),
    "input_image part": (RESPONSES, {"type": "input_image", "image_url": "https://a.example/x.png"},
                         lambda o: _input({"role": "user", "content": [o]})),
    "input_audio part": (CHAT, {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                         lambda o: _chat({"role": "user", "content": [o]})),
    "file part": (CHAT, {"type": "file", "file": {"file_id": "file-1"}}, lambda o: _chat({"role": "user", "content": [o]})),
    "input_file part": (RESPONSES, {"type": "input_file", "file_id": "file-1"},
                        lambda o: _input({"role": "user", "content": [o]})),
    "other part": (CHAT, {"type": "video_url"}, lambda o: _chat({"role": "user", "content": [o]})),
    "message item": (RESPONSES, {"type": "message", "role": "user", "content": "oi"}, _input),
    "function_call item": (RESPONSES, {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}, _input),
    "custom_tool_call item": (RESPONSES, {"type": "custom_tool_call", "call_id": "c", "name": "f", "input": "x"}, _input),
    "function_call_output item": (RESPONSES, {"type": "function_call_output", "call_id": "c", "output": "ok"}, _input),
    "custom_tool_call_output item": (RESPONSES, {"type": "custom_tool_call_output", "call_id": "c", "output": "ok"},
                                     _input),
    "reasoning item": (RESPONSES, {"type": "reasoning", "id": "rs_1", "summary": []}, _input),
    "item_reference item": (RESPONSES, {"type": "item_reference", "id": "msg_1"}, _input),
    "image_generation_call item": (RESPONSES, {"type": "image_generation_call", "id": "ig_1", "result": "iVBORw0K"},
                                   _input),
    "text block": (MESSAGES, {"type": "text", "text": "oi"}, lambda o: _claude("user", o)),
    "tool_use block": (MESSAGES, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                       lambda o: _claude("assistant", o)),
    "server_tool_use block": (MESSAGES, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                                         "input": {}}, lambda o: _claude("assistant", o)),
    "mcp_tool_use block": (MESSAGES, {"type": "mcp_tool_use", "id": "mcptoolu_1", "name": "f", "server_name": "crm",
                                      "input": {}}, lambda o: _claude("assistant", o)),
    "tool_result block": (MESSAGES, {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
                          lambda o: _claude("user", o)),
    "mcp_tool_result block": (MESSAGES, {"type": "mcp_tool_result", "tool_use_id": "mcptoolu_1", "content": "ok"},
                              lambda o: _claude("user", o)),
    "thinking block": (MESSAGES, {"type": "thinking", "thinking": "hm", "signature": "c2ln"},
                       lambda o: _claude("assistant", o)),
    "redacted_thinking block": (MESSAGES, {"type": "redacted_thinking", "data": "ZGF0YQ"},
                                lambda o: _claude("assistant", o)),
    "document block": (MESSAGES, {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "oi"}},
                       lambda o: _claude("user", o)),
    "image block": (MESSAGES, {"type": "image", "source": {"type": "url", "url": "https://a.example/x.png"}},
                    lambda o: _claude("user", o)),
    "other block": (MESSAGES, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    lambda o: _claude("assistant", o)),
    "citation": (MESSAGES, {"type": "char_location", "cited_text": "oi", "document_index": 0, "start_char_index": 0,
                            "end_char_index": 2}, lambda o: _claude("assistant", {"type": "text", "text": "oi",
                                                                                   "citations": [o]})),
    "media source": (MESSAGES, {"type": "url", "url": "https://a.example/x.png"},
                     lambda o: _claude("user", {"type": "image", "source": o})),
    "text source": (MESSAGES, {"type": "text", "media_type": "text/plain", "data": "oi"},
                    lambda o: _claude("user", {"type": "document", "source": o})),
    "content source": (MESSAGES, {"type": "content", "content": [{"type": "text", "text": "oi"}]},
                       lambda o: _claude("user", {"type": "document", "source": o})),
}

URL_CPF = f"https://x.gov.br/doc?cpf={DIGITS}"
CASES = {
    # (shape, field): values holding a CPF, each as the API takes it in that field
    ("chat message", "content"): [T, [{"type": "text", "text": T}]],
    ("chat message", "refusal"): [T, {"motivo": T}],
    ("chat message", "tool_calls"): [[{"id": "c", "type": "function", "function": {"name": "f", "arguments": T}}]],
    ("chat message", "function_call.arguments"): [T],
    ("chat tool call", "function.arguments"): [json.dumps({"cpf": CPF})],
    ("chat tool call", "custom.input"): [T],
    ("chat function call", "arguments"): [json.dumps({"cpf": CPF})],
    ("chat custom call", "input"): [T],
    ("text part", "text"): [T],
    ("refusal part", "refusal"): [T],
    ("annotation", "url"): [URL_CPF],
    ("image_url part", "image_url.url"): [URL_CPF],
    ("input_image part", "image_url"): [URL_CPF, {"url": URL_CPF}],
    ("input_file part", "file_url"): [URL_CPF],
    ("message item", "content"): [T, [{"type": "input_text", "text": T}]],
    ("function_call item", "arguments"): [json.dumps({"cpf": CPF})],
    ("custom_tool_call item", "input"): [T],
    ("function_call_output item", "output"): [T, [{"type": "input_text", "text": T}]],
    ("custom_tool_call_output item", "output"): [T],
    ("reasoning item", "summary"): [[{"type": "summary_text", "text": T}]],
    ("reasoning item", "content"): [[{"type": "reasoning_text", "text": T}]],
    ("text block", "text"): [T],
    ("text block", "citations"): [[{"type": "char_location", "cited_text": T, "document_index": 0}]],
    ("tool_use block", "input"): [{"cpf": CPF}, {"cpf": int(DIGITS)}],
    ("server_tool_use block", "input"): [{"query": T}],
    ("mcp_tool_use block", "input"): [{"cpf": CPF}],
    ("tool_result block", "content"): [T, [{"type": "text", "text": T}]],
    ("mcp_tool_result block", "content"): [[{"type": "text", "text": T}]],
    ("thinking block", "thinking"): [T],
    ("document block", "source"): [{"type": "text", "media_type": "text/plain", "data": T},
                                   {"type": "url", "url": URL_CPF}, {"type": "file", "file_id": T}],
    ("document block", "title"): [T],
    ("document block", "context"): [T],
    ("citation", "cited_text"): [T],
    ("citation", "document_title"): [T],
    ("citation", "title"): [T],
    ("citation", "url"): [URL_CPF],
    ("citation", "source"): [URL_CPF],
    ("media source", "url"): [URL_CPF],
    ("text source", "data"): [T],
    ("content source", "content"): [T, [{"type": "text", "text": T}]],
}


def _fields(spec: dict, prefix: str = ""):
    """A table's fields, those of the objects it defines inline too (``image_url.url``), with their
    specs; an object that is a table of its own (a tool call's ``function``) is checked there, but
    its read fields here as well (each extractor reads them where the object sits)."""
    own = {id(s) for s in SHAPES.values()}
    for field, sub in spec.items():
        name = prefix + field
        if type(sub) is dict:
            if id(sub) in own:
                yield from ((f, s) for f, s in _fields(sub, name + ".") if s is READ)
            else:
                yield from _fields(sub, name + ".")
        else:
            yield name, sub


def _place(shape: str, field: str, value):
    endpoint, base, wrap = HOMES[shape]
    obj = copy.deepcopy(base)
    *outer, last = field.split(".")
    at = obj
    for k in outer:
        at = at.setdefault(k, {}) if isinstance(at.get(k), dict) or k not in at else at[k]
    at[last] = copy.deepcopy(value)
    return endpoint, wrap(obj)


def _params():
    for shape, spec in SHAPES.items():
        for field, sub in _fields(spec):
            if sub is READ or sub is URL:
                values = CASES.get((shape, field), [])
            elif sub is NAME or sub is BINARY:
                continue  # the exceptions: see their own tests below
            else:  # a setting or an id: a CPF where the API's words, a number or an id belong
                values = [T, f"id_{DIGITS}", {"nota": T}]
            for i, v in enumerate(values):
                yield pytest.param(shape, field, v, sub is READ or sub is URL, id=f"{shape}:{field}:{i}")


def test_every_read_field_has_a_case_and_every_table_a_home():
    missing = [(shape, f) for shape, spec in SHAPES.items() for f, s in _fields(spec)
               if (s is READ or s is URL) and (shape, f) not in CASES]
    assert missing == []
    assert set(SHAPES) == set(HOMES)
    assert {k for k, _ in CASES} <= set(SHAPES)
    # the tables the extractors dispatch on are all here
    for table in (openai._TEXT_PARTS, openai._MEDIA_PARTS, openai._ITEMS, openai._OTHER_ITEMS, anthropic._BLOCKS):
        assert {id(s) for s in table.values()} <= {id(s) for s in SHAPES.values()}


@pytest.mark.parametrize("shape", list(HOMES))
def test_each_home_is_a_valid_request_without_a_cpf(shape):
    endpoint, base, wrap = HOMES[shape]
    segs = extract_segments(endpoint, wrap(copy.deepcopy(base)))
    assert not [s for s in segs if CPF in s.text or DIGITS in s.text]


@pytest.mark.parametrize("shape,field,value,read", list(_params()))
def test_a_cpf_in_any_field_of_any_object_is_a_segment_and_is_written_back(shape, field, value, read):
    endpoint, body = _place(shape, field, value)
    try:
        segs = extract_segments(endpoint, body)
    except DialectError:
        assert not read, "a field the extractor reads takes this value"
        return  # refused with a 400: the provider never receives it
    found = [s for s in segs if CPF in s.text or DIGITS in s.text]
    assert found, f"{shape}.{field} reaches the provider uninspected"
    assert len({(s.path, s.kind == "key") for s in segs}) == len(segs), "one text, one segment"
    write_segments(body, segs, [s.text.replace(CPF, "[CPF_1]").replace(DIGITS, "[CPF_1]") for s in segs])
    sent = json.dumps(body, ensure_ascii=False)
    assert CPF not in sent and DIGITS not in sent


def test_tool_names_are_left_as_they_are():
    # NAME: the APIs restrict tool names to [a-zA-Z0-9_-]; the caller's code dispatches on them
    names = [(shape, f) for shape, spec in SHAPES.items() for f, s in _fields(spec) if s is NAME]
    assert names and all(f.split(".")[-1] == "name" for _, f in names)
    for shape, field in names:
        endpoint, body = _place(shape, field, f"consulta_{DIGITS}")
        assert not [s for s in extract_segments(endpoint, body) if DIGITS in s.text], (shape, field)
        # a string no API takes for a name names no tool a call could reach: inspected
        endpoint, body = _place(shape, field, T)
        assert [s for s in extract_segments(endpoint, body) if s.text == T], (shape, field)


def test_base64_content_is_never_scanned_and_makes_its_object_uninspectable():
    secret = base64.b64encode(T.encode()).decode()
    cases = [(shape, f) for shape, spec in SHAPES.items() for f, s in _fields(spec) if s is BINARY]
    assert cases
    for shape, field in cases:
        endpoint, body = _place(shape, field, secret)
        segs = extract_segments(endpoint, body)
        assert "uninspectable" in {s.kind for s in segs}, (shape, field)
        assert not [s for s in segs if secret in s.text], (shape, field)
    # a data: URL where a link belongs is the content itself: not scanned either
    data_url = "data:image/png;base64," + secret
    for shape, field in [("image_url part", "image_url.url"), ("input_image part", "image_url"),
                         ("input_file part", "file_url"), ("media source", "url")]:
        endpoint, body = _place(shape, field, data_url)
        segs = extract_segments(endpoint, body)
        assert "uninspectable" in {s.kind for s in segs} and not [s for s in segs if secret in s.text], (shape, field)
    # and a data: URL where nobody expects one (a field the gateway does not know) is uninspectable too
    segs = extract_segments(CHAT, _chat({"role": "user", "content": "oi", "anexo": data_url}))
    assert ("messages[0].anexo", "uninspectable") in [(s.where, s.kind) for s in segs]


def test_a_tool_call_and_its_result_name_the_same_id_in_segments_of_the_same_text():
    # the same text in both: the per-request placeholder map gives both the same placeholder
    cid = f"call_{CPF}"
    segs = extract_segments(CHAT, _chat(
        {"role": "assistant", "tool_calls": [{"id": cid, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": cid, "content": "ok"}))
    assert [(s.where, s.text) for s in segs if s.text == cid] == [
        ("messages[0].tool_calls[0].id", cid), ("messages[1].tool_call_id", cid)]
    segs = extract_segments(MESSAGES, {"model": "m", "max_tokens": 16, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": cid, "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": cid, "content": "ok"}]}]})
    assert [s.where for s in segs if s.text == cid] == ["messages[0].content[0].id", "messages[1].content[0].tool_use_id"]


def test_an_image_url_rewritten_is_written_back_in_place():
    body = _chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": URL_CPF, "detail": "low"}}]})
    segs = extract_segments(CHAT, body)
    assert [(s.where, s.kind) for s in segs] == [("messages[0].content[0]", "uninspectable"),
                                                 ("messages[0].content[0].image_url.url", "other")]
    write_segments(body, segs, ["", "https://x.gov.br/doc?cpf=[CPF_1]"])
    assert body["messages"][0]["content"][0] == {
        "type": "image_url", "image_url": {"url": "https://x.gov.br/doc?cpf=[CPF_1]", "detail": "low"}}


def test_a_prompt_variable_that_is_an_image_or_a_file_is_read_like_a_content_part():
    body = {"model": "m", "prompt": {"id": "pmpt_1", "variables": {
        "foto": {"type": "input_image", "image_url": URL_CPF}, "ficha": {"type": "input_file", "filename": f"{T}.pdf"},
        "nota": {"type": "input_text", "text": T, "x": T}}}}
    segs = extract_segments(RESPONSES, body)
    assert [(s.where, s.kind) for s in segs if CPF in s.text or DIGITS in s.text] == [
        ("prompt.variables.foto.image_url", "other"), ("prompt.variables.ficha.filename", "other"),
        ("prompt.variables.nota.text", "input"), ("prompt.variables.nota.x", "other")]
    assert ("prompt.variables.foto", "uninspectable") in [(s.where, s.kind) for s in segs]
