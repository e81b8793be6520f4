from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.db.models import Count, Sum

from companies.models import Company


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
    modified_at = models.DateTimeField(auto_now=True)
    judge_calls = GenericRelation(
        "llm.JudgeCall",
        content_type_field="subject_type",
        object_id_field="subject_id",
        related_query_name="guardrail_evaluation",
    )

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
