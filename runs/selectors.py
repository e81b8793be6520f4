"""Read-side queries and Plotly figures for the run pages. Aggregation happens in SQL; nothing loads every sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform, KeyTransform

from config.charts import grouped_bar_chart

from .distributions import rounded_shares
from .models import Run, Sample, SeedDataset
from .specfile import Property


def runs_stored_bytes(company_id: int) -> int:
    """Bytes of the company's run samples and seed dataset files (a storage quota source): two sums over
    per-run and per-dataset totals, never over samples. An import in progress counts; an abandoned one does not."""
    runs = (
        Run.with_importing.filter(company_id=company_id)
        .without_abandoned_imports()
        .aggregate(total=Sum("stored_bytes"))["total"]
    )
    seeds = SeedDataset.objects.filter(company_id=company_id).aggregate(total=Sum("total_bytes"))["total"]
    return int(runs or 0) + int(seeds or 0)


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
        expected = rounded_shares(counts)
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
    return Paginator(filtered_samples(run=run, prop=prop, value=value), settings.PAGE_SIZE).get_page(page)
