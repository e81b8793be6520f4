"""Batch mode (issue #26): an evaluation judged through the provider's batch API, at the batch price.

One `evaluation.batch` work item does it all, in three phases, its state kept in the item's args so that a worker
killed at any moment resumes where it was:

1. submit: the samples without a result (cache hits are written, never sent) go out in batches of at most
   JUDGE_BATCH_MAX_REQUESTS requests and JUDGE_BATCH_MAX_BYTES bytes. Each batch's ledger row is written first
   (outcome "sent", at the batch's ceiling price: what the monthly budget counts until it settles), and its id is
   stored on the item the moment the provider answers, before anything else: a resumed item polls it, never
   submits it again.
2. poll: each open batch is looked at after JUDGE_BATCH_POLL_SECONDS, then twice as long each time, up to
   JUDGE_BATCH_POLL_MAX_SECONDS; meanwhile the item waits in the queue, and no worker holds it. An ended batch's
   results are read a page at a time, each page's classifications, ledger rows (at the batch price) and how far the
   reading got written in one transaction. Once read, the batch's "sent" row is settled (deleted: its requests
   have rows of their own).
3. retry: what no batch answered (errored, expired, canceled, a reply unfit for the schema) is asked through the
   interactive path, with its bounded attempts and per-sample errors; then the evaluation is finalized as usual.

Canceling the evaluation cancels its open batches at the provider (batch_cancel).
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Length

from llm.base import FatalJudgeError, JudgeError, StructuredRequest, TransientError
from llm.batches import Batches, BatchResult, batches_for
from llm.catalog import get_judge_model
from llm.engine import Attempt, Outcome, ask_each
from llm.ledger import CallLedger
from llm.models import JudgeCall
from runs.models import Run, Sample
from runs.specfile import parse_spec
from work.models import WorkItem
from work.registry import Result

from . import services
from .classify import content_hash, system_prompt
from .models import Evaluation

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from work.runner import Context

logger = logging.getLogger(__name__)
KIND = "evaluation.batch"
# Results written per transaction: the heartbeat waits for the commit (an UPDATE inside an open transaction keeps
# no lease alive), so a page must take well under WORK_LEASE_SECONDS to write, on a loaded machine too.
PAGE = 50
T = TypeVar("T")


def _custom_id(sample_id: int) -> str:
    return f"s{sample_id}"


def _request_bytes(request: StructuredRequest) -> int:
    # A batch line carries the whole request: the prompt, the schema and about half a kilobyte of parameters.
    return len(request.system.encode()) + len(request.user.encode()) + len(json.dumps(request.schema)) + 512


def evaluation_batch(*, item: WorkItem, ctx: Context) -> Result:
    """Run one turn of the batch item: submit what is left to submit, look at the open batches, read the ended
    ones, and once every batch is read, ask the rest interactively (that part ends by finalizing)."""
    evaluation = services._started(item.subject_id)
    if evaluation is None:
        return Result.DONE
    job = services._job_or_fail(evaluation)
    if job is None:
        return Result.DONE
    if not job.model.batch:
        # The judge resolved to one without a batch API (no credentials: the embedded judge): interactive.
        return services.evaluation_classify(evaluation_id=evaluation.id, part=0, parts=1, ctx=ctx)
    api = batches_for(job.model)
    state: dict[str, Any] = {"batches": [], "after": -1, "submitted": False, "poll": 0} | dict(item.args)
    try:
        if not state["submitted"] and not _submit(job=job, api=api, state=state, ctx=ctx):
            return Result.YIELD
        waiting = _poll(job=job, api=api, state=state, ctx=ctx)
    except FatalJudgeError as exc:
        services.evaluation_fail(evaluation_id=evaluation.id, message=f"The judge failed: {exc}")
        return Result.DONE
    except TransientError as exc:
        # The provider's batch API is down for now: look again later, as for a batch still running.
        logger.warning("batch API of %s: %s; trying again later", job.model.name, exc)
        waiting = True
    if ctx.stop_reason:
        return Result.YIELD
    if waiting:
        delay = state["poll"] or settings.JUDGE_BATCH_POLL_SECONDS
        state["poll"] = min(delay * 2, settings.JUDGE_BATCH_POLL_MAX_SECONDS)
        ctx.save_args(state)
        ctx.come_back_in = delay
        return Result.YIELD
    # 3. Every batch read: what none answered goes through the interactive path (which finalizes at the end).
    return services.evaluation_classify(evaluation_id=evaluation.id, part=0, parts=1, ctx=ctx)


def _submit(*, job: services.ClassificationJob, api: Batches, state: dict[str, Any], ctx: Context) -> bool:
    """Submit the unasked samples in batches within the providers' limits. False when stopped part-way (what was
    submitted is on the item; the next turn goes on after it)."""
    evaluation = job.evaluation
    samples = services._answered_from_cache(
        job=job, samples=services._unclassified(evaluation, part=0, parts=1, after=state["after"])
    )
    chunk: list[tuple[Sample, StructuredRequest]] = []
    size = 0
    for sample, _digest in samples:
        ctx.tick()  # the heartbeat only: a chunk being built is submitted before any stop is obeyed
        if ctx.lost:
            return False
        request = job.request_for(sample.content)
        grown = size + _request_bytes(request)
        if chunk and (len(chunk) >= settings.JUDGE_BATCH_MAX_REQUESTS or grown > settings.JUDGE_BATCH_MAX_BYTES):
            _submit_one(job=job, api=api, state=state, ctx=ctx, chunk=chunk)
            chunk, grown = [], _request_bytes(request)
            if not ctx.tick():
                return False
        chunk.append((sample, request))
        size = grown
    if chunk:
        _submit_one(job=job, api=api, state=state, ctx=ctx, chunk=chunk)
    state["submitted"] = True
    return ctx.save_args(state)


def _submit_one(
    *,
    job: services.ClassificationJob,
    api: Batches,
    state: dict[str, Any],
    ctx: Context,
    chunk: list[tuple[Sample, StructuredRequest]],
) -> None:
    judge = job.resolved.judge
    ceiling = sum((judge.ceiling(request) for _, request in chunk), Decimal(0)) * job.model.batch_discount
    ledger = CallLedger(company_id=job.evaluation.company_id, purpose="batch", subject=job.evaluation)
    row = ledger.open(model=job.model, attempt=1, ceiling_usd=ceiling)
    try:
        batch_id = _beating(ctx, lambda: api.submit((_custom_id(sample.id), request) for sample, request in chunk))
    except JudgeError as exc:
        # Refused outright: nothing was accepted, nothing is billed.
        JudgeCall.objects.filter(id=row).update(outcome=exc.outcome, error=str(exc)[:2000], cost_usd=0)
        raise
    # Stored before anything else: from here on, a resumed item polls this batch and never submits it again.
    state["batches"].append(
        {"id": batch_id, "requests": len(chunk), "row": row, "status": "submitted", "ended": False, "read": 0}
    )
    state["after"] = chunk[-1][0].position
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


def _poll(*, job: services.ClassificationJob, api: Batches, state: dict[str, Any], ctx: Context) -> bool:
    """Look at every open batch and read those that ended. True while some batch is still running."""
    waiting = False
    for batch in state["batches"]:
        if batch["ended"]:
            continue
        provider_state = _beating(ctx, partial(api.state, batch["id"]))
        batch["status"], batch["counts"] = provider_state.status, provider_state.counts
        if not provider_state.ended:
            waiting = True
            continue
        if not _read(job=job, api=api, batch=batch, state=state, ctx=ctx):
            return True  # stopped part-way: the next turn reads on
        state["poll"] = 0  # something ended: the next batch is looked at soon
    ctx.save_args(state)
    return waiting


def _read(
    *, job: services.ClassificationJob, api: Batches, batch: dict[str, Any], state: dict[str, Any], ctx: Context
) -> bool:
    """Read an ended batch's results from where the last reading stopped, a page a transaction. False if stopped."""
    results = _from(api.results(batch["id"], job.request_for("")), batch["read"])
    while True:
        page = [r for _, r in zip(range(PAGE), results, strict=False)]
        last = len(page) < PAGE
        with transaction.atomic():
            _write_page(job=job, batch=batch, results=page)
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


