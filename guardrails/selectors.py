"""Read-side queries and Plotly figures for the guardrail pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, FloatField, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from companies.models import Company
from companies.quotas import InFlight
from config.charts import COLORS

from .metrics import METRICS
from .models import GuardrailEvaluation, Monitor, Workflow, WorkflowEvent


def guardrails_in_flight(company_id: int) -> InFlight:
    """The company's queued/in-progress guardrail evaluations, each one sample (a quota source). A Defend attempt's
    evaluation is left out: its event is counted, once, for as long as it runs (defend_in_flight)."""
    count = GuardrailEvaluation.objects.filter(
        company_id=company_id,
        status__in=[GuardrailEvaluation.Status.QUEUED, GuardrailEvaluation.Status.IN_PROGRESS],
        defend_attempt__isnull=True,
    ).count()
    return InFlight(evaluations=count, samples=count)


def defend_in_flight(company_id: int) -> InFlight:
    """The company's unfinished workflow events, each one evaluation of one sample at a time (a quota source)."""
    count = WorkflowEvent.objects.filter(
        company_id=company_id, status__in=[WorkflowEvent.Status.QUEUED, WorkflowEvent.Status.IN_PROGRESS]
    ).count()
    return InFlight(evaluations=count, samples=count)


def guardrails_stored_bytes(company_id: int) -> int:
    """Bytes of the company's guardrail texts, Defend's attempts included (a storage quota source)."""
    total = GuardrailEvaluation.objects.filter(company_id=company_id).aggregate(total=Sum("stored_bytes"))["total"]
    return int(total or 0)


def guardrail_evaluations(
    *, company: Company, nametag: str = "", status: str = "", run_mode: str = "", sort: str = ""
) -> QuerySet[GuardrailEvaluation]:
    """The guardrail list page: the company's evaluations, newest first or by a metric's score (`sort=-correctness`),
    filtered by a nametag substring, status and run mode. Unscored rows sort last either way."""
    rows = GuardrailEvaluation.objects.for_company(company).with_ledger()
    metric = sort.lstrip("-")
    if metric in METRICS:
        score = Cast(KT(f"evaluation_result__{metric}__score"), FloatField())
        rows = rows.order_by(score.desc(nulls_last=True) if sort.startswith("-") else score.asc(nulls_last=True), "-id")
    else:
        rows = rows.order_by("-created_at", "-id")
    if nametag:
        rows = rows.filter(nametag__icontains=nametag)
    if status in GuardrailEvaluation.Status.values:
        rows = rows.filter(status=status)
    if run_mode in GuardrailEvaluation.RunMode.values:
        rows = rows.filter(run_mode=run_mode)
    return rows


