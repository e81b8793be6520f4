from __future__ import annotations

import csv
import dataclasses
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
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseClientRedirect, trigger_client_event

from companies.access import require_active_membership
from companies.models import Membership
from companies.quotas import QuotaExceeded
from config.spreadsheet import safe_row
from llm.catalog import UnknownModel
from runs.access import get_run_for_user
from runs.models import Run, Sample, Spec

from . import agreement
from .access import get_evaluation_for_user
from .batch import price_estimate
from .forms import EvaluateForm, EvaluationListForm, ReviewLabelForm, ReviewQueueForm, SampleTableForm
from .human_review import human_review_blocks, run_labels
from .models import Evaluation, Review, SampleClassification
from .review_queue import (
    QueueMode,
    reveal,
    review_card_sample,
    review_queue,
    reviewer_agreements,
    reviewer_history,
    sample_stratum,
)
from .selectors import (
    COMPARE_MAX,
    SAMPLE_PAGE_SIZES,
    classification_page,
    classification_rows,
    compare,
    compare_candidates,
    evaluation_list,
    evaluation_trace,
    property_views,
    recent_evaluations,
    reviewer_labels,
    run_evaluation_rows,
    sample_reviews,
    sample_sort_choices,
    score_trend_chart,
)
from .services import (
    EvaluationError,
    ReviewError,
    ReviewInput,
    evaluation_cancel,
    evaluation_create,
    review_save,
    review_withdraw,
)

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
        for label, key in (("Date", "date"), ("Score", "score"), ("Spec", "spec"), ("Judge", "judge"),
                           ("Status", "status"))
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
    }
    if htmx and partial != "body":
        context["page"] = _table_page(request, evaluation, membership, filters)
        return render(request, "evaluations/detail.html#classifications-table", context)
    context["trace"] = evaluation_trace(evaluation)
    if evaluation.status == Evaluation.Status.SUCCEEDED:
        context["page"] = _table_page(request, evaluation, membership, filters)
        context["views"] = property_views(evaluation=evaluation, human=human_review_blocks(evaluation=evaluation))
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
    request: HtmxHttpRequest, evaluation: Evaluation, membership: Membership, filters: dict[str, Any]
) -> Page[SampleClassification]:
    """A page of the sample table; for a writer, each row carries its in-place corrections: per property, the
    values to choose from and the reviewer's own label (one more query for the page)."""
    page = classification_page(evaluation=evaluation, page=request.GET.get("page", 1), **filters)
    if membership.can_write and evaluation.status == Evaluation.Status.SUCCEEDED:
        properties = evaluation.run.spec_version.parsed_properties
        mine = reviewer_labels(sample_ids=[row.sample_id for row in page], reviewer_id=membership.user_id)
        for row in page:
            row.corrections = [  # type: ignore[attr-defined]
                {"name": p.name, "values": p.values, "mine": mine.get(row.sample_id, {}).get(p.name)}
                for p in properties
            ]
    return page


