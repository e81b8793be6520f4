"""Read-side queries and Plotly figures for the evaluation pages. Nothing here loads every sample."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform

from runs.selectors import COLORS, grouped_bar_chart

from .models import Evaluation, GuardrailEvaluation, SampleClassification

ROWS_PER_PAGE = 25


def property_views(*, evaluation: Evaluation) -> list[dict[str, Any]]:
    """Per property: the requested/expected/evaluated chart (Wilson error bars), the confusion heatmap, the numbers.

    Built from the evaluation's stored analysis: no query beyond the evaluation row.
    """
    if not evaluation.distribution_analysis or not evaluation.statistics:
        return []
    stats_by_name = {p["property_name"]: p for p in evaluation.statistics["properties"]}
    views = []
    for analysis in evaluation.distribution_analysis:
        name = analysis["property_name"]
        stats = stats_by_name[name]
        values = stats["values"]
        chart = grouped_bar_chart(
            title=name,
            values=values,
            series={
                "requested": analysis["requested_distributions"],
                "expected": analysis["expected_distributions"],
                "evaluated": analysis["evaluated_distributions"],
            },
        )
        evaluated = analysis["evaluated_distributions"]
        intervals = stats["wilson_intervals"]
        chart["data"][2]["error_y"] = {
            "type": "data",
            "symmetric": False,
            "array": [max(0.0, intervals[v][1] - evaluated[v]) for v in values],
            "arrayminus": [max(0.0, evaluated[v] - intervals[v][0]) for v in values],
            "color": COLORS["evaluated"],
        }
        views.append({"name": name, "analysis": analysis, "stats": stats, "chart": chart, "heatmap": heatmap(stats)})
    return views


def heatmap(stats: dict[str, Any]) -> dict[str, Any]:
    values = stats["values"]
    return {
        "data": [
            {
                "type": "heatmap",
                "z": stats["confusion_matrix"],
                "x": values,
                "y": values,
                "colorscale": "Blues",
                "showscale": False,
                "reversescale": True,
                "texttemplate": "%{z}",
                "hovertemplate": "assigned %{y}, judged %{x}: %{z}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": f"{stats['property_name']}: assigned vs judged", "font": {"size": 14}},
            "xaxis": {"title": {"text": "judged"}},
            "yaxis": {"title": {"text": "assigned"}, "autorange": "reversed"},
            "height": 300,
            "margin": {"l": 80, "r": 10, "t": 40, "b": 50},
            "paper_bgcolor": "rgba(0,0,0,0)",
        },
    }


def classification_rows(
    *, evaluation: Evaluation, prop: str = "", assigned: str = "", judged: str = "", mismatch: bool = False
) -> QuerySet[SampleClassification]:
    """The sample table: filter by assigned and judged value of a property, or to samples the judge disagreed on."""
    rows = (
        SampleClassification.objects.filter(evaluation=evaluation)
        .select_related("sample")
        .only("code", "status", "classifications", "error", "sample__identifier", "sample__content",
              "sample__properties")
        # Samples are inserted in position order, so sample_id is that order, and the (evaluation, sample)
        # unique index serves it without sorting 20,000 rows.
        .order_by("sample_id")
    )  # fmt: skip
    names = [p["property_name"] for p in evaluation.distribution_analysis or []]
    if prop in names and (assigned or judged):
        # Filtering on a property shows the samples judged on it.
        rows = rows.filter(status=SampleClassification.Status.OK)
        if assigned:
            rows = rows.annotate(_assigned=KeyTransform(prop, "sample__properties")).filter(_assigned=assigned)
        if judged:
            rows = rows.annotate(_judged=KeyTransform(prop, "classifications")).filter(_judged=judged)
    if mismatch:
        # "Judged ≠ assigned" on the chosen property, or on any property when none is chosen.
        differs = Q()
        for i, name in enumerate([prop] if prop in names else names):
            a, j = f"_a_{i}", f"_j_{i}"
            rows = rows.annotate(
                **{a: KeyTextTransform(name, "sample__properties"), j: KeyTextTransform(name, "classifications")}
            )
            differs |= ~Q(**{a: F(j)})
        rows = rows.filter(differs, status=SampleClassification.Status.OK)
    return rows


def classification_count(
    *, evaluation: Evaluation, prop: str = "", assigned: str = "", judged: str = "", mismatch: bool = False
) -> int | None:
    """How many rows classification_rows gives, read off the stored confusion matrices where it can be.

    Counting with a JSON filter scans every classification; the matrices already hold those counts.
    None means "count in SQL" (an evaluation without statistics, e.g. one still running).
    """
    if evaluation.status != Evaluation.Status.SUCCEEDED or not evaluation.statistics:
        return None
    by_name = {p["property_name"]: p for p in evaluation.statistics["properties"]}
    stats = by_name.get(prop)
    if stats is None or not (assigned or judged or mismatch):
        return evaluation.statistics.get("samples_mismatched") if mismatch else evaluation.total_samples
    values, matrix = stats["values"], stats["confusion_matrix"]
    return sum(
        matrix[i][j]
        for i, a in enumerate(values)
        for j, v in enumerate(values)
        if (not assigned or a == assigned) and (not judged or v == judged) and (not mismatch or i != j)
    )


class _KnownCountPaginator(Paginator):  # type: ignore[type-arg]
    def __init__(self, *args: Any, known_count: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if known_count is not None:
            self.__dict__["count"] = known_count  # Paginator.count is a cached_property


def classification_page(*, evaluation: Evaluation, page: str | int = 1, **filters: Any) -> Page[SampleClassification]:
    rows = classification_rows(evaluation=evaluation, **filters)
    known = classification_count(evaluation=evaluation, **filters)
    return _KnownCountPaginator(rows, ROWS_PER_PAGE, known_count=known).get_page(page)


def compare(*, first: Evaluation, second: Evaluation) -> dict[str, Any]:
    """Two evaluations of one run: their evaluated distributions side by side, and how often they agree per sample."""
    charts = []
    second_by_name = {a["property_name"]: a for a in second.distribution_analysis or []}
    for analysis in first.distribution_analysis or []:
        name = analysis["property_name"]
        other = second_by_name.get(name)
        if other is None:
            continue
        values = [p["values"] for p in first.statistics["properties"] if p["property_name"] == name][0]
        chart = grouped_bar_chart(
            title=name,
            values=values,
            series={"expected": analysis["expected_distributions"], "evaluated": analysis["evaluated_distributions"]},
        )
        chart["data"][1]["name"] = f"A: {first.model_used}"
        chart["data"].append(
            {
                "type": "bar",
                "name": f"B: {second.model_used}",
                "x": values,
                "y": [other["evaluated_distributions"].get(v, 0) for v in values],
                "marker": {"color": "#1f7a4d"},
            }
        )
        charts.append({"name": name, "chart": chart})
    # Per-sample agreement in SQL: pair the two evaluations' rows on the sample.
    names = [c["name"] for c in charts]
    pairs = SampleClassification.objects.filter(evaluation=first, status="ok").annotate(
        **{f"_b_{i}": _other_value(second, name) for i, name in enumerate(names)},
        **{f"_a_{i}": KeyTextTransform(name, "classifications") for i, name in enumerate(names)},
    )
    totals = pairs.aggregate(
        both=Count("id", filter=Q(_b_0__isnull=False)) if names else Count("id"),
        **{f"same_{i}": Count("id", filter=Q(**{f"_a_{i}": F(f"_b_{i}")})) for i in range(len(names))},
    )
    both = totals["both"] or 0
    agreement = [
        {"name": name, "agreement": (100 * totals[f"same_{i}"] / both) if both else None}
        for i, name in enumerate(names)
    ]
    return {"charts": charts, "agreement": agreement, "samples_compared": both}


def _other_value(second: Evaluation, name: str) -> Subquery:
    """The value `second` judged for the outer row's sample on property `name`."""
    other = SampleClassification.objects.filter(evaluation=second, sample=OuterRef("sample"), status="ok")
    return Subquery(other.annotate(_v=KeyTextTransform(name, "classifications")).values("_v")[:1])