def guardrail_score_chart(*, evaluation: GuardrailEvaluation) -> dict[str, Any] | None:
    """A bar per metric (0-1); for two-judge modes, a bar per judge beside the mean."""
    result = evaluation.ordered_result or {}
    # A metric the offline judge could not judge (`judged: false`) gets no bar: its score means nothing.
    scored = {m: r for m, r in result.items() if r.get("score") is not None and r.get("judged", True)}
    if not scored:
        return None
    metrics = list(scored)
    data: list[dict[str, Any]] = [
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


def guardrail_trace(evaluation: GuardrailEvaluation) -> dict[str, Any]:
    """Our addition: which judges graded (offline or not, and why), the prompt version and the calls made."""
    trace = evaluation.trace or {}
    calls = getattr(evaluation, "calls", None)
    return {
        "prompt_version": trace.get("prompt_version"),
        "requested_judges": trace.get("requested_judges", []),
        "judges": trace.get("judges", []),
        "offline_judge": bool(trace.get("offline_judge", False)),
        "fallback_reason": trace.get("fallback_reason"),
        "unavailable_judges": trace.get("unavailable_judges", []),
        "call_per_metric": trace.get("call_per_metric"),
        "calls": calls if calls is not None else evaluation.judge_calls.count(),
    }


def guardrail_metric_summary(*, company: Company) -> list[dict[str, Any]]:
    """Per metric: how many completed evaluations scored it, and their mean score (one aggregate query).

    A metric the offline judge could not judge (`judged: false`) is left out, as the score chart leaves it out.
    """
    rows = GuardrailEvaluation.objects.for_company(company).filter(status=GuardrailEvaluation.Status.COMPLETED)
    scored = {
        m: Q(**{f"evaluation_result__{m}__score__isnull": False})
        & (Q(**{f"evaluation_result__{m}__judged__isnull": True}) | Q(**{f"evaluation_result__{m}__judged": True}))
        for m in METRICS
    }
    totals = rows.aggregate(
        **{f"n_{m}": Count("id", filter=scored[m]) for m in METRICS},
        **{
            f"avg_{m}": Avg(Cast(KT(f"evaluation_result__{m}__score"), FloatField()), filter=scored[m]) for m in METRICS
        },
    )
    return [
        {"metric": m, "count": totals[f"n_{m}"], "average": totals[f"avg_{m}"]} for m in METRICS if totals[f"n_{m}"]
    ]


def workflow_success_rate(workflow: Workflow) -> float | None:
    """The share (0-1) of the workflow's decided events whose output passed, original or improved; None if none."""
    counts = WorkflowEvent.objects.filter(workflow=workflow, filtered__isnull=False).aggregate(
        decided=Count("id"), passed=Count("id", filter=Q(filtered=False))
    )
    return counts["passed"] / counts["decided"] if counts["decided"] else None


def workflow_event_attempts(event: WorkflowEvent) -> list[dict[str, Any]]:
    """Every attempt of an event, in order, with its output, evaluation and cost (grading plus the writer's call
    that produced it). Two queries, whatever the number of attempts."""
    writer_costs = dict(
        event.writer_calls.values("item_id").annotate(cost=Sum("cost_usd")).values_list("item_id", "cost")
    )
    attempts = (
        event.attempts.select_related("evaluation")
        .annotate(evaluation_cost=Sum("evaluation__judge_calls__cost_usd"))
        .order_by("number")
    )
    rows = []
    for attempt in attempts:
        evaluation = attempt.evaluation
        grading = float(attempt.evaluation_cost or 0)
        writing = float(writer_costs.get(attempt.number) or 0)
        rows.append(
            {
                "attempt_number": attempt.number,
                "output": attempt.output,
                "evaluation_id": evaluation.eval_id,
                "evaluation_status": evaluation.status,
                "evaluation_result": evaluation.ordered_result,
                "passed": attempt.passed,
                "failing_metrics": attempt.failing_metrics,
                "evaluation_cost_usd": grading,
                "writer_cost_usd": writing,
                "cost_usd": grading + writing,
            }
        )
    return rows


# --- Monitor and workflow pages ---

FAIL_BELOW = 0.5  # a graded event "fails" on the monitor page when any judged metric scores below this
CHART_EVENTS = 1000  # the monitor chart plots at most the latest this many events


def monitor_evaluations(
    *, monitor: Monitor, nametag: str = "", since: datetime | None = None, until: datetime | None = None
) -> QuerySet[GuardrailEvaluation]:
    """A monitor's evaluations, newest first, filtered by exact nametag and a created-at window [since, until)."""
    rows = GuardrailEvaluation.objects.filter(monitor_event__monitor=monitor)
    if nametag:
        rows = rows.filter(nametag=nametag)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    return rows.order_by("-created_at", "-id")


def _judged_scores(result: dict[str, Any] | None) -> dict[str, float]:
    """The scores that mean something: graded, and not declined by the offline judge."""
    return {
        m: r["score"] for m, r in (result or {}).items() if r.get("score") is not None and r.get("judged") is not False
    }


def monitor_summary(*, evaluations: QuerySet[GuardrailEvaluation]) -> dict[str, Any]:
    """The monitor page's figures in one query over the latest CHART_EVENTS events: the score of each metric over time
    (a Plotly line per metric, built here; JS only draws it) and the failure rate of the graded ones."""
    rows = list(evaluations.values_list("created_at", "evaluation_result")[:CHART_EVENTS])[::-1]
    series: dict[str, tuple[list[str], list[float]]] = {}
    graded = failed = 0
    for created_at, result in rows:
        scores = _judged_scores(result)
        if scores:
            graded += 1
            failed += any(score < FAIL_BELOW for score in scores.values())
        for metric, score in scores.items():
            xs, ys = series.setdefault(metric, ([], []))
            xs.append(created_at.isoformat())
            ys.append(score)
    chart = None
    if series:
        data = [
            {"type": "scatter", "mode": "lines+markers", "name": m, "x": series[m][0], "y": series[m][1]}
            for m in METRICS
            if m in series
        ]
        layout = {
            "yaxis": {"range": [0, 1.05], "title": {"text": "score (0-1)"}},
            "height": 340,
            "margin": {"l": 55, "r": 15, "t": 20, "b": 60},
            "legend": {"orientation": "h", "y": -0.25},
        }
        chart = {"data": data, "layout": layout}
    return {"chart": chart, "graded": graded, "failed": failed, "failure_rate": failed / graded if graded else None}
