"""Dataframer evaluation workflows (DESIGN.md §6): create, then three kinds of work item run by the work app:

1. `evaluation.start` claims the PENDING evaluation, resolves its judge and creates the classify items;
2. `evaluation.classify` streams the samples of its part that have no result yet through one window of concurrent
   judge calls, writing each result as it arrives; it yields its turn at the end of a time slice when other work
   waits, and the last one to leave nothing unclassified creates the finalize item;
3. `evaluation.finalize` computes the statistics and has the judge write the explanation.

Every step is safe to run again: claims are conditional UPDATEs, a classified sample is never asked again, items
are created once per key. What the work app cannot finish (after WORK_MAX_ATTEMPTS) ends the evaluation FAILED.

Over 400 lines on purpose: the three steps share the claim helpers and the ClassificationJob, and a change to
one step is read beside the others; human reviews are in evaluations/reviewing.py, the judge's prompt in
evaluations/classify.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Mod
from django.utils import timezone

from companies.models import Company
from companies.quotas import quota_check
from llm import embedded_plan
from llm.base import BadReply, FatalJudgeError, StructuredRequest
from llm.batchwork import wants_batch
from llm.catalog import JudgeModel, get_judge_model
from llm.engine import Outcome, ask_each
from llm.judges import ResolvedJudge, resolve_judge
from llm.ledger import CallLedger, record_calls
from llm.models import JudgeCache
from runs.models import Run, Sample, SpecVersion
from runs.specfile import Property, parse_spec
from work.dispatch import work_cancel, work_create, work_create_parts
from work.models import WorkItem
from work.registry import Result

from . import analysis
from .classify import (
    PROMPT_VERSION,
    Answer,
    answer_schema,
    config_hash,
    content_hash,
    sample_request,
    system_prompt,
    validate_answer,
)
from .models import Evaluation, SampleClassification
from .teaching import teaching_labels

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from work.runner import Context

PAGE = 200  # samples read per query while streaming a part: memory stays flat whatever the run's size


class EvaluationError(ValueError):
    pass


def _set(evaluation_id: int, *, when: tuple[str, ...] = (), **fields: Any) -> int:
    """Update an evaluation's row (only while its status is one of `when`, when given), moving updated_at with it:
    every change of an evaluation goes through here, since QuerySet.update() skips auto_now."""
    rows = Evaluation.objects.filter(id=evaluation_id)
    if when:
        rows = rows.filter(status__in=when)
    return rows.update(updated_at=timezone.now(), **fields)


@transaction.atomic
def evaluation_create(
    *,
    company: Company,
    created_by: User | None,
    run: Run,
    model_name: str | None = None,
    batch: bool | None = None,
) -> Evaluation:
    """Create a PENDING evaluation of a SUCCEEDED run, and its start item (sent to a worker once committed).
    `batch`: through the provider's batch API (evaluations/batch.py); None: by size (JUDGE_BATCH_MIN_SAMPLES)."""
    if run.company_id != company.id:
        raise EvaluationError("unknown run")
    if run.status != Run.Status.SUCCEEDED:
        raise EvaluationError(f"Only SUCCEEDED runs can be evaluated; this run is {run.status}.")
    model_name = model_name or settings.JUDGE_DEFAULT_MODEL
    model = get_judge_model(model_name)  # raises UnknownModel with the allowed list
    if batch and not model.batch:
        raise EvaluationError(f"{model_name} has no batch API: ask for it without batch mode.")
    total_samples = run.samples.count()
    quota_check(company=company, evaluations=1, samples=total_samples)  # raises QuotaExceeded (a 429)
    evaluation = Evaluation.objects.create(
        company=company,
        run=run,
        requested_model=model_name,
        created_by=created_by,
        total_samples=total_samples,
        prompt_version=PROMPT_VERSION,
        batch=wants_batch(
            requested=batch, samples=total_samples, model=model, threshold=settings.JUDGE_BATCH_MIN_SAMPLES
        ),
    )
    key = f"evaluation.start:{evaluation.id}"
    evaluation.task_id = key
    evaluation.save(update_fields=["task_id"])
    work_create(company_id=company.id, kind="evaluation.start", subject_id=evaluation.id, key=key)
    return evaluation


def evaluation_fail(*, evaluation_id: int, message: str) -> None:
    """End an evaluation FAILED with `message` (unless it already ended), and every work item it still has."""
    _set(
        evaluation_id,
        when=(Evaluation.Status.PENDING, Evaluation.Status.PROCESSING),
        status=Evaluation.Status.FAILED,
        error_message=message,
        completed_at=timezone.now(),
    )
    work_cancel(kind_prefix="evaluation.", subject_id=evaluation_id, reason=message)


