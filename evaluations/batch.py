"""Batch mode (issue #26): an evaluation judged through the provider's batch API, at the batch price.

One `evaluation.batch` work item does it all (llm/batchwork.py: submit, poll, read, its state on the item so that
a killed worker resumes the same batches); this module says what it asks (the samples without a result: cache
hits are written, never sent) and how a result is written (a classification, with its ledger row and cache entry,
as an interactive answer's). Once every batch is read, what none answered goes through the interactive path,
which finalizes the evaluation. Canceling the evaluation cancels its open batches at the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import Length

from llm import batchwork
from llm.base import FatalJudgeError, JudgeError
from llm.batches import BatchResult
from llm.catalog import get_judge_model
from llm.engine import Outcome
from llm.ledger import CallLedger
from runs.models import Run, Sample
from runs.specfile import parse_spec
from work.models import WorkItem
from work.registry import Result

from . import services
from .classify import content_hash, system_prompt
from .models import Evaluation

if TYPE_CHECKING:
    from work.runner import Context

KIND = "evaluation.batch"
SETTLE = "evaluation.settle"  # what reads a canceled evaluation's batches once they end
logger = logging.getLogger(__name__)


def _custom_id(sample_id: int) -> str:
    return f"s{sample_id}"


def evaluation_batch(*, item: WorkItem, ctx: Context) -> Result:
    """Run one turn of the batch item (batchwork.advance); once every batch is read, ask the rest interactively
    (that part ends by finalizing)."""
    evaluation = services._started(item.subject_id)
    if evaluation is None:
        return Result.DONE
    job = services._job_or_fail(evaluation)
    if job is None:
        return Result.DONE
    if not job.model.batch:
        # The judge resolved to one without a batch API (no credentials: the embedded judge): interactive.
        return services.evaluation_classify(evaluation_id=evaluation.id, part=0, parts=1, ctx=ctx)
    try:
        if not batchwork.advance(_batch_job(job), ctx=ctx):
            return Result.YIELD
    except FatalJudgeError as exc:
        services.evaluation_fail(evaluation_id=evaluation.id, message=f"The judge failed: {exc}")
        return Result.DONE
    # Every batch read: what none answered goes through the interactive path (which finalizes at the end).
    return services.evaluation_classify(evaluation_id=evaluation.id, part=0, parts=1, ctx=ctx)


def _batch_job(job: services.ClassificationJob) -> batchwork.BatchJob:
    return batchwork.BatchJob(
        judge=job.resolved.judge,
        ledger=CallLedger(company_id=job.evaluation.company_id, purpose="batch", subject=job.evaluation),
        like=job.request_for(""),
        write=partial(_write_page, job),
        unsent=partial(_unsent, job),
    )


def _unsent(job: services.ClassificationJob, after: int) -> Iterator[batchwork.Unsent]:
    """The samples after position `after` without a result; cache hits are written here, never sent."""
    samples = services._unclassified(job.evaluation, part=0, parts=1, after=after)
    for sample, _digest in services._answered_from_cache(job=job, samples=samples):
        yield _custom_id(sample.id), job.request_for(sample.content), sample.position


def _write_page(job: services.ClassificationJob, results: list[BatchResult]) -> None:
    """Each succeeded result's classification, ledger row (batch price) and cache entry, as an interactive answer's
    are written; a reply unfit for the schema is billed and asked again. Requests that errored, expired or were
    canceled are not billed and get no row: they are asked again interactively."""
    ids = {int(r.custom_id[1:]): r for r in results if r.reply is not None and r.custom_id[1:].isdigit()}
    samples = Sample.objects.filter(run_id=job.evaluation.run_id, id__in=ids).only("id", "content")
    for sample in samples:
        result = ids[sample.id]
        assert result.reply is not None  # noqa: S101 - filtered above
        outcome = Outcome()
        error = result.error
        if not error:
            try:
                outcome.answer = job.validate(result.reply.data)
            except JudgeError as exc:
                error = str(exc)
        # A bad reply is asked again (deferred), as the engine asks one again once.
        outcome.error, outcome.deferred = error, bool(error)
        outcome.attempts.append(batchwork.billed(job.resolved.judge, result, error))
        services._save_classification(job=job, sample=sample, outcome=outcome, digest=content_hash(sample.content))


def batch_cancel(item: WorkItem) -> None:
    """The batch item was canceled (the evaluation canceled, failed, or deleted with its run): cancel its open
    batches at the provider; an `evaluation.settle` item reads them once they end (batch_settle)."""
    model = item.args.get("model")
    if model is None:  # an item from before the model went with it: the evaluation's, unless it is gone
        evaluation = Evaluation.objects.filter(id=item.subject_id).only("model_used", "requested_model").first()
        if evaluation is None:
            return
        model = evaluation.model_used or evaluation.requested_model
    batchwork.cancel_open(item, lambda: get_judge_model(model), settle_kind=SETTLE)


def batch_settle(*, item: WorkItem, ctx: Context) -> Result:
    """One turn of the settle item: the canceled evaluation's batches read as they end. Requests that succeeded
    before the cancel were billed: their ledger rows (and cache entries) are written, never a classification (an
    ended evaluation never changes); each batch's "sent" row is settled."""
    evaluation = Evaluation.objects.select_related("run__spec_version", "company").filter(id=item.subject_id).first()
    if evaluation is None:
        return Result.DONE  # deleted, with its ledger rows
    try:
        job = services.ClassificationJob.for_evaluation(evaluation)
        return Result.DONE if batchwork.settle(_batch_job(job), ctx=ctx) else Result.YIELD
    except (FatalJudgeError, ValueError):
        logger.exception("the batches of evaluation %s cannot be read", evaluation.id)
        return Result.DONE


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
    return batchwork.expected_cost(model, n=n, system=system, chars=chars, output_tokens=40 * len(properties) * n)


def batch_summary(evaluation: Evaluation) -> dict[str, Any] | None:
    """What the page and the trace show of a batch evaluation: its batches (provider status, requests, counts),
    the requests read, what they cost and what the same calls would have cost interactively. One query."""
    if not evaluation.batch:
        return None
    item = WorkItem.objects.filter(kind=KIND, subject_id=evaluation.id).only("args").first()
    batches, cost = batchwork.batch_cost(item.args if item else {})
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
