"""The evaluation pages: the list, an evaluation (its sample table, name and note), a sample, start, cancel, the
exports, the run page's card and the home card. Just over 400 lines: each view is short and they share the sample
table's filters; compare is in compare_views.py, human review in review_views.py."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseClientRedirect, trigger_client_event

from companies.access import require_active_membership
from companies.models import Membership
from companies.quotas import QuotaExceeded
from config.spreadsheet import Echo, safe_row
from llm.catalog import UnknownModel
from runs.access import get_run_for_user
from runs.models import Run, Spec

from . import agreement
from .access import get_evaluation_for_user
from .batch import price_estimate
from .charts import property_views
from .compare import COMPARE_MAX, compare_candidates
from .dashboard import evaluation_list, recent_evaluations, score_trend_chart
from .forms import EvaluateForm, EvaluationListForm, EvaluationNameForm, SampleTableForm
from .human_labels import corrections_for, sample_reviews
from .human_review import human_review_blocks, run_labels
from .judge_calls import sample_calls
from .models import Evaluation, SampleClassification
from .navigation import sample_neighbours, table_query
from .review_queue import (
    reviewer_agreements,
)
from .run_card import run_evaluation_rows
from .sample_table import SAMPLE_PAGE_SIZES, classification_page, classification_rows, sample_sort_choices
from .services import (
    EvaluationError,
    evaluation_cancel,
    evaluation_create,
)
from .trace import evaluation_trace

if TYPE_CHECKING:
    from config.http import HtmxHttpRequest


def _filters(request: HtmxHttpRequest, properties: list[str]) -> dict[str, Any]:
    """The sample table's state, all of it in the URL: value filters, text search, sort and page size."""
    table = SampleTableForm(request.GET, sorts=sample_sort_choices(properties), sizes=SAMPLE_PAGE_SIZES)
    return {
        "prop": request.GET.get("property", ""),
        "assigned": request.GET.get("assigned", ""),
        "judged": request.GET.get("judged", ""),
        "mismatch": request.GET.get("mismatch") == "1",
        **table.values(),
    }


def run_evaluations_section(request: HttpRequest, run: Run, membership: Membership) -> SafeString:
    """The run page's "Evaluations" card (history and the evaluate form), contributed through runs' extension
    slot so that runs never imports this app."""
    context = _run_evaluations_context(run, membership) | {"evaluate_form": EvaluateForm(prices=price_estimate(run))}
    return mark_safe(render_to_string("evaluations/_run_evaluations.html", context, request))  # noqa: S308 - our template, autoescaped


def _run_evaluations_context(run: Run, membership: Membership) -> dict[str, Any]:
    evaluations, in_flight = run_evaluation_rows(run.id)
    return {
        "run": run,
        "membership": membership,
        "evaluations": evaluations,
        "in_flight": in_flight,
        "compare_max": COMPARE_MAX,
    }


