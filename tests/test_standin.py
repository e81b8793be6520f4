"""The stand-in provider (benchmarks/standin.py) through the real openai and anthropic SDKs.

Each fault test pins what the SDK surfaces, because that is what the judge engine has to handle:
a 429 is RateLimitError with Retry-After, a reply cut off mid-JSON is json.JSONDecodeError (not an SDK error),
an HTML 200 body comes back as a plain `str` instead of a ChatCompletion/Message, and so on.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from benchmarks.standin import FAULT_KINDS, StandIn, fit_schema

# The SDKs are imported by the tests that use them, not with the module: their import is 1.5 s of CPU, and every
# xdist process collects this module before any test of the run can start (README, Tests).
if TYPE_CHECKING:
    import anthropic
    import openai

ROOT = Path(__file__).resolve().parent.parent
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string", "maxLength": 40},
        "spans": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"start": {"type": "integer", "minimum": 0, "maximum": 9}, "flag": {"type": "boolean"}},
                "required": ["start", "flag"],
                "additionalProperties": False,
            },
        },
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["sentiment", "confidence", "reason", "spans", "note"],
    "additionalProperties": False,
}
SYSTEM = "You classify customer messages. " * 20


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(hang_seconds=5) as server:
        yield server


def openai_client(server: StandIn, timeout: float = 5) -> openai.OpenAI:
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=timeout)


def anthropic_client(server: StandIn, timeout: float = 5) -> anthropic.Anthropic:
    import anthropic

    return anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0, timeout=timeout)


def ask_openai(server: StandIn, user: str = "The parcel came late.", timeout: float = 5) -> Any:
    return openai_client(server, timeout).chat.completions.create(
        model="gpt-standin",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        response_format={"type": "json_schema", "json_schema": {"name": "record", "schema": SCHEMA, "strict": True}},
    )


def ask_anthropic(
    server: StandIn, user: str = "The parcel came late.", *, tool: bool = True, timeout: float = 5
) -> Any:
    params: dict[str, Any]
    if tool:
        params = {
            "tools": [{"name": "record", "description": "Record it.", "input_schema": SCHEMA, "strict": True}],
            "tool_choice": {"type": "tool", "name": "record", "disable_parallel_tool_use": True},
        }
    else:
        params = {
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
        }
    return anthropic_client(server, timeout).messages.create(
        model="claude-standin",
        max_tokens=2048,
        system=[{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": user}],
        **params,
    )


def assert_fits(value: Any, schema: dict[str, Any] = SCHEMA) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(value, schema)


def http_json(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --- Answers ---------------------------------------------------------------------------------------------------


def test_it_answers_openai_with_json_that_fits_the_schema(standin: StandIn) -> None:
    first = ask_openai(standin)
    second = ask_openai(standin, "Thank you, all good.")
    [choice] = first.choices
    assert (choice.finish_reason, choice.message.refusal) == ("stop", None)
    assert_fits(json.loads(choice.message.content))
    # The system prompt counts as cached once it has been seen (OpenAI's automatic prefix caching).
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == len(SYSTEM) // 4
    assert first.usage.prompt_tokens > first.usage.prompt_tokens_details.cached_tokens
    assert first.usage.completion_tokens > 0


def test_it_answers_a_forced_anthropic_tool_with_a_tool_use_block(standin: StandIn) -> None:
    first = ask_anthropic(standin)
    second = ask_anthropic(standin, "Thank you, all good.")
    [block] = first.content
    assert (block.type, block.name, first.stop_reason) == ("tool_use", "record", "tool_use")
    assert_fits(block.input)
    # A marked system prompt is written to the cache on the first call and read from it afterwards.
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (len(SYSTEM) // 4, 0)
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (0, len(SYSTEM) // 4)
    assert first.usage.input_tokens > 0
    assert first.usage.output_tokens > 0


def test_it_answers_anthropic_structured_output_as_a_text_block(standin: StandIn) -> None:
    message = ask_anthropic(standin, tool=False)
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.stop_reason == "end_turn"
    assert_fits(json.loads(message.content[1].text))


def test_it_answers_the_same_content_the_same_way_for_a_seed() -> None:
    with StandIn(seed=1) as a, StandIn(seed=1) as b, StandIn(seed=2) as c:
        texts = ["one", "two", "three", "four"]
        answers_a = [ask_openai(a, t).choices[0].message.content for t in texts]
        answers_b = [ask_openai(b, t).choices[0].message.content for t in reversed(texts)][::-1]
        answers_c = [ask_openai(c, t).choices[0].message.content for t in texts]
    assert answers_a == answers_b
    assert answers_a != answers_c
    assert len(set(answers_a)) > 1


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"x": {"$ref": "#/$defs/level"}}, "$defs": {"level": {"enum": [1, 2]}}},
        {"type": "object", "properties": {"x": {"const": "fixed"}, "y": {"type": ["integer", "null"]}}},
        {"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}},
        {"type": "object", "properties": {"x": {"type": "string", "minLength": 50}}},
        {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}}, "minItems": 2, "maxItems": 2},
        {"type": "object", "properties": {"x": {"allOf": [{"type": "integer"}, {"minimum": 5, "maximum": 6}]}}},
    ],
)
def test_it_fits_other_schema_shapes(schema: dict[str, Any]) -> None:
    for seed in range(20):
        assert_fits(fit_schema(schema, random.Random(seed)), schema)


def test_it_answers_with_the_policy_when_one_is_set(standin: StandIn) -> None:
    seen: list[dict[str, Any]] = []

    def by_text(request: dict[str, Any]) -> dict[str, Any]:
        seen.append(request)
        text = json.dumps(request["messages"])
        return {"sentiment": "negative" if "late" in text else "positive"}

    standin.policy = by_text
    assert json.loads(ask_openai(standin, "It came late.").choices[0].message.content) == {"sentiment": "negative"}
    assert ask_anthropic(standin, "Lovely.").content[0].input == {"sentiment": "positive"}
    assert [r["model"] for r in seen] == ["gpt-standin", "claude-standin"]


def test_it_answers_500_when_the_policy_fails(standin: StandIn) -> None:
    import openai

    def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("label")

    standin.policy = broken
    with pytest.raises(openai.InternalServerError, match="policy failed"):
        ask_openai(standin)


# --- Faults, as each SDK surfaces them -------------------------------------------------------------------------


def test_it_rate_limits_with_retry_after() -> None:
    import anthropic
    import openai

    with StandIn(forced=["rate_limit", "rate_limit"], retry_after=7) as server:
        with pytest.raises(openai.RateLimitError) as openai_error:
            ask_openai(server)
        with pytest.raises(anthropic.RateLimitError) as anthropic_error:
            ask_anthropic(server)
    assert openai_error.value.status_code == anthropic_error.value.status_code == 429
    assert openai_error.value.response.headers["retry-after"] == "7"
    assert anthropic_error.value.response.headers["retry-after"] == "7"
    assert openai_error.value.code == "rate_limit_exceeded"
    assert anthropic_error.value.body["error"]["type"] == "rate_limit_error"


def test_it_fails_with_500_and_529() -> None:
    import anthropic
    import openai

    with StandIn(forced=["server_error", "overloaded", "server_error", "overloaded"]) as server:
        with pytest.raises(openai.InternalServerError) as openai_500:
            ask_openai(server)
        with pytest.raises(openai.InternalServerError) as openai_529:
            ask_openai(server)
        with pytest.raises(anthropic.InternalServerError) as anthropic_500:
            ask_anthropic(server)
        with pytest.raises(anthropic.OverloadedError) as anthropic_529:
            ask_anthropic(server)
    assert [e.value.status_code for e in (openai_500, openai_529, anthropic_500, anthropic_529)] == [500, 529, 500, 529]
    # Both are APIStatusError subclasses: OpenAI has no class of its own for 529, Anthropic does.
    assert type(openai_529.value) is openai.InternalServerError
    assert issubclass(anthropic.OverloadedError, anthropic.InternalServerError)


def test_it_hangs_past_the_client_timeout() -> None:
    import anthropic
    import openai

    with StandIn(forced=["hang", "hang"], hang_seconds=10) as server:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            ask_openai(server, timeout=0.5)
        with pytest.raises(anthropic.APITimeoutError):
            ask_anthropic(server, timeout=0.5)
        assert time.monotonic() - started < 5
        assert server.stats()["faults"] == {"hang": 2}
    # Closing the server ends the hangs at once instead of after hang_seconds.
    assert time.monotonic() - started < 5


def test_it_cuts_a_reply_off_mid_json() -> None:
    import anthropic
    import openai

    with StandIn(forced=["malformed", "malformed"]) as server:
        # The body is read whole (Content-Length matches) and then json.loads fails inside the SDK: a
        # json.JSONDecodeError, which is not an openai/anthropic error class.
        with pytest.raises(json.JSONDecodeError) as openai_error:
            ask_openai(server)
        with pytest.raises(json.JSONDecodeError) as anthropic_error:
            ask_anthropic(server)
    assert not isinstance(openai_error.value, openai.OpenAIError)
    assert not isinstance(anthropic_error.value, anthropic.AnthropicError)


def test_it_drops_the_connection_mid_body() -> None:
    import anthropic
    import openai

    with StandIn(forced=["disconnect", "disconnect"]) as server:
        with pytest.raises(openai.APIConnectionError) as openai_error:
            ask_openai(server)
        with pytest.raises(anthropic.APIConnectionError) as anthropic_error:
            ask_anthropic(server)
    assert not isinstance(openai_error.value, openai.APITimeoutError)
    assert not isinstance(anthropic_error.value, anthropic.APITimeoutError)


def test_it_answers_200_with_an_html_page() -> None:
    with StandIn(forced=["html", "html"]) as server:
        # Neither SDK raises: with a non-JSON content type they hand back the body as a str, so the caller's
        # `completion.choices` / `message.content` is an AttributeError.
        completion = ask_openai(server)
        message = ask_anthropic(server)
    assert isinstance(completion, str)
    assert isinstance(message, str)
    assert completion.startswith("<!DOCTYPE html>")
    assert "502 Bad Gateway" in message


def test_it_refuses() -> None:
    with StandIn(forced=["refusal", "refusal"]) as server:
        completion = ask_openai(server)
        message = ask_anthropic(server)
    [choice] = completion.choices
    assert (choice.message.content, choice.finish_reason) == (None, "stop")
    assert choice.message.refusal
    assert (message.stop_reason, message.content) == ("refusal", [])
    assert message.stop_details.type == "refusal"
    assert message.stop_details.explanation
    assert message.usage.input_tokens > 0


def test_it_truncates_at_max_tokens() -> None:
    with StandIn(forced=["truncated", "truncated", "truncated"]) as server:
        completion = ask_openai(server)
        tool_message = ask_anthropic(server)
        text_message = ask_anthropic(server, tool=False)
    [choice] = completion.choices
    assert choice.finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice.message.content)
    assert tool_message.stop_reason == "max_tokens"
    assert tool_message.content[0].input == {}
    assert text_message.stop_reason == "max_tokens"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text_message.content[-1].text)


def test_it_rejects_a_body_over_the_context_window() -> None:
    import anthropic
    import openai

    with StandIn(max_body_bytes=2000) as server:
        with pytest.raises(openai.BadRequestError) as openai_error:
            ask_openai(server, "x" * 5000)
        with pytest.raises(anthropic.BadRequestError) as anthropic_error:
            ask_anthropic(server, "x" * 5000)
        assert ask_openai(server, "short").choices[0].finish_reason == "stop"
        assert server.stats()["faults"] == {"too_large": 2}
    assert openai_error.value.code == "context_length_exceeded"
    assert anthropic_error.value.body["error"]["type"] == "invalid_request_error"
    assert "prompt is too long" in anthropic_error.value.message


def test_it_draws_faults_at_their_rates_the_same_way_for_a_seed() -> None:
    import openai

    rates = dict.fromkeys(["rate_limit", "server_error", "refusal"], 0.1)

    def kinds(seed: int) -> dict[str, int]:
        with StandIn(faults=rates, seed=seed) as server:
            client = openai_client(server)
            for _ in range(300):
                with contextlib.suppress(openai.APIStatusError):
                    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            stats = server.stats()
        assert stats["requests"] == 300
        assert stats["ok"] + sum(stats["faults"].values()) == 300
        return stats["faults"]

    first, again, other = kinds(3), kinds(3), kinds(4)
    assert first == again
    assert first != other
    assert all(15 <= first[kind] <= 45 for kind in rates), first


# --- Control over HTTP, and the CLI ----------------------------------------------------------------------------


def test_it_is_configured_and_counted_over_http(standin: StandIn) -> None:
    import openai

    status, _ = http_json(standin.url + "/_config", {"forced": ["server_error", "ok"], "latency": 0.2})
    assert status == 200
    with pytest.raises(openai.InternalServerError):
        ask_openai(standin)
    started = time.monotonic()
    ask_anthropic(standin)
    assert time.monotonic() - started >= 0.2

    status, stats = http_json(standin.url + "/_stats")
    assert status == 200
    assert (stats["requests"], stats["ok"], stats["faults"]) == (2, 1, {"server_error": 1})
    assert stats["paths"] == {"/v1/chat/completions": 1, "/v1/messages": 1}
    assert stats["statuses"] == {"500": 1, "200": 1}
    assert stats["usage"]["cache_write_tokens"] == len(SYSTEM) // 4
    assert stats["config"]["latency"] == 0.2
    assert stats == standin.stats()

    assert http_json(standin.url + "/_config", {"faults": {"meteor": 0.1}})[0] == 400
    assert http_json(standin.url + "/_config", {"faults": {"html": 0.7, "hang": 0.7}})[0] == 400
    assert http_json(standin.url + "/_config", {"colour": "red"})[0] == 400
    assert http_json(standin.url + "/_config", {"latency": "slow"})[0] == 400
    assert standin.stats()["config"]["latency"] == 0.2
    status, stats = http_json(standin.url + "/_reset", {})
    assert (status, stats["requests"], stats["faults"], stats["paths"]) == (200, 0, {}, {})


def test_it_runs_as_a_subprocess_that_prints_its_url() -> None:
    import openai

    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "standin.py"), "--port", "0", "--force", "rate_limit"]
        + ["--fault", "refusal=1", "--retry-after", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=5)
        with pytest.raises(openai.RateLimitError) as error:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert error.value.response.headers["retry-after"] == "3"
        assert (
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            .choices[0]
            .message.refusal
        )
        # Another process's test drives the faults at run time.
        http_json(url + "/_config", {"faults": {}})
        reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "ok"
        assert http_json(url + "/_stats")[1]["faults"] == {"rate_limit": 1, "refusal": 1}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_it_knows_every_fault_it_documents() -> None:
    assert set(FAULT_KINDS) == {
        "rate_limit",
        "server_error",
        "overloaded",
        "hang",
        "malformed",
        "disconnect",
        "html",
        "refusal",
        "truncated",
        "trickle",
    }
