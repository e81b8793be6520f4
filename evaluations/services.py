"""Dataframer evaluation workflows: create and enqueue, claim, classify in chunks, aggregate (DESIGN.md §6).

Each step is safe to run twice: the claim is a conditional UPDATE, a sample already classified is skipped, and
only the chunk that holds the aggregation lease completes the evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from companies.models import Company
from llm.base import BadReply, FatalJudgeError, StructuredRequest
from llm.catalog import get_judge_model
from llm.engine import Outcome, ask_each
from llm.judges import ResolvedJudge, resolve_judge
from llm.ledger import record_calls
from llm.models import JudgeCache
from runs.models import Run, Sample
from runs.specfile import Property, parse_spec

from . import analysis
from .classify import (
    PROMPT_VERSION,
    answer_schema,
    config_hash,
    content_hash,
    sample_request,
    system_prompt,
    validate_answer,
)
from .models import Evaluation, SampleClassification

if TYPE_CHECKING:
    from django.contrib.auth.models import User

FINALIZE_LEASE = timedelta(minutes=10)


class EvaluationError(ValueError):
    pass


@transaction.atomic
def evaluation_create(
    *,
    company: Company,
    created_by: User | None,
    run: Run,
    model_name: str | None = None,
) -> Evaluation:
    """Create a PENDING evaluation of a SUCCEEDED run and enqueue it once the row is committed."""
    if run.company_id != company.id:
        raise EvaluationError("unknown run")
    if run.status != Run.Status.SUCCEEDED:
        raise EvaluationError(f"Only SUCCEEDED runs can be evaluated; this run is {run.status}.")
    model_name = model_name or settings.JUDGE_DEFAULT_MODEL
    get_judge_model(model_name)  # raises UnknownModel with the allowed list
    evaluation = Evaluation.objects.create(
        company=company,
        run=run,
        requested_model=model_name,
        created_by=created_by,
        total_samples=run.samples.count(),
        prompt_version=PROMPT_VERSION,
    )
    transaction.on_commit(lambda: _enqueue_start(evaluation))
    return evaluation


def _enqueue_start(evaluation: Evaluation) -> None:
    task_id = async_task(
        "evaluations.tasks.start_evaluation",
        evaluation.id,
        group=str(evaluation.company_id),
    )
    Evaluation.objects.filter(id=evaluation.id).update(task_id=task_id or "")


def evaluation_fail(*, evaluation_id: int, message: str) -> None:
    Evaluation.objects.filter(id=evaluation_id).exclude(status=Evaluation.Status.SUCCEEDED).update(
        status=Evaluation.Status.FAILED,
        error_message=message,
        completed_at=timezone.now(),
    )


@dataclass
class ClassificationJob:
    """Everything needed to classify the samples of one evaluation, identical for every sample."""

    evaluation: Evaluation
    resolved: ResolvedJudge

    @cached_property
    def properties(self) -> list[Property]:
        return self.evaluation.run.spec_version.parsed_properties

    @cached_property
    def system(self) -> str:
        parsed = parse_spec(self.evaluation.run.spec_version.content_yaml)
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
        return config_hash(model=self.resolved.model, system=self.system, schema=self.schema)

    @classmethod
    def for_evaluation(cls, evaluation: Evaluation) -> ClassificationJob:
        return cls(evaluation, resolve_judge(evaluation.requested_model))

    def request(self, sample: Sample) -> StructuredRequest:
        return sample_request(
            system=self.system,
            schema=self.schema,
            text=sample.content,
            properties=self.properties,
        )

    def classify(self, sample: Sample) -> Outcome:
        return self.resolved.judge.ask(self.request(sample), lambda data: validate_answer(data, self.properties))


def start_evaluation(*, evaluation_id: int) -> None:
    """Claim a PENDING evaluation, pick its judge, and fan its samples out in chunks."""
    claimed = Evaluation.objects.filter(id=evaluation_id, status=Evaluation.Status.PENDING).update(
        status=Evaluation.Status.PROCESSING, started_at=timezone.now()
    )
    evaluation = Evaluation.objects.select_related("run__spec_version", "company").filter(id=evaluation_id).first()
    if evaluation is None or evaluation.status != Evaluation.Status.PROCESSING:
        return  # deleted, or already finished: a duplicate delivery
    if not claimed and evaluation.chunks_total:
        return  # another delivery already fanned out; a re-delivery after a crash before that goes on below
    try:
        job = ClassificationJob.for_evaluation(evaluation)
    except (FatalJudgeError, ValueError) as exc:
        evaluation_fail(evaluation_id=evaluation_id, message=str(exc))
        return
    positions = list(evaluation.run.samples.order_by("position").values_list("position", flat=True))
    size = settings.EVALUATION_CHUNK_SIZE
    chunks = [(positions[i], positions[min(i + size, len(positions)) - 1]) for i in range(0, len(positions), size)]
    Evaluation.objects.filter(id=evaluation_id).update(
        model_used=job.resolved.model.name,
        fallback_reason=job.resolved.fallback_reason,
        config_hash=job.config_hash,
        chunks_total=len(chunks),
    )
    if not chunks:
        evaluation_finalize(evaluation_id=evaluation_id)
    for first, last in chunks:
        async_task(
            "evaluations.tasks.classify_chunk",
            evaluation_id,
            first,
            last,
            group=str(evaluation.company_id),
        )


def _save_classification(*, job: ClassificationJob, sample: Sample, outcome: Outcome, digest: str) -> None:
    """Write one sample's result, its ledger rows and the cache entry together, as soon as it arrives.

    Inserts ignore conflicts: if a duplicate delivery of this chunk got there first, its classification stands,
    and this delivery's calls are still recorded (they were made, and paid for). A fatal outcome writes only the
    ledger: the sample was not judged, and the evaluation fails as a whole.
    """
    with transaction.atomic():
        record_calls(
            company_id=job.evaluation.company_id,
            model=job.resolved.model,
            purpose="classify",
            attempts=outcome.attempts,
            subject=job.evaluation,
            item_id=sample.id,
        )
        if outcome.fatal:
            return
        SampleClassification.objects.bulk_create(
            [
                SampleClassification(
                    evaluation_id=job.evaluation.id,
                    sample=sample,
                    status=SampleClassification.Status.OK if outcome.ok else SampleClassification.Status.FAILED,
                    classifications=outcome.answer if outcome.ok else None,
                    error=outcome.error[:2000],
                )
            ],
            ignore_conflicts=True,
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


def _classify_concurrently(*, job: ClassificationJob, samples: list[Sample], digests: dict[int, str]) -> str:
    """Ask the judge about every sample, saving each answer as it arrives; the fatal error's message, or ""."""
    fatal: list[str] = []

    def on_answer(sample: Sample, outcome: Outcome) -> bool:
        _save_classification(job=job, sample=sample, outcome=outcome, digest=digests[sample.id])
        if outcome.fatal:
            fatal.append(outcome.error)
        return not fatal

    ask_each(samples, job.classify, on_answer)
    return fatal[0] if fatal else ""


