"""Run generation (Dataframer's runs.create): the PENDING run and its work items, the writing of each part's samples
through one window of LLM calls, progress counters, cancel and delete (which end the work items).

Just over 400 lines: the steps share the claim and the counters (cancel and delete included, since they end the
same work items), read together.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from companies.models import Company
from companies.quotas import quota_check, storage_check
from llm.base import FatalJudgeError
from llm.batchwork import wants_batch
from llm.catalog import JudgeModel
from llm.engine import Judge, Outcome, ask_each
from llm.judges import NoWriter, resolve_writer, with_budget
from llm.ledger import CallLedger, record_calls
from llm.models import JudgeCall
from work.dispatch import work_cancel, work_create, work_create_parts
from work.registry import Result

from . import assignment, writing
from .assignment import Mode
from .extensions import SampleJudge, extensions
from .models import GenerationFailure, Run, Sample, Spec
from .specfile import parse_spec

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from work.runner import Context

from .services import RunError, runs_work_cancel

# --- Run generation (runs.create): DESIGN.md §4 and §6 ---
#
# 1. `run_generate` checks everything it can at once (spec, version, model, an LLM that can write), stores the
#    parameters with the assignment seed, and creates the PENDING run with its `run.start` item;
# 2. `run.start` claims it (PROCESSING) and creates the `run.write` items, one per part of the positions;
# 3. `run.write` computes the run's plan from its seed (the same plan every time), and writes the part's positions
#    that have neither a sample nor a recorded failure through one window of concurrent LLM calls, each sample
#    inserted as it arrives; the last part to leave nothing unwritten ends the run SUCCEEDED.
# Every step is safe to run again: claims are conditional UPDATEs, a position's identifier is fixed (a second
# write of it hits the unique constraint), items are created once per key.

# runs.create parameters we accept and store but do not act on: the run's single-call writer has no outline,
# revision, seed dataset, tools or Databricks connection. Echoed in runtime_params, listed under `ignored_params`.
IGNORED_PARAMS = (
    "databricks_api_base", "databricks_client_id", "databricks_client_secret", "enable_revisions",
    "generation_thinking_budget", "max_examples_in_prompt", "max_revision_cycles", "outline_model",
    "outline_thinking_budget", "revision_model", "revision_thinking_budget", "revision_types",
    "seed_shuffling_level", "skip_outline", "tools", "unified_multifield",
)  # fmt: skip
SECRET_PARAMS = ("databricks_client_secret",)  # accepted, never stored
PAGE = 500  # positions read per query while finding what is left to write
COUNTERS_EVERY_SECONDS = 1.0  # how often a writing item recounts the run's progress
FAILURES_SHOWN = 100  # failed positions (with their reasons) listed in a finished run's runtime_params


def run_generate(
    *,
    company: Company,
    created_by: User | None,
    spec: Spec,
    number_of_samples: int,
    spec_version: int | None = None,
    generation_model: str | None = None,
    assignment_mode: Mode = "quota",
    filtering_types: list[str] | None = None,
    batch: bool | None = None,
    **params: Any,
) -> Run:
    """Create a PENDING generated run and its start item; raises RunError (a 400) when it cannot be written.
    `batch`: through the provider's batch API (runs/batch.py); None: by size (GENERATION_BATCH_MIN_SAMPLES)."""
    if spec.company_id != company.id:
        raise RunError("unknown spec")
    if spec.status != Spec.Status.SUCCEEDED:
        raise RunError(f"Only SUCCEEDED specs can generate runs; this spec is {spec.status}.")
    versions = spec.versions.all()
    version = versions.filter(number=spec_version).first() if spec_version else versions.order_by("-number").first()
    if version is None:
        raise RunError(f"spec '{spec.name}' has no version {spec_version}")
    model = generation_model or settings.GENERATION_DEFAULT_MODEL
    try:
        writer = resolve_writer(model)  # no LLM that can write: a 400 now, not a FAILED run later
    except NoWriter as exc:
        raise RunError(str(exc)) from exc
    filtered = "conformance" in (filtering_types or [])
    if batch and not writer.model.batch:
        raise RunError(f"{model} has no batch API: ask for it without batch mode.")
    if batch and filtered:
        # The filter judges each sample and has it written again at once: a batch cannot.
        raise RunError("Batch mode does not combine with the conformance filter: ask for one of them.")
    echoed = {key: value for key, value in params.items() if key not in SECRET_PARAMS}
    threshold = settings.GENERATION_BATCH_MIN_SAMPLES
    batched = not filtered and wants_batch(
        requested=batch, samples=number_of_samples, model=writer.model, threshold=threshold
    )
    runtime_params = {
        **echoed,
        "number_of_samples": number_of_samples,
        "generation_model": model,
        "filtering_types": list(filtering_types or []),
        "assignment_mode": assignment_mode,
        "assignment_seed": secrets.randbits(32),
        "ignored_params": sorted(
            [key for key in params if key in IGNORED_PARAMS]
            + [f"filtering_types:{kind}" for kind in filtering_types or [] if kind != "conformance"]
        ),
        "source": "generated",
        # Only on a batch run (runs/batch.py): an interactive run's runtime_params keep the keys they always had.
        **({"batch": True} if batched else {}),
    }
    with transaction.atomic():
        # The monthly LLM budget: once spent, no new generation either (raises QuotaExceeded, a 429).
        quota_check(company=company, evaluations=0, samples=0)
        # Its samples are counted as they are written (run_counters_refresh); once over the quota, none starts.
        storage_check(company=company, adding=0, what="a generated run")
        run = Run.objects.create(
            company=company,
            spec=spec,
            spec_version=version,
            status=Run.Status.PENDING,
            source=Run.Source.GENERATED,
            runtime_params=runtime_params,
            created_by=created_by,
        )
        work_create(company_id=company.id, kind="run.start", subject_id=run.id, key=f"run.start:{run.id}")
    return run


