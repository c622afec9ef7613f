"""Request fields beyond the messages, through the official SDKs and the gateway to the stub upstreams:
every free-text field the provider receives reaches the foreign upstream only transformed."""

from __future__ import annotations

import aiohttp
import orjson

from gateway.testing.harness import Harness
from sdk_clients import ant, oai

CPF = "529.982.247-25"
MSGS = [{"role": "user", "content": "oi"}]




def sent_us(h: Harness) -> dict:
    """The body the foreign upstream received last; it never holds the CPF as it was sent."""
    body = h.received("US")[-1]["body"]
    assert CPF not in str(body) and "52998224725" not in str(body)
    return body


async def test_literal_values_of_json_schemas_reach_the_foreign_model_only_as_placeholders(gw):
    # example, default and enum values of a schema are data the model reads, also when they are objects
    params = {"type": "object", "properties": {"cpf": {"type": "string"}},
              "examples": [{"cpf": CPF}], "default": {"cpf": CPF}}
    await oai(gw).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "oi"}],
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": params}}],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": {
            "type": "object", "properties": {"who": {"enum": [{"cpf": CPF}]}}}}})
    body = sent_us(gw)
    assert body["tools"][0]["function"]["parameters"]["examples"] == [{"cpf": "[CPF_1]"}]
    assert body["response_format"]["json_schema"]["schema"]["properties"]["who"]["enum"] == [{"cpf": "[CPF_1]"}]
    await ant(gw).messages.create(
        model="claude-sonnet-4", max_tokens=16, messages=[{"role": "user", "content": "oi"}],
        tools=[{"name": "lookup", "input_schema": params}])
    assert sent_us(gw)["tools"][0]["input_schema"]["default"] == {"cpf": "[CPF_1]"}


async def test_every_string_and_foreign_name_of_a_json_schema_reaches_the_foreign_model_only_as_placeholders(gw):
    # found by fuzzing: a schema's strings other than descriptions, titles and literal values (a pattern,
    # a format, a $comment, a vendor's x- field, a type that is no type's name), the names of members
    # that are no keyword, and a schema that is a string went to the provider as the caller wrote them
    prop = {"type": "string", "pattern": CPF, "format": f"CPF {CPF}", "$comment": f"ex.: {CPF}",
            "x-nota": f"CPF {CPF}", "type_hint": {"cpf": CPF}, CPF: True}
    params = {"type": "object", "properties": {"cpf": prop}, "anyOf": [{"type": ["string", f"CPF {CPF}"]}]}
    await oai(gw).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS,
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": params}},
               {"type": "function", "function": {"name": "other", "parameters": f"CPF {CPF}"}}])
    tools = sent_us(gw)["tools"]
    assert tools[0]["function"]["parameters"] == {
        "type": "object", "anyOf": [{"type": ["string", "CPF [CPF_1]"]}], "properties": {"cpf": {
            "type": "string", "pattern": "[CPF_1]", "format": "CPF [CPF_1]", "$comment": "ex.: [CPF_1]",
            "x-nota": "CPF [CPF_1]", "type_hint": {"cpf": "[CPF_1]"}, "[CPF_1]": True}}}
    assert tools[1]["function"]["parameters"] == "CPF [CPF_1]"
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=MSGS,
                                  tools=[{"name": "lookup", "input_schema": params}])
    assert sent_us(gw)["tools"][0]["input_schema"]["properties"]["cpf"]["pattern"] == "[CPF_1]"


