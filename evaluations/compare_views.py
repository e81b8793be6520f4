"""The compare page and its per-sample diff as CSV: 2..COMPARE_MAX finished evaluations of runs of one spec, one of
them the baseline the others are measured against."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header, urlencode

from config.spreadsheet import Echo, safe_row

from .access import get_evaluation_for_user
from .compare import COMPARE_LETTERS, COMPARE_MAX, compare, compare_candidates, shared_properties
from .human_review import human_review_blocks
from .models import Evaluation
from .sample_diff import CSV_HEADER, KINDS, compare_diff, diff_page

if TYPE_CHECKING:
    from config.http import HtmxHttpRequest


def _compared(request: HtmxHttpRequest) -> list[Evaluation] | HttpResponse:
    """The evaluations of `?e=<code>&e=<code>...` (or the older `?a=<code>&b=<code>`), the baseline first: the one
    `?baseline=<code>` names, else the oldest. A malformed or another company's evaluation is a 404; evaluations that
    cannot be compared (too few or many, different specs, unfinished, a baseline not among them) a 400 that says why."""
    raw = request.GET.getlist("e") or [request.GET.get(key, "") for key in ("a", "b")]
    try:
        codes = list(dict.fromkeys(UUID(code) for code in raw))  # in order, each once
        baseline_code = UUID(request.GET["baseline"]) if request.GET.get("baseline") else None
    except ValueError:
        raise Http404("Pick evaluations of runs of one spec.") from None
    evaluations = [get_evaluation_for_user(request.user, code)[0] for code in codes[: COMPARE_MAX + 1]]
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
    elif baseline_code is not None and baseline_code not in codes:
        problem = "The baseline must be one of the evaluations compared."
    if problem:
        invalid = {"evaluations": evaluations, "problem": problem}
        return render(request, "evaluations/compare_invalid.html", invalid, status=HTTPStatus.BAD_REQUEST)
    # An explicit baseline, else the oldest: "before" is what came first, whatever order the boxes were ticked in.
    baseline = next((e for e in evaluations if e.code == baseline_code), None) or min(
        evaluations, key=lambda e: (e.created_at, e.id)
    )
    return [baseline, *(e for e in evaluations if e != baseline)]


def _diff_filters(request: HtmxHttpRequest, names: list[str], letters: str) -> dict[str, str] | None:
    """The diff's filters (kind, property, candidate letter); None when one names nothing there is."""
    kind, prop, letter = (request.GET.get(key, "") for key in ("kind", "prop", "vs"))
    if (kind and kind not in KINDS) or (prop and prop not in names) or (letter and letter not in letters[1:]):
        return None
    return {"kind": kind, "prop": prop, "letter": letter}


@login_required
def evaluation_compare(request: HtmxHttpRequest) -> HttpResponse:
    """Side by side, the baseline first (A): scores, per property charts and changes with significance marks, and
    the per-sample diff against the baseline (filterable; all of it as CSV)."""
    evaluations = _compared(request)
    if isinstance(evaluations, HttpResponse):
        return evaluations
    comparison = compare(evaluations=evaluations, human=[human_review_blocks(evaluation=e) for e in evaluations])
    letters = COMPARE_LETTERS[: len(evaluations)]
    filters = _diff_filters(request, comparison["names"], letters)
    if filters is None:
        return HttpResponseBadRequest("Unknown diff filter: kind is regression, improvement or changed.")
    codes = [("e", str(e.code)) for e in evaluations]
    for column in comparison["columns"]:  # "make baseline": the same evaluations with another baseline
        column["rebase"] = urlencode([*codes, ("baseline", str(column["evaluation"].code))])
    diff = diff_page(evaluations=evaluations, names=comparison["names"], **filters)
    base_query = [*codes, ("baseline", str(evaluations[0].code))]
    context = {
        "comparison": comparison,
        "baseline": evaluations[0],
        "diff": diff,
        "filters": filters,
        "kinds": KINDS,
        "letters": letters[1:],
        "query": urlencode(base_query),
        "csv_query": urlencode([*base_query, *((k, v) for k, v in _wire(filters).items() if v)]),
        "kind_counts": [(kind, diff["counts"][kind]) for kind in KINDS],
        # The picker: other finished evaluations of the spec's runs, to add (or, checked, to keep).
        "candidates": compare_candidates(evaluation=evaluations[0], limit=30),
        "chosen": {e.code for e in evaluations},
        "compare_max": COMPARE_MAX,
    }
    return render(request, "evaluations/compare.html", context)


def _wire(filters: dict[str, str]) -> dict[str, str]:
    return {"kind": filters["kind"], "prop": filters["prop"], "vs": filters["letter"]}


@login_required
def evaluation_compare_diff_csv(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The per-sample diff (every row, with the page's filters) as CSV, streamed."""
    evaluations = _compared(request)
    if isinstance(evaluations, HttpResponse):
        return evaluations
    names = shared_properties(evaluations)
    filters = _diff_filters(request, names, COMPARE_LETTERS[: len(evaluations)])
    if filters is None:
        return HttpResponseBadRequest("Unknown diff filter: kind is regression, improvement or changed.")
    writer = csv.writer(Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(CSV_HEADER)
        for change in compare_diff(evaluations=evaluations, names=names, **filters):
            # Identifiers and values come from users and models: never let one run as a formula.
            yield writer.writerow(safe_row(change.csv_row()))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"compare-{evaluations[0].code}.csv")
    return response