def run_cancel(*, run: Run) -> bool:
    """Cancel a PENDING or PROCESSING run and end its work items: a worker writing it sees its claim gone at its
    next tick (within WORK_HEARTBEAT_SECONDS) and starts no new call. Returns whether this call canceled it.
    The run's counters are exact as it ends, and final (see _run_lock_active)."""
    with transaction.atomic():
        if _run_lock_active(run.id):
            run_counters_refresh(run_id=run.id)
        canceled = run.cancel()
    if canceled:
        work_cancel(kind_prefix="run.", subject_id=run.id, reason="the run was canceled")
    return canceled


def run_delete(*, run: Run) -> None:
    """Delete a run with its samples and evaluations, ending their work items first: a worker writing one stops at
    its next tick instead of failing on rows that are gone, and their batches are canceled at the provider."""
    runs_work_cancel(run_ids=[run.id])
    run.delete()


def run_generation_fail(*, run_id: int, message: str) -> None:
    """End a generated run FAILED with `message` in runtime_params["error"] (unless it already ended), its counters
    exact as it ends, and final (see _run_lock_active)."""
    with transaction.atomic():
        if not _run_lock_active(run_id):
            return
        run_counters_refresh(run_id=run_id)
        run = Run.objects.get(id=run_id)
        Run.objects.filter(id=run_id).update(
            status=Run.Status.FAILED,
            completed_at=timezone.now(),
            runtime_params={**run.runtime_params, "error": message[:2000]},
        )
    work_cancel(kind_prefix="run.", subject_id=run_id, reason=message)


def _run_lock_active(run_id: int) -> bool:
    """Lock the run's row (in the caller's transaction) and say whether it is still PENDING or PROCESSING.

    A terminal run never changes again. Whatever ends a run takes this lock, recounts and changes the status in one
    transaction; whatever writes a sample takes it too and writes nothing to an ended run. So an answer that lands
    after a cancel is in the ledger (it was paid for: total_cost, the ledger's sum, counts it) but adds no sample
    and no count. (On SQLite the lock is the database's: write transactions are IMMEDIATE, one at a time.)"""
    return Run.objects.select_for_update().filter(id=run_id, status__in=Run.ACTIVE).exists()


def _processing(run_id: int) -> Run | None:
    """The run if it is PROCESSING (anything else: deleted, finished or canceled, so nothing to do)."""
    return Run.objects.select_related("spec_version").filter(id=run_id, status=Run.Status.PROCESSING).first()


def run_generation_start(*, run_id: int) -> None:
    """Claim a PENDING run and create its write items (once each, by key)."""
    Run.objects.filter(id=run_id, status=Run.Status.PENDING).update(
        status=Run.Status.PROCESSING, started_at=timezone.now()
    )
    run = _processing(run_id)
    if run is None:
        return
    try:
        resolve_writer(run.runtime_params["generation_model"])  # the credentials may be gone since the request
    except NoWriter as exc:
        run_generation_fail(run_id=run_id, message=str(exc))
        return
    if run.runtime_params.get("batch"):
        # One item submits, waits and reads (runs/batch.py), then writes the rest; the model's name is kept on it
        # for canceling its batches, even once the run is deleted.
        args = {"model": run.runtime_params["generation_model"]}
        work_create(
            company_id=run.company_id, kind="run.batch", subject_id=run_id, key=f"run.batch:{run_id}", args=args
        )
        return
    parts = max(1, min(settings.GENERATION_PARALLEL_ITEMS, run.samples_requested))
    work_create_parts(company_id=run.company_id, kind="run.write", subject_id=run_id, parts=parts)