@login_required
def run_evaluations_table(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """The run page's evaluations table, which polls this while an evaluation is unfinished: once none is, the
    answer is 286 (the final table, swapped in, and no more polling)."""
    run, membership = get_run_for_user(request.user, code)
    if not request.htmx:  # a fragment: opened on its own, it is the run page's section
        return redirect(reverse("runs:detail", args=[run.code]) + "#evaluations")
    context = _run_evaluations_context(run, membership)
    response = render(request, "evaluations/_run_evaluations.html#run-evaluations-table", context)
    if not context["in_flight"]:
        response.status_code = HTMX_STOP_POLLING
    return response


def home_section(request: HttpRequest, membership: Membership) -> SafeString:
    """The home dashboard's card (companies/extensions.py): recent evaluations and the score trend per spec, or a
    getting-started panel while the company has no runs."""
    company = membership.company
    context: dict[str, object] = {"membership": membership}
    if Run.objects.for_company(company).exists():
        context["recent"] = recent_evaluations(company=company)
        context["trend"] = score_trend_chart(company=company)
    else:
        context["getting_started"] = True
    return mark_safe(render_to_string("evaluations/_home.html", context, request))  # noqa: S308 - our template, autoescaped


@login_required
def evaluation_list_page(request: HtmxHttpRequest) -> HttpResponse:
    """The active company's evaluations; every filter and the sort live in the URL, so a view can be shared."""
    membership = require_active_membership(request)
    form = EvaluationListForm(request.GET)
    filters = form.filters()
    company = membership.company
    # A spec or run of another company is a 404, as it would be on its own page.
    if "spec" in filters:
        filters["spec"] = get_object_or_404(Spec.objects.for_company(company), code=filters["spec"])
    if "run" in filters:
        filters["run"] = get_object_or_404(Run.objects.for_company(company), code=filters["run"])
    rows = evaluation_list(company=company, **filters)
    page = Paginator(rows, settings.PAGE_SIZE).get_page(request.GET.get("page", 1))
    sort = filters.get("sort", "-date")
    # Each sortable header links to its column ascending, or descending when it is already ascending.
    columns = [
        {"label": label, "key": key, "next": f"-{key}" if sort == key else key,
         "arrow": "▲" if sort == key else "▼" if sort == f"-{key}" else ""}
        # Score second: on a phone the columns past the first few are a sideways scroll away.
        for label, key in (("Name", "name"), ("Date", "date"), ("Score", "score"), ("Spec", "spec"),
                           ("Judge", "judge"), ("Status", "status"))
    ]  # fmt: skip
    context = {"page": page, "form": form, "filters": filters, "columns": columns}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "evaluations/list.html#evaluations-table", context)
    context["specs"] = Spec.objects.for_company(company).order_by("name")
    context["runs"] = Run.objects.for_company(company).select_related("spec").order_by("-created_at")[:200]
    return render(request, "evaluations/list.html", context)


@login_required
def evaluation_detail(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    evaluation, membership = get_evaluation_for_user(request.user, code)
    partial = request.GET.get("partial", "")
    # Back to a pushed URL that htmx no longer has cached asks for the whole page.
    htmx = bool(request.htmx) and not request.htmx.history_restore_request
    if htmx and partial == "progress":
        # The small live box on the run page.
        return _progress(request, evaluation)
    properties = [a["property_name"] for a in evaluation.distribution_analysis or []]
    filters = _filters(request, properties)
    context = {
        "evaluation": evaluation,
        "membership": membership,
        "filters": filters,
        "properties": properties,
        "values": {p["property_name"]: p["values"] for p in (evaluation.statistics or {}).get("properties", [])},
        "sorts": sample_sort_choices(properties),
        "sizes": SAMPLE_PAGE_SIZES,
        # The judged filter's choices beyond the property's values: the samples the judge gave none.
        "not_judged": [SampleClassification.UNDECIDED, SampleClassification.FAILED],
        "query": table_query(request.GET),  # carried to each sample page, for its previous / next
        "can_correct": membership.can_write and evaluation.status == Evaluation.Status.SUCCEEDED,
    }
    if htmx and partial != "body":
        context["page"] = _table_page(request, evaluation, filters)
        return render(request, "evaluations/detail.html#classifications-table", context)
    context["trace"] = evaluation_trace(evaluation)
    context["name_form"] = EvaluationNameForm(instance=evaluation)
    if evaluation.status == Evaluation.Status.SUCCEEDED:
        context["page"] = _table_page(request, evaluation, filters)
        views = property_views(evaluation=evaluation, human=human_review_blocks(evaluation=evaluation))
        context["views"] = views
        # Until someone labels a sample, the human review section is one line (and the way to the queue).
        context["any_reviews"] = any((view.get("human") or {}).get("reviewed") for view in views)
        context["fit_kappa"], context["min_reviews"] = agreement.FIT_FOR_USE_KAPPA, agreement.MIN_REVIEWS
        context["partial_reviews"] = agreement.PARTIAL_REVIEWS
        found = reviewer_agreements(evaluation=evaluation)
        context["reviewer_agreements"] = [(name, found[name]) for name in properties if name in found]
        # The compare picker: finished evaluations of this spec's runs (this one is the baseline).
        context["others"] = [e for e in compare_candidates(evaluation=evaluation, limit=31) if e.pk != evaluation.pk]
        context["compare_max"] = COMPARE_MAX
    if htmx:  # the running page's poll: swap in the finished body once it is done
        response = render(request, "evaluations/detail.html#evaluation-body", context)
        if evaluation.is_terminal:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "evaluations/detail.html", context)