def evaluations_for_run(run_id: int) -> QuerySet[Evaluation]:
    """A run's evaluations, newest first (the run page's history and the API's list)."""
    return Evaluation.objects.filter(run_id=run_id).select_related("run", "created_by").order_by("-created_at")


def guardrail_evaluations(
    *, company: Any, nametag: str = "", status: str = "", run_mode: str = ""
) -> QuerySet[GuardrailEvaluation]:
    """The guardrail list page: the company's evaluations, newest first, filtered as the API filters them."""
    rows = GuardrailEvaluation.objects.for_company(company).with_ledger().order_by("-created_at", "-id")
    if nametag:
        rows = rows.filter(nametag=nametag)
    if status in GuardrailEvaluation.Status.values:
        rows = rows.filter(status=status)
    if run_mode in GuardrailEvaluation.RunMode.values:
        rows = rows.filter(run_mode=run_mode)
    return rows


def guardrail_score_chart(*, evaluation: GuardrailEvaluation) -> dict[str, Any] | None:
    """A bar per metric (0-1); for two-judge modes, a bar per judge beside the mean."""
    result = evaluation.ordered_result or {}
    scored = {m: r for m, r in result.items() if r.get("score") is not None}
    if not scored:
        return None
    metrics = list(scored)
    data = [
        {
            "type": "bar",
            "name": "score",
            "x": metrics,
            "y": [scored[m]["score"] for m in metrics],
            "marker": {"color": COLORS["expected"]},
            "hovertemplate": "%{x}: %{y:.2f}<extra></extra>",
        }
    ]
    judges = sorted({j["model"] for r in scored.values() for j in r.get("judges", []) if "model" in j})
    for judge in judges if len(judges) > 1 else []:
        by_metric = {
            m: next((j.get("score") for j in r.get("judges", []) if j.get("model") == judge), None)
            for m, r in scored.items()
        }
        data.append({"type": "bar", "name": judge, "x": metrics, "y": [by_metric[m] for m in metrics], "opacity": 0.6})
    layout = {
        "barmode": "group",
        "yaxis": {"range": [0, 1], "title": {"text": "score (0-1)"}},
        "height": 320,
        "margin": {"l": 55, "r": 15, "t": 20, "b": 90},
        "legend": {"orientation": "h", "y": -0.4},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    return {"data": data, "layout": layout}