async def test_a_tool_type_or_cache_breakpoint_that_is_no_api_word_reaches_the_foreign_model_only_as_a_placeholder(gw):
    # found by fuzzing: a tool's (and a tool choice's) type and its cache_control were passed over
    # whatever they held; the APIs' own words still are (a type is how the provider tells tools apart)
    await oai(gw).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS,
        tools=[{"type": f"CPF {CPF}", "function": {"name": "f", "type": CPF, "parameters": {}}},
               {"type": "function", "function": {"name": "g", "parameters": {}}}],
        tool_choice={"type": "function", "function": {"name": "g"}})
    tools = sent_us(gw)["tools"]
    assert tools[0]["type"] == "CPF [CPF_1]" and tools[0]["function"]["type"] == "[CPF_1]"
    assert tools[1]["type"] == "function"
    await ant(gw).messages.create(
        model="claude-sonnet-4", max_tokens=16, messages=MSGS, tool_choice={"type": CPF},
        tools=[{"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral", "nota": CPF}},
               {"type": "web_search_20250305", "name": "web_search", "cache_control": {"type": "ephemeral"}}])
    body = sent_us(gw)
    assert body["tool_choice"] == {"type": "[CPF_1]"}
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral", "nota": "[CPF_1]"}
    assert body["tools"][1] == {"type": "web_search_20250305", "name": "web_search",
                                "cache_control": {"type": "ephemeral"}}


async def test_a_tool_name_no_api_takes_reaches_the_foreign_model_only_as_a_placeholder(gw):
    # found by fuzzing: tool names were left as they are whatever they held, so a value with separators,
    # which no API takes for a name (no call can name that tool), went to the provider as written
    await oai(gw).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, tool_choice={"type": "function", "function": {"name": f"CPF {CPF}"}},
        tools=[{"type": "function", "function": {"name": f"CPF {CPF}", "parameters": {}}},
               {"type": "function", "function": {"name": "consulta_cpf", "parameters": {}}}])
    body = sent_us(gw)
    assert [t["function"]["name"] for t in body["tools"]] == ["CPF [CPF_1]", "consulta_cpf"]
    assert body["tool_choice"]["function"]["name"] == "CPF [CPF_1]"
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, tools=[{"name": "f", "input_schema": {}}],
                                  messages=[{"role": "user", "content": "oi"}, {"role": "assistant", "content": [
                                      {"type": "tool_use", "id": "toolu_1", "name": CPF, "input": {}}]},
                                            {"role": "user", "content": [
                                                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}])
    assert sent_us(gw)["messages"][1]["content"][0]["name"] == "[CPF_1]"


async def test_responses_reasoning_text_and_prompt_variables_reach_the_foreign_model_only_as_placeholders(gw):
    # a reasoning item handed back with its reasoning text, and the variables of a stored prompt template
    await oai(gw).responses.create(
        model="gpt-4o-mini",
        prompt={"id": "pmpt_1", "variables": {"contribuinte": CPF, "nota": {"type": "input_text", "text": f"CPF {CPF}"}}},
        input=[{"type": "reasoning", "id": "rs_1", "summary": [],
                "content": [{"type": "reasoning_text", "text": f"O CPF {CPF} é válido."}]},
               {"role": "user", "content": "oi"}])
    body = sent_us(gw)
    assert body["prompt"]["variables"] == {"contribuinte": "[CPF_1]", "nota": {"type": "input_text", "text": "CPF [CPF_1]"}}
    assert body["input"][0]["content"][0]["text"] == "O CPF [CPF_1] é válido."


async def test_citations_handed_back_to_claude_reach_it_only_as_placeholders(gw):
    # an earlier answer's text block with the citations Claude gave it: each quotes the cited document
    cite = {"type": "char_location", "cited_text": f"Contribuinte CPF {CPF}", "document_index": 0,
            "document_title": f"Ficha {CPF}", "start_char_index": 0, "end_char_index": 31}
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=[
        {"role": "user", "content": "Quem é o contribuinte?"},
        {"role": "assistant", "content": [{"type": "text", "text": "O contribuinte da ficha.", "citations": [cite]}]},
        {"role": "user", "content": "Obrigado."}])
    got = sent_us(gw)["messages"][1]["content"][0]["citations"][0]
    assert (got["cited_text"], got["document_title"]) == ("Contribuinte CPF [CPF_1]", "Ficha [CPF_1]")


