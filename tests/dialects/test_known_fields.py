"""Every top-level field each endpoint knows, with a CPF in it: a segment, written back where it was.

The table below must name every field of ``gateway.dialects._FIELDS`` (a field added there without a
case here fails ``test_every_known_field_has_a_case``): a field the extractor claims to read, or a
setting that passes uninspected when it holds only the API's words, is checked here with a CPF in a
plausible shape, and settings also with a CPF where a number or an enum belongs.
"""

import copy
import json

import pytest

from gateway.dialects import _FIELDS, _READ, extract_segments, write_segments

CPF = "529.982.247-25"
T = f"CPF {CPF}"
SCHEMA = {"type": "object", "properties": {"cpf": {"type": "string", "description": T}}}

BASE = {
    "/v1/chat/completions": {"model": "m", "messages": [{"role": "user", "content": "oi"}]},
    "/v1/completions": {"model": "m", "prompt": "oi"},
    "/v1/embeddings": {"model": "m", "input": "oi"},
    "/v1/responses": {"model": "m", "input": "oi"},
    "/v1/responses/input_tokens": {"model": "m", "input": "oi"},
    "/v1/messages": {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "oi"}]},
    "/v1/messages/count_tokens": {"model": "m", "messages": [{"role": "user", "content": "oi"}]},
}

NOT_SENT = {"model"}
"""Fields a provider never receives as the caller sent them: the gateway routes on ``model`` and
sends the route's model name instead."""

COMMON = {
    "metadata": [{"cliente": CPF}, {CPF: "x"}],
    "user": [T, {"email": T}], "safety_identifier": [T], "prompt_cache_key": [T],
}
CHAT = {
    **COMMON,
    "messages": [[{"role": "user", "content": T}]],
    "tools": [[{"type": "function", "function": {"name": "f", "description": T, "parameters": SCHEMA}}]],
    "functions": [[{"name": "f", "description": T}]],
    "tool_choice": [{"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
        {"type": "mcp", "server_label": CPF}]}}, T],
    "function_call": [T, {"name": "f", "nota": T}],
    "web_search_options": [{"user_location": {"type": "approximate", "approximate": {"city": CPF}}}],
    "response_format": [{"type": "json_schema", "json_schema": {"name": "r", "description": T, "schema": SCHEMA}},
                        {"type": "json_schema", "json_schema": {"name": "cpf_52998224725", "schema": {}}},
                        {"type": T}],
    "prediction": [{"type": "content", "content": T}, {"type": "content", "content": [{"type": "text", "text": T}]},
                   {"type": "content", "content": "oi", "nota": T}],
    "stop": [T, [T], [{"x": T}]],
    "logit_bias": [{"52998224725": 1}, {"1": T}],
    "audio": [{"voice": {"id": T}, "format": "mp3"}, {"voice": T, "format": "mp3"}],
    "modalities": [["text", T]],
    "moderation": [{"model": T}, {"model": "omni-moderation-latest", "policy": {"input": {"mode": T}}}],
    "prompt_cache_options": [{"mode": "explicit", "ttl": T}],
    "stream_options": [{"include_usage": True, "nota": T}],
}
COMPLETIONS = {
    **COMMON, "prompt": [T, [T]], "suffix": [T, [T]], "stop": [T, [T]], "logit_bias": [{"52998224725": 1}, {"1": T}],
}
EMBEDDINGS = {**COMMON, "input": [T, [T]]}
RESPONSES = {
    **COMMON,
    "input": [T, [{"role": "user", "content": T}]],
    "instructions": [T],
    "tools": [[{"type": "function", "name": "f", "description": T, "parameters": SCHEMA}]],
    "tool_choice": [{"type": "mcp", "server_label": CPF}, T],
    "text": [{"format": {"type": "json_schema", "name": "r", "description": T, "schema": SCHEMA}},
             {"format": {"type": "json_schema", "name": T, "schema": {}}}, {"verbosity": T}],
    "prompt": [{"id": "pmpt_1", "variables": {"cliente": T}}, {"id": "pmpt_1", "variables": {CPF: "x"}},
               {"id": "pmpt_1", "version": T}, {"id": T}],
    "reasoning": [{"effort": "low", "summary": T}, {"effort": T}],
    "include": [["reasoning.encrypted_content", T]],
    "previous_response_id": [T], "conversation": [T, {"id": T}],
    "background_options": [{"completion_window": "2h", "continuation_id": T}],
    "context_management": [[{"type": "compaction", "compact_threshold": 1000, "instructions": T}], [{"type": T}]],
    "image": [{"context_compression": T}],
    "access_programs": [{"cyber": T}],
    "moderation": [{"model": T}],
    "prompt_cache_options": [{"mode": "explicit", "comparison_response_id": T}],
}
MESSAGES = {
    **COMMON,
    "messages": [[{"role": "user", "content": T}]],
    "system": [T, [{"type": "text", "text": T}]],
    "tools": [[{"name": "f", "description": T, "input_schema": SCHEMA}]],
    "tool_choice": [{"type": "tool", "name": "f", "nota": T}, T],
    "mcp_servers": [[{"type": "url", "url": "https://mcp.example/sse", "name": "crm", "authorization_token": CPF}]],
    "stop_sequences": [[T]],
    "output_config": [{"format": {"type": "json_schema", "schema": SCHEMA}}, {"effort": T},
                      {"format": {"type": "json_schema", "schema": {}, "nota": T}}],
    "output_format": [{"type": "json_schema", "schema": SCHEMA},
                      {"type": "json_schema", "schema": {"type": "object", "properties": {
                          "situacao": {"type": "string", "enum": ["regular", CPF], "default": CPF}}}}],
    "thinking": [{"type": "enabled", "budget_tokens": 1024, "display": T}],
    "container": [T, {"id": "container_1", "skills": [{"type": "custom", "skill_id": T, "version": "latest"}]}],
    "context_management": [{"edits": [{"type": "clear_tool_uses_20250919", "exclude_tools": [T]}]},
                           {"edits": [{"type": T}]}],
    "cache_control": [{"type": "ephemeral", "ttl": T}],
    "diagnostics": [{"previous_message_id": T}],
}
CASES = {"/v1/chat/completions": CHAT, "/v1/completions": COMPLETIONS, "/v1/embeddings": EMBEDDINGS,
         "/v1/responses": RESPONSES, "/v1/responses/input_tokens": RESPONSES, "/v1/messages": MESSAGES,
         "/v1/messages/count_tokens": MESSAGES}


