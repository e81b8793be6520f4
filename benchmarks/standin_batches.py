"""The stand-in's batch APIs (benchmarks/standin.py serves them): Anthropic Message Batches and OpenAI's files +
batches, as the real SDKs call them, so batch mode runs the SDK code end to end.

A batch stays in progress for `batch_seconds` after it is created (a slow batch), then ends the next time it is
looked at: each request is answered as the interactive endpoint would answer it (same bodies, same usage, same
prompt cache), except a seeded share that errors (`batch_errored`) or is left unprocessed and expires
(`batch_expired`). Results come in a shuffled order, never the order sent. A batch canceled before it ends has
every request canceled but a `batch_done_before_cancel` share, which had succeeded before the cancel (and is
billed). Submissions, requests and cancels are counted (`GET /_stats` → "batches").
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

Answer = tuple[int, bytes, str]  # status, body, content type


@dataclass
class Batch:
    id: str
    provider: str
    requests: list[dict[str, Any]]  # {"custom_id", "body"}
    created: float
    input_file_id: str = ""
    canceled: bool = False
    ended_at: float | None = None
    # custom_id -> ("succeeded", body) | ("errored", message) | ("expired", "") | ("canceled", "")
    results: dict[str, tuple[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # the shuffled order results are given in


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def _json(status: int, payload: Any) -> Answer:
    return status, json.dumps(payload).encode(), "application/json"


def _multipart_file(raw: bytes, content_type: str) -> tuple[bytes, dict[str, str]]:
    """The uploaded file's bytes and the other form fields of a multipart/form-data body."""
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    data, fields = b"", {}
    for part in raw.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if not body:
            continue
        body = body[:-2] if body.endswith(b"\r\n") else body
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode() if b'name="' in head else ""
        if b"filename=" in head:
            data = body
        elif name:
            fields[name] = body.decode()
    return data, fields