def classify_chunk(*, evaluation_id: int, first_position: int, last_position: int) -> None:
    """Classify the samples of one chunk that have no classification yet; the last chunk aggregates."""
    evaluation = Evaluation.objects.select_related("run__spec_version", "company").filter(id=evaluation_id).first()
    if evaluation is None or evaluation.status != Evaluation.Status.PROCESSING:
        return
    try:
        job = ClassificationJob.for_evaluation(evaluation)
    except (FatalJudgeError, ValueError) as exc:
        evaluation_fail(evaluation_id=evaluation_id, message=str(exc))
        return
    samples = list(
        Sample.objects.filter(
            run_id=evaluation.run_id,
            position__gte=first_position,
            position__lte=last_position,
        )
        .exclude(classifications__evaluation_id=evaluation_id)
        .only("id", "content", "properties")
        .order_by("position")
    )
    digests = {s.id: content_hash(s.content) for s in samples}
    cached = dict(
        JudgeCache.objects.filter(
            company_id=evaluation.company_id,
            config_hash=job.config_hash,
            content_hash__in=set(digests.values()),
        ).values_list("content_hash", "result")
    )
    # 1. Answers we already have for this content and configuration: no provider call.
    SampleClassification.objects.bulk_create(
        [
            SampleClassification(
                evaluation_id=evaluation_id,
                sample=s,
                classifications=cached[digests[s.id]],
                from_cache=True,
            )
            for s in samples
            if digests[s.id] in cached
        ],
        ignore_conflicts=True,
    )
    todo = [s for s in samples if digests[s.id] not in cached]
    # 2. The rest, concurrently; each result is written by this thread as soon as it arrives.
    if todo:
        fatal = _classify_concurrently(job=job, samples=todo, digests=digests)
        if fatal:
            evaluation_fail(evaluation_id=evaluation_id, message=f"The judge failed: {fatal}")
            return
    evaluation_finalize(evaluation_id=evaluation_id)


def evaluation_finalize(*, evaluation_id: int) -> None:
    """Once every sample has a classification, aggregate and complete, under a lease so only one chunk does."""
    evaluation = Evaluation.objects.select_related("run__spec_version").get(id=evaluation_id)
    if evaluation.classifications.count() < evaluation.total_samples:
        return
    now = timezone.now()
    claimed = (
        Evaluation.objects.filter(id=evaluation_id, status=Evaluation.Status.PROCESSING)
        .filter(Q(finalizing_since__isnull=True) | Q(finalizing_since__lt=now - FINALIZE_LEASE))
        .update(finalizing_since=now)
    )
    if not claimed:
        return
    try:
        distribution, summary, score = analysis.analyse(evaluation)
    except analysis.NothingAnalysed as exc:
        evaluation_fail(evaluation_id=evaluation_id, message=str(exc))
        return
    texts = _explain(evaluation=evaluation, summary=summary)
    Evaluation.objects.filter(id=evaluation_id, status=Evaluation.Status.PROCESSING).update(
        status=Evaluation.Status.SUCCEEDED,
        conformance_score=score,
        distribution_analysis=distribution,
        statistics=summary | {"explanation_source": texts.pop("source")},
        completed_at=timezone.now(),
        **texts,
    )


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


def _explain(*, evaluation: Evaluation, summary: dict[str, Any]) -> dict[str, str]:
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

    outcome = resolved.judge.ask(request, validate)
    record_calls(
        company_id=evaluation.company_id,
        model=resolved.model,
        purpose="explain",
        attempts=outcome.attempts,
        subject=evaluation,
    )
    return (outcome.answer | {"source": "judge"}) if outcome.ok else template