def _params():
    for endpoint, fields in _FIELDS.items():
        for field, words in fields.items():
            if field in NOT_SENT:
                continue
            shapes = list(CASES[endpoint].get(field, []))
            if words is not _READ:
                shapes.append(T)  # a setting that is not a legal scalar: a string where a number or an enum belongs
            for i, shape in enumerate(shapes):
                yield pytest.param(endpoint, field, shape, id=f"{endpoint}:{field}:{i}")


def test_every_known_field_has_a_case():
    # a field the extractor claims to read needs a case above: nothing else shows that it does
    for endpoint, fields in _FIELDS.items():
        read = {f for f, words in fields.items() if words is _READ}
        assert read - NOT_SENT - set(CASES[endpoint]) == set(), endpoint
        assert set(CASES[endpoint]) - set(fields) == set(), endpoint


@pytest.mark.parametrize("endpoint,field,shape", list(_params()))
def test_a_cpf_in_any_known_field_is_a_segment_and_is_written_back(endpoint, field, shape):
    body = copy.deepcopy(BASE[endpoint])
    body[field] = copy.deepcopy(shape)
    segs = extract_segments(endpoint, body)
    digits = "52998224725"
    found = [s for s in segs if CPF in s.text or digits in s.text]
    assert found, f"{field} reaches the provider uninspected"
    assert len({(s.path, s.kind == "key") for s in segs}) == len(segs), "one text, one segment"
    new = [s.text.replace(CPF, "[CPF_1]").replace(digits, "[CPF_1]") for s in segs]
    write_segments(body, segs, new)
    sent = json.dumps(body, ensure_ascii=False)
    assert CPF not in sent and digits not in sent


@pytest.mark.parametrize("endpoint,body", [
    ("/v1/chat/completions", {"stream": True, "stream_options": {"include_usage": True}, "service_tier": "auto",
                              "reasoning_effort": "low", "modalities": ["text", "audio"],
                              "audio": {"voice": "alloy", "format": "mp3"}, "temperature": 0.2, "max_tokens": 9,
                              "n": 1, "seed": 7, "logprobs": True, "prompt_cache_retention": "24h",
                              "tool_choice": "auto", "verbosity": "high", "store": False}),
    ("/v1/responses", {"reasoning": {"effort": "high", "summary": "auto"}, "include": ["reasoning.encrypted_content"],
                       "truncation": "auto", "service_tier": "flex", "background": True,
                       "context_management": [{"type": "compaction", "compact_threshold": 1000}],
                       "tool_choice": "required", "prompt_cache_options": {"mode": "implicit", "ttl": "30m"}}),
    ("/v1/embeddings", {"encoding_format": "base64", "dimensions": 256}),
    ("/v1/messages", {"thinking": {"type": "enabled", "budget_tokens": 1024}, "service_tier": "standard_only",
                      "cache_control": {"type": "ephemeral", "ttl": "1h"}, "top_k": 5, "speed": "fast",
                      "context_management": {"edits": [{"type": "clear_tool_uses_20250919",
                                                        "trigger": {"type": "input_tokens", "value": 30000}}]}}),
])
def test_settings_that_hold_only_the_apis_words_add_no_segment(endpoint, body):
    # the common settings cost nothing: they carry no text of the caller's
    plain = extract_segments(endpoint, BASE[endpoint])
    assert extract_segments(endpoint, {**BASE[endpoint], **body}) == plain


def test_a_setting_that_is_not_a_legal_scalar_is_inspected_at_its_path():
    body = {**BASE["/v1/chat/completions"], "service_tier": T, "temperature": {"nota": T}, "seed": [T]}
    segs = extract_segments("/v1/chat/completions", body)
    assert [(s.where, s.kind) for s in segs if CPF in s.text] == [
        ("service_tier", "other"), ("temperature.nota", "other"), ("seed[0]", "other")]
    assert ("temperature.nota", "key") in [(s.where, s.kind) for s in segs]
    assert "service_tier" not in {s.text for s in segs}  # the name of a known field is the API's, not a key
    write_segments(body, segs, [s.text.replace(CPF, "[CPF_1]") for s in segs])
    assert (body["service_tier"], body["temperature"], body["seed"]) == ("CPF [CPF_1]", {"nota": "CPF [CPF_1]"},
                                                                          ["CPF [CPF_1]"])
