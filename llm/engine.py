"""Calling a judge: bounded, adaptive concurrency per provider; retries with backoff; every attempt recorded."""

from __future__ import annotations

import contextlib
import json
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, Protocol, TypeVar

from django.conf import settings

from .base import (
    BadReply,
    FatalJudgeError,
    JudgeError,
    Provider,
    Refused,
    Rejected,
    Reply,
    StructuredRequest,
    TransientError,
    Usage,
)
from .catalog import JudgeModel
from .deadline import call_clock, stopping

T = TypeVar("T")
Item = TypeVar("Item")
Answer = TypeVar("Answer")  # what `ask` returns: an Outcome, or a caller's bundle of them (run generation)
BAD_REPLY_ATTEMPTS = 2  # a reply that does not parse is asked again once
ABANDONED = "abandoned"  # JudgeCall.Outcome.ABANDONED: the worker stopped while the call was in flight


def sleep(seconds: float) -> None:
    """A backoff that a stop ends at once (tests replace it to run backoffs instantly)."""
    stopping.wait(seconds)


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
    # What the provider answered (its parsed reply as JSON), when it answered at all: kept for the ledger.
    answer: str = ""
    # The ledger row written before the request left (outcome "sent"), which recording this attempt completes.
    row_id: int | None = None


class SendLedger(Protocol):
    """Writes a call's ledger row before the request leaves (llm/ledger.py CallLedger), so that a worker killed
    mid-call leaves a row for a call the provider may bill: returns the row's id."""

    def open(self, *, model: JudgeModel, attempt: int, ceiling_usd: Decimal) -> int: ...

    def discard(self, row_id: int) -> None: ...


class _CallerRelay:
    """Runs a function on ask_each's calling thread, which owns the database connection (a pool thread writing
    would open its own, outside the caller's transaction): the pool thread posts it and waits for the result."""

    def __init__(self, events: queue.SimpleQueue[Any]) -> None:
        self.events = events
        self.closed = False

    def run(self, fn: Callable[[], T]) -> T:
        if self.closed:
            raise RuntimeError("the caller stopped taking writes")
        done = threading.Event()
        box: dict[str, Any] = {}
        self.events.put(("call", (fn, box, done)))
        while not done.wait(0.5):
            if self.closed:
                raise RuntimeError("the caller stopped taking writes")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    @staticmethod
    def serve(job: tuple[Callable[[], Any], dict[str, Any], threading.Event]) -> None:
        fn, box, done = job
        try:
            box["value"] = fn()
        except Exception as exc:
            box["error"] = exc
        finally:
            done.set()


_relay = threading.local()


def on_caller(fn: Callable[[], T]) -> T:
    """`fn()` on the thread that owns the database connection: here, or ask_each's calling thread from its pool."""
    relay: _CallerRelay | None = getattr(_relay, "current", None)
    return fn() if relay is None else relay.run(fn)


def ceiling_tokens(request: StructuredRequest) -> int:
    """An upper bound on a request's input tokens (three characters a token, schema included): what a call that
    never answered is costed at (llm/ledger.py)."""
    size = len(request.system) + len(request.user) + len(str(request.schema))
    return size // 3 + 1


@dataclass
class Outcome:
    """What asking a judge came to: an answer, or the reason there is none; plus every attempt it took.

    `fatal` means no call to this judge can succeed (bad credentials, unknown model): the caller stops asking it.
    """

    answer: Any = None
    error: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    # What was asked (the ledger keeps its prompts).
    request: StructuredRequest | None = None
    fatal: bool = False
    # Not asked to the end for lack of time (the work item's run is ending): ask again in the next run.
    deferred: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


def backoff_seconds(attempt: int, retry_after: float | None) -> float:
    """Honour the provider's Retry-After; otherwise exponential backoff with jitter, capped."""
    cap = float(settings.JUDGE_BACKOFF_MAX_SECONDS)
    if retry_after is not None:
        return min(cap, max(0.0, retry_after))
    return min(cap, (2.0 ** (attempt - 1)) * (0.5 + random.random() * 0.5))  # noqa: S311 - jitter, not crypto


def _raw(reply: Reply | None) -> str:
    """The reply as the ledger keeps it: the provider's parsed answer as JSON (a reply that failed our validation
    included: that is when it matters most)."""
    if reply is None:
        return ""
    return json.dumps(reply.data, ensure_ascii=False, default=str)


