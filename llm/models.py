"""The call ledger and the result cache. Calls point at the work they served through a generic relation, so this
app knows nothing of the apps that call it (evaluations, guardrails, run generation)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Count, Q, Sum
from django.utils import timezone

from companies.models import Company


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
                name="llm_judgecache_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.config_hash[:8]}/{self.content_hash[:8]}"


class JudgeCallQuerySet(models.QuerySet["JudgeCall"]):
    def totals(self) -> dict[str, Any]:
        """Calls, tokens and cost of these rows, in one aggregate; `unknown`: calls sent whose outcome no worker
        can still tell (costed at their ceiling)."""
        totals = self.aggregate(
            calls=Count("id"),
            unknown=Count("id", filter=Q(outcome=JudgeCall.Outcome.SENT, created_at__lt=unknown_before())),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cache_read_tokens=Sum("cache_read_tokens"),
            cache_write_tokens=Sum("cache_write_tokens"),
            cost_usd=Sum("cost_usd"),
        )
        return {k: (v or 0) for k, v in totals.items()} | {"cost_usd": float(totals["cost_usd"] or Decimal(0))}


class JudgeCall(models.Model):
    """The ledger: one row per provider call attempt, with its tokens, cost, latency and outcome."""

    class Outcome(models.TextChoices):
        OK = "ok"
        RATE_LIMITED = "rate_limited"
        SERVER_ERROR = "server_error"
        TIMEOUT = "timeout"
        BAD_REPLY = "bad_reply"
        REFUSED = "refused"
        REJECTED = "rejected"
        FATAL = "fatal"
        # Sent, then given up when the worker stopped (SIGTERM) before the answer came: billed or not, unknown.
        ABANDONED = "abandoned"
        # Written before the request left; completed with one of the above when the answer comes. Still "sent"
        # after no worker can complete it (outcome_unknown): the worker died mid-call.
        SENT = "sent"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    # The work the call served (an evaluation, a guardrail evaluation, a generation run); its app declares a
    # GenericRelation, so its rows go when it goes and it can sum its own calls.
    subject_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("subject_type", "subject_id")
    # The unit of that work (e.g. a sample's id), when there is one.
    item_id = models.PositiveBigIntegerField(null=True, blank=True)
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
    # The prompt's version (e.g. "classify-v2") and, unless LLM_STORE_PROMPTS is off, what was sent and what came
    # back, each cut to ledger.STORED_TEXT_MAX_CHARS: enough to show why the judge said so (the sample page).
    prompt_version = models.CharField(max_length=32, blank=True)
    system_prompt = models.TextField(blank=True)
    user_prompt = models.TextField(blank=True)
    raw_answer = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JudgeCallQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["subject_type", "subject_id", "purpose"], name="judgecall_subject"),
            models.Index(fields=["company", "created_at"], name="judgecall_company_created"),
            # A sample's calls within its evaluation (the sample page).
            models.Index(fields=["subject_type", "subject_id", "item_id"], name="judgecall_item"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.purpose} #{self.attempt} {self.display_outcome}"

    @property
    def outcome_unknown(self) -> bool:
        """Sent, and no worker can still complete it: its call outlived the call timeout and the worker's lease
        (the worker was killed mid-call). Costed at the ceiling written when it was sent; billed or not, unknown."""
        return self.outcome == self.Outcome.SENT and self.created_at < unknown_before()

    @property
    def display_outcome(self) -> str:
        return "outcome unknown" if self.outcome_unknown else self.outcome


def unknown_before() -> datetime:
    """ "Sent" rows written before this can no longer be completed by any worker."""
    seconds = settings.JUDGE_TIMEOUT_SECONDS + settings.WORK_LEASE_SECONDS
    return timezone.now() - timedelta(seconds=seconds)
