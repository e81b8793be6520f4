"""Providers played over an httpx2 transport: the real Anthropic and OpenAI SDKs build, send, parse and raise
exactly as they would against the real services; only the network is replaced."""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx2

Answer = Callable[[dict[str, Any], str], dict[str, Any]]


def first_values(schema: dict[str, Any], user_text: str) -> dict[str, Any]:
    """A judge that picks the first allowed value of every enum, writes a sentence for free text and fills nested
    objects the same way (the classification's per-property rationales)."""
    return {
        name: prop["enum"][0]
        if "enum" in prop
        else first_values(prop, user_text)
        if "properties" in prop
        else f"Fake {name}."
        for name, prop in schema["properties"].items()
    }


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


class FakeProvider:
    """Answers like Anthropic's /v1/messages or OpenAI's /chat/completions.

    `script` queues special replies for the next calls: ("status", code, headers), ("timeout",), ("malformed",),
    ("refusal",), ("off_schema", data), ("html",) (a gateway's HTML page with status 200), ("cut",) (a JSON body
    cut off mid-way). Every request body is kept in `requests`.
    """

    def __init__(self, kind: str, answer: Answer = first_values) -> None:
        assert kind in {"anthropic", "openai"}
        self.kind = kind
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.sleeps: list[float] = []
        self.script: deque[tuple[Any, ...]] = deque()
        self.cached_prefixes: set[str] = set()
        self.lock = threading.Lock()

    def client(self, model: object = None) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handle))

    @property
    def calls(self) -> int:
        return len(self.requests)

    # --- the wire ---

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        with self.lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            step = self.script.popleft() if self.script else None
        if step and step[0] == "timeout":
            raise httpx2.ReadTimeout("timed out", request=request)
        if step and step[0] == "status":
            _, code, headers = step
            return httpx2.Response(code, headers=headers, json=self._error(code))
        if step and step[0] == "html":
            return httpx2.Response(
                200, headers={"content-type": "text/html"}, text="<html><body>Bad gateway</body></html>"
            )
        if step and step[0] == "cut":
            return httpx2.Response(200, headers={"content-type": "application/json"}, content=b'{"id": "msg_1", "conte')
        system, user, schema = self._parts(body)
        cached = self._cache(system)
        if step and step[0] == "refusal":
            return self._reply(
                body,
                None,
                system,
                user,
                cached,
                refusal="I can't help with classifying this.",
            )
        if step and step[0] == "malformed":
            return self._reply(body, "{not json", system, user, cached)
        data = step[1] if step and step[0] == "off_schema" else self.answer(schema, user)
        return self._reply(body, data, system, user, cached)

    def _parts(self, body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        if self.kind == "anthropic":
            system = "".join(block["text"] for block in body["system"])
            user = body["messages"][0]["content"]
            schema = body["tools"][0]["input_schema"] if "tools" in body else body["output_config"]["format"]["schema"]
            return system, user, schema
        system = body["messages"][0]["content"]
        user = body["messages"][1]["content"]
        return system, user, body["response_format"]["json_schema"]["schema"]

    def _cache(self, system: str) -> bool:
        with self.lock:
            hit = system in self.cached_prefixes
            self.cached_prefixes.add(system)
        return hit

    def _error(self, code: int) -> dict[str, Any]:
        kind = {
            429: "rate_limit_error",
            401: "authentication_error",
            404: "not_found_error",
        }.get(code, "api_error")
        if self.kind == "anthropic":
            return {"type": "error", "error": {"type": kind, "message": f"fake {code}"}}
        return {
            "error": {
                "message": f"fake {code}",
                "type": kind,
                "param": None,
                "code": kind,
            }
        }

    def _reply(
        self,
        body: dict[str, Any],
        data: Any,
        system: str,
        user: str,
        cached: bool,
        refusal: str | None = None,
    ) -> httpx2.Response:
        text = data if isinstance(data, str) else json.dumps(data)
        sys_tokens, user_tokens, out_tokens = (
            tokens(system),
            tokens(user),
            tokens(text or "x"),
        )
        if self.kind == "anthropic":
            usage = {
                "input_tokens": user_tokens,
                "output_tokens": out_tokens,
                "cache_creation_input_tokens": 0 if cached else sys_tokens,
                "cache_read_input_tokens": sys_tokens if cached else 0,
            }
            if refusal:
                content: list[dict[str, Any]] = []
                stop = "refusal"
            elif "tools" in body and not isinstance(data, str):
                content = [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": body["tools"][0]["name"],
                        "input": data,
                    }
                ]
                stop = "tool_use"
            else:
                content = [
                    {
                        "type": "thinking",
                        "thinking": "Weighing the values.",
                        "signature": "sig",
                    }
                ] * ("thinking" in body) + [{"type": "text", "text": text}]
                stop = "end_turn"
            payload: dict[str, Any] = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            }
            if refusal:
                payload["stop_details"] = {
                    "type": "refusal",
                    "category": None,
                    "explanation": refusal,
                }
            return httpx2.Response(200, json=payload)
        message = {
            "role": "assistant",
            "content": None if refusal else text,
            "refusal": refusal,
        }
        return httpx2.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": sys_tokens + user_tokens,
                    "completion_tokens": out_tokens,
                    "total_tokens": sys_tokens + user_tokens + out_tokens,
                    "prompt_tokens_details": {"cached_tokens": sys_tokens if cached else 0},
                },
            },
        )


SAMPLE = re.compile(r"<sample>\n(.*)\n</sample>", re.S)


def sample_text(user: str) -> str:
    match = SAMPLE.search(user)
    assert match, user
    return match.group(1)
