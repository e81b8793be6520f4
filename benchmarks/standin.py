"""A stand-in LLM provider on 127.0.0.1: OpenAI Chat Completions and Anthropic Messages, with fault injection.

Tests and benchmarks point the real `openai`/`anthropic` SDKs at it, so every reply (and every fault) reaches the
judge engine exactly as the SDK surfaces it. Stdlib only, so it runs in-process or as a subprocess:

    with StandIn(latency=0.1, faults={"rate_limit": 0.05}) as s:
        openai.OpenAI(base_url=s.url + "/v1", api_key="x")
        anthropic.Anthropic(base_url=s.url, api_key="x")

    python benchmarks/standin.py --port 0 --latency 0.1 --fault rate_limit=0.05 --force ok,hang   # prints its URL

It plays both batch APIs too (benchmarks/standin_batches.py: Anthropic Message Batches, OpenAI files + batches).

Control endpoints: `GET /_stats`, `POST /_config` (partial config as JSON), `POST /_reset` (counters, the request
sequence, the forced list and the prompt cache).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

try:
    from benchmarks.standin_batches import Batches
except ImportError:  # run as a script: benchmarks/ is the script's own folder
    from standin_batches import Batches  # type: ignore[no-redef,import-not-found]

# Rates are drawn in this order, so the same seed and rates give the same fault sequence on every run.
FAULT_KINDS = (
    "rate_limit",  # 429 with Retry-After
    "server_error",  # 500
    "overloaded",  # 529, Anthropic's "overloaded_error" (OpenAI gets the same status)
    "hang",  # no reply for hang_seconds, then the connection is closed
    "malformed",  # 200, application/json, the body cut off mid-JSON (Content-Length matches the cut body)
    "disconnect",  # 200, Content-Length of the full body, half of it sent, then the connection is closed
    "html",  # 200, text/html: a gateway's error page
    "refusal",  # OpenAI message.refusal; Anthropic stop_reason "refusal"
    "truncated",  # OpenAI finish_reason "length"; Anthropic stop_reason "max_tokens"
    "trickle",  # 200 and the full Content-Length at once, then the body in trickle_chunks pieces, one a second
)
# Not drawn by rate: any request whose body exceeds max_body_bytes gets a 400 "context window exceeded".
TOO_LARGE = "too_large"
OK = "ok"

OPENAI_PATHS = {"/v1/chat/completions", "/chat/completions"}
ANTHROPIC_PATHS = {"/v1/messages", "/messages"}

Policy = Callable[[dict[str, Any]], dict[str, Any]]


def tokens(text: str) -> int:
    """A rough token count (4 characters a token), enough for usage figures that scale with the prompt."""
    return max(1, len(text) // 4)


# --- Answers that fit a JSON schema ---------------------------------------------------------------------------


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return _resolve(node, root)


def fit_schema(
    schema: Mapping[str, Any], rng: random.Random, root: Mapping[str, Any] | None = None, depth: int = 0
) -> Any:
    """A value that validates against `schema` (the subset structured outputs allow), drawn from `rng`."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(list(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            # Prefer a non-null branch: a nullable field answered with a value exercises more of the caller.
            options = [s for s in schema[key] if _resolve(s, root).get("type") != "null"] or list(schema[key])
            return fit_schema(rng.choice(options), rng, root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_resolve(part, root))
        return fit_schema(merged, rng, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        if depth > 8:
            return {}
        # Strict schemas require every property, so all are answered, not only the required ones.
        return {name: fit_schema(sub, rng, root, depth + 1) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        low = int(schema.get("minItems", 1))
        high = max(low, min(int(schema.get("maxItems", low + 2)), low + 2))
        items = schema.get("items", {"type": "string"})
        return [fit_schema(items, rng, root, depth + 1) for _ in range(0 if depth > 8 else rng.randint(low, high))]
    if kind in {"number", "integer"}:
        return _number(schema, rng, integer=kind == "integer")
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, rng)


def _number(schema: Mapping[str, Any], rng: random.Random, *, integer: bool) -> float | int:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
    high = schema.get("maximum", schema.get("exclusiveMaximum", max(low, 0) + 100))
    if integer:
        low_i = int(low) + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
        high_i = int(high) - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
        return rng.randint(low_i, max(low_i, high_i))
    value = round(rng.uniform(float(low), float(high)), 3)
    # Rounding may land on an excluded bound; the midpoint never does.
    if value in {schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")}:
        value = (float(low) + float(high)) / 2
    return value


WORDS = ("clear", "consistent", "matches", "the", "sample", "label", "because", "text", "states", "it")


def _string(schema: Mapping[str, Any], rng: random.Random) -> str:
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", 200))
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
    text = (text + " " + "x" * low)[: max(low, 1)] if len(text) < low else text
    return text[:high]


# --- Configuration and counters --------------------------------------------------------------------------------


@dataclass
class Config:
    """What the stand-in does; every field can be changed at run time through `POST /_config`."""

    latency: float = 0.0  # seconds before every reply (faults included, except hang)
    seed: int = 0
    faults: dict[str, float] = field(default_factory=dict)  # kind -> rate in [0, 1]; rates sum to <= 1
    forced: list[str] = field(default_factory=list)  # consumed one per request before any rate; "ok" = no fault
    retry_after: float = 1.0  # Retry-After header on 429, seconds
    hang_seconds: float = 30.0
    trickle_chunks: int = 30  # a trickled reply takes this many seconds (one piece of the body a second)
    max_body_bytes: int | None = None  # larger request bodies get a 400 "context window exceeded"
    # Batches (benchmarks/standin_batches.py): in progress this long, then requests errored / expired at these rates.
    batch_seconds: float = 0.0
    batch_errored: float = 0.0
    batch_expired: float = 0.0
    # A batch canceled before it ends: this share of its requests had succeeded already (billed), the rest canceled.
    batch_done_before_cancel: float = 0.0
    batch_max_requests: int = 100_000

    def update(self, changes: Mapping[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        faults = dict(changes.get("faults", self.faults))
        forced = list(changes.get("forced", self.forced))
        bad = (set(faults) - set(FAULT_KINDS)) | (set(forced) - {*FAULT_KINDS, OK})
        if bad:
            raise ValueError(f"unknown fault kinds: {sorted(bad)}; known: {[*FAULT_KINDS, OK]}")
        if any(not 0 <= rate <= 1 for rate in faults.values()) or sum(faults.values()) > 1 + 1e-9:
            raise ValueError("fault rates must be in [0, 1] and sum to at most 1")
        # Coerce now: a bad value sent to /_config is a 400 there, not a crash in a later request.
        casts: dict[str, Callable[[Any], Any]] = {
            "latency": float,
            "seed": int,
            "retry_after": float,
            "hang_seconds": float,
            "trickle_chunks": int,
            "max_body_bytes": lambda v: None if v is None else int(v),
            "batch_seconds": float,
            "batch_errored": float,
            "batch_expired": float,
            "batch_done_before_cancel": float,
            "batch_max_requests": int,
        }
        coerced = {key: casts[key](value) for key, value in changes.items() if key in casts}
        for key, value in coerced.items():
            setattr(self, key, value)
        self.faults, self.forced = {k: float(v) for k, v in faults.items()}, forced


class State:
    """Config, counters and the prompt cache of one server, shared by its handler threads."""

    def __init__(self, config: Config, policy: Policy | None) -> None:
        self.config = config
        self.policy = policy
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # ends hangs at once when the server closes
        self.batches = Batches(self._batch_answer)
        self._clear()

    def _batch_answer(self, provider: str, body: dict[str, Any]) -> dict[str, Any]:
        """A batched request's answer: what the interactive endpoint would have answered (usage counted alike)."""
        return (_openai_reply if provider == "openai" else _anthropic_reply)(body, OK, self)

    def reset(self) -> None:
        """Counters, the request sequence, the prompt cache and what is left of the forced list."""
        with self.lock:
            self._clear()
            self.config.forced = []

    def _clear(self) -> None:
        self.sequence = 0
        self.requests = 0
        self.arrivals: list[float] = []  # time.monotonic() of each provider request, for tests in this process
        self.ok = 0
        self.faults: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.usage: Counter[str] = Counter()
        self.seen_prefixes: set[str] = set()
        self.batches.clear()

    def choose_fault(self, body_size: int) -> str:
        """The fault for the next request: size limit, then the forced list, then the seeded rates."""
        with self.lock:
            n = self.sequence
            self.sequence += 1
            config = self.config
            if config.max_body_bytes is not None and body_size > config.max_body_bytes:
                return TOO_LARGE
            if config.forced:
                return config.forced.pop(0)
            draw = random.Random(f"{config.seed}:{n}").random()
        cumulative = 0.0
        for kind in FAULT_KINDS:
            cumulative += config.faults.get(kind, 0.0)
            if draw < cumulative:
                return kind
        return OK

    def cached(self, prefix: str) -> bool:
        """Whether this prompt prefix was seen before (and remember it): automatic prefix caching."""
        with self.lock:
            seen = prefix in self.seen_prefixes
            self.seen_prefixes.add(prefix)
            return seen

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "ok": self.ok,
                "faults": dict(self.faults),
                "paths": dict(self.paths),
                "statuses": dict(self.statuses),
                "usage": dict(self.usage),
                "batches": self.batches.stats(),
                "config": asdict(self.config),
            }


# --- Provider bodies ---------------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text_of(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)
    return ""


def _rng_for(request: Mapping[str, Any], seed: int) -> random.Random:
    # The answer depends only on the seed and what was asked, not on the order requests arrive in.
    content = json.dumps([request.get("system"), request.get("messages")], sort_keys=True, default=str)
    return random.Random(hashlib.sha256(f"{seed}:{content}".encode()).hexdigest())


def _openai_schema(request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema") or {}
    return None


def _anthropic_schema(request: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str | None]:
    """The schema to answer and, for a forced tool, the tool's name."""
    choice = request.get("tool_choice") or {}
    tools = [t for t in request.get("tools") or [] if "input_schema" in t]
    if choice.get("type") in {"tool", "any"} and tools:
        tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
        return tool["input_schema"], tool["name"]
    output_format = (request.get("output_config") or {}).get("format") or request.get("output_format") or {}
    if output_format.get("type") == "json_schema":
        return output_format.get("schema") or {}, None
    return None, None


def _error_body(provider: str, kind: str, message: str) -> dict[str, Any]:
    if provider == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_standin"}
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


ERRORS: dict[str, tuple[int, dict[str, str]]] = {
    # fault -> (status, {provider: error type})
    "rate_limit": (429, {"anthropic": "rate_limit_error", "openai": "rate_limit_exceeded"}),
    "server_error": (500, {"anthropic": "api_error", "openai": "server_error"}),
    "overloaded": (529, {"anthropic": "overloaded_error", "openai": "server_error"}),
    TOO_LARGE: (400, {"anthropic": "invalid_request_error", "openai": "context_length_exceeded"}),
}

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


# --- The HTTP server --------------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms to every reply.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # 1. Control endpoints (not counted as requests).
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/_stats":
            self._send_json(200, self.server.state.stats())
        elif not self._batch("GET", b""):
            self._send_json(404, {"error": f"no GET {self.path}"})

    def _batch(self, method: str, raw: bytes) -> bool:
        """Answer a batch or file request (benchmarks/standin_batches.py); False if it is none of theirs."""
        state = self.server.state
        answer = state.batches.handle(method, self.path, raw, self.headers, state.config)
        if answer is None:
            return False
        status, body, content_type = answer
        self._send(status, body, content_type)
        return True

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.server.state
        if self.path == "/_reset":
            state.reset()
            self._send_json(200, state.stats())
            return
        if self.path == "/_config":
            try:
                with state.lock:
                    state.config.update(json.loads(raw or b"{}"))
            except (ValueError, TypeError) as exc:
                self._send_json(400, {"error": str(exc)})
                return
            self._send_json(200, state.stats())
            return
        # 2. Provider endpoints.
        if self.path in OPENAI_PATHS:
            provider = "openai"
        elif self.path in ANTHROPIC_PATHS:
            provider = "anthropic"
        else:
            if not self._batch("POST", raw):
                self._send_json(404, {"error": f"no POST {self.path}"})
            return
        fault = state.choose_fault(len(raw))
        with state.lock:
            state.requests += 1
            state.arrivals.append(time.monotonic())
            state.paths[self.path] += 1
            if fault == OK:
                state.ok += 1
            else:
                state.faults[fault] += 1
        self._answer(provider, fault, raw)

    def _answer(self, provider: str, fault: str, raw: bytes) -> None:
        state = self.server.state
        config = state.config
        if fault == "hang":
            state.stopping.wait(config.hang_seconds)
            self.close_connection = True
            self._count_status("hang")
            return
        if config.latency:
            state.stopping.wait(config.latency)
        if fault == "html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
            return
        if fault in ERRORS:
            status, types = ERRORS[fault]
            message = {
                "rate_limit": "Rate limit reached (stand-in).",
                "server_error": "Internal server error (stand-in).",
                "overloaded": "Overloaded (stand-in).",
                TOO_LARGE: f"prompt is too long: the request body is {len(raw)} bytes, over "
                f"{config.max_body_bytes} (stand-in context window).",
            }[fault]
            headers = {"Retry-After": f"{config.retry_after:g}"} if fault == "rate_limit" else {}
            self._send_json(status, _error_body(provider, types[provider], message), headers)
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self._send_json(400, _error_body(provider, "invalid_request_error", "the body is not JSON"))
            return
        builder = _openai_reply if provider == "openai" else _anthropic_reply
        try:
            reply = builder(request, fault, state)
        except Exception as exc:  # a test's policy failed: say so rather than drop the connection
            self._send_json(500, _error_body(provider, "api_error", f"stand-in policy failed: {exc!r}"))
            return
        body = json.dumps(reply).encode()
        if fault == "malformed":
            self._send(200, body[: len(body) // 2], "application/json")
        elif fault == "disconnect":
            self._send(200, body, "application/json", cut=True)
        elif fault == "trickle":
            self._send(200, body, "application/json", trickle=config.trickle_chunks)
        else:
            self._send(200, body, "application/json")

    def _count_status(self, status: str) -> None:
        with self.server.state.lock:
            self.server.state.statuses[status] += 1

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers=headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        *,
        cut: bool = False,
        trickle: int = 0,
    ) -> None:
        if not self.path.startswith("/_"):
            self._count_status(str(status))
        # http.server knows no reason phrase for 529.
        self.send_response(status, "Overloaded" if status == 529 else None)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", "req_standin")
        self.send_header("x-request-id", "req_standin")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)
            return
        if trickle:
            # Every read the client makes gets a byte or more within a second: no read timeout ever fires.
            size = -(-len(body) // trickle)
            for start in range(0, len(body), size):
                if start and self.server.state.stopping.wait(1.0):
                    self.close_connection = True
                    return
                self.wfile.write(body[start : start + size])
                self.wfile.flush()
            return
        self.wfile.write(body)


def _answer_for(request: dict[str, Any], schema: Mapping[str, Any] | None, state: State) -> Any:
    if state.policy is not None:
        return state.policy(request)
    if schema is None:
        return None
    return fit_schema(schema, _rng_for(request, state.config.seed))


def _as_text(answer: Any) -> str:
    """The reply's text: a policy's string as it is (a free-text answer), anything else as JSON."""
    if answer is None:
        return "ok"
    return answer if isinstance(answer, str) else json.dumps(answer)


def _openai_reply(request: dict[str, Any], fault: str, state: State) -> dict[str, Any]:
    messages = request.get("messages") or []
    system = "".join(_text_of(m.get("content")) for m in messages if m.get("role") in {"system", "developer"})
    rest = "".join(_text_of(m.get("content")) for m in messages if m.get("role") not in {"system", "developer"})
    cached = tokens(system) if system and state.cached(system) else 0
    answer = _answer_for(request, _openai_schema(request), state)
    text = _as_text(answer)
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    finish = "stop"
    if fault == "refusal":
        message.update(content=None, refusal="I'm sorry, I can't help with that request. (stand-in)")
    elif fault == "truncated":
        text = text[: max(1, len(text) // 2)]
        message["content"], finish = text, "length"
    prompt = (tokens(system) if system else 0) + tokens(rest)
    completion = tokens(message["content"] or message["refusal"])
    state_usage(state, input_tokens=prompt - cached, output_tokens=completion, cache_read_tokens=cached)
    return {
        "id": f"chatcmpl-standin-{state.sequence}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "standin"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def _anthropic_reply(request: dict[str, Any], fault: str, state: State) -> dict[str, Any]:
    system = _text_of(request.get("system"))
    rest = "".join(_text_of(m.get("content")) for m in request.get("messages") or [])
    # Anthropic caches only what is marked with cache_control; a miss writes the cache, a hit reads it.
    marked = isinstance(request.get("system"), list) and any("cache_control" in b for b in request["system"])
    read = write = 0
    if system and marked:
        if state.cached(system):
            read = tokens(system)
        else:
            write = tokens(system)
    input_tokens = tokens(rest) + (0 if marked else tokens(system) if system else 0)
    schema, tool_name = _anthropic_schema(request)
    answer = _answer_for(request, schema, state)
    content: list[dict[str, Any]] = []
    if (request.get("thinking") or {}).get("type") in {"enabled", "adaptive"}:
        content.append({"type": "thinking", "thinking": "Weighing the sample. (stand-in)", "signature": "standin"})
    stop_reason, stop_details = "end_turn", None
    if fault == "refusal":
        stop_reason = "refusal"
        stop_details = {"type": "refusal", "category": None, "explanation": "Declined by the stand-in."}
    elif tool_name is not None:
        # A tool call cut off at max_tokens arrives with whatever input was complete: here, none.
        tool_input = {} if fault == "truncated" else answer
        content.append({"type": "tool_use", "id": "toolu_standin", "name": tool_name, "input": tool_input})
        stop_reason = "max_tokens" if fault == "truncated" else "tool_use"
    else:
        text = _as_text(answer)
        if fault == "truncated":
            text, stop_reason = text[: max(1, len(text) // 2)], "max_tokens"
        content.append({"type": "text", "text": text, "citations": None})
    output = sum(tokens(json.dumps(block)) for block in content) if content else 1
    state_usage(
        state, input_tokens=input_tokens, output_tokens=output, cache_read_tokens=read, cache_write_tokens=write
    )
    return {
        "id": f"msg_standin_{state.sequence}",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "standin"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": stop_details,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": write,
        },
    }


def state_usage(state: State, **figures: int) -> None:
    with state.lock:
        state.usage.update(figures)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung reply must not keep the process alive
    state: State


class StandIn:
    """The stand-in server on a thread: `with StandIn(...) as s: s.url`; port 0 picks a free port."""

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        faults: Mapping[str, float] | None = None,
        forced: Iterable[str] = (),
        seed: int = 0,
        retry_after: float = 1.0,
        hang_seconds: float = 30.0,
        max_body_bytes: int | None = None,
        policy: Policy | None = None,
    ) -> None:
        config = Config()
        config.update(
            {
                "latency": latency,
                "faults": dict(faults or {}),
                "forced": list(forced),
                "seed": seed,
                "retry_after": retry_after,
                "hang_seconds": hang_seconds,
                "max_body_bytes": max_body_bytes,
            }
        )
        self.state = State(config, policy)
        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.state = self.state
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def policy(self) -> Policy | None:
        return self.state.policy

    @policy.setter
    def policy(self, policy: Policy | None) -> None:
        self.state.policy = policy

    def configure(self, **changes: Any) -> None:
        """Change config keys at run time (same keys as `POST /_config`)."""
        with self.state.lock:
            self.state.config.update(changes)

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def arrivals_after(self, moment: float) -> int:
        """Provider requests that arrived after `moment` (time.monotonic() in this process)."""
        with self.state.lock:
            return sum(1 for t in self.state.arrivals if t > moment)

    def reset(self) -> None:
        self.state.reset()

    def start(self) -> StandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, name="standin", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def close(self) -> None:
        self.state.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_policy(dotted: str) -> Policy:
    module, _, name = dotted.partition(":")
    policy: Policy = getattr(importlib.import_module(module), name)
    return policy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every reply")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault", action="append", default=[], metavar="KIND=RATE", help=f"KIND in {FAULT_KINDS}")
    parser.add_argument("--force", default="", metavar="K1,K2,...", help="faults for the first requests, in order")
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--max-body-bytes", type=int, default=None)
    parser.add_argument("--policy", default=None, metavar="MODULE:FUNCTION", help="answer policy to import")
    args = parser.parse_args(argv)
    faults = {kind: float(rate) for kind, _, rate in (f.partition("=") for f in args.fault)}
    standin = StandIn(
        port=args.port,
        latency=args.latency,
        faults=faults,
        forced=[k for k in args.force.split(",") if k],
        seed=args.seed,
        retry_after=args.retry_after,
        hang_seconds=args.hang_seconds,
        max_body_bytes=args.max_body_bytes,
        policy=_load_policy(args.policy) if args.policy else None,
    )
    # The first line of output is the URL: a parent process reads it to know the server is listening.
    print(standin.url, flush=True)
    try:
        standin.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.close()


if __name__ == "__main__":
    main()