def _write_page(*, job: services.ClassificationJob, batch: dict[str, Any], results: list[BatchResult]) -> None:
    """Each succeeded result's classification, ledger row (batch price) and cache entry, as an interactive answer's
    are written; a reply unfit for the schema is billed and asked again. Requests that errored, expired or were
    canceled are not billed and get no row: they are asked again interactively."""
    ids = {int(r.custom_id[1:]): r for r in results if r.reply is not None and r.custom_id[1:].isdigit()}
    samples = Sample.objects.filter(run_id=job.evaluation.run_id, id__in=ids).only("id", "content")
    judge = job.resolved.judge
    cost = Decimal(batch.get("cost", "0"))
    for sample in samples:
        result = ids[sample.id]
        assert result.reply is not None  # noqa: S101 - filtered above
        usage = result.reply.usage
        outcome = Outcome()
        error = result.error
        if not error:
            try:
                outcome.answer = job.validate(result.reply.data)
            except JudgeError as exc:
                error = str(exc)
        # A bad reply is asked again (deferred), as the engine asks one again once.
        outcome.error, outcome.deferred = error, bool(error)
        status = "bad_reply" if error else "ok"
        outcome.attempts.append(Attempt(1, status, usage, judge.cost(usage, batch=True), 0, error))
        cost += judge.cost(usage, batch=True)
        services._save_classification(job=job, sample=sample, outcome=outcome, digest=content_hash(sample.content))
    batch["cost"] = str(cost)


