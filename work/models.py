"""Background work as rows: the database is the source of truth, the queue only wakes workers (DESIGN.md §6)."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from companies.models import Company


class WorkItemQuerySet(models.QuerySet["WorkItem"]):
    def for_subject(self, kind_prefix: str, subject_id: int) -> WorkItemQuerySet:
        return self.filter(kind__startswith=kind_prefix, subject_id=subject_id)

    def open(self) -> WorkItemQuerySet:
        return self.filter(state__in=[WorkItem.State.QUEUED, WorkItem.State.RUNNING])

    def in_flight(self, *, sent_after: datetime) -> WorkItemQuerySet:
        """Running, or sent to the broker recently enough (after `sent_after`) that its message may still be on its
        way."""
        return self.filter(
            Q(state=WorkItem.State.RUNNING) | Q(state=WorkItem.State.QUEUED, enqueued_at__gte=sent_after)
        )

    def ready(self, *, now: datetime, sent_before: datetime) -> WorkItemQuerySet:
        """Queued, due, and not sent to the broker lately: never, or before `sent_before` (its message presumed lost)."""
        return self.filter(state=WorkItem.State.QUEUED, available_at__lte=now).filter(
            Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=sent_before)
        )

    def next_steps(self, item: WorkItem) -> WorkItemQuerySet:
        """Queued items of `item`'s subject that it created while it ran (e.g. a start's classify items)."""
        family = item.kind.partition(".")[0] + "."
        return self.for_subject(family, item.subject_id).filter(
            state=WorkItem.State.QUEUED, created_at__gte=item.started_at
        )


class WorkItem(models.Model):
    """One unit of background work (an evaluation's start, its classification, its finalize; a guardrail
    evaluation): claimed by a worker under a lease that it extends while it works. A reconciler re-queues items
    whose lease expired or whose message was lost, counts attempts, and ends the subject after the last one."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELED = "canceled"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=64)  # a handler name in work.registry, e.g. "evaluation.classify"
    subject_id = models.PositiveBigIntegerField()  # the row the handler works on (an evaluation's id, ...)
    args = models.JSONField(default=dict, blank=True)
    # One item per key: creating it twice (a re-delivered start, two finishing items) is a no-op.
    key = models.CharField(max_length=200, unique=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    # Failed or lost claims; an item that yields its turn (time slice, graceful stop) does not count.
    attempts = models.PositiveSmallIntegerField(default=0)
    # Increments at every claim: a worker that lost its claim (lease expired, canceled) can no longer write.
    claim = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)  # not before (backoff after a failure)
    enqueued_at = models.DateTimeField(null=True, blank=True)  # last sent to the broker
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=100, blank=True)  # host:pid of the last claim, for operators
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = WorkItemQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["state", "available_at"], name="workitem_state_available"),
            models.Index(fields=["company", "state"], name="workitem_company_state"),
            models.Index(fields=["kind", "subject_id"], name="workitem_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in {self.State.DONE, self.State.FAILED, self.State.CANCELED}