def evaluation_cancel(*, evaluation: Evaluation, canceled_by: User) -> Evaluation:
    """Stop an unfinished evaluation: no new judge call starts (a running worker sees it within
    WORK_HEARTBEAT_SECONDS). The Dataframer client knows no CANCELED status, so it ends FAILED, saying who
    canceled it; `canceled_at` and the trace tell it apart from a failure."""
    if evaluation.is_terminal:
        raise EvaluationError(
            f"Only PENDING or PROCESSING evaluations can be canceled; this one is {evaluation.status}."
        )
    now = timezone.now()
    _set(evaluation.id, canceled_at=now)
    evaluation_fail(evaluation_id=evaluation.id, message=f"Canceled by {canceled_by.get_username()}.")
    evaluation.refresh_from_db()
    return evaluation


@transaction.atomic
def evaluation_retry(*, evaluation: Evaluation) -> Evaluation:
    """Run a FAILED evaluation again from the start: samples already judged keep their results (only the others
    are asked), and the statistics are computed anew."""
    if evaluation.status != Evaluation.Status.FAILED:
        raise EvaluationError(f"Only FAILED evaluations can be retried; this one is {evaluation.status}.")
    _set(
        evaluation.id,
        when=(Evaluation.Status.FAILED,),
        status=Evaluation.Status.PENDING,
        error_message=None,
        completed_at=None,
        canceled_at=None,
    )
    # The start item makes the classify items again, and the last classify item the finalize item.
    WorkItem.objects.for_subject("evaluation.", evaluation.id).delete()
    work_create(
        company_id=evaluation.company_id, kind="evaluation.start", subject_id=evaluation.id, key=evaluation.task_id
    )
    evaluation.refresh_from_db()
    return evaluation


@dataclass
class SpecJudge:
    """A judge set up to classify texts on a spec version's properties: the prompt and schema are identical for
    every text. Evaluations use it through ClassificationJob; run generation's conformance filter directly
    (runs/extensions.py), so both judge with the same prompt."""

    spec_version: SpecVersion
    resolved: ResolvedJudge

    @property
    def model(self) -> JudgeModel:
        return self.resolved.model

    @cached_property
    def properties(self) -> list[Property]:
        return self.spec_version.parsed_properties

    @cached_property
    def system(self) -> str:
        parsed = parse_spec(self.spec_version.content_yaml)
        return system_prompt(
            description=parsed.description,
            requirements=parsed.requirements,
            properties=self.properties,
        )

    @cached_property
    def schema(self) -> dict[str, Any]:
        return answer_schema(self.properties)

    @cached_property
    def config_hash(self) -> str:
        return config_hash(model=self.resolved.model, system=self.system, schema=self.schema, plan=self.plan)

    @property
    def plan(self) -> dict[str, Any] | None:
        """The embedded judge's plan for these texts (llm/embedded_plan.py); None: judged sample by sample."""
        return None

    @cached_property
    def _prepared_plan(self) -> dict[str, Any] | None:
        return embedded_plan.prepared(self.plan)

    def request_for(self, text: str) -> StructuredRequest:
        return sample_request(
            system=self.system, schema=self.schema, text=text, properties=self.properties, plan=self._prepared_plan
        )

    def validate(self, data: Any) -> Answer:
        return validate_answer(data, self.properties, abstains=self.resolved.model.is_offline)

    def classify_text(self, text: str, *, deadline: float | None = None, ledger: CallLedger | None = None) -> Outcome:
        return self.resolved.judge.ask(self.request_for(text), self.validate, deadline=deadline, ledger=ledger)


def conformance_judge(spec_version: SpecVersion) -> SpecJudge:
    """The evaluations' default judge for run generation's conformance filter (a slot of runs/extensions.py)."""
    return SpecJudge(spec_version, resolve_judge(settings.JUDGE_DEFAULT_MODEL))


@dataclass
class ClassificationJob(SpecJudge):
    """Everything needed to classify the samples of one evaluation, identical for every sample."""

    evaluation: Evaluation

    @classmethod
    def for_evaluation(cls, evaluation: Evaluation) -> ClassificationJob:
        return cls(evaluation.run.spec_version, resolve_judge(evaluation.requested_model), evaluation)

    @property
    def plan(self) -> dict[str, Any] | None:
        return self.evaluation.judge_plan

    def classify(self, sample: Sample, *, deadline: float | None = None) -> Outcome:
        ledger = CallLedger(
            company_id=self.evaluation.company_id, purpose="classify", subject=self.evaluation, item_id=sample.id
        )
        return self.classify_text(sample.content, deadline=deadline, ledger=ledger)


