"""One work item that sends its requests through a provider's batch API (issue #26): what an evaluation judged in
batch mode (evaluations/batch.py) and a run generated in batch mode (runs/generation.py) share.

The item's state is kept in its args, so that a worker killed at any moment resumes where it was:

1. submit: the caller's unsent requests go out in batches of at most JUDGE_BATCH_MAX_REQUESTS requests and
   JUDGE_BATCH_MAX_BYTES bytes (the providers' documented limits). Each batch's ledger row is written first
   (outcome "sent", at the batch's ceiling price: what the monthly budget counts until it settles), and its id is
   stored on the item the moment the provider answers, before anything else: a resumed item polls it, never
   submits it again.
2. poll: each open batch is looked at after JUDGE_BATCH_POLL_SECONDS, then twice as long each time, up to
   JUDGE_BATCH_POLL_MAX_SECONDS; meanwhile the item waits in the queue, and no worker holds it. An ended batch's
   results are read a page at a time, each page's results (written by the caller), ledger rows and how far the
   reading got committed in one transaction. Once read, the batch's "sent" row is settled (deleted: its requests
   have rows of their own).
3. the rest: what no batch answered (errored, expired, canceled, a reply unfit for the schema) is the caller's to
   ask through its interactive path, with its bounded attempts and per-item errors.

Canceling the item cancels its open batches at the provider (cancel_open).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.db import transaction

from work.dispatch import work_create

from .base import JudgeError, StructuredRequest, TransientError
from .batches import Batches, BatchResult, batches_for
from .catalog import JudgeModel
from .engine import Attempt, Judge, ask_each
from .ledger import CallLedger
from .models import JudgeCall

if TYPE_CHECKING:
    from work.models import WorkItem
    from work.runner import Context

logger = logging.getLogger(__name__)
# Results written per transaction: the heartbeat waits for the commit (an UPDATE inside an open transaction keeps
# no lease alive), so a page must take well under WORK_LEASE_SECONDS to write, on a loaded machine too.
PAGE = 50
T = TypeVar("T")

# A request to send: its custom_id, the request, and the position it comes at in the caller's order (stored as
# "after" once its batch is submitted: a resumed item asks the caller for what comes after it).
Unsent = tuple[str, StructuredRequest, int]


@dataclass(frozen=True)
class BatchJob:
    """What one batch item asks of which model, for whom (the ledger), and how its results are written."""

    judge: Judge  # the model and its prices: each batch's ceiling, each result's cost
    ledger: CallLedger  # where each batch's "sent" row goes (purpose "batch")
    like: StructuredRequest  # any of the item's requests: the schema a reply is read with
    # Writes one page of results inside the page's transaction (a billed reply's ledger row with it: billed()).
    write: Callable[[list[BatchResult]], None]
    # The requests not yet sent, in order, after the given position (-1: from the start).
    unsent: Callable[[int], Iterable[Unsent]]


def wants_batch(*, requested: bool | None, samples: int, model: JudgeModel, threshold: int) -> bool:
    """Asked for, or by size (`threshold` samples, the setting of the caller's kind; 0: never by size); only a
    model with a batch API."""
    if requested is not None:
        return requested and model.batch
    return model.batch and threshold > 0 and samples >= threshold


def billed(judge: Judge, result: BatchResult, error: str) -> Attempt:
    """The ledger's attempt for a result that has a reply (billed, at the batch price); `error`: why its reply is
    unfit (a bad reply, asked again)."""
    assert result.reply is not None  # noqa: S101 - only replies are billed
    usage = result.reply.usage
    return Attempt(1, "bad_reply" if error else "ok", usage, judge.cost(usage, batch=True), 0, error)


def advance(job: BatchJob, *, ctx: Context) -> bool:
    """One turn of the item: submit what is left to submit, look at the open batches, read the ended ones. True once
    every batch is read (the caller asks the rest interactively); False when the item must yield (stopped, or
    waiting: then ctx.come_back_in says when to look again). Raises FatalJudgeError (no batch can succeed)."""
    state: dict[str, Any] = {"batches": [], "after": -1, "submitted": False, "poll": 0} | dict(ctx.item.args)
    try:
        if not state["submitted"] and not _submit(job, state=state, ctx=ctx):
            return False
        waiting = _poll(job, state=state, ctx=ctx)
    except TransientError as exc:
        # The provider's batch API is down for now: look again later, as for a batch still running.
        logger.warning("batch API of %s: %s; trying again later", job.judge.model.name, exc)
        waiting = True
    if ctx.stop_reason:
        return False
    if waiting:
        delay = state["poll"] or settings.JUDGE_BATCH_POLL_SECONDS
        state["poll"] = min(delay * 2, settings.JUDGE_BATCH_POLL_MAX_SECONDS)
        ctx.save_args(state)
        ctx.come_back_in = delay
        return False
    return True


def _request_bytes(request: StructuredRequest) -> int:
    # A batch line carries the whole request: the prompt, the schema and about half a kilobyte of parameters.
    return len(request.system.encode()) + len(request.user.encode()) + len(json.dumps(request.schema)) + 512


def _submit(job: BatchJob, *, state: dict[str, Any], ctx: Context) -> bool:
    """Submit the unsent requests in batches within the providers' limits. False when stopped part-way (what was
    submitted is on the item; the next turn goes on after it)."""
    api = batches_for(job.judge.model)
    chunk: list[Unsent] = []
    size = 0
    for unsent in job.unsent(state["after"]):
        ctx.tick()  # the heartbeat only: a chunk being built is submitted before any stop is obeyed
        if ctx.lost:
            return False
        grown = size + _request_bytes(unsent[1])
        if chunk and (len(chunk) >= settings.JUDGE_BATCH_MAX_REQUESTS or grown > settings.JUDGE_BATCH_MAX_BYTES):
            _submit_one(job, api=api, state=state, ctx=ctx, chunk=chunk)
            chunk, grown = [], _request_bytes(unsent[1])
            if not ctx.tick():
                return False
        chunk.append(unsent)
        size = grown
    if chunk:
        _submit_one(job, api=api, state=state, ctx=ctx, chunk=chunk)
    state["submitted"] = True
    return ctx.save_args(state)


def _submit_one(job: BatchJob, *, api: Batches, state: dict[str, Any], ctx: Context, chunk: list[Unsent]) -> None:
    judge = job.judge
    ceiling = sum((judge.ceiling(request) for _, request, _ in chunk), Decimal(0)) * judge.model.batch_discount
    row = job.ledger.open(model=judge.model, attempt=1, ceiling_usd=ceiling)
    try:
        batch_id = _beating(ctx, lambda: api.submit((custom_id, request) for custom_id, request, _ in chunk))
    except JudgeError as exc:
        # Refused outright: nothing was accepted, nothing is billed.
        JudgeCall.objects.filter(id=row).update(outcome=exc.outcome, error=str(exc)[:2000], cost_usd=0)
        raise
    # Stored before anything else: from here on, a resumed item polls this batch and never submits it again.
    state["batches"].append(
        {"id": batch_id, "requests": len(chunk), "row": row, "status": "submitted", "ended": False, "read": 0}
    )
    state["after"] = chunk[-1][2]
    ctx.progressed()  # a kill from here on interrupts work that progressed: not a failure to count
    if not ctx.save_args(state):
        logger.error("batch %s was submitted by a claim that is no longer the item's", batch_id)


def _beating(ctx: Context, call: Callable[[], T]) -> T:
    """`call()` (one provider request: an upload of thousands of requests can outlast the lease) in a pool thread
    while this thread keeps the item's lease alive; its exception, if any, is raised here."""
    answers: list[T] = []

    def keep(_call: Callable[[], T], answer: T) -> bool:
        answers.append(answer)
        return True

    ask_each([call], lambda c: c(), keep, workers=1, tick=ctx.tick)
    return answers[0]


