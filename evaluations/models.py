from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, Sum

from companies.models import Company
from runs.models import Run, Sample


class EvaluationQuerySet(models.QuerySet["Evaluation"]):
    def for_company(self, company: Company) -> EvaluationQuerySet:
        return self.filter(company=company)


class Evaluation(models.Model):
    """A Dataframer evaluation: a judge classifies every sample of a run on every property of its spec."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        PROCESSING = "PROCESSING", "Processing"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="evaluations")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="evaluations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_model = models.CharField(max_length=200)
    model_used = models.CharField(max_length=200, blank=True)
    fallback_reason = models.TextField(blank=True)
    prompt_version = models.CharField(max_length=20, blank=True)
    config_hash = models.CharField(max_length=64, blank=True)
    total_samples = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)

    conformance_score = models.FloatField(null=True, blank=True)
    # Null, not "", until the evaluation completes: the wire contract distinguishes the two.
    conformance_explanation = models.TextField(null=True, blank=True)  # noqa: DJ001
    conformant_areas = models.TextField(null=True, blank=True)  # noqa: DJ001
    non_conformant_areas = models.TextField(null=True, blank=True)  # noqa: DJ001
    distribution_analysis = models.JSONField(null=True, blank=True)
    # Our addition: per property chi-square, Wilson intervals, agreement and confusion matrix.
    statistics = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)  # noqa: DJ001

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Lease on the final aggregation, so only one finishing chunk does it (and a crashed one can be retried).
    finalizing_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EvaluationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["run", "-created_at"])]

    def __str__(self) -> str:
        return f"Evaluation {str(self.code)[:8]}"

    @property
    def is_terminal(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def is_offline(self) -> bool:
        return self.model_used.startswith("offline/")

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return None

    def ledger_totals(self) -> dict[str, Any]:
        totals = self.judge_calls.aggregate(
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cache_read_tokens=Sum("cache_read_tokens"),
            cache_write_tokens=Sum("cache_write_tokens"),
            cost_usd=Sum("cost_usd"),
        )
        return {k: (v or 0) for k, v in totals.items()} | {"cost_usd": float(totals["cost_usd"] or Decimal(0))}


class SampleClassification(models.Model):
    """One sample's judged values in one evaluation; written as soon as the judge answers."""

    class Status(models.TextChoices):
        OK = "ok"
        FAILED = "failed"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="classifications")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="classifications")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    # {property name: judged value}; null when the judge failed on this sample.
    classifications = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    from_cache = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["evaluation", "sample"], name="classification_one_per_sample")]

    def __str__(self) -> str:
        return f"{self.sample_id} in {self.evaluation_id}"


class JudgeCache(models.Model):
    """A judge's answer for (content, configuration), so re-evaluating unchanged samples costs nothing."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    config_hash = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    result = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "config_hash", "content_hash"],
                name="judgecache_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.config_hash[:8]}/{self.content_hash[:8]}"


class JudgeCall(models.Model):
    """The ledger: one row per provider call attempt, with its tokens, cost, latency and outcome."""

    class Outcome(models.TextChoices):
        OK = "ok"
        RATE_LIMITED = "rate_limited"
        SERVER_ERROR = "server_error"
        TIMEOUT = "timeout"
        BAD_REPLY = "bad_reply"
        REFUSED = "refused"
        FATAL = "fatal"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    evaluation = models.ForeignKey(
        Evaluation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="judge_calls",
    )
    guardrail_evaluation = models.ForeignKey(
        "GuardrailEvaluation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="judge_calls",
    )
    sample = models.ForeignKey(Sample, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=200)
    purpose = models.CharField(max_length=32)
    attempt = models.PositiveSmallIntegerField(default=1)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["evaluation", "purpose"])]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.purpose} #{self.attempt} {self.outcome}"


class GuardrailEvaluationQuerySet(models.QuerySet["GuardrailEvaluation"]):
    def for_company(self, company: Company) -> GuardrailEvaluationQuerySet:
        return self.filter(company=company)

    def with_ledger(self) -> GuardrailEvaluationQuerySet:
        """Annotate `total_cost` and `calls` from the ledger (one aggregate, no per-row queries)."""
        return self.annotate(total_cost=Sum("judge_calls__cost_usd"), calls=Count("judge_calls"))


class GuardrailEvaluation(models.Model):
    """A DeepRails guardrail evaluation: one model input/output pair scored 0-1 on guardrail metrics."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    class RunMode(models.TextChoices):
        PRECISION_PLUS = "precision_plus", "Precision plus"
        PRECISION = "precision", "Precision"
        SMART = "smart", "Smart"
        ECONOMY = "economy", "Economy"

    ID_PREFIX = "eval-"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="guardrail_evaluations")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    run_mode = models.CharField(max_length=16, choices=RunMode.choices, default=RunMode.SMART)
    guardrail_metrics = models.JSONField(default=list)
    # {system_prompt, user_prompt, ground_truth, context}: only the keys the caller gave.
    model_input = models.JSONField(default=dict)
    model_output = models.TextField(blank=True)
    # Null, not "", when not given: the wire contract distinguishes the two.
    model_used = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    nametag = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # {metric: {"score": float | None, "rationale": str, ...}}, filled as each metric finishes.
    evaluation_result = models.JSONField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    # Which judges graded and why they differ from the run mode's (offline fallback, missing credentials).
    trace = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(null=True, blank=True)  # noqa: DJ001
    error_timestamp = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    start_timestamp = models.DateTimeField(null=True, blank=True)
    end_timestamp = models.DateTimeField(null=True, blank=True)
    # Lease of the worker running it: a re-delivery resumes only once the lease is older than a task can live.
    claimed_at = models.DateTimeField(null=True, blank=True)
    modified_at = models.DateTimeField(auto_now=True)

    objects = GuardrailEvaluationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "-created_at"], name="guardrail_company_created")]

    def __str__(self) -> str:
        return self.eval_id

    @property
    def eval_id(self) -> str:
        return f"{self.ID_PREFIX}{self.code}"

    @classmethod
    def parse_eval_id(cls, eval_id: str) -> uuid.UUID | None:
        """The code inside a wire id `eval-<uuid>`, or None if it is not one."""
        if not eval_id.startswith(cls.ID_PREFIX):
            return None
        try:
            return uuid.UUID(eval_id.removeprefix(cls.ID_PREFIX))
        except ValueError:
            return None

    @property
    def is_terminal(self) -> bool:
        return self.status in {self.Status.COMPLETED, self.Status.FAILED, self.Status.CANCELED}

    @property
    def is_offline(self) -> bool:
        return bool(self.trace.get("offline_judge"))

    @property
    def ordered_result(self) -> dict[str, Any] | None:
        """evaluation_result in the requested metrics' order (PostgreSQL's jsonb does not keep key order)."""
        if self.evaluation_result is None:
            return None
        return {m: self.evaluation_result[m] for m in self.guardrail_metrics if m in self.evaluation_result}

    def total_cost_usd(self) -> float:
        """The sum of this evaluation's judge calls, from the annotation when the row has one."""
        annotated = getattr(self, "total_cost", None)
        if annotated is None and not hasattr(self, "total_cost"):
            annotated = self.judge_calls.aggregate(total=Sum("cost_usd"))["total"]
        return float(annotated or Decimal(0))