class Judge:
    def __init__(self, model: JudgeModel, provider: Provider) -> None:
        self.model = model
        self.provider = provider
        self.limiter = limiter_for(model.provider if not model.base_url else model.base_url)

    def cost(self, usage: Usage, *, batch: bool = False) -> Decimal:
        """What the provider bills for `usage`: interactively, or in a batch (both providers: half the price)."""
        return (self.model.batch_prices if batch else self.model.prices).cost(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read=usage.cache_read_tokens,
            cache_write=usage.cache_write_tokens,
        )

    def ceiling(self, request: StructuredRequest) -> Decimal:
        """The most this request can cost: every input token at the dearer of the input and cache-write prices,
        and a reply of max_tokens."""
        prices = self.model.prices
        dearest = max(prices.input, prices.cache_write)
        return (dearest * ceiling_tokens(request) + prices.output * self.model.max_tokens) / Decimal(1_000_000)

    def ask(
        self,
        request: StructuredRequest,
        validate: Callable[[Any], T],
        *,
        deadline: float | None = None,
        ledger: SendLedger | None = None,
    ) -> Outcome:
        """Ask until there is a valid answer or no point trying again.

        A fatal error ends at once (`fatal` set). With a `deadline` (time.monotonic()), no attempt starts that
        could outlast it, and no backoff sleeps past it: the outcome is then `deferred` (ask again later). Once the
        process is stopping (deadline.stop_calls), no attempt starts and no backoff goes on; a call in flight is
        abandoned at the stop's deadline (its attempt is "abandoned", the outcome `deferred`).
        Whatever the provider or the SDK raises becomes an outcome: nothing escapes to the caller.
        With a `ledger`, each attempt's row is written before its request leaves (outcome "sent") and carried in
        the Attempt (`row_id`), so recording the outcome completes it; a call that cannot be recorded is not sent.
        """
        outcome = Outcome(request=request)
        bad_replies = 0
        for attempt in range(1, settings.JUDGE_MAX_ATTEMPTS + 1):
            if deadline is not None and time.monotonic() + settings.JUDGE_TIMEOUT_SECONDS > deadline:
                outcome.error = "not asked: no time left in this run to finish a call"
                outcome.deferred = True
                return outcome
            with self.limiter:
                if stopping.is_set():
                    # The worker is stopping: no new request and no retry; the item is asked again after the restart.
                    outcome.error = "not asked: the worker is stopping"
                    outcome.deferred = True
                    return outcome
                row_id = None
                if ledger is not None and not self.model.is_offline:
                    try:
                        row_id = on_caller(
                            partial(ledger.open, model=self.model, attempt=attempt, ceiling_usd=self.ceiling(request))
                        )
                    except Exception as unrecorded:
                        outcome.error = f"not asked: the call could not be recorded before sending it ({unrecorded})"
                        outcome.deferred = True
                        return outcome
                    if stopping.is_set():
                        # The stop came while the row was being written: the request never leaves, nor its row.
                        with contextlib.suppress(Exception):
                            on_caller(partial(ledger.discard, row_id))
                        outcome.error = "not asked: the worker is stopping"
                        outcome.deferred = True
                        return outcome
                started = time.perf_counter()
                reply: Reply | None = None
                # JUDGE_TIMEOUT_SECONDS bounds the whole call (connect, first byte, every chunk of the body).
                with call_clock(settings.JUDGE_TIMEOUT_SECONDS) as clock:
                    try:
                        reply = self.provider.complete(request)
                        answer = validate(reply.data)
                    except Exception as raised:
                        failure: Exception | None = raised
                    else:
                        failure = None
            latency = int((time.perf_counter() - started) * 1000)
            raw = _raw(reply)
            if failure is None:
                assert reply is not None
                outcome.attempts.append(
                    Attempt(attempt, "ok", reply.usage, self.cost(reply.usage), latency, answer=raw, row_id=row_id)
                )
                self.limiter.succeeded()
                outcome.answer = answer
                outcome.error = ""
                return outcome
            if clock.abandoned:
                error = "abandoned: the worker stopped while this call was in flight; asked again after the restart"
                outcome.attempts.append(Attempt(attempt, ABANDONED, Usage(), Decimal(0), latency, error, row_id=row_id))
                outcome.error = error
                outcome.deferred = True
                return outcome
            # A reply the SDK itself cannot parse (an HTML page from a gateway, JSON cut off mid-way) raises
            # whatever the SDK raises: it is a bad reply, asked again once, never an escaped exception.
            exc = (
                failure
                if isinstance(failure, JudgeError)
                else BadReply(f"unreadable reply ({type(failure).__name__}: {failure})")
            )
            outcome.attempts.append(
                Attempt(attempt, exc.outcome, exc.usage, self.cost(exc.usage), latency, str(exc), raw, row_id)
            )
            if isinstance(exc, FatalJudgeError):
                outcome.error = str(exc)
                outcome.fatal = True
                return outcome
            if isinstance(exc, Refused | Rejected):
                outcome.error = f"the judge refused: {exc}" if isinstance(exc, Refused) else str(exc)
                return outcome
            if isinstance(exc, TransientError):
                if exc.outcome == "rate_limited":
                    self.limiter.rate_limited()
                outcome.error = f"gave up after {attempt} attempts: {exc}"
                if attempt < settings.JUDGE_MAX_ATTEMPTS:
                    pause = backoff_seconds(attempt, exc.retry_after)
                    if deadline is not None and time.monotonic() + pause > deadline:
                        outcome.deferred = True
                        return outcome
                    sleep(pause)
                continue
            bad_replies += 1  # BadReply, or anything else the reply caused
            if bad_replies >= BAD_REPLY_ATTEMPTS:
                outcome.error = f"the judge's reply did not fit the schema twice: {exc}"
                return outcome
        return outcome


