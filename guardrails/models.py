from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.db.models import Count, Sum

from companies.models import Company


def parse_wire_id(prefix: str, wire_id: str) -> uuid.UUID | None:
    """The code inside a DeepRails wire id (`<prefix><uuid>`), or None if it is not one (then: not found)."""
    if not wire_id.startswith(prefix):
        return None
    try:
        return uuid.UUID(wire_id.removeprefix(prefix))
    except ValueError:
        return None


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
    # Bytes of model_input's texts and model_output: what the storage quota counts (companies.quotas).
    stored_bytes = models.PositiveBigIntegerField(default=0, db_default=0)
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
        return parse_wire_id(cls.ID_PREFIX, eval_id)

    @property
    def is_terminal(self) -> bool:
        return self.status in {self.Status.COMPLETED, self.Status.FAILED, self.Status.CANCELED}

    @staticmethod
    def text_bytes(model_input: dict[str, Any], model_output: str) -> int:
        """The bytes of the texts stored: the output and every model_input value, as UTF-8."""
        return sum(len(str(text).encode()) for text in [model_output, *model_input.values()])

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


# --- Monitors (DeepRails `client.monitor`) ---


class ActiveStatus(models.TextChoices):
    """Whether a monitor or workflow takes new events (the wire's `monitor_status` / `status`)."""

    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"


class ActiveStreamQuerySet(models.QuerySet[Any]):
    def for_company(self, company: Company) -> ActiveStreamQuerySet:
        return self.filter(company=company)


class ActiveStream(models.Model):
    """What a monitor and a workflow share: a company's named stream of events that can be switched off, addressed
    on the wire as ID_PREFIX + code. Each declares its own `company` (its reverse name is in the migrations)."""

    ID_PREFIX = ""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=255)
    # Null, not "", when not given: the wire contract distinguishes the two.
    description = models.TextField(null=True, blank=True)  # noqa: DJ001
    status = models.CharField(max_length=16, choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ActiveStreamQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == ActiveStatus.ACTIVE


class Monitor(ActiveStream):
    """A named stream of production answers: each event is one guardrail evaluation, graded in the background."""

    ID_PREFIX = "mon-"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="monitors")
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def monitor_id(self) -> str:
        return f"{self.ID_PREFIX}{self.code}"


class MonitorEvent(models.Model):
    """One answer recorded by a monitor; its grading is an ordinary guardrail evaluation (and work item)."""

    ID_PREFIX = "mevt-"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="events")
    evaluation = models.OneToOneField(GuardrailEvaluation, on_delete=models.CASCADE, related_name="monitor_event")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.event_id

    @property
    def event_id(self) -> str:
        return f"{self.ID_PREFIX}{self.code}"


# --- Defend workflows (DeepRails `client.defend`) ---


class Workflow(ActiveStream):
    """Thresholds per metric and an improvement action: an event's output is graded and, while it fails, improved
    (up to max_improvement_attempts times)."""

    class ThresholdType(models.TextChoices):
        CUSTOM = "custom", "Custom"
        AUTOMATIC = "automatic", "Automatic"

    class Action(models.TextChoices):
        REGEN = "regen", "ReGen"
        FIXIT = "fixit", "FixIt"
        DO_NOTHING = "do_nothing", "Do nothing"

    ID_PREFIX = "wkfl-"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="workflows")
    threshold_type = models.CharField(max_length=16, choices=ThresholdType.choices)
    # As sent, for `automatic`: {metric: "low" | "medium" | "high"}.
    tolerance_levels = models.JSONField(default=dict, blank=True)
    # {metric: 0-1}: the custom values, or what the tolerance levels mean (defend.TOLERANCE_THRESHOLDS).
    thresholds = models.JSONField(default=dict)
    improvement_action = models.CharField(max_length=16, choices=Action.choices)
    max_improvement_attempts = models.PositiveSmallIntegerField(default=10)
    # The model that rewrites a failing output (regen/fixit), fixed when the workflow is created.
    writer_model = models.CharField(max_length=200, blank=True)
    # Our addition: a metric the judge declined (`"judged": false`) counts as passed only if this is set.
    declined_passes = models.BooleanField(default=False)
    modified_at = models.DateTimeField(auto_now=True)

    @property
    def workflow_id(self) -> str:
        return f"{self.ID_PREFIX}{self.code}"

    @property
    def metrics(self) -> list[str]:
        return list(self.thresholds)

    def failing_metrics(self, result: dict[str, Any] | None) -> list[str]:
        """The metrics of an evaluation result that miss their threshold: unscored ones, and declined ones
        (`"judged": false`, a placeholder score) unless the workflow counts those as passed."""
        failing = []
        for metric, threshold in self.thresholds.items():
            grade = (result or {}).get(metric) or {}
            score = grade.get("score")
            declined = grade.get("judged") is False
            if score is None or score < threshold or (declined and not self.declined_passes):
                failing.append(metric)
        return failing


class WorkflowEvent(models.Model):
    """One output submitted to a workflow, and where its improvement loop stands."""

    ID_PREFIX = "wevt-"
    Status = GuardrailEvaluation.Status  # an event lives as an evaluation does: queued, in_progress, completed, ...

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="events")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=GuardrailEvaluation.Status.choices, default=Status.QUEUED)
    run_mode = models.CharField(max_length=16, choices=GuardrailEvaluation.RunMode.choices)
    model_input = models.JSONField(default=dict)
    model_output = models.TextField(blank=True)  # the original output, as submitted
    model_used = models.CharField(max_length=200)
    nametag = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # Null until decided: False when an attempt passed every threshold, True when none did.
    filtered = models.BooleanField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)
    # The writer's calls; each one's item_id is the number of the attempt it wrote (graders' calls are on the
    # attempts' evaluations).
    writer_calls = GenericRelation(
        "llm.JudgeCall",
        content_type_field="subject_type",
        object_id_field="subject_id",
        related_query_name="workflow_event",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.event_id

    @property
    def event_id(self) -> str:
        return f"{self.ID_PREFIX}{self.code}"

    @property
    def is_terminal(self) -> bool:
        return self.status in {self.Status.COMPLETED, self.Status.FAILED, self.Status.CANCELED}


class WorkflowAttempt(models.Model):
    """One output of an event and its evaluation: number 0 is the output as submitted, 1.. the improvements."""

    event = models.ForeignKey(WorkflowEvent, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    output = models.TextField(blank=True)
    evaluation = models.OneToOneField(GuardrailEvaluation, on_delete=models.CASCADE, related_name="defend_attempt")
    # Null until its evaluation is done; then whether every metric met its threshold.
    passed = models.BooleanField(null=True, blank=True)
    failing_metrics = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event", "number"]
        constraints = [models.UniqueConstraint(fields=["event", "number"], name="workflow_attempt_once")]

    def __str__(self) -> str:
        return f"{self.event} #{self.number}"
