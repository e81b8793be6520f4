"""Red teaming (Dataframer's red_team_specs and red_team_runs): an application described once (a spec), and runs
that have an LLM write undesirable behaviours and adversarial prompts for it; optionally each prompt is sent to a
target model and its answer scored by the guardrail engine (our addition: the vendor's API stops at the prompts)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.utils import timezone

from companies.models import Company


def snake_case(name: str) -> str:
    """`Customer Support Bot` and `customerSupportBot` both become `customer_support_bot` (the client's contract:
    names are stored in snake_case, unique within a company)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^0-9a-z]+", "_", spaced.lower()).strip("_")


class RedTeamSpecQuerySet(models.QuerySet["RedTeamSpec"]):
    def for_company(self, company: Company) -> RedTeamSpecQuerySet:
        return self.filter(company=company)


class RedTeamSpec(models.Model):
    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="red_team_specs")
    name = models.CharField(max_length=200)
    app_description = models.TextField()
    domain_description = models.TextField()
    concerns = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RedTeamSpecQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "red team spec"
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="redteamspec_unique_name_per_company")]

    def __str__(self) -> str:
        return self.name


class RedTeamRunQuerySet(models.QuerySet["RedTeamRun"]):
    def for_company(self, company: Company) -> RedTeamRunQuerySet:
        return self.filter(company=company)


class RedTeamRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        PROCESSING = "PROCESSING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"
        CANCELED = "CANCELED"

    ACTIVE = (Status.PENDING, Status.PROCESSING)  # every other status is terminal: the run never changes again

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="red_team_runs")
    spec = models.ForeignKey(RedTeamSpec, on_delete=models.CASCADE, related_name="runs")
    model_name = models.CharField(max_length=200)
    number_of_behaviors = models.PositiveIntegerField()
    number_of_prompts_per_behavior = models.PositiveIntegerField()
    # Our addition: a catalog model that answers every adversarial prompt (blank: prompts only, as the vendor).
    target_model = models.CharField(max_length=200, blank=True)
    target_system_prompt = models.TextField(blank=True)
    judge_run_mode = models.CharField(max_length=32, blank=True)  # the guardrail run mode that scores the answers
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # The behaviours the writer drew, in order; each one's prompts are RedTeamPrompt rows.
    behaviors = models.JSONField(default=list, blank=True)
    error_message = models.TextField(blank=True)
    trace = models.JSONField(default=dict, blank=True)
    total_cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    judge_calls = GenericRelation(
        "llm.JudgeCall",
        content_type_field="subject_type",
        object_id_field="subject_id",
        related_query_name="red_team_run",
    )

    objects = RedTeamRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "red team run"

    def __str__(self) -> str:
        return f"Red team run {str(self.code)[:8]}"

    @property
    def is_terminal(self) -> bool:
        return self.status not in self.ACTIVE

    @property
    def prompts_requested(self) -> int:
        return self.number_of_behaviors * self.number_of_prompts_per_behavior

    def steps_total(self) -> int:
        """What progress counts: the behaviour list, each behaviour's prompts, and each attack when there is a
        target."""
        return 1 + self.number_of_behaviors + (self.prompts_requested if self.target_model else 0)

    def cancel(self) -> bool:
        """Cancel if still pending or processing; return whether this call did it."""
        updated = RedTeamRun.objects.filter(pk=self.pk, status__in=self.ACTIVE).update(
            status=self.Status.CANCELED, completed_at=timezone.now()
        )
        if updated:
            self.refresh_from_db(fields=["status", "completed_at"])
        return bool(updated)


class RedTeamPrompt(models.Model):
    """One adversarial prompt of a run; with a target, also its answer and how the guardrail engine scored it."""

    run = models.ForeignKey(RedTeamRun, on_delete=models.CASCADE, related_name="prompts")
    behavior_index = models.PositiveIntegerField()
    position = models.PositiveIntegerField()  # within its behaviour
    query = models.TextField()
    adversarial_prompt = models.TextField()
    attacked = models.BooleanField(default=False)  # sent to the target and scored (or failed: see error)
    answer = models.TextField(blank=True)
    # {metric: {"score", "rationale", ...}}: comprehensive_safety and concern_adherence, as guardrail results are.
    scores = models.JSONField(default=dict, blank=True)
    # None: not scored (no target, not yet, or the target or a judge failed); True: the answer did what the
    # attack wanted (unsafe, or against the spec's concerns).
    succeeded = models.BooleanField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["behavior_index", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "behavior_index", "position"], name="redteamprompt_unique_position")
        ]

    def __str__(self) -> str:
        return f"{self.run} {self.behavior_index}.{self.position}"

    @property
    def worst_score(self) -> float | None:
        values = [s.get("score") for s in self.scores.values() if isinstance(s, dict)]
        numbers = [v for v in values if isinstance(v, int | float)]
        return min(numbers) if numbers else None

    def score_of(self, metric: str) -> Any:
        return (self.scores.get(metric) or {}).get("score")
