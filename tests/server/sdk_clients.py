"""The official SDK clients of a test caller, pointed at a running Harness gateway."""

from __future__ import annotations

import anthropic
import openai

from gateway.testing.harness import Harness


def oai(h: Harness, who: str = "br") -> openai.AsyncOpenAI:
    """The OpenAI SDK as caller ``who`` (br, mx, ar, us), without retries (a test sees each answer)."""
    return openai.AsyncOpenAI(base_url=h.url + "/v1", api_key=h.keys[who], max_retries=0)


def ant(h: Harness, who: str = "br") -> anthropic.AsyncAnthropic:
    """The Anthropic SDK as caller ``who``, without retries."""
    return anthropic.AsyncAnthropic(base_url=h.url, api_key=h.keys[who], max_retries=0)