async def test_stop_sequences_reach_the_foreign_model_only_as_placeholders(gw):
    msgs = [{"role": "user", "content": "Liste os contribuintes."}]
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=msgs, stop=["FIM", f"CPF {CPF}"])
    assert sent_us(gw)["stop"] == ["FIM", "CPF [CPF_1]"]
    await oai(gw).completions.create(model="gpt-4o-mini", prompt="Contribuintes:", stop=CPF)
    assert sent_us(gw)["stop"] == "[CPF_1]"
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=msgs, stop_sequences=[CPF])
    assert sent_us(gw)["stop_sequences"] == ["[CPF_1]"]
    # an OpenAI caller's stop, translated for Claude
    await oai(gw).chat.completions.create(model="claude-sonnet-4", messages=msgs, stop=CPF)
    assert sent_us(gw)["stop_sequences"] == ["[CPF_1]"]


async def test_claude_tool_input_examples_and_output_schema_reach_it_only_as_placeholders(gw):
    schema = {"type": "object", "properties": {"cpf": {"type": "string", "description": f"ex.: {CPF}"}}}
    await ant(gw).messages.create(
        model="claude-sonnet-4", max_tokens=16, messages=[{"role": "user", "content": "oi"}],
        tools=[{"name": "lookup", "input_schema": {"type": "object", "properties": {"cpf": {"type": "string"}}},
                "input_examples": [{"cpf": CPF, "extra": {"notes": [f"CPF {CPF}"]}}]}],
        output_config={"format": {"type": "json_schema", "schema": schema}})
    body = sent_us(gw)
    assert body["tools"][0]["input_examples"] == [{"cpf": "[CPF_1]", "extra": {"notes": ["CPF [CPF_1]"]}}]
    assert body["output_config"]["format"]["schema"]["properties"]["cpf"]["description"] == "ex.: [CPF_1]"


async def test_responses_tools_of_every_type_reach_the_foreign_model_only_as_placeholders(gw):
    # a namespace groups function tools (each with its description and schemas); an MCP server and a
    # tool search carry descriptions the model is shown too
    fn = {"type": "function", "name": "ficha", "description": f"Ficha do contribuinte {CPF}",
          "parameters": {"type": "object", "properties": {"cpf": {"type": "string", "description": f"ex.: {CPF}"}}},
          "output_schema": {"type": "object", "description": f"Situação de {CPF}"}}
    await oai(gw).responses.create(model="gpt-4o-mini", input="oi", tools=[
        {"type": "namespace", "name": "receita", "description": f"Cadastro; teste com {CPF}", "tools": [fn]},
        {"type": "mcp", "server_label": "crm", "server_url": "https://mcp.example/sse",
         "server_description": f"CRM; cliente-modelo {CPF}"},
        {"type": "tool_search", "description": f"Busca; ex.: {CPF}"}])
    tools = sent_us(gw)["tools"]
    assert tools[0]["description"] == "Cadastro; teste com [CPF_1]"
    assert tools[0]["tools"][0]["description"] == "Ficha do contribuinte [CPF_1]"
    assert tools[0]["tools"][0]["output_schema"]["description"] == "Situação de [CPF_1]"
    assert tools[1]["server_description"] == "CRM; cliente-modelo [CPF_1]"


async def test_custom_tool_grammars_reach_the_foreign_model_only_as_placeholders(gw):
    lark = f'start: "consulta " CPF\nCPF: "{CPF}" | "000.000.000-00"'
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "oi"}], tools=[
        {"type": "custom", "custom": {"name": "consulta", "format": {
            "type": "grammar", "grammar": {"syntax": "lark", "definition": lark}}}}])
    assert "[CPF_1]" in sent_us(gw)["tools"][0]["custom"]["format"]["grammar"]["definition"]
    await oai(gw).responses.create(model="gpt-4o-mini", input="oi", tools=[
        {"type": "custom", "name": "consulta", "format": {"type": "grammar", "syntax": "lark", "definition": lark}}])
    assert "[CPF_1]" in sent_us(gw)["tools"][0]["format"]["definition"]


