"""Calling a judge: bounded, adaptive concurrency per provider; retries with backoff; every attempt recorded."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings

from .base import (
    BadReply,
    FatalJudgeError,
    JudgeError,
    Provider,
    Refused,
    StructuredRequest,
    TransientError,
    Usage,
)
from .catalog import JudgeModel

T = TypeVar("T")
Item = TypeVar("Item")
BAD_REPLY_ATTEMPTS = 2  # a reply that does not parse is asked again once
sleep = time.sleep  # tests replace it to run backoffs instantly


class AdaptiveLimiter:
    """At most `limit` calls at once; halved on a 429, grown back by one per success (AIMD), never above max."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.active = 0
        self._condition = threading.Condition()

    def __enter__(self) -> AdaptiveLimiter:
        with self._condition:
            self._condition.wait_for(lambda: self.active < self.limit)
            self.active += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._condition:
            self.active -= 1
            self._condition.notify_all()

    def rate_limited(self) -> None:
        with self._condition:
            self.limit = max(1, self.limit // 2)

    def succeeded(self) -> None:
        with self._condition:
            if self.limit < self.maximum:
                self.limit += 1
                self._condition.notify_all()


_limiters: dict[str, AdaptiveLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(provider: str) -> AdaptiveLimiter:
    """One limiter per provider per process, shared by every evaluation the process runs."""
    with _limiters_lock:
        if provider not in _limiters:
            _limiters[provider] = AdaptiveLimiter(settings.JUDGE_CONCURRENCY)
        return _limiters[provider]


@dataclass(frozen=True)
class Attempt:
    """One provider call for the ledger (JudgeCall)."""

    attempt: int
    outcome: str
    usage: Usage
    cost_usd: Decimal
    latency_ms: int
    error: str = ""


@dataclass
class Outcome:
    """What asking a judge came to: an answer, or the reason there is none; plus every attempt it took.

    `fatal` means no call to this judge can succeed (bad credentials, unknown model): the caller stops asking it.
    """

    answer: Any = None
    error: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    fatal: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


def backoff_seconds(attempt: int, retry_after: float | None) -> float:
    """Honour the provider's Retry-After; otherwise exponential backoff with jitter, capped."""
    cap = float(settings.JUDGE_BACKOFF_MAX_SECONDS)
    if retry_after is not None:
        return min(cap, max(0.0, retry_after))
    return min(cap, (2.0 ** (attempt - 1)) * (0.5 + random.random() * 0.5))  # noqa: S311 - jitter, not crypto


class Judge:
    def __init__(self, model: JudgeModel, provider: Provider) -> None:
        self.model = model
        self.provider = provider
        self.limiter = limiter_for(model.provider if not model.base_url else model.base_url)

    def cost(self, usage: Usage) -> Decimal:
        return self.model.prices.cost(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read=usage.cache_read_tokens,
            cache_write=usage.cache_write_tokens,
        )

    def ask(self, request: StructuredRequest, validate: Callable[[Any], T]) -> Outcome:
        """Ask until there is a valid answer or no point trying again (a fatal error ends at once, `fatal` set)."""
        outcome = Outcome()
        bad_replies = 0
        for attempt in range(1, settings.JUDGE_MAX_ATTEMPTS + 1):
            started = time.perf_counter()
            try:
                with self.limiter:
                    reply = self.provider.complete(request)
                answer = validate(reply.data)
            except JudgeError as exc:
                latency = int((time.perf_counter() - started) * 1000)
                outcome.attempts.append(
                    Attempt(
                        attempt,
                        exc.outcome,
                        exc.usage,
                        self.cost(exc.usage),
                        latency,
                        str(exc),
                    )
                )
                if isinstance(exc, FatalJudgeError):
                    outcome.error = str(exc)
                    outcome.fatal = True
                    return outcome
                if isinstance(exc, Refused):
                    outcome.error = f"the judge refused: {exc}"
                    return outcome
                if isinstance(exc, BadReply):
                    bad_replies += 1
                    if bad_replies >= BAD_REPLY_ATTEMPTS:
                        outcome.error = f"the judge's reply did not fit the schema twice: {exc}"
                        return outcome
                    continue
                if isinstance(exc, TransientError):
                    if exc.outcome == "rate_limited":
                        self.limiter.rate_limited()
                    if attempt < settings.JUDGE_MAX_ATTEMPTS:
                        sleep(backoff_seconds(attempt, exc.retry_after))
                    outcome.error = f"gave up after {attempt} attempts: {exc}"
                    continue
                raise
            latency = int((time.perf_counter() - started) * 1000)
            outcome.attempts.append(Attempt(attempt, "ok", reply.usage, self.cost(reply.usage), latency))
            self.limiter.succeeded()
            outcome.answer = answer
            outcome.error = ""
            return outcome
        return outcome


def ask_each(
    items: Iterable[Item],
    ask: Callable[[Item], Outcome],
    on_answer: Callable[[Item, Outcome], bool],
    *,
    workers: int | None = None,
) -> None:
    """Ask about every item, `workers` at a time (default JUDGE_CONCURRENCY), handing each outcome to `on_answer`
    in the calling thread as soon as it arrives, so that every database write happens on one connection.

    `on_answer` returns False to stop: queued items are never asked, and calls already in flight finish and are
    still handed to `on_answer` (they were made and paid for, so the ledger must see them). An exception from
    `on_answer` stops asking the same way, then propagates.
    """
    with ThreadPoolExecutor(max_workers=workers or settings.JUDGE_CONCURRENCY) as pool:
        futures = {pool.submit(ask, item): item for item in items}
        waiting = set(futures)
        try:
            for future in as_completed(futures):
                waiting.discard(future)
                if future.cancelled():
                    continue
                if not on_answer(futures[future], future.result()):
                    for queued in waiting:
                        queued.cancel()
        except BaseException:
            for queued in waiting:
                queued.cancel()
            raise
