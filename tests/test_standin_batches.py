"""The stand-in's batch APIs (benchmarks/standin_batches.py) through the real SDKs in strict mode: slow batches,
partial errors, expiry, results out of order, cancel, the size limit, and the counts the tests rely on."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from benchmarks.standin import StandIn

# anthropic and openai are imported by the tests that use them, not at collection (as in tests/test_standin.py).

SCHEMA = {
    "type": "object",
    "properties": {"x": {"type": "string", "enum": ["a", "b"]}},
    "required": ["x"],
    "additionalProperties": False,
}


def anthropic_requests(n: int) -> list[dict[str, Any]]:
    params = {
        "model": "m",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "t", "input_schema": SCHEMA}],
        "tool_choice": {"type": "tool", "name": "t"},
    }
    return [
        {"custom_id": f"s{i}", "params": params | {"messages": [{"role": "user", "content": f"hi {i}"}]}}
        for i in range(n)
    ]


def openai_file(n: int) -> bytes:
    body = {"model": "m", "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": SCHEMA}}}
    lines = [
        {
            "custom_id": f"s{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": body | {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": f"hi {i}"}]},
        }
        for i in range(n)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.fixture
def server() -> Any:
    with StandIn(seed=3) as s:
        yield s


def test_an_anthropic_batch_is_slow_then_ends_with_partial_errors_and_expiry_in_any_order(server: StandIn) -> None:
    import anthropic

    server.configure(batch_seconds=0.3, batch_errored=0.2, batch_expired=0.2)
    client = anthropic.Anthropic(base_url=server.url, api_key="x", _strict_response_validation=True)
    batch = client.messages.batches.create(requests=anthropic_requests(40))
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    time.sleep(0.35)
    ended = client.messages.batches.retrieve(batch.id)
    counts = ended.request_counts
    assert ended.processing_status == "ended"
    assert counts.succeeded + counts.errored + counts.expired == 40
    assert counts.errored >= 1
    assert counts.expired >= 1
    assert counts.succeeded >= 10
    results = list(client.messages.batches.results(batch.id))
    order = [r.custom_id for r in results]
    assert sorted(order) == sorted(f"s{i}" for i in range(40))
    assert order != [f"s{i}" for i in range(40)]  # not the order sent
    answered = [r.result.message for r in results if r.result.type == "succeeded"]
    assert all(m.content[0].input["x"] in {"a", "b"} for m in answered)  # type: ignore[union-attr]
    assert server.stats()["batches"] | {"api_calls": 0} == {
        "api_calls": 0, "created": 1, "requests": 40, "ended": 1, "open": 0
    }  # fmt: skip
    assert server.stats()["requests"] == 0  # no interactive request


def test_a_canceled_anthropic_batch_has_every_request_canceled(server: StandIn) -> None:
    import anthropic

    server.configure(batch_seconds=60)
    client = anthropic.Anthropic(base_url=server.url, api_key="x", _strict_response_validation=True)
    batch = client.messages.batches.create(requests=anthropic_requests(3))
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
    assert [r.result.type for r in client.messages.batches.results(batch.id)] == ["canceled"] * 3
    assert server.stats()["batches"]["canceled"] == 1


def test_an_openai_batch_ends_with_an_output_file_and_an_error_file(server: StandIn) -> None:
    import openai

    server.configure(batch_errored=0.2, batch_expired=0.2)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", _strict_response_validation=True)
    uploaded = client.files.create(file=("in.jsonl", openai_file(30)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    ended = client.batches.retrieve(batch.id)
    assert ended.status == "expired"  # some requests expired: the batch says so
    assert ended.request_counts is not None
    assert ended.request_counts.total == 30
    out = [json.loads(line) for line in client.files.content(ended.output_file_id or "").text.splitlines()]
    errors = [json.loads(line) for line in client.files.content(ended.error_file_id or "").text.splitlines()]
    assert len(out) + len(errors) == 30
    assert {e["error"]["code"] for e in errors if e["error"]} == {"batch_expired"}
    assert {e["response"]["status_code"] for e in errors if e["response"]} == {500}
    assert all(json.loads(o["response"]["body"]["choices"][0]["message"]["content"])["x"] in "ab" for o in out)


def test_an_openai_batch_canceled_in_progress_and_one_over_the_limit(server: StandIn) -> None:
    import openai

    server.configure(batch_seconds=60, batch_max_requests=5)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", _strict_response_validation=True)
    too_big = client.files.create(file=("in.jsonl", openai_file(6)), purpose="batch")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=too_big.id, endpoint="/v1/chat/completions", completion_window="24h")
    uploaded = client.files.create(file=("in.jsonl", openai_file(5)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.cancel(batch.id).status == "cancelling"
    ended = client.batches.retrieve(batch.id)
    assert (ended.status, ended.output_file_id) == ("cancelled", None)
    assert server.stats()["batches"]["created"] == 1