@dataclass
class Written:
    """What writing one position came to: the sample, or why there is none; and every call it took, for the
    ledger (the writer's and the conformance judge's)."""

    content: str | None = None
    title: str = ""
    reason: str = ""
    fatal: bool = False
    deferred: bool = False  # not finished for lack of time or because the item is stopping: written next time
    calls: list[tuple[JudgeModel, str, Outcome]] = field(default_factory=list)


@dataclass
class WritingJob:
    """Everything needed to write the samples of one run, identical for every sample."""

    run: Run
    writer: Judge
    judge: SampleJudge | None  # the conformance filter's, when asked for

    @classmethod
    def for_run(cls, run: Run) -> WritingJob:
        """Raises NoWriter, or FatalJudgeError when the conformance filter's judge cannot be used."""
        params = run.runtime_params
        writer = with_budget(resolve_writer(params["generation_model"]), settings.GENERATION_MAX_TOKENS)
        wants_filter = "conformance" in (params.get("filtering_types") or [])
        judge = extensions.conformance_judge(run.spec_version) if wants_filter else None
        return cls(run, writer, judge)

    @cached_property
    def plan(self) -> list[dict[str, str]]:
        params = self.run.runtime_params
        return assignment.plan(
            self.run.spec_version.parsed_properties,
            self.run.samples_requested,
            seed=params["assignment_seed"],
            mode=params.get("assignment_mode", "quota"),
        )

    @cached_property
    def system(self) -> str:
        return writing.system_prompt(parse_spec(self.run.spec_version.content_yaml))

    def write(self, position: int, *, deadline: float, stop: threading.Event) -> Written:
        """Write one position (in a worker thread: no database here). With the conformance filter, a sample the
        judge reads as other values than its assigned ones is written again, up to GENERATION_FILTER_ATTEMPTS."""
        assigned = self.plan[position]
        written = Written()
        rounds = settings.GENERATION_FILTER_ATTEMPTS if self.judge is not None else 1
        feedback = ""
        for round_ in range(1, rounds + 1):
            if round_ > 1 and stop.is_set():
                written.deferred = True  # stopping: no new call; the position is written again next time
                return written
            request = writing.write_request(system=self.system, assigned=assigned, feedback=feedback)
            ledger = CallLedger(company_id=self.run.company_id, purpose="generate", subject=self.run, item_id=position)
            outcome = self.writer.ask(request, writing.validate_answer, deadline=deadline, ledger=ledger)
            written.calls.append((self.writer.model, "generate", outcome))
            if outcome.fatal or outcome.deferred or not outcome.ok:
                written.fatal, written.deferred, written.reason = outcome.fatal, outcome.deferred, outcome.error
                return written
            if self.judge is None:
                return replace(written, content=outcome.answer["content"], title=outcome.answer["title"])
            verdict = self.judge.classify_text(
                outcome.answer["content"], deadline=deadline, ledger=replace(ledger, purpose="conformance")
            )
            written.calls.append((self.judge.model, "conformance", verdict))
            if verdict.deferred:
                written.deferred = True
                return written
            misses = {
                name: value
                for name, value in (verdict.answer or {}).get("values", {}).items()
                if verdict.ok and assigned.get(name) != value
            }
            # A judge that could not decide (failed, refused, abstained) does not reject: the filter only rejects
            # what it read as other values.
            if not misses:
                return replace(written, content=outcome.answer["content"], title=outcome.answer["title"])
            feedback = "it read as " + ", ".join(f"{name}={value}" for name, value in misses.items())
        written.reason = f"the conformance filter rejected all {rounds} attempts ({feedback})"
        return written


def _count(queryset: Any) -> Any:
    """COUNT(*) of `queryset` as a subquery expression."""
    return Coalesce(Subquery(queryset.order_by().values("run_id").annotate(n=Count("id")).values("n")), 0)


def run_counters_refresh(*, run_id: int) -> None:
    """Recount the run's progress from its rows, in one UPDATE: samples_completed, stored_bytes and samples_failed
    from the samples and failures, total_cost from the ledger. Recounted, never incremented, so a duplicate delivery
    or a killed worker cannot make them drift; called about once a second while writing, and at the end of each
    item."""
    calls = (
        JudgeCall.objects.filter(subject_type=ContentType.objects.get_for_model(Run), subject_id=run_id)
        .order_by()
        .values("subject_id")
        .annotate(total=Sum("cost_usd"))
        .values("total")
    )
    content_bytes = Sample.objects.filter(run_id=run_id).order_by().values("run_id").annotate(n=Sum("size_bytes"))
    Run.objects.filter(id=run_id).update(
        samples_completed=_count(Sample.objects.filter(run_id=run_id)),
        stored_bytes=Coalesce(Subquery(content_bytes.values("n")), 0),
        samples_failed=_count(GenerationFailure.objects.filter(run_id=run_id)),
        total_cost=Coalesce(Subquery(calls), Value(Decimal(0))),
    )