def batch_cancel(item: WorkItem) -> None:
    """The batch item was canceled (the evaluation canceled or failed): cancel its open batches at the provider.
    One that cannot be reached is logged: its batch ends by itself within 24 hours, and is never read."""
    open_batches = [b["id"] for b in item.args.get("batches", []) if not b.get("ended")]
    evaluation = Evaluation.objects.filter(id=item.subject_id).only("model_used", "requested_model").first()
    if not open_batches or evaluation is None:
        return
    try:
        api = batches_for(get_judge_model(evaluation.model_used or evaluation.requested_model))
        for batch_id in open_batches:
            api.cancel(batch_id)
    except (JudgeError, ValueError):
        logger.exception("could not cancel the batches of evaluation %s", item.subject_id)


def price_estimate(run: Run) -> tuple[Decimal, Decimal] | None:
    """What judging `run` is expected to cost with the default judge, interactively and in batch mode: each
    sample's prompt (the spec's prompt cached after the first call) at four characters a token, and a reply of
    about 40 tokens a property. None when the default judge has no prices (the embedded judge). Two queries."""
    model = get_judge_model(settings.JUDGE_DEFAULT_MODEL)
    if not (model.prices.input or model.prices.output):
        return None
    parsed = parse_spec(run.spec_version.content_yaml)
    properties = run.spec_version.parsed_properties
    system = system_prompt(description=parsed.description, requirements=parsed.requirements, properties=properties)
    totals = run.samples.aggregate(n=Count("id"), chars=Sum(Length("content")))
    n, chars = totals["n"] or 0, totals["chars"] or 0
    system_tokens = len(system) // 4
    cost = model.prices.cost(
        input_tokens=chars // 4 + system_tokens,
        output_tokens=40 * len(properties) * n,
        cache_read=system_tokens * max(0, n - 1),
        cache_write=0,
    )
    return cost, cost * model.batch_discount


def batch_summary(evaluation: Evaluation) -> dict[str, Any] | None:
    """What the page and the trace show of a batch evaluation: its batches (provider status, requests, counts),
    the requests read, what they cost and what the same calls would have cost interactively. One query."""
    if not evaluation.batch:
        return None
    item = WorkItem.objects.filter(kind=KIND, subject_id=evaluation.id).only("args").first()
    batches = item.args.get("batches", []) if item else []
    cost = sum((Decimal(b.get("cost", "0")) for b in batches), Decimal(0))
    model = get_judge_model(evaluation.model_used or evaluation.requested_model)
    interactive = cost / model.batch_discount if model.batch_discount else cost
    return {
        "batches": [
            {"id": b["id"], "status": b["status"], "requests": b["requests"], "read": b["read"]} for b in batches
        ],
        "submitted": sum(b["requests"] for b in batches),
        "read": sum(b["read"] for b in batches),
        "cost_usd": float(cost),
        "saved_usd": float(interactive - cost),
    }