def _table_page(
    request: HtmxHttpRequest, evaluation: Evaluation, filters: dict[str, Any]
) -> Page[SampleClassification]:
    """A page of the sample table (a writer corrects a row in place through its one "Correct" button, which
    fetches that row's forms: no per-row dropdowns, no labels query for the page)."""
    return classification_page(evaluation=evaluation, page=request.GET.get("page", 1), **filters)


@login_required
def evaluation_sample(request: HtmxHttpRequest, code: UUID, sample_code: UUID) -> HttpResponse:
    """One sample as this evaluation saw it: its content, the values assigned and judged, the judge's call as the
    ledger recorded it, and its previous and next within the sample table's filters (carried in the URL)."""
    evaluation, membership = get_evaluation_for_user(request.user, code)
    row = get_object_or_404(
        SampleClassification.objects.select_related("sample"), evaluation=evaluation, sample__code=sample_code
    )
    judged = row.classifications or {}
    rationales = row.rationales or {}
    properties = evaluation.run.spec_version.parsed_properties
    values = [
        {
            "name": p.name,
            "assigned": row.sample.properties.get(p.name),
            # A property the judge left out of its answer is undecided (not a mismatch); a failed sample has none.
            "judged": judged.get(p.name),
            "undecided": row.status == SampleClassification.Status.OK and p.name not in judged,
            "rationale": rationales.get(p.name, ""),
        }
        for p in properties
    ]
    names = [a["property_name"] for a in evaluation.distribution_analysis or []]
    context = {
        "evaluation": evaluation,
        "row": row,
        "sample": row.sample,
        "values": values,
        "reviews": sample_reviews(sample_id=row.sample_id),
        "calls": sample_calls(evaluation=evaluation, row=row),
        "query": table_query(request.GET),
        "neighbours": sample_neighbours(
            evaluation=evaluation, sample_code=sample_code, filters=_filters(request, names)
        ),
    }
    if membership.can_write and evaluation.status == Evaluation.Status.SUCCEEDED:
        context["corrections"] = corrections_for(properties, row.sample_id, membership.user_id)
    return render(request, "evaluations/sample.html", context)


def _progress(request: HtmxHttpRequest, evaluation: Evaluation) -> HttpResponse:
    response = render(
        request, "evaluations/_progress.html", {"evaluation": evaluation, "trace": evaluation_trace(evaluation)}
    )
    if evaluation.is_terminal:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_POST