@login_required
def evaluation_sample(request: HtmxHttpRequest, code: UUID, sample_code: UUID) -> HttpResponse:
    """One sample as this evaluation saw it: its content, the values it was assigned and the values judged."""
    evaluation, _membership = get_evaluation_for_user(request.user, code)
    row = get_object_or_404(
        SampleClassification.objects.select_related("sample"), evaluation=evaluation, sample__code=sample_code
    )
    judged = row.classifications or {}
    rationales = row.rationales or {}
    names = [p.name for p in evaluation.run.spec_version.parsed_properties]
    values = [
        {
            "name": name,
            "assigned": row.sample.properties.get(name),
            # A property the judge left out of its answer is undecided (not a mismatch); a failed sample has none.
            "judged": judged.get(name),
            "undecided": row.status == SampleClassification.Status.OK and name not in judged,
            "rationale": rationales.get(name, ""),
        }
        for name in names
    ]
    context = {
        "evaluation": evaluation,
        "row": row,
        "sample": row.sample,
        "values": values,
        "reviews": sample_reviews(sample_id=row.sample_id),
    }
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
def evaluation_compare(request: HtmxHttpRequest) -> HttpResponse:
    """2..COMPARE_MAX finished evaluations of runs of one spec (any versions), side by side, the first the baseline:
    `?e=<code>&e=<code>...` (or the older `?a=<code>&b=<code>`). A malformed or another company's evaluation is a
    404; evaluations that cannot be compared (too few or many, different specs, unfinished) a 400 that says why."""
    raw = request.GET.getlist("e") or [request.GET.get(key, "") for key in ("a", "b")]
    try:
        codes = list(dict.fromkeys(UUID(code) for code in raw))  # in order, each once
    except ValueError:
        raise Http404("Pick evaluations of runs of one spec.") from None
    evaluations = [get_evaluation_for_user(request.user, code)[0] for code in codes[: COMPARE_MAX + 1]]
    first = evaluations[0] if evaluations else None
    problem = None
    if not 2 <= len(evaluations) <= COMPARE_MAX:
        problem = f"Pick between 2 and {COMPARE_MAX} different evaluations to compare."
    elif other := next((e for e in evaluations if e.run.spec_id != evaluations[0].run.spec_id), None):
        problem = (
            f"A evaluates a run of the spec '{evaluations[0].run.spec}' and another a run of '{other.run.spec}': "
            "only evaluations of runs of one spec (any of its versions) can be compared."
        )
    elif not all(e.distribution_analysis for e in evaluations):
        problem = "Every evaluation must have finished successfully before they can be compared."
    if problem or first is None:
        invalid = {"evaluations": evaluations, "problem": problem}
        return render(request, "evaluations/compare_invalid.html", invalid, status=HTTPStatus.BAD_REQUEST)
    context = {
        "comparison": compare(evaluations=evaluations, human=[human_review_blocks(evaluation=e) for e in evaluations]),
        "baseline": first,
        # The picker: other finished evaluations of the spec's runs, to add (or, checked, to keep).
        "candidates": compare_candidates(evaluation=first, limit=30),
        "chosen": {e.code for e in evaluations},
        "compare_max": COMPARE_MAX,
    }
    return render(request, "evaluations/compare.html", context)


def _export_rows(
    evaluation: Evaluation,
) -> Iterator[tuple[int, str, str, dict[str, str], dict[str, str] | None, str, dict[str, str] | None, str]]:
    rows = classification_rows(evaluation=evaluation).values_list(
        "sample_id", "sample__identifier", "status", "sample__properties", "classifications", "error", "rationales",
        "sample__content",
    )  # fmt: skip
    yield from rows.iterator(chunk_size=2000)


class _Echo:
    def write(self, value: str) -> str:
        return value


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
        writer = csv.writer(_Echo())

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


# --- Human review: the queue, undo, corrections in place ---


def _my_label(request: HtmxHttpRequest, sample: Sample, prop: str) -> str | None:
    """The reviewer's own label on the sample's property, if any."""
    found: str | None = (
        Review.objects.filter(reviewer=request.user, sample=sample, property_name=prop)
        .values_list("value", flat=True)
        .first()
    )
    return found


