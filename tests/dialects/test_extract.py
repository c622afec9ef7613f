"""Segment extraction on golden provider requests: paths, kinds, write-back, bad shapes."""

import copy
import json
from pathlib import Path

import pytest

from gateway.dialects import ENDPOINTS, DialectError, extract_segments, request_model, request_stream, write_segments

FIX = Path(__file__).parents[1] / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIX / name).read_text())


def table(segs):
    return [(s.where, s.kind) for s in segs]


def test_endpoints_map_to_dialects():
    assert ENDPOINTS == {"/v1/chat/completions": "openai", "/v1/completions": "openai", "/v1/embeddings": "openai",
                         "/v1/responses": "openai", "/v1/responses/input_tokens": "openai",
                         "/v1/messages": "anthropic", "/v1/messages/count_tokens": "anthropic"}


def test_chat_request_every_text_with_path_and_kind():
    body = load("openai/chat_request.json")
    segs = extract_segments("/v1/chat/completions", body)
    assert table(segs) == [
        ("messages[0].content", "system"),
        ("messages[1].content[0].text", "message"),
        ("messages[1].content[1]", "uninspectable"),
        ("messages[2].tool_calls[0].function.arguments", "tool_arguments"),
        ("messages[2].tool_calls[0].id", "other"),  # ids reach the provider too
        ("messages[3].content", "tool_result"),
        ("messages[3].tool_call_id", "other"),
        ("messages[4].content", "message"),
        ("messages[5].content", "message"),
        ("tools[0].function.description", "tool_definition"),
        ("tools[0].function.parameters.properties.cpf", "key"),
        ("tools[0].function.parameters.properties.cpf.description", "tool_definition"),
        ("tools[0].function.parameters.required[0]", "tool_definition"),
        ("stop[0]", "other"),
    ]
    assert segs[1].text == "Check the status of taxpayer CPF 123.456.789-09."
    assert segs[2].text == ""
    assert segs[3].text == '{"cpf": "123.456.789-09"}'


def test_completions_and_embeddings():
    segs = extract_segments("/v1/completions", load("openai/completions_request.json"))
    assert table(segs) == [("prompt[0]", "input"), ("prompt[1]", "input"), ("suffix", "input")]
    segs = extract_segments("/v1/embeddings", load("openai/embeddings_request.json"))
    assert table(segs) == [("input[0]", "input"), ("input[1]", "input"), ("input[2]", "uninspectable")]
    segs = extract_segments("/v1/embeddings", {"model": "m", "input": [1, 2, 3]})
    assert table(segs) == [("input", "uninspectable")]
    segs = extract_segments("/v1/completions", {"model": "m", "prompt": "só texto"})
    assert table(segs) == [("prompt", "input")] and segs[0].text == "só texto"


def test_responses_request():
    segs = extract_segments("/v1/responses", load("openai/responses_request.json"))
    assert table(segs) == [
        ("instructions", "system"),
        ("input[0].content", "system"),
        ("input[1].content[0].text", "message"),
        ("input[1].content[1]", "uninspectable"),
        ("input[1].content[1].image_url", "other"),  # the link the provider fetches
        ("input[1].content[2]", "uninspectable"),
        ("input[1].content[2].file_id", "other"),
        ("input[2].arguments", "tool_arguments"),
        ("input[2].call_id", "other"),
        ("input[3].output", "tool_result"),
        ("input[3].call_id", "other"),
        ("input[4].content[0].text", "message"),
        ("input[5].id", "other"),
        ("tools[0].description", "tool_definition"),
        ("tools[0].parameters.properties.cpf", "key"),
        ("tools[0].parameters.properties.cpf.description", "tool_definition"),
        ("tools[0].parameters.required[0]", "tool_definition"),
    ]
    assert table(extract_segments("/v1/responses", {"model": "m", "input": "olá"})) == [("input", "input")]


