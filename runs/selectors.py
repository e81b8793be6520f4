"""Read-side queries and Plotly figures for the run pages. Aggregation happens in SQL; nothing loads every sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform

from evaluations.statistics import shares

from .models import Run, Sample
from .specfile import Property

SAMPLES_PER_PAGE = 25
COLORS = {"requested": "#9aa5c4", "expected": "#3451b2", "evaluated": "#e07a1f"}


def assigned_value_counts(*, run: Run, prop: Property) -> dict[str, int]:
    """How many samples generation assigned each value of `prop` (one GROUP BY query)."""
    rows = (
        Sample.objects.filter(run=run)
        .annotate(value=KeyTextTransform(prop.name, "properties"))
        .values("value")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = dict.fromkeys(prop.values, 0)
    for row in rows:
        if row["value"] in counts:
            counts[row["value"]] = row["n"]
    return counts


def grouped_bar_chart(*, title: str, values: list[str], series: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A Plotly figure (plain data/layout dicts) comparing percentage distributions side by side."""
    data = [
        {
            "type": "bar",
            "name": label.capitalize(),
            "x": values,
            "y": [dist.get(v, 0) for v in values],
            "marker": {"color": COLORS.get(label, "#777")},
            "hovertemplate": "%{x}: %{y:.1f}%<extra>" + label + "</extra>",
        }
        for label, dist in series.items()
    ]
    layout = {
        "title": {"text": title, "font": {"size": 15}},
        "barmode": "group",
        "yaxis": {"title": {"text": "% of samples"}, "rangemode": "tozero"},
        "height": 320,
        "margin": {"l": 55, "r": 15, "t": 45, "b": 45},
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    return {"data": data, "layout": layout}


@dataclass
class PropertySummary:
    prop: Property
    requested: dict[str, float]
    expected: dict[str, float]
    counts: dict[str, int]
    chart: dict[str, Any]


def run_property_summaries(*, run: Run) -> list[PropertySummary]:
    """Per property of the run's spec version: requested vs expected shares and their chart."""
    summaries = []
    for prop in run.spec_version.parsed_properties:
        counts = assigned_value_counts(run=run, prop=prop)
        expected = {value: round(share, 2) for value, share in shares(counts).items()}
        chart = grouped_bar_chart(
            title=prop.name,
            values=prop.values,
            series={"requested": prop.base_distribution, "expected": expected},
        )
        summaries.append(PropertySummary(prop, prop.base_distribution, expected, counts, chart))
    return summaries


def filtered_samples(*, run: Run, prop: str = "", value: str = "") -> QuerySet[Sample]:
    samples = Sample.objects.filter(run=run).only("code", "identifier", "path", "content", "properties", "position")
    if prop and value:
        # KeyTransform (not KeyTextTransform) so the value is compared as JSON on every backend.
        samples = samples.annotate(_assigned=KeyTransform(prop, "properties")).filter(_assigned=value)
    return samples.order_by("position")


def sample_page(*, run: Run, prop: str = "", value: str = "", page: str | int = 1) -> Page[Sample]:
    return Paginator(filtered_samples(run=run, prop=prop, value=value), SAMPLES_PER_PAGE).get_page(page)


def with_latest_score(runs: QuerySet[Run]) -> QuerySet[Run]:
    """Annotate `latest_score`: the conformance score of the run's newest successful evaluation (a subquery)."""
    from evaluations.models import Evaluation

    latest = Evaluation.objects.filter(run=OuterRef("pk"), status=Evaluation.Status.SUCCEEDED).order_by("-completed_at")
    return runs.annotate(latest_score=Subquery(latest.values("conformance_score")[:1]))
