"""A provider call's total deadline (llm/deadline.py), through the real SDKs over a real socket to the stand-in:
a reply that trickles in ends as a timeout like one that hangs, and a stop abandons the calls in flight."""

from __future__ import annotations

import http.client
import http.server
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.standin import StandIn
from llm import deadline
from llm.base import StructuredRequest
from llm.catalog import JudgeModel, get_judge_model
from llm.engine import Judge, Outcome
from llm.providers import build_provider

REQUEST = StructuredRequest(
    purpose="classify",
    system="Classify the text.",
    user="Customer 1: thank you, all good.",
    schema={
        "type": "object",
        "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
        "required": ["sentiment"],
        "additionalProperties": False,
    },
)


@pytest.fixture
def server(settings: Any) -> Iterator[StandIn]:
    with StandIn(hang_seconds=30) as standin:
        settings.JUDGE_MODELS = {
            **settings.JUDGE_MODELS,
            "test/standin-openai": {"provider": "openai", "model": "standin", "base_url": f"{standin.url}/v1"},
            "test/standin-anthropic": {"provider": "anthropic", "model": "standin", "base_url": standin.url},
        }
        settings.JUDGE_TIMEOUT_SECONDS = 2
        settings.JUDGE_MAX_ATTEMPTS = 1
        yield standin


@pytest.fixture(autouse=True)
def _not_stopping() -> Iterator[None]:
    yield
    # stop_calls is once per process in a worker; here each test starts afresh.
    deadline._stop_at = None
    deadline.stopping.clear()


def judge(name: str, monkeypatch: pytest.MonkeyPatch) -> Judge:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    model: JudgeModel = get_judge_model(name)
    return Judge(model, build_provider(model))  # the production client: the deadline transport, a real socket


def ask(j: Judge) -> tuple[Outcome, float]:
    started = time.monotonic()
    outcome = j.ask(REQUEST, lambda data: data)
    return outcome, time.monotonic() - started


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", ["trickle", "hang"])
def test_a_trickling_or_hanging_reply_ends_at_the_total_deadline(
    server: StandIn, monkeypatch: pytest.MonkeyPatch, provider: str, fault: str
) -> None:
    server.configure(forced=[fault], trickle_chunks=30)  # a trickled reply would take 30 s, one piece a second
    outcome, took = ask(judge(f"test/standin-{provider}", monkeypatch))
    [attempt] = outcome.attempts
    print(f"{provider} {fault}: ended as {attempt.outcome} after {attempt.latency_ms} ms (deadline 2,000 ms)")
    assert attempt.outcome == "timeout", attempt.error
    assert 2000 <= attempt.latency_ms <= 2000 + 500  # the deadline plus a small margin, never 30 s
    assert took < 3


def test_a_reply_within_the_deadline_is_read_whole(server: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    server.configure(forced=["trickle"], trickle_chunks=2)  # one second: within the 2 s deadline
    outcome, _ = ask(judge("test/standin-openai", monkeypatch))
    assert outcome.ok, outcome.error
    assert outcome.attempts[0].outcome == "ok"


def test_a_stop_abandons_the_call_in_flight_and_sends_no_retry(
    server: StandIn, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.JUDGE_TIMEOUT_SECONDS = 20
    settings.JUDGE_MAX_ATTEMPTS = 5
    server.configure(forced=["hang", "hang"])
    j = judge("test/standin-openai", monkeypatch)
    threading.Timer(0.5, deadline.stop_calls, kwargs={"after": 0.5}).start()
    outcome, took = ask(j)
    print(f"stop 0.5 s into a hanging call, abandoned after 0.5 s more: ask returned after {took:.2f} s")
    assert took < 1.5  # stop at 0.5 s, abandoned 0.5 s later (plus one poll)
    [attempt] = outcome.attempts
    assert attempt.outcome == "abandoned"
    assert outcome.deferred  # not judged: asked again after the restart
    assert server.stats()["requests"] == 1  # no retry after the stop
    # And nothing new starts once stopping.
    again, _ = ask(j)
    assert again.deferred
    assert not again.attempts
    assert server.stats()["requests"] == 1


class _ForwardingProxy(http.server.ThreadingHTTPServer):
    """A plain HTTP forward proxy on 127.0.0.1: it takes `POST http://host/path`, relays it, and records the URL."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _Relay)


class _Relay(http.server.BaseHTTPRequestHandler):
    server: _ForwardingProxy

    def do_POST(self) -> None:
        self.server.seen.append(self.path)  # a proxy is sent the absolute URL
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"proxy-connection", "connection"}}
        upstream.request("POST", target.path, body=body, headers=headers)
        reply = upstream.getresponse()
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in {"connection", "transfer-encoding"}:
                self.send_header(key, value)
        self.end_headers()
        while chunk := reply.read1(65536):  # relays a trickled body as it comes
            self.wfile.write(chunk)
            self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[_ForwardingProxy]:
    server = _ForwardingProxy()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_calls_go_through_the_proxy_the_environment_names_and_keep_their_deadline(
    server: StandIn, proxy: _ForwardingProxy, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    j = judge(f"test/standin-{provider}", monkeypatch)
    outcome, _ = ask(j)
    assert outcome.ok, outcome.error
    assert proxy.seen
    assert all(url.startswith(server.url) for url in proxy.seen), proxy.seen
    # Through the proxy the total deadline still holds: a trickled reply relayed piece by piece ends at 2 s.
    server.configure(forced=["trickle"], trickle_chunks=30)
    outcome, took = ask(j)
    assert outcome.attempts[0].outcome == "timeout", outcome.attempts[0].error
    assert took < 3