def test_anthropic_messages_request():
    body = load("anthropic/messages_request.json")
    segs = extract_segments("/v1/messages", body)
    assert table(segs) == [
        ("system[0].text", "system"),
        ("messages[0].content", "message"),
        ("messages[1].content[0].text", "message"),
        ("messages[1].content[1].input", "tool_arguments"),
        ("messages[1].content[1].id", "other"),  # ids reach the provider too
        ("messages[2].content[0].content[0].text", "tool_result"),
        ("messages[2].content[0].tool_use_id", "other"),
        ("messages[2].content[1].text", "message"),
        ("messages[2].content[2]", "uninspectable"),
        ("messages[2].content[3].source.data", "message"),
        ("messages[2].content[3].title", "message"),
        ("tools[0].description", "tool_definition"),
        ("tools[0].input_schema.properties.cpf", "key"),
        ("tools[0].input_schema.properties.cpf.description", "tool_definition"),
        ("tools[0].input_schema.required[0]", "tool_definition"),
        ("stop_sequences[0]", "other"),
    ]
    assert json.loads(segs[3].text) == {"cpf": "123.456.789-09"}
    assert "123.456.789-09" in segs[3].text  # the JSON text keeps characters readable for the detectors
    assert table(extract_segments("/v1/messages", {"system": "s", "messages": [{"role": "user", "content": "c"}]})) == \
        [("system", "system"), ("messages[0].content", "message")]


def test_unknown_parts_and_items_are_uninspectable_not_skipped():
    segs = extract_segments("/v1/chat/completions", {"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}, {"type": "file", "file": {"file_id": "f"}},
        {"type": "brand_new_part", "text": 1}]}]})
    # (and every string beside the content is inspected, the name of a field the gateway does not know too)
    assert table(segs) == [("messages[0].content[0]", "uninspectable"), ("messages[0].content[1]", "uninspectable"),
                           ("messages[0].content[1].file.file_id", "other"), ("messages[0].content[2]", "uninspectable"),
                           ("messages[0].content[2].type", "other"), ("messages[0].content[2].text", "key")]
    segs = extract_segments("/v1/messages", {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        {"type": "search_result", "source": "x", "title": "t", "content": []}]}]})
    assert table(segs)[:3] == [("messages[0].content[0]", "uninspectable"), ("messages[0].content[1]", "uninspectable"),
                               ("messages[0].content[1].type", "other")]  # then the search result's strings
    segs = extract_segments("/v1/responses", {"input": [{"type": "computer_call_output", "output": {}}]})
    assert table(segs) == [("input[0]", "uninspectable"), ("input[0].type", "other"), ("input[0].output", "key")]
    segs = extract_segments("/v1/responses", {"prompt": {"id": "p", "variables": {
        "foto": {"type": "input_image", "image_url": "data:image/png;base64,AAA"}, "nome": "Ana"}}})
    assert table(segs) == [("prompt.id", "other"), ("prompt.variables.foto", "key"), ("prompt.variables.foto", "uninspectable"),
                           ("prompt.variables.nome", "key"), ("prompt.variables.nome", "input")]


@pytest.mark.parametrize("endpoint,name", [
    ("/v1/chat/completions", "openai/chat_request.json"),
    ("/v1/completions", "openai/completions_request.json"),
    ("/v1/embeddings", "openai/embeddings_request.json"),
    ("/v1/responses", "openai/responses_request.json"),
    ("/v1/messages", "anthropic/messages_request.json"),
])
def test_write_back_round_trip(endpoint, name):
    body = load(name)
    segs = extract_segments(endpoint, body)
    # unchanged texts leave the body exactly as it was
    same = copy.deepcopy(body)
    write_segments(same, segs, [s.text for s in segs])
    assert same == body
    # changed texts land at their paths, and extraction reads them back (keys are left as they are
    # here, since renaming one changes the paths: test_caller_chosen_keys_are_renamed_in_place)
    new = [s.text if s.kind in ("uninspectable", "key") else f"<{i}:{s.text[:3]}>" if s.kind != "tool_arguments"
           else json.dumps({"n": i}) for i, s in enumerate(segs)]
    write_segments(body, segs, new)
    again = extract_segments(endpoint, body)
    assert table(again) == table(segs)
    assert [s.text if s.kind != "tool_arguments" else json.loads(s.text) for s in again] == \
        [t if s.kind != "tool_arguments" else json.loads(t) for s, t in zip(segs, new)]