def _lock_processing(evaluation_id: int) -> bool:
    """Lock the evaluation's row (in the caller's transaction) and say whether it is still PROCESSING: whatever
    writes results checks this first, and the UPDATE that ends the evaluation waits for the lock, so nothing is
    added to an ended evaluation. (On SQLite the lock is the database's: write transactions are IMMEDIATE.)"""
    return Evaluation.objects.select_for_update().filter(id=evaluation_id, status=Evaluation.Status.PROCESSING).exists()


def _save_classification(*, job: ClassificationJob, sample: Sample, outcome: Outcome, digest: str) -> None:
    """Write one sample's result, its ledger rows and the cache entry together, as soon as it arrives.

    Inserts ignore conflicts: if a duplicate delivery of this chunk got there first, its classification stands,
    and this delivery's calls are still recorded (they were made, and paid for). A fatal outcome writes only the
    ledger: the sample was not judged, and the evaluation fails as a whole. An answer that lands after the
    evaluation ended (canceled while the call was in flight) writes the ledger and the cache, never the
    evaluation: an ended evaluation never changes (_lock_processing).
    """
    with transaction.atomic():
        processing = _lock_processing(job.evaluation.id)
        record_calls(
            company_id=job.evaluation.company_id,
            model=job.resolved.model,
            purpose="classify",
            attempts=outcome.attempts,
            subject=job.evaluation,
            item_id=sample.id,
            request=outcome.request,
            prompt_version=PROMPT_VERSION,
        )
        if outcome.ok:
            JudgeCache.objects.bulk_create(
                [
                    JudgeCache(
                        company_id=job.evaluation.company_id,
                        config_hash=job.config_hash,
                        content_hash=digest,
                        result=outcome.answer,
                    )
                ],
                ignore_conflicts=True,
            )
        if outcome.fatal or outcome.deferred or not processing:
            return  # not judged (a fatal error ends the evaluation, a deferred sample is asked again), or ended
        SampleClassification.objects.bulk_create(
            [
                SampleClassification(
                    evaluation_id=job.evaluation.id,
                    sample=sample,
                    status=SampleClassification.Status.OK if outcome.ok else SampleClassification.Status.FAILED,
                    classifications=outcome.answer["values"] if outcome.ok else None,
                    rationales=(outcome.answer["rationales"] or None) if outcome.ok else None,
                    error=outcome.error[:2000],
                )
            ],
            ignore_conflicts=True,
        )


def _started(evaluation_id: int) -> Evaluation | None:
    """The evaluation if it is PROCESSING (anything else: deleted, finished or canceled, so nothing to do)."""
    evaluation = Evaluation.objects.select_related("run__spec_version", "company").filter(id=evaluation_id).first()
    return evaluation if evaluation is not None and evaluation.status == Evaluation.Status.PROCESSING else None


def _job_or_fail(evaluation: Evaluation) -> ClassificationJob | None:
    try:
        return ClassificationJob.for_evaluation(evaluation)
    except (FatalJudgeError, ValueError) as exc:
        evaluation_fail(evaluation_id=evaluation.id, message=str(exc))
        return None


def evaluation_start(*, evaluation_id: int) -> None:
    """Claim a PENDING evaluation, pick its judge, and create its classify items (once each, by key)."""
    _set(
        evaluation_id, when=(Evaluation.Status.PENDING,), status=Evaluation.Status.PROCESSING, started_at=timezone.now()
    )
    evaluation = _started(evaluation_id)
    if evaluation is None:
        return
    job = _job_or_fail(evaluation)
    if job is None:
        return
    if job.resolved.model.is_offline and evaluation.judge_plan is None:
        # Fixed at the first start, before any sample is judged: every classify part, the finalize and a retry
        # (whose judged samples keep their results) read this one plan.
        evaluation.judge_plan = _embedded_plan(evaluation, job.properties)
        job = ClassificationJob.for_evaluation(evaluation)
    # A batch evaluation is one item (evaluations/batch.py): it submits, waits and reads, then asks the rest.
    parts = 1 if evaluation.batch else max(1, min(settings.EVALUATION_PARALLEL_ITEMS, evaluation.total_samples))
    _set(
        evaluation_id,
        judge_plan=evaluation.judge_plan,
        model_used=job.resolved.model.name,
        fallback_reason=job.resolved.fallback_reason,
        config_hash=job.config_hash,
        chunks_total=parts,
    )
    if evaluation.batch:
        key = f"evaluation.batch:{evaluation_id}"
        # The model goes with the item: a deleted evaluation's batches are still canceled with it (batch_cancel).
        args = {"model": job.resolved.model.name}
        work_create(
            company_id=evaluation.company_id, kind="evaluation.batch", subject_id=evaluation_id, key=key, args=args
        )
    else:
        work_create_parts(
            company_id=evaluation.company_id, kind="evaluation.classify", subject_id=evaluation_id, parts=parts
        )
    if evaluation.total_samples == 0:
        evaluation_finalize_enqueue(evaluation=evaluation)