async def test_a_duplicate_key_does_not_carry_an_uninspected_value_to_the_upstream(gw):
    # JSON parsers keep the last of two equal keys, the gateway's as most upstreams': the first is
    # never inspected, and must not reach the upstream in the bytes it receives either
    body = ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "CPF %s"}], '
            '"messages": [{"role": "user", "content": "oi"}]}' % CPF).encode()
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", data=body, headers={
                "Authorization": f"Bearer {gw.keys['br']}", "Content-Type": "application/json"}) as r:
            assert r.status == 200
    got = gw.received("US")[-1]
    assert got["body"]["messages"] == [{"role": "user", "content": "oi"}]
    assert "529.982.247" not in got["raw"]


async def test_openapi_style_example_of_a_schema_reaches_the_foreign_model_only_as_a_placeholder(gw):
    # tool schemas generated from OpenAPI documents give their sample values as "example"
    params = {"type": "object", "properties": {"cpf": {"type": "string", "example": CPF}}}
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "oi"}],
                                          tools=[{"type": "function", "function": {"name": "f", "parameters": params}}])
    assert sent_us(gw)["tools"][0]["function"]["parameters"]["properties"]["cpf"]["example"] == "[CPF_1]"


async def test_structured_output_survives_translation_both_ways(gw):
    # an OpenAI caller's response_format routed to Claude, and a Claude caller's output_config routed to
    # an OpenAI-dialect model: dropped, the model answers prose the caller's parser cannot read
    schema = {"type": "object", "properties": {"situacao": {"type": "string"}}, "required": ["situacao"],
              "additionalProperties": False}
    await oai(gw).chat.completions.create(
        model="claude-sonnet-4", messages=[{"role": "user", "content": "Situação do contribuinte?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "strict": True, "schema": schema}})
    got = gw.received("US")[-1]
    assert got["path"].endswith("/messages")
    assert got["body"]["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    await ant(gw).messages.create(
        model="llama-3.3-70b", max_tokens=32, messages=[{"role": "user", "content": "Situação do contribuinte?"}],
        output_config={"format": {"type": "json_schema", "schema": schema}})
    got = gw.received("BR")[-1]
    assert got["path"].endswith("/chat/completions")
    assert got["body"]["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


async def test_a_cpf_sent_as_a_json_number_in_tool_input_becomes_a_string_placeholder(gw):
    # an agent's earlier tool call with the CPF as a number: the placeholder cannot stand bare in JSON
    digits = int(CPF.replace(".", "").replace("-", ""))
    msg = await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=[
        {"role": "user", "content": "Consulte o contribuinte."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "consulta",
                                           "input": {"cpf": digits, "ano": 2026}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "regular"}]}])
    assert msg.content[0].text
    assert sent_us(gw)["messages"][1]["content"][0]["input"] == {"cpf": "[CPF_1]", "ano": 2026}
    history = [{"role": "user", "content": "Consulte o contribuinte."},
               {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
                   "name": "consulta", "arguments": '{"cpf": %d, "ano": 2026}' % digits}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "regular"}]
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=history)
    args = sent_us(gw)["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert orjson.loads(args) == {"cpf": "[CPF_1]", "ano": 2026}
    await oai(gw).chat.completions.create(model="claude-sonnet-4", messages=history)  # translated for Claude
    assert sent_us(gw)["messages"][1]["content"][0]["input"] == {"cpf": "[CPF_1]", "ano": 2026}


async def test_fields_the_gateway_does_not_know_reach_the_foreign_model_only_transformed(gw):
    # a provider's newer parameter or a vendor extension, sent with the SDKs' extra_body: the provider
    # receives it like any other field
    extra = {"anotacoes": f"Contribuinte CPF {CPF}", "vendor_options": {"context": [f"ficha {CPF}"], "k": 3}}
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "oi"}],
                                          extra_body=extra)
    body = sent_us(gw)
    assert body["anotacoes"] == "Contribuinte CPF [CPF_1]"
    assert body["vendor_options"] == {"context": ["ficha [CPF_1]"], "k": 3}
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=[{"role": "user", "content": "oi"}],
                                  extra_body=extra)
    assert sent_us(gw)["vendor_options"]["context"] == ["ficha [CPF_1]"]
    await oai(gw).embeddings.create(model="gpt-4o-mini", input="oi", extra_body=extra)
    assert sent_us(gw)["anotacoes"] == "Contribuinte CPF [CPF_1]"