def _poll(job: BatchJob, *, state: dict[str, Any], ctx: Context) -> bool:
    """Look at every open batch and read those that ended. True while some batch is still running."""
    waiting = False
    api = batches_for(job.judge.model)
    for batch in state["batches"]:
        if batch["ended"]:
            continue
        provider_state = _beating(ctx, partial(api.state, batch["id"]))
        batch["status"], batch["counts"] = provider_state.status, provider_state.counts
        if not provider_state.ended:
            waiting = True
            continue
        if not _read(job, api=api, batch=batch, state=state, ctx=ctx):
            return True  # stopped part-way: the next turn reads on
        state["poll"] = 0  # something ended: the next batch is looked at soon
    ctx.save_args(state)
    return waiting


def _read(job: BatchJob, *, api: Batches, batch: dict[str, Any], state: dict[str, Any], ctx: Context) -> bool:
    """Read an ended batch's results from where the last reading stopped, a page a transaction. False if stopped."""
    results = _from(api.results(batch["id"], job.like), batch["read"])
    while True:
        page = [r for _, r in zip(range(PAGE), results, strict=False)]
        last = len(page) < PAGE
        with transaction.atomic():
            job.write(page)
            cost = sum((job.judge.cost(r.reply.usage, batch=True) for r in page if r.reply), Decimal(0))
            batch["cost"] = str(Decimal(batch.get("cost", "0")) + cost)
            batch["read"] += len(page)
            if last:
                batch["ended"] = True
                JudgeCall.objects.filter(id=batch["row"], outcome=JudgeCall.Outcome.SENT).delete()  # settled
            if not ctx.save_args(state):
                transaction.set_rollback(True)
                return False
        ctx.progressed()
        if last:
            return True
        if not ctx.tick():
            return False


