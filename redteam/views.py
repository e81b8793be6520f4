"""Red-team pages: specs and runs of the company, a spec with its runs, and a run with its behaviours and prompts
(live while it runs); with a target, the attack success rate per behaviour as a chart and each answer beside its
scores, worst first. Answers are untrusted model output: rendered escaped, like every sample."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING

from companies.access import require_active_membership

from . import selectors
from .access import get_red_team_run_for_user, get_red_team_spec_for_user, get_rw_red_team_run_for_user
from .models import RedTeamRun, RedTeamSpec
from .services import RedTeamError, red_team_run_cancel

if TYPE_CHECKING:
    from uuid import UUID

    from companies.models import Membership
    from config.http import HtmxHttpRequest


def home_section(request: HttpRequest, membership: Membership) -> SafeString:
    """The home dashboard's red-teaming card (companies/extensions.py): specs and runs, in one query."""
    counts = RedTeamSpec.objects.for_company(membership.company).aggregate(
        specs=Count("id", distinct=True), runs=Count("runs", distinct=True)
    )
    return mark_safe(render_to_string("redteam/_home.html", counts, request))  # noqa: S308 - our template, autoescaped


@login_required
def red_team_list(request: HttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    company = membership.company
    context = {
        "specs": RedTeamSpec.objects.for_company(company).annotate(run_count=Count("runs")).order_by("-created_at"),
        "runs": RedTeamRun.objects.for_company(company).select_related("spec").order_by("-created_at")[:100],
    }
    return render(request, "redteam/list.html", context)


@login_required
def red_team_spec_detail(request: HttpRequest, code: UUID) -> HttpResponse:
    spec, _membership = get_red_team_spec_for_user(request.user, code)
    return render(request, "redteam/spec_detail.html", {"spec": spec, "runs": spec.runs.order_by("-created_at")})


@login_required
def red_team_run_detail(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    run, membership = get_red_team_run_for_user(request.user, code)
    prompts = list(run.prompts.all())
    behaviors = [
        {"number": i + 1, "text": text, "prompts": [p for p in prompts if p.behavior_index == i]}
        for i, text in enumerate(run.behaviors)
    ]
    summary = selectors.attack_summary(run, prompts)
    context = {
        "run": run,
        "membership": membership,
        "progress": selectors.progress(run, prompts),
        "behaviors": behaviors,
        "summary": summary,
        "chart": selectors.success_chart(summary) if summary else None,
        "attacks": selectors.worst_first([p for p in prompts if p.attacked]) if summary else [],
    }
    if request.htmx:
        response = render(request, "redteam/run_detail.html#red-team-run-body", context)
        if run.is_terminal:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "redteam/run_detail.html", context)


@login_required
@require_POST
def red_team_run_cancel_view(request: HttpRequest, code: UUID) -> HttpResponse:
    run, _membership = get_rw_red_team_run_for_user(request.user, code)
    try:
        red_team_run_cancel(run=run)
    except RedTeamError as exc:
        messages.error(request, str(exc))
    return redirect("redteam:run-detail", code=run.code)
