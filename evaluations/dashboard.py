"""The evaluations list page and the home dashboard's card: newest evaluations and the score trend."""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import F, Q, QuerySet

from companies.models import Company
from llm.catalog import OFFLINE_NAMES
from runs.models import Run, Spec

from .forms import EvaluationListForm
from .models import Evaluation


def evaluation_list(
    *,
    company: Company,
    q: str = "",
    spec: Spec | None = None,
    run: Run | None = None,
    judge: str = "",
    status: str = "",
    score_min: float | None = None,
    score_max: float | None = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
    sort: str = "-date",
) -> QuerySet[Evaluation]:
    """The evaluations list page: the company's evaluations, searched, filtered and sorted (unscored ones sort
    last). `q` is a case-insensitive substring of the name, the run's name, the spec's name or the judge."""
    rows = Evaluation.objects.for_company(company).select_related("run__spec", "run__spec_version")
    if q:
        rows = rows.filter(
            Q(name__icontains=q)
            | Q(run__name__icontains=q)
            | Q(run__spec__name__icontains=q)
            | Q(model_used__icontains=q)
            | Q(requested_model__icontains=q)
        )
    if score_min is not None:
        rows = rows.filter(conformance_score__gte=score_min)
    if score_max is not None:
        rows = rows.filter(conformance_score__lte=score_max)
    if spec is not None:
        rows = rows.filter(run__spec=spec)
    if run is not None:
        rows = rows.filter(run=run)
    if judge == "embedded":
        rows = rows.filter(model_used__in=OFFLINE_NAMES)
    elif judge == "llm":
        rows = rows.exclude(model_used__in=OFFLINE_NAMES)
    if status in Evaluation.Status.values:
        rows = rows.filter(status=status)
    if date_from is not None:
        rows = rows.filter(created_at__date__gte=date_from)
    if date_to is not None:
        rows = rows.filter(created_at__date__lte=date_to)
    field = EvaluationListForm.SORTS.get(sort.lstrip("-"), "created_at")
    order = F(field).desc(nulls_last=True) if sort.startswith("-") else F(field).asc(nulls_last=True)
    return rows.order_by(order, "-id")


def recent_evaluations(*, company: Company, limit: int = 5) -> list[Evaluation]:
    """The home dashboard's newest evaluations, with their run and spec in the same query."""
    return list(Evaluation.objects.for_company(company).select_related("run__spec").order_by("-created_at")[:limit])


TREND_POINTS = 500  # the newest scores drawn on the home dashboard's trend


def score_trend_chart(*, company: Company) -> dict[str, Any] | None:
    """Conformance score over time, one line per spec (the newest TREND_POINTS scores); None before any. One query."""
    rows = list(
        Evaluation.objects.for_company(company)
        .filter(status=Evaluation.Status.SUCCEEDED, conformance_score__isnull=False, completed_at__isnull=False)
        .order_by("-completed_at")
        .values_list("run__spec__name", "completed_at", "conformance_score")[:TREND_POINTS]
    )
    if not rows:
        return None
    by_spec: dict[str, list[tuple[str, float]]] = {}
    for spec, completed_at, score in reversed(rows):
        if completed_at is not None and score is not None:  # filtered out above; this tells mypy
            by_spec.setdefault(spec, []).append((completed_at.isoformat(), score))
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": spec,
            "x": [x for x, _ in points],
            "y": [y for _, y in points],
            "hovertemplate": "%{x|%Y-%m-%d %H:%M}: %{y:.1f}<extra>" + spec + "</extra>",
        }
        for spec, points in sorted(by_spec.items())
    ]
    layout = {
        "yaxis": {"title": {"text": "conformance score"}, "range": [0, 100]},
        "xaxis": {"type": "date"},
        "height": 300,
        "margin": {"l": 55, "r": 15, "t": 20, "b": 45},
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    return {"data": data, "layout": layout}
