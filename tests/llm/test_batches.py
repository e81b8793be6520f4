"""llm/batches.py through the real SDKs against the stand-in's batch APIs: the interactive calls' parameters go
out, replies are parsed as interactive ones (usage kept), errored and expired requests come back as such, a reply
unfit for use keeps its usage, and cancel reaches the provider."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.standin import StandIn
from llm import providers
from llm.base import StructuredRequest
from llm.batches import batches_for
from llm.catalog import JudgeModel

SCHEMA = {
    "type": "object",
    "properties": {"x": {"type": "string", "enum": ["a", "b"]}},
    "required": ["x"],
    "additionalProperties": False,
}


def request(n: int) -> StructuredRequest:
    return StructuredRequest(purpose="classify", system="sys", user=f"sample {n}", schema=SCHEMA, tool_name="t")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(providers, "http_client_for", None)  # the stand-in on 127.0.0.1, not the refusing client
    monkeypatch.setenv("STANDIN_KEY", "x")
    with StandIn(seed=5) as s:
        yield s


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_batch_goes_out_and_its_results_come_back_parsed(server: StandIn, provider: str) -> None:
    base = server.url if provider == "anthropic" else f"{server.url}/v1"
    model = JudgeModel("t/m", provider, "m", base_url=base, api_key_env="STANDIN_KEY", batch=True)
    server.configure(batch_errored=0.2, batch_expired=0.2)
    api = batches_for(model)
    batch_id = api.submit((f"s{n}", request(n)) for n in range(30))
    state = api.state(batch_id)
    assert state.ended
    results = list(api.results(batch_id, request(0)))
    assert sorted(r.custom_id for r in results) == sorted(f"s{n}" for n in range(30))
    kinds = {r.kind for r in results}
    assert kinds == {"succeeded", "errored", "expired"}
    for r in results:
        if r.kind == "succeeded":
            assert r.reply is not None
            assert r.reply.data["x"] in {"a", "b"}
            assert r.reply.usage.output_tokens > 0
            assert not r.error
        else:
            assert (r.reply, bool(r.error)) == (None, True)
    assert server.stats()["batches"]["requests"] == 30


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_cancel_reaches_the_provider_and_an_unfit_reply_keeps_its_usage(server: StandIn, provider: str) -> None:
    base = server.url if provider == "anthropic" else f"{server.url}/v1"
    model = JudgeModel("t/m", provider, "m", base_url=base, api_key_env="STANDIN_KEY", batch=True)
    server.configure(batch_seconds=60)
    api = batches_for(model)
    api.cancel(api.submit([("s1", request(1))]))
    assert server.stats()["batches"]["canceled"] == 1
    server.configure(batch_seconds=0)
    unfit: Any = {"x": "not in the enum"} if provider == "openai" else "not an object"
    server.policy = lambda body: unfit
    [result] = api.results(api.submit([("s2", request(2))]), request(2))
    if provider == "openai":  # the SDK reads it; our schema check comes later (evaluations/batch.py)
        assert result.reply is not None
        assert result.reply.data == {"x": "not in the enum"}
    else:  # a tool input that is not an object: the SDK's own models refuse it, a bad reply like any other
        assert result.kind == "succeeded"
        assert result.error
