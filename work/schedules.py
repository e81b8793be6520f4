"""The reconciler's django-q2 schedules: two one-minute schedules half a minute apart, so it runs every ~30 s
(django-q2 schedules have a one-minute resolution, and its scheduler looks every 30 s)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_q.models import Schedule

NAMES = ("work: reconcile (:00)", "work: reconcile (:30)")


def ensure_schedules(sender: Any = None, **kwargs: Any) -> None:
    """Create the reconciler's schedules if missing (run after every migrate)."""
    start = timezone.now()
    for offset, name in enumerate(NAMES):
        Schedule.objects.get_or_create(
            name=name,
            defaults={
                "func": "work.tasks.reconcile",
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
                "next_run": start + timedelta(seconds=30 * offset),
            },
        )