def _review_card(request: HtmxHttpRequest, evaluation: Evaluation, queue: dict[str, Any]) -> dict[str, Any]:
    """The review card's context: the sample to label (the queue's next, or one asked for by `back`/`sample`), the
    property's values, the reviewer's own label, progress, the links for skip / back / forward, and, after an
    answer, what the judge said about the sample just labelled.

    The random queue is blind: until the reviewer has labelled the sample on the property, the card holds neither
    its judged nor its assigned values (of any property: they hint at each other)."""
    properties = evaluation.run.spec_version.parsed_properties
    by_name = {p.name: p for p in properties}
    prop = by_name.get(queue["prop"]) or properties[0]
    mode = QueueMode(queue["mode"])
    state = review_queue(
        evaluation=evaluation, prop=prop.name, mode=mode, reviewer_id=request.user.id, skip=queue["skip"]
    )
    sample, back = state.sample, queue["back"]
    if back:
        history = reviewer_history(evaluation=evaluation, reviewer_id=request.user.id, prop=prop.name, mode=mode)
        earlier = history[back - 1 : back]
        if earlier:
            sample = earlier[0].sample
        else:
            back = 0
    elif queue["sample"]:
        sample = review_card_sample(evaluation=evaluation, sample_code=str(queue["sample"])) or sample
    mine = _my_label(request, sample, prop.name) if sample is not None else None
    blind = mode == QueueMode.RANDOM and mine is None
    judged: dict[str, str] = {}
    if sample is not None and not blind:
        row = SampleClassification.objects.filter(evaluation=evaluation, sample=sample).first()
        judged = {p.name: row.stratum(p.name) if row else SampleClassification.FAILED for p in properties}
    answered = None
    if mode == QueueMode.RANDOM and queue["answered"]:
        # Only a sample the reviewer has labelled: the code comes from the URL, and the judged value must never
        # reach a card before its answer.
        previous = review_card_sample(evaluation=evaluation, sample_code=str(queue["answered"]))
        label = _my_label(request, previous, prop.name) if previous is not None else None
        if previous is not None and label is not None:
            answered = reveal(evaluation=evaluation, sample=previous, prop=prop.name, label=label)
    base = {"property": prop.name, "mode": mode.value}

    def link(**extra: Any) -> str:
        return f"{reverse('evaluations:review', args=[evaluation.code])}?{urlencode({**base, **extra}, doseq=True)}"

    undone = None
    if queue["sample"] and queue["undone"] in prop.values and sample is not None:
        # After an undo: HTMX's answer, or the page a plain form post is redirected to (the value is then from the
        # URL, hence the check against the property's values).
        undone = {"property_name": prop.name, "value": queue["undone"], "sample": sample}
    return {
        "undone": undone,
        "answered": answered,
        "evaluation": evaluation,
        "properties": [p.name for p in properties],
        "prop": prop.name,
        "mode": mode.value,
        "sample": sample,
        "blind": blind,
        "values": [(index, value) for index, value in enumerate(prop.values, start=1)],
        "judged_value": judged.get(prop.name),
        "others": [
            {"name": p.name, "assigned": sample.properties.get(p.name), "judged": judged.get(p.name)}
            for p in properties
        ]
        if sample is not None and not blind
        else [],
        "mine": mine,
        "state": state,
        "enough": state.reviewed >= state.total,
        "skip": queue["skip"],
        "back": back,
        "skip_url": link(skip=[*queue["skip"], str(sample.code)]) if sample is not None else None,
        "back_url": link(skip=queue["skip"], back=back + 1),
        "forward_url": link(skip=queue["skip"], back=back - 1) if back else None,
    }


def _render_card(request: HtmxHttpRequest, evaluation: Evaluation, queue: dict[str, Any], **extra: Any) -> HttpResponse:
    context = _review_card(request, evaluation, queue) | extra
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "evaluations/review.html#review-card", context, status=extra.get("status", 200))
    return render(request, "evaluations/review.html", context, status=extra.get("status", 200))