def _save_written(*, job: WritingJob, position: int, written: Written) -> None:
    """Write one position's result and its ledger rows (item_id = the position: the unit of this work, which may
    never get a sample) together, as soon as it arrives.

    A position already written (a duplicate delivery, a worker that lost its claim) keeps its first sample: the
    insert is ignored on the (run, identifier) constraint. The calls are recorded all the same: they were made,
    and paid for. A fatal or deferred outcome writes only the ledger, and so does an answer that lands after the
    run ended (canceled while the call was in flight): an ended run never changes.
    """
    run = job.run
    with transaction.atomic():
        active = _run_lock_active(run.id)
        for model, purpose, outcome in written.calls:
            record_calls(
                company_id=run.company_id,
                model=model,
                purpose=purpose,
                attempts=outcome.attempts,
                subject=run,
                item_id=position,
            )
        if not active:
            return
        if written.content is not None:
            path = writing.path_for(position, written.title)
            sample = Sample(
                run=run,
                position=position,
                identifier=writing.identifier_for(position),
                path=path,
                file_type=Sample.guess_file_type(path),
                size_bytes=len(written.content.encode("utf-8")),
                content=written.content,
                # Stored exactly as imports store them: {property: assigned value}.
                properties=job.plan[position],
            )
            Sample.objects.bulk_create([sample], ignore_conflicts=True)
        elif not (written.fatal or written.deferred):
            failure = GenerationFailure(run=run, position=position, reason=written.reason[:2000] or "no sample")
            GenerationFailure.objects.bulk_create([failure], ignore_conflicts=True)


def _unwritten(run: Run, *, part: int, parts: int) -> Iterator[int]:
    """The part's positions with neither a sample nor a recorded failure, in order, read a page at a time."""
    total = run.samples_requested
    for start in range(part, total, parts * PAGE):
        page = range(start, min(total, start + parts * PAGE), parts)
        done = set(run.samples.filter(position__in=page).values_list("position", flat=True))
        done |= set(run.generation_failures.filter(position__in=page).values_list("position", flat=True))
        yield from (position for position in page if position not in done)


def run_generation_write(*, run_id: int, part: int, parts: int, ctx: Context) -> Result:
    """Write the part's unwritten positions in one window of concurrent LLM calls, each sample saved as it arrives."""
    run = _processing(run_id)
    if run is None:
        return Result.DONE
    try:
        job = WritingJob.for_run(run)
    except (NoWriter, FatalJudgeError) as exc:
        run_generation_fail(run_id=run_id, message=str(exc))
        return Result.DONE
    fatal: list[str] = []
    stop = threading.Event()  # seen by the worker threads: no rewrite starts once the item must stop

    def on_answer(position: int, written: Written) -> bool:
        _save_written(job=job, position=position, written=written)
        if not written.deferred:
            ctx.progressed()
        if written.fatal:
            fatal.append(written.reason)
            stop.set()
        return not fatal

    counted = time.monotonic()

    def tick() -> bool:
        nonlocal counted
        if time.monotonic() - counted >= COUNTERS_EVERY_SECONDS:
            run_counters_refresh(run_id=run_id)
            counted = time.monotonic()
        if not ctx.tick():
            stop.set()
            return False
        return True

    ask_each(
        _unwritten(run, part=part, parts=parts),
        lambda position: job.write(position, deadline=ctx.deadline, stop=stop),
        on_answer,
        tick=tick,
    )
    run_counters_refresh(run_id=run_id)
    if fatal:
        run_generation_fail(run_id=run_id, message=f"The writer failed: {fatal[0]}")
        return Result.DONE
    if ctx.stop_reason or next(_unwritten(run, part=part, parts=parts), None) is not None:
        return Result.YIELD  # stopped early, or positions deferred for lack of time: the next run goes on
    _finish_if_written(run)
    return Result.DONE


def _finish_if_written(run: Run) -> None:
    """End the run once every position has a sample or a failure (whichever part gets there last does it):
    SUCCEEDED with at least one sample, else FAILED. The first failures' reasons go in runtime_params."""
    failures = list(run.generation_failures.values_list("position", "reason")[:FAILURES_SHOWN])
    written = run.samples.count()
    if written + run.generation_failures.count() < run.samples_requested:
        return
    params = {**run.runtime_params, "failed_samples": [{"position": p, "reason": r} for p, r in failures]}
    status = Run.Status.SUCCEEDED
    if not written:
        status = Run.Status.FAILED
        params["error"] = f"No sample could be written: {failures[0][1] if failures else 'unknown reason'}"
    Run.objects.filter(id=run.id, status=Run.Status.PROCESSING).update(
        status=status, completed_at=timezone.now(), runtime_params=params
    )