def evaluation_start(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    run, membership = get_run_for_user(request.user, code)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    form = EvaluateForm(request.POST)
    error, retry_after = "", None
    if form.is_valid():
        try:
            evaluation = evaluation_create(
                company=run.company, created_by=membership.user, run=run,
                model_name=form.cleaned_data["evaluation_model"], batch=form.batch,
            )  # fmt: skip
        except (EvaluationError, UnknownModel) as exc:
            error = str(exc)
        except QuotaExceeded as exc:
            error, retry_after = str(exc), exc.retry_after
        else:
            if request.htmx:
                response = _progress(request, Evaluation.objects.get(pk=evaluation.pk))
                response.status_code = 200  # a POST answer, not a poll: always swap it in
                # The run page's evaluations table listens for this, to show the new row and poll until it ends.
                return trigger_client_event(response, "evaluation-started")
            return redirect("evaluations:detail", code=evaluation.code)
    else:
        error = "; ".join(str(e) for errors in form.errors.values() for e in errors)
    if retry_after is not None:  # a quota: 429 with the limit named, HTMX or not
        response = render(request, "evaluations/_start_error.html", {"error": error}, status=429)
        response["Retry-After"] = str(retry_after)
        return response
    if request.htmx:
        return render(request, "evaluations/_start_error.html", {"error": error}, status=400)
    raise Http404(error)


@login_required
@require_POST
def evaluation_cancel_view(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    evaluation, membership = get_evaluation_for_user(request.user, code)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    try:
        evaluation_cancel(evaluation=evaluation, canceled_by=membership.user)
    except EvaluationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Evaluation canceled: no new judge call starts.")
    url = reverse("evaluations:detail", args=[evaluation.code])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def evaluation_rename(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """Set the name and note from the evaluation page: the heading again (HTMX) or a redirect; errors at the top of
    the form, the values kept, with a 400."""
    evaluation, membership = get_evaluation_for_user(request.user, code)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    # Validated on a copy, so a refused value never shows as the evaluation's name.
    form = EvaluationNameForm(request.POST, instance=Evaluation(name=evaluation.name, note=evaluation.note))
    status = HTTPStatus.BAD_REQUEST
    if form.is_valid():
        evaluation.rename(name=form.cleaned_data["name"], note=form.cleaned_data["note"])
        if not request.htmx:
            return redirect("evaluations:detail", code=evaluation.code)
        form, status = EvaluationNameForm(instance=evaluation), HTTPStatus.OK
    context = {"evaluation": evaluation, "membership": membership, "name_form": form}
    return render(request, "evaluations/detail.html#evaluation-name", context, status=status)


def _export_rows(
    evaluation: Evaluation,
) -> Iterator[tuple[int, str, str, dict[str, str], dict[str, str] | None, str, dict[str, str] | None, str]]:
    rows = classification_rows(evaluation=evaluation).values_list(
        "sample_id", "sample__identifier", "status", "sample__properties", "classifications", "error", "rationales",
        "sample__content",
    )  # fmt: skip
    yield from rows.iterator(chunk_size=2000)


@login_required
def evaluation_export(request: HtmxHttpRequest, code: UUID, fmt: str) -> StreamingHttpResponse:
    """The classifications and the human labels as CSV or JSONL, streamed row by row from a server-side cursor: per
    sample its values assigned, judged and labelled by humans, the judge's rationales, the judge model and the
    content (new columns go last, so readers of the older files keep working)."""
    evaluation, _ = get_evaluation_for_user(request.user, code)
    names = [a["property_name"] for a in evaluation.distribution_analysis or []] or [
        p.name for p in evaluation.run.spec_version.parsed_properties
    ]
    # The human labels, combined over reviewers (a few hundred rows per property, read once, not per sample).
    labels = run_labels(run_id=evaluation.run_id)

    def _human(name: str, sample_id: int) -> str | None:
        label = labels.get(name, {}).get(sample_id)
        return label.value if label else None

    model = evaluation.model_used or evaluation.requested_model

    def _judged(status: str, judged: dict[str, str] | None) -> dict[str, str]:
        # Every property's stratum: a value, or "(undecided)" / "(failed)" rather than a blank (issue #20).
        row = SampleClassification(status=status, classifications=judged)
        return {n: row.stratum(n) for n in names}

    if fmt == "csv":
        writer = csv.writer(Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow(
                [
                    "sample_identifier",
                    "status",
                    *[f"assigned_{n}" for n in names],
                    *[f"judged_{n}" for n in names],
                    *[f"human_{n}" for n in names],
                    "error",
                    *[f"rationale_{n}" for n in names],
                    "model",
                    "content",
                ]
            )
            for sample_id, identifier, status, assigned, judged, error, rationales, content in _export_rows(evaluation):
                judged, rationales = _judged(status, judged), rationales or {}
                # Identifiers, values, errors, rationales and content come from users and models: never let one
                # run as a formula.
                yield writer.writerow(
                    safe_row(
                        [
                            identifier,
                            status,
                            *[assigned.get(n, "") for n in names],
                            *[judged.get(n, "") for n in names],
                            *[_human(n, sample_id) or "" for n in names],
                            error,
                            *[rationales.get(n, "") for n in names],
                            model,
                            content,
                        ]
                    )
                )

        content_type = "text/csv"
    else:

        def lines() -> Iterator[str]:
            for sample_id, identifier, status, assigned, judged, error, rationales, content in _export_rows(evaluation):
                human = {n: value for n in names if (value := _human(n, sample_id)) is not None}
                record = {
                    "sample_identifier": identifier,
                    "status": status,
                    "assigned": assigned,
                    "judged": _judged(status, judged),
                    "human": human,
                    "rationales": rationales or {},
                    "model": model,
                    "content": content,
                }
                if error:
                    record["error"] = error
                yield json.dumps(record, ensure_ascii=False) + "\n"

        content_type = "application/jsonl"
    response = StreamingHttpResponse(lines(), content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"evaluation-{evaluation.code}.{fmt}")
    return response