async def test_message_fields_the_gateway_does_not_know_reach_the_foreign_model_only_transformed(gw):
    # the reasoning_content OpenAI-compatible servers return and take back, a field of a newer API
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": "Quem é o contribuinte?"},
        {"role": "assistant", "content": "É o da ficha.", "reasoning_content": f"A ficha traz o CPF {CPF}."},
        {"role": "user", "content": "Obrigado."}])
    assert sent_us(gw)["messages"][1]["reasoning_content"] == "A ficha traz o CPF [CPF_1]."
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=[
        {"role": "user", "content": "oi", "notes": {"cpf": CPF}}])
    assert sent_us(gw)["messages"][0]["notes"] == {"cpf": "[CPF_1]"}


async def test_chat_tools_of_any_type_and_tool_choices_reach_the_foreign_model_only_as_placeholders(gw):
    # every string of a tool of any type (a web search's location, an MCP server's headers, a field the
    # gateway does not know) and of a tool choice; the tool's type and name go as they are
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=MSGS, tools=[
        {"type": "web_search", "web_search": {"user_location": {"type": "approximate", "approximate": {"city": CPF}}}},
        {"type": "mcp", "server_label": "crm", "server_url": "https://mcp.example/sse", "headers": {"X-Cliente": CPF}},
        {"type": "function", "function": {"name": "ficha", "parameters": {"type": "object"}, "x-nota": f"CPF {CPF}"}}],
        tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
            {"type": "function", "function": {"name": "ficha"}}, {"type": "mcp", "server_label": CPF}]}})
    body = sent_us(gw)
    assert body["tools"][0]["web_search"]["user_location"]["approximate"]["city"] == "[CPF_1]"
    assert body["tools"][1]["headers"] == {"X-Cliente": "[CPF_1]"}
    assert body["tools"][2]["function"] == {"name": "ficha", "parameters": {"type": "object"}, "x-nota": "CPF [CPF_1]"}
    assert body["tool_choice"]["allowed_tools"]["tools"][1]["server_label"] == "[CPF_1]"
    # a function tool translated for Claude after its rewrite: its name and the choice intact
    await oai(gw).chat.completions.create(model="claude-sonnet-4", messages=MSGS, tools=[
        {"type": "function", "function": {"name": "ficha", "description": f"Ficha de {CPF}", "parameters": {"type": "object"},
                                          "x-nota": CPF}}], tool_choice={"type": "function", "function": {"name": "ficha"}})
    body = sent_us(gw)
    assert body["tools"] == [{"name": "ficha", "input_schema": {"type": "object"}, "description": "Ficha de [CPF_1]"}]
    assert body["tool_choice"] == {"type": "tool", "name": "ficha"}


async def test_responses_server_tools_and_tool_choice_reach_the_foreign_model_only_as_placeholders(gw):
    await oai(gw).responses.create(model="gpt-4o-mini", input="oi", tools=[
        {"type": "web_search", "user_location": {"type": "approximate", "city": CPF, "country": "BR"}},
        {"type": "mcp", "server_label": "crm", "server_url": "https://mcp.example/sse", "authorization": CPF}],
        tool_choice={"type": "mcp", "server_label": "crm"})
    tools = sent_us(gw)["tools"]
    assert (tools[0]["user_location"]["city"], tools[1]["authorization"]) == ("[CPF_1]", "[CPF_1]")


