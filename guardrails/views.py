"""Pages for guardrail evaluations (DeepRails /evaluate): a filterable list with live status, and a detail page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django_htmx.http import HTMX_STOP_POLLING

from companies.access import get_object_for_user, require_active_membership

from .models import GuardrailEvaluation
from .rubrics import RUN_MODES
from .selectors import guardrail_evaluations, guardrail_metric_summary, guardrail_score_chart, guardrail_trace

if TYPE_CHECKING:
    from companies.models import Membership
    from config.http import HtmxHttpRequest


def home_section(request: HttpRequest, membership: Membership) -> SafeString:
    """The home dashboard's guardrails card (companies/extensions.py): evaluations and mean score per metric."""
    context = {"metrics": guardrail_metric_summary(company=membership.company)}
    return mark_safe(render_to_string("guardrails/_home.html", context, request))  # noqa: S308 - our template, autoescaped


@login_required
def guardrail_list(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    filters = {key: request.GET.get(key, "") for key in ("nametag", "status", "run_mode")}
    rows = guardrail_evaluations(company=membership.company, **filters)
    page = Paginator(rows, settings.PAGE_SIZE).get_page(request.GET.get("page", 1))
    running = any(not row.is_terminal for row in page)
    context = {
        "page": page,
        "filters": filters,
        "running": running,
        "statuses": GuardrailEvaluation.Status.values,
        "run_modes": RUN_MODES,
    }
    if request.htmx and not request.htmx.history_restore_request:  # back to a pushed URL: the page
        response = render(request, "guardrails/list.html#guardrails-table", context)
        if not running:
            response.status_code = HTMX_STOP_POLLING  # nothing left to watch
        return response
    return render(request, "guardrails/list.html", context)


@login_required
def guardrail_detail(request: HtmxHttpRequest, eval_id: str) -> HttpResponse:
    code = GuardrailEvaluation.parse_eval_id(eval_id)
    if code is None:
        raise Http404
    evaluation, _membership = get_object_for_user(GuardrailEvaluation.objects.with_ledger(), request.user, code=code)
    context = {
        "evaluation": evaluation,
        "trace": guardrail_trace(evaluation),
        "chart": guardrail_score_chart(evaluation=evaluation),
        "model_input": [(k, v) for k, v in evaluation.model_input.items() if v],
    }
    if request.htmx:
        response = render(request, "guardrails/detail.html#guardrail-body", context)
        if evaluation.is_terminal:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "guardrails/detail.html", context)