class Batches:
    """Every batch and uploaded file of one stand-in server; `answer(provider, body)` builds a reply as the
    interactive endpoint would."""

    def __init__(self, answer: Callable[[str, dict[str, Any]], dict[str, Any]]) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.batches: dict[str, Batch] = {}
        self.files: dict[str, bytes] = {}
        self.counts: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.counts) | {"open": sum(1 for b in self.batches.values() if b.ended_at is None)}

    # --- Routing -------------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, raw: bytes, headers: Any, config: Any) -> Answer | None:
        """The answer to a batch or file request, or None if `path` is none of theirs."""
        path = path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p and p != "v1"]
        base = f"http://{headers.get('Host')}"
        if parts[:2] == ["messages", "batches"] or parts[:1] in (["batches"], ["files"]):
            with self.lock:
                self.counts["api_calls"] += 1  # batch API calls, apart from the model requests they carry
        if parts[:2] == ["messages", "batches"]:
            return self._anthropic(method, parts[2:], raw, config, base)
        if parts[:1] == ["batches"]:
            return self._openai_batches(method, parts[1:], raw, config)
        if parts[:1] == ["files"]:
            return self._files(method, parts[1:], raw, headers)
        return None

    # --- Shared ----------------------------------------------------------------------------------------------------

    def _create(self, provider: str, requests: list[dict[str, Any]], config: Any, input_file_id: str = "") -> Answer:
        if not requests:
            return _json(400, {"error": {"type": "invalid_request_error", "message": "no requests"}})
        if len(requests) > config.batch_max_requests:
            message = f"{len(requests)} requests, over the limit of {config.batch_max_requests} a batch"
            return _json(400, {"error": {"type": "invalid_request_error", "message": message}})
        with self.lock:
            number = len(self.batches) + 1
            prefix = "msgbatch_" if provider == "anthropic" else "batch_"
            batch = Batch(f"{prefix}standin{number}", provider, requests, time.time(), input_file_id)
            self.batches[batch.id] = batch
            self.counts["created"] += 1
            self.counts["requests"] += len(requests)
        return _json(200, self._anthropic_view(batch, "") if provider == "anthropic" else self._openai_view(batch))

    def _get(self, batch_id: str, config: Any) -> Batch | None:
        """The batch, ended now if its time has come (answers computed outside the lock: they may be slow)."""
        with self.lock:
            batch = self.batches.get(batch_id)
            due = batch is not None and batch.ended_at is None
            due = due and (batch.canceled or time.time() - batch.created >= config.batch_seconds)  # type: ignore[union-attr]
        if due:
            self._end(batch, config)  # type: ignore[arg-type]
        return batch

    def _end(self, batch: Batch, config: Any) -> None:
        results: dict[str, tuple[str, Any]] = {}
        for request in batch.requests:
            custom_id = request["custom_id"]
            draw = random.Random(f"{config.seed}:{batch.id}:{custom_id}").random()
            if batch.canceled and draw >= config.batch_done_before_cancel:
                results[custom_id] = ("canceled", "")
            elif batch.canceled:
                results[custom_id] = ("succeeded", self.answer(batch.provider, request["body"]))
            elif draw < config.batch_expired:
                results[custom_id] = ("expired", "")
            elif draw < config.batch_expired + config.batch_errored:
                results[custom_id] = ("errored", "Internal server error (stand-in batch).")
            else:
                results[custom_id] = ("succeeded", self.answer(batch.provider, request["body"]))
        order = list(results)
        random.Random(f"{config.seed}:{batch.id}").shuffle(order)  # results in any order, as the docs warn
        with self.lock:
            if batch.ended_at is None:
                batch.results, batch.order, batch.ended_at = results, order, time.time()
                self.counts["ended"] += 1

    def _cancel(self, batch_id: str) -> Batch | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is not None and batch.ended_at is None and not batch.canceled:
                batch.canceled = True
                self.counts["canceled"] += 1
            return batch

    # --- Anthropic Message Batches ---------------------------------------------------------------------------------

    def _anthropic(self, method: str, rest: list[str], raw: bytes, config: Any, base: str) -> Answer:
        if method == "POST" and not rest:
            requests = [
                {"custom_id": r["custom_id"], "body": r["params"]} for r in json.loads(raw or b"{}").get("requests", [])
            ]
            return self._create("anthropic", requests, config)
        batch = self._cancel(rest[0]) if method == "POST" and rest[1:] == ["cancel"] else self._get(rest[0], config)
        if batch is None or batch.provider != "anthropic":
            return _json(404, {"type": "error", "error": {"type": "not_found_error", "message": "no such batch"}})
        if rest[1:] == ["results"]:
            if batch.ended_at is None:
                return _json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "not ended"}})
            return 200, self._anthropic_results(batch), "application/binary"
        return _json(200, self._anthropic_view(batch, base))

    def _anthropic_view(self, batch: Batch, base: str) -> dict[str, Any]:
        kinds = Counter(kind for kind, _ in batch.results.values())
        ended = batch.ended_at is not None
        status = "ended" if ended else "canceling" if batch.canceled else "in_progress"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                "processing": 0 if ended else len(batch.requests),
                "succeeded": kinds["succeeded"],
                "errored": kinds["errored"],
                "canceled": kinds["canceled"],
                "expired": kinds["expired"],
            },
            "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + timedelta(hours=24).total_seconds()),
            "ended_at": _iso(batch.ended_at) if ended else None,  # type: ignore[arg-type]
            "cancel_initiated_at": _iso(batch.created) if batch.canceled else None,
            "archived_at": None,
            "results_url": f"{base}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def _anthropic_results(self, batch: Batch) -> bytes:
        lines = []
        for custom_id in batch.order:
            kind, payload = batch.results[custom_id]
            if kind == "succeeded":
                result: dict[str, Any] = {"type": "succeeded", "message": payload}
            elif kind == "errored":
                error = {"type": "api_error", "message": payload}
                result = {"type": "errored", "error": {"type": "error", "error": error, "request_id": None}}
            else:
                result = {"type": kind}
            lines.append(json.dumps({"custom_id": custom_id, "result": result}))
        return ("\n".join(lines) + "\n").encode()

    # --- OpenAI files + batches ------------------------------------------------------------------------------------

    def _files(self, method: str, rest: list[str], raw: bytes, headers: Any) -> Answer:
        if method == "POST" and not rest:
            data, fields = _multipart_file(raw, headers.get("Content-Type", ""))
            with self.lock:
                file_id = f"file-standin{len(self.files) + 1}"
                self.files[file_id] = data
                self.counts["files"] += 1
            return _json(200, self._file_view(file_id, fields.get("purpose", "batch")))
        if method == "GET" and rest[1:] == ["content"] and rest[0] in self.files:
            return 200, self.files[rest[0]], "application/octet-stream"
        if method == "GET" and rest and rest[0] in self.files:
            return _json(200, self._file_view(rest[0], "batch"))
        return _json(404, {"error": {"message": "no such file", "type": "invalid_request_error"}})

    def _file_view(self, file_id: str, purpose: str) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(self.files[file_id]),
            "created_at": int(time.time()),
            "filename": f"{file_id}.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    def _openai_batches(self, method: str, rest: list[str], raw: bytes, config: Any) -> Answer:
        if method == "POST" and not rest:
            body = json.loads(raw or b"{}")
            data = self.files.get(body.get("input_file_id", ""))
            if data is None:
                return _json(400, {"error": {"message": "no such input file", "type": "invalid_request_error"}})
            lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
            requests = [{"custom_id": line["custom_id"], "body": line["body"]} for line in lines]
            return self._create("openai", requests, config, body["input_file_id"])
        batch = self._cancel(rest[0]) if method == "POST" and rest[1:] == ["cancel"] else self._get(rest[0], config)
        if batch is None or batch.provider != "openai":
            return _json(404, {"error": {"message": "no such batch", "type": "invalid_request_error"}})
        return _json(200, self._openai_view(batch))

    def _openai_view(self, batch: Batch) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "created_at": int(batch.created),
            "input_file_id": batch.input_file_id,
            "status": "cancelling" if batch.canceled else "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "request_counts": {"total": len(batch.requests), "completed": 0, "failed": 0},
        }
        if batch.ended_at is None:
            return view
        kinds = Counter(kind for kind, _ in batch.results.values())
        out, errors = self._openai_files(batch)
        expired = kinds["expired"] and not batch.canceled
        view |= {
            "status": "cancelled" if batch.canceled else "expired" if expired else "completed",
            "output_file_id": out,
            "error_file_id": errors,
            "request_counts": {
                "total": len(batch.requests),
                "completed": kinds["succeeded"],
                "failed": kinds["errored"] + kinds["expired"],
            },
        }
        return view

    def _openai_files(self, batch: Batch) -> tuple[str | None, str | None]:
        """The output and error files of an ended batch (written once, on the first look)."""
        out_id, error_id = f"file-{batch.id}-out", f"file-{batch.id}-err"
        with self.lock:
            written = out_id in self.files
        if not written:  # built outside the lock: ten thousand lines take a while
            out, errors = [], []
            for custom_id in batch.order:
                kind, payload = batch.results[custom_id]
                line: dict[str, Any] = {"id": f"batch_req_{custom_id}", "custom_id": custom_id}
                if kind == "succeeded":
                    response = {"status_code": 200, "request_id": "req_standin", "body": payload}
                    out.append(line | {"response": response, "error": None})
                elif kind == "errored":
                    body = {"error": {"message": payload, "type": "server_error"}}
                    response = {"status_code": 500, "request_id": "req_standin", "body": body}
                    errors.append(line | {"response": response, "error": None})
                elif kind == "expired":
                    message = "This request could not be executed before the completion window expired."
                    errors.append(line | {"response": None, "error": {"code": "batch_expired", "message": message}})
            with self.lock:
                self.files.setdefault(out_id, "".join(json.dumps(x) + "\n" for x in out).encode())
                self.files.setdefault(error_id, "".join(json.dumps(x) + "\n" for x in errors).encode())
        with self.lock:
            return (out_id if self.files[out_id] else None), (error_id if self.files[error_id] else None)