def test_tool_use_input_written_back_as_an_object():
    body = load("anthropic/messages_request.json")
    segs = extract_segments("/v1/messages", body)
    i = next(i for i, s in enumerate(segs) if s.kind == "tool_arguments")
    new = [s.text for s in segs]
    new[i] = segs[i].text.replace("123.456.789-09", "[CPF_1]")
    write_segments(body, segs, new)
    assert body["messages"][1]["content"][1]["input"] == {"cpf": "[CPF_1]"}
    new[i] = '{"cpf": "[CPF_1]'  # broken JSON: refuse rather than send something half-done
    with pytest.raises(DialectError):
        write_segments(load("anthropic/messages_request.json"), segs, new)


@pytest.mark.parametrize("endpoint,body,where", [
    ("/v1/chat/completions", {"model": "m"}, "messages"),
    ("/v1/chat/completions", {"messages": "hi"}, "messages"),
    ("/v1/chat/completions", {"messages": [{"content": "no role"}]}, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [7]}]}, "messages[0].content[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ("/v1/chat/completions", {"messages": [], "tools": {"a": 1}}, "tools"),
    ("/v1/embeddings", {"model": "m"}, "input"),
    ("/v1/embeddings", {"input": [{"x": 1}]}, "input[0]"),
    ("/v1/completions", {"prompt": 5}, "prompt"),
    ("/v1/responses", {"input": 5}, "input"),
    ("/v1/responses", {"input": [{"type": "function_call", "arguments": {}}]}, "input[0].arguments"),
    ("/v1/responses", {"instructions": ["x"]}, "instructions"),
    ("/v1/messages", {"messages": [{"role": "system", "content": "x"}]}, "messages[0]"),
    ("/v1/messages", {"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "messages[0].content[0]"),
    ("/v1/messages", {"system": 3, "messages": []}, "system"),
    ("/v1/messages", {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
     "messages[0].content[0].text"),
])
def test_bad_shapes_raise_dialect_error_naming_the_path(endpoint, body, where):
    with pytest.raises(DialectError) as e:
        extract_segments(endpoint, body)
    assert e.value.code == "invalid_request" and e.value.status == 400
    assert str(e.value).startswith(where + " ")


def test_dialect_error_never_carries_the_value():
    secret = "CPF 123.456.789-09"
    with pytest.raises(DialectError) as e:
        extract_segments("/v1/chat/completions", {"messages": [{"role": "user", "content": {"x": secret}}]})
    assert "123" not in str(e.value)


def test_unknown_endpoint_and_request_fields():
    with pytest.raises(DialectError) as e:
        extract_segments("/v1/assistants", {})
    assert e.value.status == 404
    assert request_model({"model": "gpt-4o"}) == "gpt-4o"
    assert request_model({"model": 5}) is None and request_model({}) is None
    assert request_stream({"stream": True}) is True
    assert request_stream({"stream": "yes"}) is False and request_stream({}) is False


def test_chat_plain_messages_fast_path_equals_the_general_path():
    # {"role", "content"} messages take a shortcut in openai.chat; a third key with no text in it
    # sends the same message down the general path: both must give the same segments or error
    from gateway.dialects import DialectError, extract_segments

    roles = ["user", "system", "developer", "assistant", "tool", "function", "", 3, None]
    contents = ["oi", "", None, 5, ["x"], [{"type": "text", "text": "a"}], {"a": 1}]
    for role in roles:
        for content in contents:
            fast = [{"role": role, "content": content}, {"content": content, "role": role}]
            slow = [dict(m, x_unknown=0) for m in fast]

            def run(msgs):
                try:
                    return extract_segments("/v1/chat/completions", {"model": "m", "messages": msgs})
                except DialectError as e:
                    return ("error", str(e), e.code, e.status)

            # (less the name of the third key: a name the caller chose, inspected like a value)
            slow_segs = run(slow)
            if isinstance(slow_segs, list):
                slow_segs = [s for s in slow_segs if not (s.kind == "key" and s.text == "x_unknown")]
            assert run(fast) == slow_segs, (role, content)


@pytest.mark.parametrize("endpoint", ["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages"])
def test_end_user_ids_and_metadata_are_inspected_in_every_dialect(endpoint):
    body = {"model": "m", ("input" if endpoint in ("/v1/responses", "/v1/embeddings") else "messages"):
            [{"role": "user", "content": "oi"}] if endpoint in ("/v1/chat/completions", "/v1/messages") else "oi",
            "user": "ana@example.org", "safety_identifier": "529.982.247-25", "prompt_cache_key": "k",
            "metadata": {"user_id": "ana@example.org", "n": 3, "empty": ""}}
    segs = extract_segments(endpoint, body)
    assert [(s.where, s.kind, s.text) for s in segs if s.kind == "other"] == [
        ("user", "other", "ana@example.org"), ("safety_identifier", "other", "529.982.247-25"),
        ("prompt_cache_key", "other", "k"), ("metadata.user_id", "other", "ana@example.org")]
    new = [("[EMAIL_1]" if s.text == "ana@example.org" else s.text) for s in segs]
    write_segments(body, segs, new)
    assert body["user"] == body["metadata"]["user_id"] == "[EMAIL_1]"


def test_a_chat_participant_name_is_inspected():
    segs = extract_segments("/v1/chat/completions", {"model": "m", "messages": [
        {"role": "user", "name": "52998224725", "content": "oi"}]})
    assert table(segs) == [("messages[0].content", "message"), ("messages[0].name", "other")]


def test_a_token_that_replaced_a_json_number_is_written_back_as_a_string():
    body = {"messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": {"cpf": 52998224725, "note": 'já "[X_1]" [Y_2]'}}]}]}
    segs = extract_segments("/v1/messages", body)
    new = [s.text.replace("52998224725", "[CPF_1]") for s in segs]
    write_segments(body, segs, new)
    assert body["messages"][0]["content"][0]["input"] == {"cpf": "[CPF_1]", "note": 'já "[X_1]" [Y_2]'}
    chat = {"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "n", "arguments": '{"n": [1, 5511987654321]}'}}]}]}
    segs = extract_segments("/v1/chat/completions", chat)
    write_segments(chat, segs, [s.text.replace("5511987654321", "[PHONE_1]") for s in segs])
    assert json.loads(chat["messages"][0]["tool_calls"][0]["function"]["arguments"]) == {"n": [1, "[PHONE_1]"]}
    custom = {"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "custom", "custom": {"name": "n", "input": "ligar 5511987654321"}}]}]}
    segs = extract_segments("/v1/chat/completions", custom)
    write_segments(custom, segs, [s.text.replace("5511987654321", "[PHONE_1]") for s in segs])  # free text, not JSON: left as it is
    assert custom["messages"][0]["tool_calls"][0]["custom"]["input"] == "ligar [PHONE_1]"


def keys(segs):
    return [(s.where, s.text) for s in segs if s.kind == "key"]


def test_caller_chosen_keys_are_segments_before_their_values():
    email, cpf = "joana.silva@exemplo.com.br", "529.982.247-25"
    body = {"model": "m", "messages": [{"role": "user", "content": "oi", "notas": {cpf: "x"}}],
            "metadata": {email: "v", "n": {cpf: 1}}, "extra": {cpf: 1}, "logit_bias": {"52998224725": 1}}
    segs = extract_segments("/v1/chat/completions", body)
    assert keys(segs) == [
        ("messages[0].notas", "notas"), (f"messages[0].notas.{cpf}", cpf),
        (f"metadata.{email}", email), ("metadata.n", "n"), (f"metadata.n.{cpf}", cpf),
        ("logit_bias.52998224725", "52998224725"),
        ("extra", "extra"), (f"extra.{cpf}", cpf)]
    # document order: a key comes right before the texts of its member
    i = [s.kind for s in segs].index("key")
    assert (segs[i].text, segs[i + 2].where) == ("notas", f"messages[0].notas.{cpf}")
    segs = extract_segments("/v1/messages", {"messages": [{"role": "user", "content": "oi", "x": {email: ""}}],
                                             "metadata": {"user_id": "u"}, cpf: "y"})
    assert keys(segs) == [("messages[0].x", "x"), (f"messages[0].x.{email}", email),
                          ("metadata.user_id", "user_id"), (cpf, cpf)]
    segs = extract_segments("/v1/responses", {"prompt": {"id": "p", "variables": {email: "Ana"}}})
    assert [(s.text, s.kind) for s in segs] == [("p", "other"), (email, "key"), ("Ana", "input")]


def test_the_common_chat_body_has_no_key_segments():
    segs = extract_segments("/v1/chat/completions", {"model": "m", "stream": True, "temperature": 0.2,
                                                     "messages": [{"role": "user", "content": "oi"}]})
    assert table(segs) == [("messages[0].content", "message")]


def test_schema_property_and_definition_names_are_keys_and_keywords_are_not():
    cpf = "529.982.247-25"
    schema = {"type": "object", "properties": {cpf: {"$ref": f"#/$defs/{cpf}"}, "enum": {"type": "string"}},
              "required": [cpf], "$defs": {cpf: {"type": "string", "examples": [{cpf: cpf}]}},
              "additionalProperties": False}
    segs = extract_segments("/v1/messages", {"messages": [{"role": "user", "content": "c"}],
                                             "tools": [{"name": "t", "input_schema": schema}]})
    base = "tools[0].input_schema"
    assert [(s.where, s.kind) for s in segs[1:]] == [
        (f"{base}.properties.{cpf}", "key"), (f"{base}.properties.{cpf}.$ref", "tool_definition"),
        (f"{base}.properties.enum", "key"),  # a property called "enum" is a name, not the keyword
        (f"{base}.required[0]", "tool_definition"),
        (f"{base}.$defs.{cpf}", "key"), (f"{base}.$defs.{cpf}.examples[0].{cpf}", "key"),
        (f"{base}.$defs.{cpf}.examples[0].{cpf}", "tool_definition")]


def test_every_string_of_a_schema_is_a_segment_but_type_names():
    cpf = "529.982.247-25"
    schema = {"type": ["object", "null"], "pattern": cpf, "x-nota": {"k": cpf}, "minLength": 3,
              "required": [cpf, {"n": cpf}], "items": cpf}
    segs = extract_segments("/v1/messages", {"messages": [{"role": "user", "content": "c"}],
                                             "tools": [{"name": "t", "input_schema": schema}]})
    base = "tools[0].input_schema"
    assert [(s.where, s.text) for s in segs[1:]] == [
        (f"{base}.pattern", cpf), (f"{base}.x-nota", "x-nota"), (f"{base}.x-nota.k", "k"),
        (f"{base}.x-nota.k", cpf), (f"{base}.required[0]", cpf), (f"{base}.required[1].n", "n"),
        (f"{base}.required[1].n", cpf), (f"{base}.items", cpf)]


def test_caller_chosen_keys_are_renamed_in_place():
    email, cpf = "joana.silva@exemplo.com.br", "529.982.247-25"
    body = {"model": "m", "messages": [{"role": "user", "content": "oi"}],
            "metadata": {"a": "1", email: email, "z": "2"}, "extra": {cpf: {cpf: cpf}, "k": 0}}
    segs = extract_segments("/v1/chat/completions", body)
    new = [s.text.replace(email, "[EMAIL_1]").replace(cpf, "[CPF_1]") for s in segs]
    write_segments(body, segs, new)
    # the member keeps its place, a key and its value are both rewritten, nested keys too
    assert list(body["metadata"].items()) == [("a", "1"), ("[EMAIL_1]", "[EMAIL_1]"), ("z", "2")]
    assert list(body["extra"].items()) == [("[CPF_1]", {"[CPF_1]": "[CPF_1]"}), ("k", 0)]
    # a renamed top-level field keeps its place among the others
    body = {"model": "m", "messages": [{"role": "user", "content": "oi"}], cpf: 1, "stream": False}
    segs = extract_segments("/v1/chat/completions", body)
    write_segments(body, segs, [s.text.replace(cpf, "[CPF_1]") for s in segs])
    assert list(body) == ["model", "messages", "[CPF_1]", "stream"]


def test_keys_that_would_collide_after_the_rewrite_are_a_400_not_a_lost_value():
    a, b = "ana@exemplo.com.br", "bia@exemplo.com.br"
    for md in ({a: "1", b: "2"}, {a: "1", "[REDACTED:EMAIL]": "2"}):
        body = {"model": "m", "messages": [{"role": "user", "content": "oi"}], "metadata": dict(md)}
        segs = extract_segments("/v1/chat/completions", body)
        new = [s.text.replace(a, "[REDACTED:EMAIL]").replace(b, "[REDACTED:EMAIL]") for s in segs]
        with pytest.raises(DialectError) as e:
            write_segments(body, segs, new)
        assert e.value.status == 400 and a not in str(e.value) and b not in str(e.value)


def test_every_string_of_a_tool_of_any_type_is_a_segment_but_its_type_and_name():
    # server tools (a web search's location, an MCP server's headers and token), a field a newer API
    # adds, and a tool choice: the provider receives them all. The type and the name stay as they are:
    # the model calls a tool by its name
    cpf = "529.982.247-25"
    chat = {"messages": [{"role": "user", "content": "oi"}], "tools": [
        {"type": "web_search", "web_search": {"user_location": {"type": "approximate", "approximate": {"city": cpf}}}},
        {"type": "mcp", "server_label": "crm", "headers": {"X-Cliente": cpf}},
        {"type": "function", "function": {"name": "ficha", "strict": True, "novo": cpf}}],
        "functions": [{"name": "antiga", "nota": cpf}],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
            {"type": "function", "function": {"name": "ficha"}}, {"type": "mcp", "server_label": cpf}]}}}
    segs = extract_segments("/v1/chat/completions", chat)
    assert [(s.where, s.kind) for s in segs if s.text == cpf] == [
        ("tools[0].web_search.user_location.approximate.city", "tool_definition"),
        ("tools[1].headers.X-Cliente", "tool_definition"), ("tools[2].function.novo", "tool_definition"),
        ("functions[0].nota", "tool_definition"), ("tool_choice.allowed_tools.tools[1].server_label", "tool_definition")]
    assert keys(segs)[:2] == [("tools[0].web_search", "web_search"), ("tools[0].web_search.user_location", "user_location")]
    assert not {"function", "web_search", "mcp", "ficha", "antiga"} & {s.text for s in segs if s.kind != "key"}
    ant = {"messages": [{"role": "user", "content": "oi"}], "tools": [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2, "allowed_domains": [f"{cpf}.example"],
         "user_location": {"type": "approximate", "city": cpf}, "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "tool", "name": "web_search", "disable_parallel_tool_use": True}}
    segs = extract_segments("/v1/messages", ant)
    assert [s.where for s in segs if cpf in s.text and s.kind != "key"] == [
        "tools[0].allowed_domains[0]", "tools[0].user_location.city"]
    assert not {"web_search_20250305", "web_search", "ephemeral"} & {s.text for s in segs}
    resp = {"input": "oi", "tools": [
        {"type": "web_search", "user_location": {"type": "approximate", "city": cpf}},
        {"type": "mcp", "server_label": "crm", "authorization": cpf, "require_approval": "never"}],
        "tool_choice": {"type": "mcp", "server_label": "crm", "name": "ficha"}}
    segs = extract_segments("/v1/responses", resp)
    assert [s.where for s in segs if s.text == cpf] == ["tools[0].user_location.city", "tools[1].authorization"]
    assert ("tool_choice.server_label", "tool_definition") in table(segs)
    # written back where they were found, the tool's own name untouched
    segs = extract_segments("/v1/chat/completions", chat)
    write_segments(chat, segs, [s.text.replace(cpf, "[CPF_1]") for s in segs])
    assert chat["tools"][1]["headers"] == {"X-Cliente": "[CPF_1]"}
    assert chat["tools"][2]["function"] == {"name": "ficha", "strict": True, "novo": "[CPF_1]"}
    assert chat["tool_choice"]["allowed_tools"]["tools"][1]["server_label"] == "[CPF_1]"
    assert cpf not in json.dumps(chat)


def test_web_search_options_and_mcp_servers_are_read_like_tools():
    # chat's search settings and the MCP servers Claude is given: tools' settings sent beside the tools
    cpf = "529.982.247-25"
    segs = extract_segments("/v1/chat/completions", {"messages": [{"role": "user", "content": "oi"}],
                                                     "web_search_options": {"user_location": {
                                                         "type": "approximate", "approximate": {"city": cpf}}}})
    assert [s.where for s in segs if s.text == cpf] == ["web_search_options.user_location.approximate.city"]
    body = {"messages": [{"role": "user", "content": "oi"}], "mcp_servers": [
        {"type": "url", "url": f"https://mcp.example/sse?cpf={cpf}", "name": "crm", "authorization_token": cpf}]}
    segs = extract_segments("/v1/messages", body)
    assert [(s.where, s.kind) for s in segs if cpf in s.text] == [
        ("mcp_servers[0].url", "tool_definition"), ("mcp_servers[0].authorization_token", "tool_definition")]
    assert "crm" not in {s.text for s in segs}  # the server's name: Claude's calls name it
