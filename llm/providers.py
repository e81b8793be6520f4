"""The Anthropic and OpenAI SDKs behind one `complete(StructuredRequest) -> Reply` call.

Clients are built with max_retries=0: the engine retries, so every attempt reaches the ledger and one
Retry-After policy (capped) applies to both providers. SDK errors become the engine's error classes here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
from django.conf import settings

from .base import (
    BadReply,
    FatalJudgeError,
    Refused,
    Rejected,
    Reply,
    StructuredRequest,
    TransientError,
    Usage,
)
from .catalog import JudgeModel, judge_models
from .deadline import http_client as deadline_client
from .offline import OfflineProvider

RETRYABLE_STATUS = {408, 409, 429}
# About this request only (too long for the context window, a content filter): the item fails, the job goes on.
REJECTED_STATUS = {400, 413, 422}


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return None


def _translate(exc: Exception, sdk: Any) -> Exception:
    """Map an SDK exception to TransientError (retry) or FatalJudgeError (give up on this judge)."""
    if isinstance(exc, sdk.APITimeoutError):
        return TransientError(f"timed out: {exc}", outcome="timeout")
    if isinstance(exc, sdk.APIConnectionError):
        return TransientError(f"connection failed: {exc}", outcome="server_error")
    if isinstance(exc, sdk.APIStatusError):
        headers = exc.response.headers
        status = exc.status_code
        message = f"HTTP {status}: {getattr(exc, 'message', exc)}"
        should_retry = headers.get("x-should-retry")
        if should_retry != "false" and (status in RETRYABLE_STATUS or status >= 500):
            outcome = "rate_limited" if status == 429 else "server_error"
            return TransientError(message, outcome=outcome, retry_after=_retry_after(headers))
        if status in {401, 403}:
            return FatalJudgeError(f"the provider rejected the credentials ({message})")
        if status == 404:
            return FatalJudgeError(f"the provider does not know this model ({message})")
        if status in REJECTED_STATUS:
            return Rejected(f"the provider rejected this request ({message})")
        return FatalJudgeError(message)
    return exc


def _client_options(model: JudgeModel, http_client: httpx2.Client | None) -> dict[str, Any]:
    # max_retries=0: the engine retries, so that every attempt is in the ledger. The client bounds each call's
    # total time (llm/deadline.py); the SDK's timeout alone bounds each socket operation, not the call.
    return {
        "api_key": model.api_key(),
        "base_url": model.resolved_base_url(),
        "max_retries": 0,
        "timeout": settings.JUDGE_TIMEOUT_SECONDS,
        "http_client": http_client or deadline_client(settings.JUDGE_TIMEOUT_SECONDS),
    }


def import_sdks() -> None:
    """Import now the SDK of each provider this process has credentials for (a key, or a model's own base_url).

    The providers import their SDK when the first one is built, not with this module, which every Django process
    loads: the two are about two thirds of django.setup()'s CPU (1.2 s of 2.2 s on a quiet 2-core machine, 4 of 6 s on
    a loaded one), paid by every management command and test subprocess that never calls a provider. The processes
    that do call one import them at start instead (config/wsgi.py, `manage.py worker` before its cluster forks): in a
    worker the import would otherwise run inside the first claimed item, before its first heartbeat, and under load
    outlast a short lease; in the web process, inside the first request that builds a provider.

    Only the providers that can be called: credentials come from the environment alone (JudgeModel.api_key), so a
    provider without them is never built here, and its import (Anthropic's is 1.1 s of CPU, OpenAI's 0.5 s) would be
    paid by every worker start for nothing: a deployment on one provider or one OpenAI-compatible server, and the
    test suite's workers (54 cluster starts, nearly all against the OpenAI-compatible stand-in).
    """
    callable_providers = {m.provider for m in judge_models().values() if not m.is_offline and m.api_key()}
    if "anthropic" in callable_providers:
        import anthropic  # noqa: F401
    if "openai" in callable_providers:
        import openai  # noqa: F401


class AnthropicProvider:
    """Claude through the Messages API.

    Without thinking: a forced, strict tool whose input_schema is the answer schema. With thinking, a forced
    tool_choice is not allowed, so the answer comes as structured output (output_config.format json_schema).
    The system prompt is one text block marked for prompt caching.
    """

    name = "anthropic"

    def __init__(self, model: JudgeModel, http_client: httpx2.Client | None = None) -> None:
        import anthropic  # here, not with this module: see import_sdks

        self.sdk: Any = anthropic
        self.model = model
        self.client = anthropic.Anthropic(**_client_options(model, http_client))

    def params(self, request: StructuredRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model.model,
            "max_tokens": self.model.max_tokens,
            "messages": [{"role": "user", "content": request.user}],
        }
        if request.system:  # Anthropic refuses an empty text block (a red-team target may have no system prompt)
            params["system"] = [{"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}]
        if not request.schema:
            return params  # a free-text answer: no tool, no output format
        if self.model.thinking_budget:
            params["thinking"] = {
                "type": "enabled",
                "budget_tokens": self.model.thinking_budget,
            }
            params["output_config"] = {"format": {"type": "json_schema", "schema": request.schema}}
        else:
            params["tools"] = [
                {
                    "name": request.tool_name,
                    "description": request.tool_description,
                    "input_schema": request.schema,
                    "strict": True,
                }
            ]
            params["tool_choice"] = {
                "type": "tool",
                "name": request.tool_name,
                "disable_parallel_tool_use": True,
            }
        return params

    def complete(self, request: StructuredRequest) -> Reply:
        try:
            message = self.client.messages.create(**self.params(request))
        except self.sdk.AnthropicError as exc:
            raise _translate(exc, self.sdk) from exc
        return self.reply(message, request)

    def reply(self, message: Any, request: StructuredRequest) -> Reply:
        """The Reply in a Message (an interactive call's, or a batch result's); raises as complete() does."""
        raw = message.usage
        usage = Usage(
            input_tokens=raw.input_tokens,
            output_tokens=raw.output_tokens,
            cache_read_tokens=raw.cache_read_input_tokens or 0,
            cache_write_tokens=raw.cache_creation_input_tokens or 0,
        )
        if message.stop_reason == "refusal":
            details = getattr(message, "stop_details", None)
            raise Refused(getattr(details, "explanation", None) or "refusal", usage=usage)
        if message.stop_reason == "max_tokens":
            raise BadReply("the reply was cut off at max_tokens", usage=usage)
        for block in message.content:
            if block.type == "tool_use" and block.name == request.tool_name:
                return Reply(dict(block.input), usage)
        text = "".join(block.text for block in message.content if block.type == "text")
        if not request.schema:
            return Reply({"text": text}, usage)
        try:
            return Reply(json.loads(text), usage)
        except json.JSONDecodeError as exc:
            raise BadReply(f"the reply is not JSON: {text[:200]!r}", usage=usage) from exc


class OpenAIProvider:
    """GPT and any OpenAI-compatible server (vLLM, Ollama, llama.cpp, gateways) through Chat Completions.

    The answer schema goes in response_format as a strict json_schema. The system prompt comes first and is the
    same for every call of a job, which is what OpenAI's automatic prefix caching keys on.
    """

    name = "openai"

    def __init__(self, model: JudgeModel, http_client: httpx2.Client | None = None) -> None:
        import openai  # here, not with this module: see import_sdks

        self.sdk: Any = openai
        self.model = model
        self.client = openai.OpenAI(**_client_options(model, http_client))

    def params(self, request: StructuredRequest) -> dict[str, Any]:
        system = [{"role": "system", "content": request.system}] if request.system else []
        params: dict[str, Any] = {
            "model": self.model.model,
            "messages": [*system, {"role": "user", "content": request.user}],
            "max_completion_tokens": self.model.max_tokens,
        }
        if request.schema:  # else a free-text answer
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.tool_name, "schema": request.schema, "strict": True},
            }
        if self.model.reasoning_effort:
            params["reasoning_effort"] = self.model.reasoning_effort
        if self.model.temperature is not None:
            params["temperature"] = self.model.temperature
        return params

    def complete(self, request: StructuredRequest) -> Reply:
        try:
            completion = self.client.chat.completions.create(**self.params(request))
        except self.sdk.OpenAIError as exc:
            raise _translate(exc, self.sdk) from exc
        return self.reply(completion, request)

    def reply(self, completion: Any, request: StructuredRequest) -> Reply:
        """The Reply in a ChatCompletion (an interactive call's, or a batch result's); raises as complete() does."""
        raw = completion.usage
        cached = (raw.prompt_tokens_details.cached_tokens or 0) if raw and raw.prompt_tokens_details else 0
        usage = Usage(
            # prompt_tokens includes the cached ones; the ledger keeps them apart so each is priced once.
            input_tokens=(raw.prompt_tokens - cached) if raw else 0,
            output_tokens=raw.completion_tokens if raw else 0,
            cache_read_tokens=cached,
        )
        if not completion.choices:
            raise BadReply("the reply has no choices", usage=usage)
        choice = completion.choices[0]
        if choice.message.refusal:
            raise Refused(choice.message.refusal, usage=usage)
        if choice.finish_reason == "length":
            raise BadReply("the reply was cut off at max_completion_tokens", usage=usage)
        text = choice.message.content or ""
        if not request.schema:
            return Reply({"text": text}, usage)
        try:
            return Reply(json.loads(text), usage)
        except json.JSONDecodeError as exc:
            raise BadReply(f"the reply is not JSON: {text[:200]!r}", usage=usage) from exc


def build_provider(model: JudgeModel, http_client: httpx2.Client | None = None) -> Any:
    if model.provider == "anthropic":
        return AnthropicProvider(model, http_client)
    if model.provider == "openai":
        return OpenAIProvider(model, http_client)
    return OfflineProvider()


# Tests point this at an httpx2 transport that plays the provider; everything else uses the real network.
http_client_for: Any = None


def provider_for(model: JudgeModel) -> Any:
    return build_provider(model, http_client_for(model) if http_client_for else None)