def ask_each(
    items: Iterable[Item],
    ask: Callable[[Item], Answer],
    on_answer: Callable[[Item, Answer], bool],
    *,
    workers: int | None = None,
    tick: Callable[[], bool] | None = None,
    tick_every: float = 1.0,
) -> bool:
    """Ask about every item, `workers` at a time (default JUDGE_CONCURRENCY), handing each outcome to `on_answer`
    in the calling thread as soon as it arrives, so that every database write happens on one connection.

    Items are drawn from the iterable only as calls free up: a window of `workers` calls stays in flight across
    the whole iterable (no drain between batches), and memory stays flat however many items there are.
    `tick()` runs in the calling thread at least every `tick_every` seconds (a heartbeat, a cancel check).
    `on_answer` or `tick` returning False stops asking: no new item is drawn, calls already in flight finish and
    are still handed to `on_answer` (they were made and paid for, so the ledger must see them). An exception from
    `on_answer` stops the same way, then propagates. Returns True if every item was asked.
    """
    width = workers or settings.JUDGE_CONCURRENCY
    source = iter(items)
    exhausted = stopped = False
    # One queue wakes the calling thread for both: a call that finished, and a pool thread's write (on_caller).
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    relay = _CallerRelay(events)

    def in_pool(item: Item) -> Answer:
        _relay.current = relay
        try:
            return ask(item)
        finally:
            _relay.current = None

    with ThreadPoolExecutor(max_workers=width) as pool:
        flying: dict[Future[Answer], Item] = {}
        try:
            next_tick = time.monotonic() + tick_every
            while True:
                while not (exhausted or stopped) and len(flying) < width:
                    item = next(source, _END)
                    if item is _END:
                        exhausted = True
                    else:
                        future = pool.submit(in_pool, item)
                        flying[future] = item
                        future.add_done_callback(lambda f: events.put(("done", f)))
                if not flying:
                    break
                try:
                    kind, payload = events.get(timeout=max(0.0, next_tick - time.monotonic()))
                except queue.Empty:
                    kind = ""
                if kind == "call":
                    _CallerRelay.serve(payload)
                    continue
                if kind == "done" and not on_answer(flying.pop(payload), payload.result()):
                    stopped = True
                if tick is not None and not stopped and (kind == "done" or time.monotonic() >= next_tick):
                    next_tick = time.monotonic() + tick_every
                    if not tick():
                        stopped = True
                elif time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + tick_every
        except BaseException:
            # Stop drawing; the pool's exit waits for the calls in flight, which may no longer write through us.
            stopped = True
            relay.closed = True
            raise
    return exhausted and not stopped


_END: Any = object()
