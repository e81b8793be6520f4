"""Pages for monitors and Defend workflows: lists, a monitor page (scores over time, failure rate, latest events
with drill-down to each evaluation, filtered by nametag and time) and a workflow page (pass rate, attempts per event),
with an event page showing each attempt's output beside its scores and the diff from the original to the final."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.dateparse import parse_date
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

from companies.access import get_object_for_user, require_active_membership

from .models import Monitor, Workflow, WorkflowEvent
from .selectors import monitor_evaluations, monitor_summary, workflow_event_attempts, workflow_success_rate

if TYPE_CHECKING:
    from companies.models import Membership

LATEST_EVENTS = 50


def home_section(request: HttpRequest, membership: Membership) -> SafeString:
    """The home dashboard's card (companies/extensions.py): the company's monitors and workflows."""
    company = membership.company
    context = {
        "monitors": Monitor.objects.for_company(company).count(),
        "workflows": Workflow.objects.for_company(company).count(),
    }
    return mark_safe(render_to_string("guardrails/_home_monitors.html", context, request))  # noqa: S308 - our template


def _day(value: str, *, end: bool = False) -> datetime | None:
    """A `YYYY-MM-DD` filter as midnight UTC (the next midnight for an inclusive end day); None if it is not one."""
    try:
        day = parse_date(value)
    except ValueError:
        return None
    if day is None:
        return None
    moment = datetime.combine(day, time.min, tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


@login_required
@require_safe
def monitor_list(request: HttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    monitors = Monitor.objects.for_company(membership.company).annotate(event_count=Count("events"))
    return render(request, "guardrails/monitor_list.html", {"monitors": monitors})


@login_required
@require_safe
def monitor_detail(request: HttpRequest, code: UUID) -> HttpResponse:
    monitor, _membership = get_object_for_user(Monitor.objects.all(), request.user, code=code)
    filters = {key: request.GET.get(key, "").strip() for key in ("nametag", "since", "until")}
    evaluations = monitor_evaluations(
        monitor=monitor,
        nametag=filters["nametag"],
        since=_day(filters["since"]),
        until=_day(filters["until"], end=True),
    )
    context = {
        "monitor": monitor,
        "filters": filters,
        "summary": monitor_summary(evaluations=evaluations),
        "latest": list(evaluations.select_related("monitor_event")[:LATEST_EVENTS]),
        "total": evaluations.count(),
    }
    return render(request, "guardrails/monitor_detail.html", context)


@login_required
@require_safe
def workflow_list(request: HttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    workflows = Workflow.objects.for_company(membership.company).annotate(
        event_count=Count("events"),
        decided=Count("events", filter=Q(events__filtered__isnull=False)),
        passed=Count("events", filter=Q(events__filtered=False)),
    )
    return render(request, "guardrails/workflow_list.html", {"workflows": workflows})


@login_required
@require_safe
def workflow_detail(request: HttpRequest, code: UUID) -> HttpResponse:
    workflow, _membership = get_object_for_user(Workflow.objects.all(), request.user, code=code)
    events = workflow.events.annotate(attempt_count=Count("attempts")).order_by("-created_at", "-id")
    context = {
        "workflow": workflow,
        "success_rate": workflow_success_rate(workflow),
        "events": events[:LATEST_EVENTS],
        "total": events.count(),
    }
    return render(request, "guardrails/workflow_detail.html", context)


@login_required
@require_safe
def workflow_event_detail(request: HttpRequest, code: UUID, event_code: UUID) -> HttpResponse:
    workflow, _membership = get_object_for_user(Workflow.objects.all(), request.user, code=code)
    event = get_object_for_user(WorkflowEvent.objects.filter(workflow=workflow), request.user, code=event_code)[0]
    attempts = workflow_event_attempts(event)
    # Word by word, so a sentence changed in one place shows that place; the output is untrusted text, escaped.
    diff = []
    if len(attempts) > 1:
        original, final = attempts[0]["output"].split(), attempts[-1]["output"].split()
        for line in difflib.ndiff(original, final):
            if not line.startswith("?"):
                diff.append({"op": {"+": "added", "-": "removed"}.get(line[0], "same"), "text": line[2:]})
    return render(
        request,
        "guardrails/workflow_event.html",
        {"workflow": workflow, "event": event, "attempts": attempts, "diff": diff},
    )
