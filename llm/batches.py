"""The providers' batch APIs behind one interface: submit requests, look at a batch, read its results, cancel it.

Anthropic Message Batches (`messages.batches`) and OpenAI's Batch API (an input file, then `batches`), through the
real SDKs with the very request parameters and reply parsing of the interactive calls (llm/providers.py), so a
batched answer is read exactly as an interactive one. Each request carries a `custom_id` of the caller's choosing;
results come in any order and are matched by it. SDK errors become the engine's error classes, as for calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from .base import JudgeError, Reply, StructuredRequest
from .catalog import JudgeModel
from .providers import AnthropicProvider, OpenAIProvider, _translate, provider_for


@dataclass(frozen=True)
class BatchState:
    """A batch as the provider reports it: ended or not, and its request counts (provider's own names)."""

    ended: bool
    status: str
    counts: dict[str, int]


@dataclass(frozen=True)
class BatchResult:
    """One request's result: a `reply` (billed, maybe still unfit for the schema: `error` then says why) or no
    reply and an `error` (errored, expired, canceled: not billed, asked again interactively)."""

    custom_id: str
    kind: str  # succeeded, errored, expired, canceled
    reply: Reply | None = None
    error: str = ""


class AnthropicBatches:
    def __init__(self, provider: AnthropicProvider) -> None:
        self.provider = provider
        self.client = provider.client
        self.sdk = provider.sdk  # imported by the provider, not with this module

    def submit(self, requests: Iterable[tuple[str, StructuredRequest]]) -> str:
        params = [{"custom_id": cid, "params": self.provider.params(request)} for cid, request in requests]
        try:
            return str(self.client.messages.batches.create(requests=params).id)  # type: ignore[arg-type]
        except self.sdk.AnthropicError as exc:
            raise _translate(exc, self.sdk) from exc

    def state(self, batch_id: str) -> BatchState:
        try:
            batch = self.client.messages.batches.retrieve(batch_id)
        except self.sdk.AnthropicError as exc:
            raise _translate(exc, self.sdk) from exc
        raw = batch.request_counts
        counts = {k: getattr(raw, k) for k in ("processing", "succeeded", "errored", "canceled", "expired")}
        return BatchState(batch.processing_status == "ended", batch.processing_status, counts)

    def results(self, batch_id: str, like: StructuredRequest) -> Iterator[BatchResult]:
        try:
            for line in self.client.messages.batches.results(batch_id):
                result = line.result
                if result.type == "succeeded":
                    yield _parsed(line.custom_id, lambda m=result.message: self.provider.reply(m, like))
                elif result.type == "errored":
                    error = result.error.error
                    yield BatchResult(line.custom_id, "errored", error=f"{error.type}: {error.message}")
                else:
                    yield BatchResult(line.custom_id, result.type, error=f"the batch request {result.type}")
        except self.sdk.AnthropicError as exc:
            raise _translate(exc, self.sdk) from exc

    def cancel(self, batch_id: str) -> None:
        try:
            self.client.messages.batches.cancel(batch_id)
        except self.sdk.AnthropicError as exc:
            raise _translate(exc, self.sdk) from exc


class OpenAIBatches:
    ENDPOINT: Final = "/v1/chat/completions"

    def __init__(self, provider: OpenAIProvider) -> None:
        self.provider = provider
        self.client = provider.client
        self.sdk = provider.sdk

    def submit(self, requests: Iterable[tuple[str, StructuredRequest]]) -> str:
        lines = (
            json.dumps({"custom_id": cid, "method": "POST", "url": self.ENDPOINT, "body": self.provider.params(r)})
            for cid, r in requests
        )
        data = "".join(line + "\n" for line in lines).encode()
        try:
            uploaded = self.client.files.create(file=("batch.jsonl", data), purpose="batch")
            batch = self.client.batches.create(
                input_file_id=uploaded.id, endpoint=self.ENDPOINT, completion_window="24h"
            )
        except self.sdk.OpenAIError as exc:
            raise _translate(exc, self.sdk) from exc
        return str(batch.id)

    def _batch(self, batch_id: str) -> Any:
        try:
            return self.client.batches.retrieve(batch_id)
        except self.sdk.OpenAIError as exc:
            raise _translate(exc, self.sdk) from exc

    def state(self, batch_id: str) -> BatchState:
        batch = self._batch(batch_id)
        counts = batch.request_counts.to_dict() if batch.request_counts else {}
        ended = batch.status in {"completed", "expired", "cancelled", "failed"}
        return BatchState(ended, batch.status, counts)

    def _lines(self, file_id: str | None) -> Iterator[dict[str, Any]]:
        if not file_id:
            return
        try:
            with self.client.files.with_streaming_response.content(file_id) as response:
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except self.sdk.OpenAIError as exc:
            raise _translate(exc, self.sdk) from exc

    def results(self, batch_id: str, like: StructuredRequest) -> Iterator[BatchResult]:
        """The output file's lines, then the error file's; a request in neither (its batch was canceled or failed)
        has no result, and the caller asks it again."""
        batch = self._batch(batch_id)
        for line in self._lines(batch.output_file_id):
            body = (line.get("response") or {}).get("body") or {}
            yield _parsed(
                line["custom_id"],
                lambda body=body: self.provider.reply(self.sdk.types.chat.ChatCompletion.model_validate(body), like),
            )
        for line in self._lines(batch.error_file_id):
            error = line.get("error") or {}
            if error.get("code") == "batch_expired":
                yield BatchResult(line["custom_id"], "expired", error="the batch request expired")
            else:
                response = line.get("response") or {}
                message = ((response.get("body") or {}).get("error") or {}).get("message") or error.get("message")
                yield BatchResult(line["custom_id"], "errored", error=f"HTTP {response.get('status_code')}: {message}")

    def cancel(self, batch_id: str) -> None:
        try:
            self.client.batches.cancel(batch_id)
        except self.sdk.OpenAIError as exc:
            raise _translate(exc, self.sdk) from exc


def _parsed(custom_id: str, read: Any) -> BatchResult:
    """A succeeded request's reply, parsed as an interactive one; a reply unfit for use keeps its usage (billed)."""
    try:
        return BatchResult(custom_id, "succeeded", reply=read())
    except JudgeError as exc:
        return BatchResult(custom_id, "succeeded", reply=Reply({}, exc.usage), error=str(exc))
    except Exception as exc:  # what the SDK's models cannot read: a bad reply like any other
        return BatchResult(custom_id, "succeeded", reply=Reply({}), error=f"unreadable reply ({exc})")


Batches = AnthropicBatches | OpenAIBatches


def batches_for(model: JudgeModel) -> Batches:
    """The batch API of `model`'s provider; ValueError if it has none."""
    if not model.batch:
        raise ValueError(f"{model.name} has no batch API")
    provider = provider_for(model)
    if isinstance(provider, AnthropicProvider):
        return AnthropicBatches(provider)
    if isinstance(provider, OpenAIProvider):
        return OpenAIBatches(provider)
    raise ValueError(f"{model.name} has no batch API")