def _embedded_plan(evaluation: Evaluation, properties: list[Property]) -> dict[str, Any]:
    """The embedded judge's plan from an evenly spaced subsample of the run's texts and the labels that may teach
    it (evaluations/teaching.py). Queries: two."""
    step = max(1, evaluation.total_samples // embedded_plan.RUN_SUBSAMPLE)
    texts = list(
        Sample.objects.filter(run_id=evaluation.run_id)
        .annotate(_every=Mod(F("position"), step))
        .filter(_every=0)
        .order_by("position")
        .values_list("content", flat=True)[: embedded_plan.RUN_SUBSAMPLE]
    )
    return embedded_plan.make_plan(texts, properties, teaching_labels(evaluation, properties))


def _unclassified(evaluation: Evaluation, *, part: int, parts: int, after: int = -1) -> Iterator[Sample]:
    """The part's samples that have no result yet, in position order (after position `after`), a page at a time."""
    last = after
    while True:
        page = list(
            Sample.objects.filter(run_id=evaluation.run_id, position__gt=last)
            .annotate(_part=Mod(F("position"), parts))
            .filter(_part=part)
            .exclude(classifications__evaluation_id=evaluation.id)
            .only("id", "content", "properties", "position")
            .order_by("position")[:PAGE]
        )
        if not page:
            return
        last = page[-1].position
        yield from page


def _answered_from_cache(*, job: ClassificationJob, samples: Iterator[Sample]) -> Iterator[tuple[Sample, str]]:
    """Write the samples the cache already answers for this content and configuration (no provider call), a page
    at a time; pass the others on with their content hash."""
    while True:
        page = [s for _, s in zip(range(PAGE), samples, strict=False)]
        if not page:
            return
        digests = {s.id: content_hash(s.content) for s in page}
        cached = dict(
            JudgeCache.objects.filter(
                company_id=job.evaluation.company_id,
                config_hash=job.config_hash,
                content_hash__in=set(digests.values()),
            ).values_list("content_hash", "result")
        )
        with transaction.atomic():
            if not _lock_processing(job.evaluation.id):
                return  # ended meanwhile: nothing more is written to it
            SampleClassification.objects.bulk_create(
                [
                    SampleClassification(
                        evaluation_id=job.evaluation.id,
                        sample=s,
                        # An Answer: the prompt version in the configuration hash keeps older shapes out.
                        classifications=cached[digests[s.id]]["values"],
                        rationales=cached[digests[s.id]]["rationales"] or None,
                        from_cache=True,
                    )
                    for s in page
                    if digests[s.id] in cached
                ],
                ignore_conflicts=True,
            )
        yield from ((s, digests[s.id]) for s in page if digests[s.id] not in cached)


def evaluation_classify(*, evaluation_id: int, part: int, parts: int, ctx: Context) -> Result:
    """Judge the part's unclassified samples in one window of concurrent calls, each result written as it arrives."""
    evaluation = _started(evaluation_id)
    if evaluation is None:
        return Result.DONE
    job = _job_or_fail(evaluation)
    if job is None:
        return Result.DONE
    fatal: list[str] = []

    def on_answer(item: tuple[Sample, str], outcome: Outcome) -> bool:
        sample, digest = item
        _save_classification(job=job, sample=sample, outcome=outcome, digest=digest)
        if not outcome.deferred:
            ctx.progressed()  # a sample judged: a kill from here on is an interruption, not a failure
        if outcome.fatal:
            fatal.append(outcome.error)
        return not fatal

    ask_each(
        _answered_from_cache(job=job, samples=_unclassified(evaluation, part=part, parts=parts)),
        lambda item: job.classify(item[0], deadline=ctx.deadline),
        on_answer,
        tick=ctx.tick,
    )
    if fatal:
        evaluation_fail(evaluation_id=evaluation_id, message=f"The judge failed: {fatal[0]}")
        return Result.DONE
    if ctx.stop_reason or next(_unclassified(evaluation, part=part, parts=parts), None) is not None:
        return Result.YIELD  # stopped early, or samples deferred for lack of time: the next run goes on
    if evaluation.classifications.count() >= evaluation.total_samples:
        evaluation_finalize_enqueue(
            evaluation=evaluation
        )  # the last part to finish does it; the key makes a second one a no-op
    return Result.DONE


def evaluation_finalize_enqueue(*, evaluation: Evaluation) -> None:
    """Create the finalize item (once: its key makes a second call a no-op)."""
    work_create(
        company_id=evaluation.company_id,
        kind="evaluation.finalize",
        subject_id=evaluation.id,
        key=f"evaluation.finalize:{evaluation.id}",
    )


def evaluation_finalize(*, evaluation_id: int, ctx: Context) -> Result:
    """Aggregate and complete: the statistics, then the explanation (the judge's, or the template's)."""
    evaluation = _started(evaluation_id)
    if evaluation is None:
        return Result.DONE
    try:
        distribution, summary, score = analysis.analyse(evaluation)
    except analysis.NothingAnalysed as exc:
        evaluation_fail(evaluation_id=evaluation_id, message=str(exc))
        return Result.DONE
    texts = _explain(evaluation=evaluation, summary=summary, ctx=ctx)
    if ctx.lost:
        return Result.DONE
    _set(
        evaluation_id,
        when=(Evaluation.Status.PROCESSING,),
        status=Evaluation.Status.SUCCEEDED,
        conformance_score=score,
        distribution_analysis=distribution,
        statistics=summary | {"explanation_source": texts.pop("source")},
        completed_at=timezone.now(),
        **texts,
    )
    return Result.DONE


EXPLAIN_SYSTEM = """\
You write the summary of a data-quality evaluation for analysts. You receive the statistics of how well a \
generated dataset matches its spec: per property, the expected (assigned at generation) and evaluated (judged) \
value counts, the total variation distance between them in percentage points, the per-sample agreement between \
assigned and judged values, and a chi-square p-value. Be concrete and brief: name properties and values, quote \
the numbers that matter, do not speculate beyond them. conformance_explanation: 2-4 sentences on the score. \
conformant_areas and non_conformant_areas: one short plain-text sentence or list each ("None" if there are none).\
"""
EXPLAIN_FIELDS = ("conformance_explanation", "conformant_areas", "non_conformant_areas")
EXPLAIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in EXPLAIN_FIELDS},
    "required": list(EXPLAIN_FIELDS),
    "additionalProperties": False,
}


