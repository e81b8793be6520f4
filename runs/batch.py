"""Batch mode for run generation (issue #26): a run's samples written through the provider's batch API, at the batch
price.

One `run.batch` work item does it all (llm/batchwork.py: submit, poll, read, its state on the item so that a killed
worker resumes the same batches); this module says what it asks (each unwritten position's request, for the values
the run's plan assigns it, exactly as the interactive path asks) and how a result is written (the position's sample
and its ledger row, through generation._save_written: each position written once). Once every batch is read, what
none answered (errored, expired, canceled, a reply unfit for use) goes through the interactive path
(run_generation_write), with its bounded attempts and per-sample failures, which ends the run. Canceling the run
cancels its open batches at the provider.

Not with the conformance filter: it judges each sample and writes it again at once, which a batch cannot
(run_generate refuses the pair; by size, such a run stays interactive).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Avg

from llm import batchwork
from llm.base import FatalJudgeError, JudgeError
from llm.batches import BatchResult
from llm.catalog import UnknownModel, get_judge_model
from llm.engine import Outcome
from llm.judges import NoWriter
from llm.ledger import CallLedger
from work.models import WorkItem
from work.registry import Result

from . import generation, writing
from .models import Run, Sample, Spec
from .specfile import parse_spec

if TYPE_CHECKING:
    from work.runner import Context

KIND = "run.batch"
SETTLE = "run.settle"  # what reads an ended run's batches once they end
logger = logging.getLogger(__name__)
# What a written sample is taken to be when the spec has none to go by (the form's price estimate): 500 tokens.
ESTIMATED_SAMPLE_CHARS = 2_000


def run_generation_batch(*, item: WorkItem, ctx: Context) -> Result:
    """Run one turn of the batch item (batchwork.advance); once every batch is read, write the rest interactively
    (that part ends the run)."""
    run = generation._processing(item.subject_id)
    if run is None:
        return Result.DONE
    try:
        job = generation.WritingJob.for_run(run)
    except (NoWriter, FatalJudgeError) as exc:
        generation.run_generation_fail(run_id=run.id, message=str(exc))
        return Result.DONE
    if job.writer.model.batch:
        try:
            read = batchwork.advance(_batch_job(job), ctx=ctx)
        except FatalJudgeError as exc:
            generation.run_generation_fail(run_id=run.id, message=f"The writer failed: {exc}")
            return Result.DONE
        generation.run_counters_refresh(run_id=run.id)
        if not read:
            return Result.YIELD
    # Every batch read (or the model has no batch API any more): the rest is written interactively.
    return generation.run_generation_write(run_id=run.id, part=0, parts=1, ctx=ctx)


def _batch_job(job: generation.WritingJob) -> batchwork.BatchJob:
    return batchwork.BatchJob(
        judge=job.writer,
        ledger=CallLedger(company_id=job.run.company_id, purpose="batch", subject=job.run),
        like=writing.write_request(system=job.system, assigned={}),
        write=partial(_write_page, job),
        unsent=partial(_unsent, job),
    )


def _unsent(job: generation.WritingJob, after: int) -> Iterator[batchwork.Unsent]:
    """The unwritten positions after `after`, each with its request for its planned values."""
    for position in generation._unwritten(job.run, part=0, parts=1):
        if position > after:
            request = writing.write_request(system=job.system, assigned=job.plan[position])
            yield f"p{position}", request, position  # custom_id: read back by _position


def _position(job: generation.WritingJob, custom_id: str) -> int | None:
    number = custom_id[1:]
    position = int(number) if custom_id.startswith("p") and number.isdigit() else -1
    return position if 0 <= position < job.run.samples_requested else None


def _write_page(job: generation.WritingJob, results: list[BatchResult]) -> None:
    """Each succeeded result's sample and ledger row (batch price), as an interactive answer's are written; a reply
    unfit for use is billed and written again interactively. Requests that errored, expired or were canceled are not
    billed and get no row: they are written interactively."""
    for result in results:
        position = _position(job, result.custom_id)
        if position is None or result.reply is None:
            continue
        error, answer = result.error, None
        if not error:
            try:
                answer = writing.validate_answer(result.reply.data)
            except JudgeError as exc:
                error = str(exc)
        outcome = Outcome(answer=answer, error=error, deferred=bool(error))
        outcome.attempts.append(batchwork.billed(job.writer, result, error))
        written = generation.Written(deferred=bool(error), calls=[(job.writer.model, "generate", outcome)])
        if answer is not None:
            written.content, written.title = answer["content"], answer["title"]
        generation._save_written(job=job, position=position, written=written)


def batch_cancel(item: WorkItem) -> None:
    """The batch item was canceled (the run canceled, failed or deleted): cancel its open batches at the provider
    (the model's name is on the item: a deleted run's parameters are gone); a `run.settle` item reads them once
    they end (batch_settle)."""
    batchwork.cancel_open(item, lambda: get_judge_model(item.args["model"]), settle_kind=SETTLE)


def batch_settle(*, item: WorkItem, ctx: Context) -> Result:
    """One turn of the settle item: the ended run's batches read as they end. Requests that succeeded before the
    cancel were billed: their ledger rows are written (total_cost counts them), never a sample (an ended run never
    changes); each batch's "sent" row is settled."""
    run = Run.objects.select_related("spec_version").filter(id=item.subject_id).first()
    if run is None:
        return Result.DONE  # deleted, with its ledger rows
    try:
        job = generation.WritingJob.for_run(run)
        settled = batchwork.settle(_batch_job(job), ctx=ctx)
    except (NoWriter, FatalJudgeError):
        logger.exception("the batches of run %s cannot be read", run.id)
        return Result.DONE
    generation.run_counters_refresh(run_id=run.id)  # total_cost: the ledger's sum, now settled
    return Result.DONE if settled else Result.YIELD


def price_estimate(spec: Spec, model_name: str | None = None, n: int = 1_000) -> tuple[Decimal, Decimal] | None:
    """What writing `n` samples of `spec`'s latest version with `model_name` (default: GENERATION_DEFAULT_MODEL) is
    expected to cost, interactively and in batch mode: the spec's prompt cached after the first call, each sample's
    values, and a reply the size of the spec's samples so far (else ESTIMATED_SAMPLE_CHARS). None without prices or
    a version. Two queries."""
    version = spec.latest_version
    try:
        model = get_judge_model(model_name or settings.GENERATION_DEFAULT_MODEL)
    except UnknownModel:
        return None
    if version is None or not (model.prices.input or model.prices.output):
        return None
    system = writing.system_prompt(parse_spec(version.content_yaml))
    sample_bytes = Sample.objects.filter(run__spec=spec).aggregate(size=Avg("size_bytes"))["size"]
    reply_tokens = int(sample_bytes or ESTIMATED_SAMPLE_CHARS) // 4 + 20  # the title and the JSON around it
    user = writing.write_request(system="", assigned={p.name: p.values[0] for p in version.parsed_properties}).user
    return batchwork.expected_cost(model, n=n, system=system, chars=len(user) * n, output_tokens=reply_tokens * n)