async def test_claude_server_tools_reach_it_only_as_placeholders(gw):
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=MSGS, tools=[
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2,
         "user_location": {"type": "approximate", "city": CPF, "country": "BR"}, "x-nota": f"CPF {CPF}"}])
    tool = sent_us(gw)["tools"][0]
    assert (tool["type"], tool["name"], tool["max_uses"]) == ("web_search_20250305", "web_search", 2)
    assert (tool["user_location"]["city"], tool["x-nota"]) == ("[CPF_1]", "CPF [CPF_1]")


async def test_web_search_options_and_mcp_servers_reach_the_foreign_model_only_as_placeholders(gw):
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=MSGS, web_search_options={
        "user_location": {"type": "approximate", "approximate": {"city": CPF, "country": "BR"}}})
    assert sent_us(gw)["web_search_options"]["user_location"]["approximate"] == {"city": "[CPF_1]", "country": "BR"}
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=MSGS, extra_body={"mcp_servers": [
        {"type": "url", "url": "https://mcp.example/sse", "name": "crm", "authorization_token": f"cpf:{CPF}"}]})
    assert sent_us(gw)["mcp_servers"] == [
        {"type": "url", "url": "https://mcp.example/sse", "name": "crm", "authorization_token": "cpf:[CPF_1]"}]


async def test_claude_older_output_format_reaches_it_only_as_placeholders(gw):
    # structured outputs as the beta API took them before output_config (older SDKs, other clients):
    # the schema's descriptions and literals are read by the model like output_config's
    schema = {"type": "object", "properties": {"cpf": {"type": "string", "description": f"ex.: {CPF}"},
                                               "situacao": {"enum": ["regular", CPF], "default": CPF}}}
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=MSGS,
                                  extra_body={"output_format": {"type": "json_schema", "schema": schema}})
    props = sent_us(gw)["output_format"]["schema"]["properties"]
    assert props["cpf"]["description"] == "ex.: [CPF_1]"
    assert props["situacao"] == {"enum": ["regular", "[CPF_1]"], "default": "[CPF_1]"}


async def test_claude_context_management_and_container_reach_it_only_as_placeholders(gw):
    # known settings that hold the caller's strings: the tools a context edit keeps, a container's skills
    await ant(gw).beta.messages.create(
        model="claude-sonnet-4", max_tokens=16, messages=MSGS,
        context_management={"edits": [{"type": "clear_tool_uses_20250919", "exclude_tools": [f"ficha_{CPF}"]}]},
        container={"id": "container_1", "skills": [{"type": "custom", "skill_id": f"cpf-{CPF}", "version": "latest"}]})
    body = sent_us(gw)
    assert body["context_management"]["edits"][0] == {"type": "clear_tool_uses_20250919",
                                                      "exclude_tools": ["ficha_[CPF_1]"]}
    assert body["container"]["skills"][0]["skill_id"] == "cpf-[CPF_1]"


async def test_responses_prompt_template_and_context_management_reach_the_foreign_model_only_as_placeholders(gw):
    # every string of a stored prompt's reference (its variables, and its version) and of the
    # context management settings; the plain settings beside them go as they are
    await oai(gw).responses.create(
        model="gpt-4o-mini", input="oi", reasoning={"effort": "low", "summary": "auto"},
        prompt={"id": "pmpt_1", "version": f"v-{CPF}", "variables": {"contribuinte": CPF}},
        context_management=[{"type": "compaction", "compact_threshold": 1000, "instructions": f"Guarde o CPF {CPF}"}])
    body = sent_us(gw)
    assert body["prompt"] == {"id": "pmpt_1", "version": "v-[CPF_1]", "variables": {"contribuinte": "[CPF_1]"}}
    assert body["context_management"] == [
        {"type": "compaction", "compact_threshold": 1000, "instructions": "Guarde o CPF [CPF_1]"}]
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}


