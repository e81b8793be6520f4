"""Pages for guardrail evaluations (DeepRails /evaluate): a filterable list with live status, and a detail page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseClientRedirect

from companies.access import get_object_for_user, require_active_membership
from companies.quotas import QuotaExceeded

from .forms import GuardrailCreateForm
from .metrics import METRICS, RUN_MODES
from .models import GuardrailEvaluation
from .selectors import guardrail_evaluations, guardrail_metric_summary, guardrail_score_chart, guardrail_trace
from .services import GuardrailInputError, guardrail_evaluation_create

if TYPE_CHECKING:
    from companies.models import Membership
    from config.http import HtmxHttpRequest


def home_section(request: HttpRequest, membership: Membership) -> SafeString:
    """The home dashboard's guardrails card (companies/extensions.py): evaluations and mean score per metric."""
    context = {"metrics": guardrail_metric_summary(company=membership.company)}
    return mark_safe(render_to_string("guardrails/_home.html", context, request))  # noqa: S308 - our template, autoescaped


def _score_level(result: dict[str, Any]) -> str:
    """The colour of a metric's cell: good, fair or poor by score; none when unscored or not judged."""
    score = result.get("score")
    if score is None or result.get("judged") is False:
        return "none"
    return "good" if score >= 0.8 else "fair" if score >= 0.5 else "poor"


@login_required
@require_http_methods(["GET", "POST"])
def guardrail_list(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    if request.method == "POST":
        if not membership.can_write:
            raise PermissionDenied("Your role in this company is read-only.")
        form = GuardrailCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                evaluation = guardrail_evaluation_create(
                    company=membership.company,
                    created_by=membership.user,
                    model_input={k: data[k] for k in ("system_prompt", "user_prompt") if data[k].strip()},
                    model_output=data["model_output"],
                    run_mode=data["run_mode"],
                    guardrail_metrics=data["guardrail_metrics"] or None,
                    nametag=data["nametag"] or None,
                )
            except (GuardrailInputError, QuotaExceeded) as exc:
                form.add_error(None, str(exc))
            else:
                # Post/redirect/get: a reload of the detail page never creates a second evaluation.
                detail = reverse("guardrails:detail", args=[evaluation.eval_id])
                return HttpResponseClientRedirect(detail) if request.htmx else redirect(detail)
    else:
        form = GuardrailCreateForm()
    filters = {key: request.GET.get(key, "") for key in ("nametag", "status", "run_mode", "sort")}
    rows = guardrail_evaluations(company=membership.company, **filters)
    page = Paginator(rows, settings.PAGE_SIZE).get_page(request.GET.get("page", 1))
    running = any(not row.is_terminal for row in page)
    # One column per metric any row of this page was graded on (and the sorted one), in the rubric's order.
    shown = {m for row in page for m in row.guardrail_metrics} | {filters["sort"].lstrip("-")}
    metrics = [m for m in METRICS if m in shown]
    for row in page:
        result = row.evaluation_result or {}
        row.cells = [  # type: ignore[attr-defined]
            {"result": result.get(m), "level": _score_level(result[m]) if m in result else "none"} for m in metrics
        ]
    sort = filters["sort"]
    columns = [
        {"metric": m, "next": f"-{m}" if sort != f"-{m}" else m, "sorted": sort.lstrip("-") == m} for m in metrics
    ]
    context = {
        "page": page,
        "filters": filters,
        "running": running,
        "columns": columns,
        "statuses": GuardrailEvaluation.Status.values,
        "run_modes": RUN_MODES,
        "form": form,
        "membership": membership,
    }
    status = 400 if form.errors else 200
    if request.htmx and request.method == "GET" and not request.htmx.history_restore_request:
        response = render(request, "guardrails/list.html#guardrails-table", context)
        if not running:
            response.status_code = HTMX_STOP_POLLING  # nothing left to watch
        return response
    return render(request, "guardrails/list.html", context, status=status)


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