def _from(results: Iterator[BatchResult], skip: int) -> Iterator[BatchResult]:
    for n, result in enumerate(results):
        if n >= skip:
            yield result


def cancel_open(item: WorkItem, model: Callable[[], JudgeModel], *, settle_kind: str) -> None:
    """The batch item was canceled (its work canceled or failed): cancel its open batches at `model()`'s provider,
    then leave a `settle_kind` item to read them once they end (settle): requests that succeeded before the cancel
    were billed, and a cancel that failed is sent again from there."""
    open_batches = [b for b in item.args.get("batches", []) if not b.get("ended")]
    if not open_batches:
        return
    try:
        api = batches_for(model())
    except ValueError:
        logger.exception("could not cancel the batches of %s %s", item.kind, item.subject_id)
        return
    for batch in open_batches:
        try:
            api.cancel(batch["id"])
            batch["cancel_sent"] = True
        except JudgeError:
            logger.warning("could not cancel batch %s of %s %s: sent again", batch["id"], item.kind, item.subject_id)
    work_create(
        company_id=item.company_id,
        kind=settle_kind,
        subject_id=item.subject_id,
        key=f"{settle_kind}:{item.subject_id}",
        args=item.args | {"model": model().name},
    )


def settle(job: BatchJob, *, ctx: Context) -> bool:
    """One turn of a settle item (cancel_open): send the cancels that failed again, then read each batch once it
    ends, as advance() does (the caller's write records what was billed; the work having ended, nothing else), its
    "sent" row settled. True once every batch is read; False: yield (come_back_in set when waiting)."""
    state = dict(ctx.item.args) | {"submitted": True}  # nothing more is submitted for work that ended
    api = batches_for(job.judge.model)
    for batch in state.get("batches", []):
        if batch.get("ended") or batch.get("cancel_sent"):
            continue
        try:
            _beating(ctx, partial(api.cancel, batch["id"]))
            batch["cancel_sent"] = True
        except TransientError as exc:
            logger.warning("cancel of batch %s: %s; sent again later", batch["id"], exc)
            ctx.come_back_in = settings.JUDGE_BATCH_POLL_SECONDS
            ctx.save_args(state)
            return False
        except JudgeError:
            # Refused for good (it ended meanwhile, or the credentials are gone): it ends by itself, read it then.
            logger.exception("could not cancel batch %s", batch["id"])
            batch["cancel_sent"] = True
    ctx.save_args(state)
    return advance(job, ctx=ctx)


def batch_cost(item_args: dict[str, Any]) -> tuple[list[dict[str, Any]], Decimal]:
    """A batch item's batches and what the results read so far cost (at the batch price)."""
    batches = item_args.get("batches", [])
    return batches, sum((Decimal(b.get("cost", "0")) for b in batches), Decimal(0))


def expected_cost(model: JudgeModel, *, n: int, system: str, chars: int, output_tokens: int) -> tuple[Decimal, Decimal]:
    """What `n` requests sharing the prompt `system` (cached after the first call) and `chars` characters of their
    own in all are expected to cost, interactively and in batch mode: four characters a token, `output_tokens` of
    reply in all."""
    system_tokens = len(system) // 4
    cost = model.prices.cost(
        input_tokens=chars // 4 + system_tokens,
        output_tokens=output_tokens,
        cache_read=system_tokens * max(0, n - 1),
        cache_write=0,
    )
    return cost, cost * model.batch_discount


# The pages' mode choice -> the service's `batch` (None: by size, the kind's threshold setting).
MODES: dict[str, bool | None] = {"auto": None, "batch": True, "interactive": False}


def mode_choices(threshold: int, prices: tuple[Decimal, Decimal] | None, per: str = "") -> list[tuple[str, str]]:
    """The pages' batch mode choices, labelled with the expected prices (interactive, batch) `per` what."""
    interactive, batch = (f" (about ${p:.2f}{per})" for p in prices) if prices else ("", "")
    return [
        ("auto", f"Automatic (batch from {threshold:,} samples)" if threshold else "Automatic (interactive)"),
        ("batch", f"Batch: half price, within 24 h{batch}"),
        ("interactive", f"Interactive: now{interactive}"),
    ]