def _explain(*, evaluation: Evaluation, summary: dict[str, Any], ctx: Context) -> dict[str, str]:
    """The judge model writes the explanation from the numbers; the template does when it cannot."""
    template = analysis.template_explanation(summary) | {"source": "template"}
    try:
        resolved = resolve_judge(evaluation.requested_model)
    except (FatalJudgeError, ValueError):
        return template
    if resolved.model.is_offline:
        return template
    request = StructuredRequest(
        purpose="explain",
        system=EXPLAIN_SYSTEM,
        user=json.dumps(summary, indent=1),
        schema=EXPLAIN_SCHEMA,
        tool_name="record_summary",
        tool_description="Record the evaluation summary.",
    )

    def validate(data: Any) -> dict[str, str]:
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in EXPLAIN_FIELDS):
            raise BadReply("the summary is missing fields")
        return {k: data[k] for k in EXPLAIN_FIELDS}

    answers: list[Outcome] = []

    def on_answer(_request: StructuredRequest, outcome: Outcome) -> bool:
        record_calls(
            company_id=evaluation.company_id,
            model=resolved.model,
            purpose="explain",
            attempts=outcome.attempts,
            subject=evaluation,
        )
        answers.append(outcome)
        return True

    # Through ask_each for its heartbeat: one call can take longer than the lease.
    ledger = CallLedger(company_id=evaluation.company_id, purpose="explain", subject=evaluation)
    ask_each(
        [request],
        lambda r: resolved.judge.ask(r, validate, deadline=ctx.deadline, ledger=ledger),
        on_answer,
        workers=1,
        tick=ctx.tick,
    )
    outcome = answers[0] if answers else None
    return (outcome.answer | {"source": "judge"}) if outcome is not None and outcome.ok else template
