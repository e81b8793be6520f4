"""Monitor workflows (DeepRails `client.monitor`): create and update a monitor, record an event.

An event is an ordinary guardrail evaluation (its work item, attempts, fairness and quotas are those of `/evaluate`)
tied to its monitor by a MonitorEvent row, created in the same transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, Q

from companies.models import Company

from .models import GuardrailEvaluation, Monitor, MonitorEvent
from .services import GuardrailInputError, guardrail_evaluation_create

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def monitor_create(*, company: Company, created_by: User | None, name: str, description: str | None = None) -> Monitor:
    return Monitor.objects.create(company=company, created_by=created_by, name=name, description=description)


def monitor_update(
    *, monitor: Monitor, name: str | None = None, description: str | None = None, status: str | None = None
) -> Monitor:
    """Change what was given; a field left out keeps its value."""
    changes = {"name": name, "description": description, "status": status}
    for field, value in changes.items():
        if value is not None:
            setattr(monitor, field, value)
    monitor.save()
    return monitor


@transaction.atomic
def monitor_event_create(*, monitor: Monitor, created_by: User | None, **evaluation: Any) -> MonitorEvent:
    """Record one answer: its guardrail evaluation is queued (and counted in the quotas) like any other.
    An inactive monitor records nothing (GuardrailInputError, a 400)."""
    # Locked so that an update to inactive in flight cannot let an event in after it.
    monitor = Monitor.objects.select_for_update().get(pk=monitor.pk)
    if not monitor.is_active:
        raise GuardrailInputError(
            "This monitor is inactive and records no events: set monitor_status to active (PUT /monitor/{id}) first."
        )
    created = guardrail_evaluation_create(company=monitor.company, created_by=created_by, **evaluation)
    return MonitorEvent.objects.create(monitor=monitor, evaluation=created)


def monitor_stats(monitor: Monitor) -> dict[str, int]:
    """Its evaluations counted by status, in one query (the wire's `stats`)."""
    status = GuardrailEvaluation.Status
    counts = GuardrailEvaluation.objects.filter(monitor_event__monitor=monitor).aggregate(
        total_evaluations=Count("id"),
        completed_evaluations=Count("id", filter=Q(status=status.COMPLETED)),
        failed_evaluations=Count("id", filter=Q(status=status.FAILED)),
        in_progress_evaluations=Count("id", filter=Q(status=status.IN_PROGRESS)),
        queued_evaluations=Count("id", filter=Q(status=status.QUEUED)),
    )
    return {key: int(value or 0) for key, value in counts.items()}