@login_required
def evaluation_review(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """The review queue: one sample at a time, a label with one key press. Viewers see it (read only)."""
    evaluation, membership = get_evaluation_for_user(request.user, code)
    if evaluation.status != Evaluation.Status.SUCCEEDED:
        raise Http404("Only a finished evaluation can be reviewed.")
    queue = ReviewQueueForm(request.GET).queue()
    return _render_card(request, evaluation, queue, membership=membership)


def _rw_succeeded_evaluation(request: HtmxHttpRequest, code: UUID) -> tuple[Evaluation, Membership]:
    evaluation, membership = get_evaluation_for_user(request.user, code)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    if evaluation.status != Evaluation.Status.SUCCEEDED:
        raise Http404("Only a finished evaluation can be reviewed.")
    return evaluation, membership


def _queue_redirect(evaluation: Evaluation, queue: dict[str, Any], **extra: Any) -> HttpResponse:
    params = {"property": queue["prop"], "mode": queue["mode"], "skip": queue["skip"], **extra}
    return redirect(f"{reverse('evaluations:review', args=[evaluation.code])}?{urlencode(params, doseq=True)}")


@login_required
@require_POST
def evaluation_review_label(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """Store one label from the queue, then show the next card (HTMX) or redirect to it (a plain form post)."""
    evaluation, membership = _rw_succeeded_evaluation(request, code)
    queue = ReviewQueueForm(request.POST).queue()
    form = ReviewLabelForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text())
    found = evaluation.run.samples.filter(code=form.cleaned_data["sample"]).values_list("id", "identifier").first()
    if found is None:
        raise Http404("No such sample in this evaluation's run.")
    sample_id, identifier = found
    mode, prop = QueueMode(queue["mode"]), form.cleaned_data["property"]
    item = ReviewInput(identifier, prop, form.cleaned_data["value"], mode.selection)
    if mode == QueueMode.RANDOM:
        # The label's design: drawn at random within this evaluation's stratum of the sample, and given blind.
        stratum = sample_stratum(evaluation=evaluation, sample_id=sample_id, prop=prop)
        item = dataclasses.replace(item, stratum=stratum, blind=True)
    try:
        review_save(evaluation=evaluation, reviewer=request.user, items=[item])
    except ReviewError as exc:
        return HttpResponseBadRequest(str(exc))
    # The next card, which first shows what the judge said about this sample (random queue only).
    answered = form.cleaned_data["sample"] if mode == QueueMode.RANDOM else None
    queue = {**queue, "prop": item.property_name, "back": 0, "sample": None, "answered": answered}
    if request.htmx:
        return _render_card(request, evaluation, queue, membership=membership)
    return _queue_redirect(evaluation, queue, **({"answered": str(answered)} if answered else {}))


@login_required
@require_POST
def evaluation_review_undo(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """Withdraw the reviewer's most recent label on the property and show that sample again."""
    evaluation, membership = _rw_succeeded_evaluation(request, code)
    queue = ReviewQueueForm(request.POST).queue()
    names = [p.name for p in evaluation.run.spec_version.parsed_properties]
    prop = queue["prop"] if queue["prop"] in names else names[0]
    mode = QueueMode(queue["mode"])
    latest = reviewer_history(evaluation=evaluation, reviewer_id=membership.user.id, prop=prop, mode=mode).first()
    queue = {**queue, "prop": prop, "back": 0, "sample": None, "undone": "", "answered": None}
    if latest is not None:
        queue["sample"], queue["undone"] = latest.sample.code, latest.value
        review_withdraw(review=latest)
    if request.htmx:
        return _render_card(request, evaluation, queue, membership=membership)
    return _queue_redirect(
        evaluation, queue, **({"sample": str(queue["sample"]), "undone": queue["undone"]} if latest else {})
    )


@login_required
@require_POST
def evaluation_sample_correct(request: HtmxHttpRequest, code: UUID, sample_code: UUID) -> HttpResponse:
    """Correct a judged value in place, from the sample table or the sample page: a `manual` label."""
    evaluation, membership = _rw_succeeded_evaluation(request, code)
    sample = get_object_or_404(evaluation.run.samples.all(), code=sample_code)
    prop, value = request.POST.get("property", ""), request.POST.get("value", "")
    try:
        review_save(
            evaluation=evaluation,
            reviewer=request.user,
            items=[ReviewInput(sample.identifier, prop, value, Review.Selection.MANUAL)],
        )
    except ReviewError as exc:
        return HttpResponseBadRequest(str(exc))
    if request.htmx:
        values = {p.name: p.values for p in evaluation.run.spec_version.parsed_properties}[prop]
        context = {
            "evaluation": evaluation,
            "sample": sample,
            "name": prop,
            "values": values,
            "mine": value,
            "saved": True,
        }
        return render(request, "evaluations/_correct.html", context)
    messages.success(request, f"Saved: {prop} of {sample.identifier} is {value}.")
    return redirect("evaluations:detail", code=evaluation.code)