async def test_a_setting_holding_a_string_where_an_enum_belongs_reaches_the_foreign_model_only_transformed(gw):
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=MSGS, service_tier=f"CPF {CPF}",
                                          reasoning_effort="low")
    body = sent_us(gw)
    assert (body["service_tier"], body["reasoning_effort"]) == ("CPF [CPF_1]", "low")


async def test_a_chat_tool_call_id_holding_a_cpf_reaches_the_foreign_model_as_one_placeholder_at_both_ends(gw):
    # an agent that names its tool calls after the record they look up: the call's id and the tool
    # message's tool_call_id are the same text, so they become the same placeholder and still match
    tools = [{"type": "function", "function": {"name": "consulta", "parameters": {
        "type": "object", "properties": {"ano": {"type": "integer"}}}}}]
    first = await oai(gw).chat.completions.create(model="gpt-4o-mini", tools=tools,
                                                  messages=[{"role": "user", "content": "call tool consulta"}])
    call = first.choices[0].message.tool_calls[0]
    cid = f"call_{CPF}"
    answer = await oai(gw).chat.completions.create(model="gpt-4o-mini", tools=tools, messages=[
        {"role": "user", "content": "call tool consulta"},
        {"role": "assistant", "tool_calls": [{"id": cid, "type": "function", "function": {
            "name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": cid, "content": "regular"}])
    assert answer.choices[0].message.content  # (an answer carries the provider's ids, never the caller's)
    msgs = sent_us(gw)["messages"]
    sent_id = msgs[1]["tool_calls"][0]["id"]
    assert "[CPF_1]" in sent_id and msgs[2]["tool_call_id"] == sent_id
    assert msgs[1]["tool_calls"][0]["function"]["name"] == "consulta"


async def test_a_claude_tool_use_id_holding_a_cpf_reaches_it_as_one_placeholder_at_both_ends(gw):
    tid = f"toolu_{CPF.replace('.', '').replace('-', '')}"
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=[
        {"role": "user", "content": "Consulte o contribuinte."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": tid, "name": "consulta", "input": {"ano": 2026}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "regular"}]}])
    msgs = sent_us(gw)["messages"]
    sent_id = msgs[1]["content"][0]["id"]
    assert sent_id != tid and msgs[2]["content"][0]["tool_use_id"] == sent_id
    assert msgs[1]["content"][0]["name"] == "consulta"


def _policies_letting_images_abroad(tmp_path):
    """The bundled policies, but Brazil's lets content the gateway cannot inspect go abroad: what an
    operator who sends images to a foreign model configures (the CPFs of the texts still pseudonymized)."""
    import shutil

    from gateway.testing.harness import bundled_policies

    dst = tmp_path / "policies"
    shutil.copytree(bundled_policies(), dst)
    br = dst / "br.yaml"
    text = br.read_text()
    head, rule = text.split("  - id: br.uninspectable\n", 1)
    rule, rest = rule.split("  - id:", 1)
    br.write_text(head + "  - id: br.uninspectable\n" + rule.replace("adequate: block", "adequate: allow").replace(
        "foreign: block", "foreign: allow") + "  - id:" + rest)
    return dst


async def test_an_image_url_whose_query_holds_a_cpf_reaches_the_foreign_model_only_transformed(tmp_path):
    async with Harness(tmp_path / "gw", policies=_policies_letting_images_abroad(tmp_path)) as h:
        url = f"https://x.gov.br/doc?cpf={CPF.replace('.', '').replace('-', '')}"
        await oai(h).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": [
            {"type": "text", "text": "Leia o documento."}, {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}])
        part = sent_us(h)["messages"][0]["content"][1]
        assert part["image_url"]["url"].startswith("https://x.gov.br/doc?cpf=[") and part["image_url"]["detail"] == "low"
        await ant(h).messages.create(model="claude-sonnet-4", max_tokens=16, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": url}}, {"type": "text", "text": "Leia."}]}])
        assert sent_us(h)["messages"][0]["content"][0]["source"]["url"].startswith("https://x.gov.br/doc?cpf=[")
