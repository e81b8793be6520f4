"""Compare: 2..COMPARE_MAX finished evaluations of one spec side by side, and their per-sample changes."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, TextField

from config.charts import COLORS, grouped_bar_chart

from .charts import corrected_series
from .gate import evaluation_changes
from .models import Evaluation, SampleClassification

COMPARE_MAX = 6  # evaluations on one compare page: six series still read as distinct bars
COMPARE_LETTERS = "ABCDEF"
# The evaluated series' colours, one per compared evaluation (the first is the evaluated colour of every page).
COMPARE_COLORS = (COLORS["evaluated"], "#1f7a4d", "#7b3fb2", "#c2185b", "#00838f", "#5d4037")


def compare_label(letter: str, evaluation: Evaluation) -> str:
    """ "A: name · date" (the name defaults to "run · judge"), so evaluations cannot be confused."""
    return f"{letter}: {evaluation.display_name} · {evaluation.created_at:%Y-%m-%d %H:%M}"


def shared_properties(evaluations: list[Evaluation]) -> list[str]:
    """The properties every evaluation analysed, in the baseline's order."""
    analysed = [{a["property_name"] for a in e.distribution_analysis or []} for e in evaluations]
    return [
        a["property_name"]
        for a in evaluations[0].distribution_analysis or []
        if all(a["property_name"] in s for s in analysed)
    ]


def compare(*, evaluations: list[Evaluation], human: list[dict[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """2..COMPARE_MAX finished evaluations of runs of one spec (the same run, or runs of any of its versions); the
    first is the baseline. Per property: side-by-side bars of each evaluation's requested (once, when every run asked
    for the same), evaluated and, once humans reviewed, corrected distribution; the stored TVD and agreement with
    their changes against the baseline (evaluations.gate: intervals, significance); per sample (paired with the
    baseline's on the sample identifier), how often each judge gives the baseline's value. `human` (one
    human_review_blocks per evaluation, in order) adds each judge's kappa and corrected series."""
    human = human or [{} for _ in evaluations]
    first, others = evaluations[0], evaluations[1:]
    letters = COMPARE_LETTERS[: len(evaluations)]
    same_run = all(e.run_id == first.run_id for e in others)
    stats = [{p["property_name"]: p for p in (e.statistics or {}).get("properties", [])} for e in evaluations]
    analyses = [{a["property_name"]: a for a in e.distribution_analysis or []} for e in evaluations]
    changes = [evaluation_changes(baseline=first, candidate=e) for e in others]
    columns: list[dict[str, Any]] = [
        {
            "letter": letter,
            "evaluation": evaluation,
            "label": compare_label(letter, evaluation),
            "score": evaluation.conformance_score,
            "score_delta": changes[i - 1]["score"]["delta"] if i else None,
            "verdict": changes[i - 1]["verdict"] if i else None,
        }
        for i, (letter, evaluation) in enumerate(zip(letters, evaluations, strict=True))
    ]
    charts: list[dict[str, Any]] = []
    properties: list[dict[str, Any]] = []
    names = shared_properties(evaluations)
    for name in names:
        values: list[str] = []
        for s_, a in zip(stats, analyses, strict=True):
            values += [
                v for v in s_.get(name, {}).get("values") or a[name]["evaluated_distributions"] if v not in values
            ]
        charts.append(
            {"name": name, "chart": _property_chart(name, values, letters, [a[name] for a in analyses], human)}
        )
        cells: list[dict[str, Any]] = []
        for i, (letter, s_, blocks) in enumerate(zip(letters, stats, human, strict=True)):
            block = blocks.get(name) or {}
            change = _property_of(changes[i - 1], name) if i else None
            cells.append(
                {
                    "letter": letter,
                    "tvd": s_.get(name, {}).get("total_variation_distance"),
                    "tvd_delta": change["tvd"]["delta"] if change else None,
                    "agreement": s_.get(name, {}).get("agreement"),
                    "agreement_change": change["agreement"] if change else None,
                    "agreement_delta": change["agreement"]["delta"] if change else None,
                    "shifted": [v for v in change["evaluated"] if v["significant"]] if change else [],
                    "between": None,
                    "kappa": (
                        {"kappa": block["kappa"], "ci": block["kappa_ci"], "fit": block["fit_for_use"]}
                        if block.get("kappa") is not None
                        else None
                    ),
                }
            )
        properties.append({"name": name, "cells": cells})
    paired, totals = _paired_totals(first, others, names)
    for row in properties:
        i = names.index(row["name"])
        for k, cell in enumerate(row["cells"][1:], start=1):
            decided = totals[f"decided_{k}_{i}"]
            cell["between"] = (100 * totals[f"same_{k}_{i}"] / decided) if decided else None
    return {
        "columns": columns,
        "same_run": same_run,
        "charts": charts,
        "properties": properties,
        "names": names,
        "paired": paired,
        "samples_compared": max(paired, default=0),
    }


def _property_of(changes: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in changes["properties"] if p["property_name"] == name), None)


def _property_chart(
    name: str,
    values: list[str],
    letters: str,
    analyses: list[dict[str, Any]],
    human: list[dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    """Requested (once when every run asked for the same), then per evaluation its evaluated and, with reviews, its
    corrected distribution, in the evaluation's colour (corrected hatched)."""
    requested = [a["requested_distributions"] for a in analyses]
    series: dict[str, dict[str, float]] = {}
    if all(r == requested[0] for r in requested):
        series["requested"] = requested[0]
    chart = grouped_bar_chart(title=name, values=values, series=series)
    for i, (letter, analysis, blocks, color) in enumerate(zip(letters, analyses, human, COMPARE_COLORS, strict=False)):
        trace_series: dict[str, dict[str, float]] = {}
        if "requested" not in series:
            trace_series[f"{letter} requested"] = requested[i]
        trace_series[letter] = analysis["evaluated_distributions"]
        for trace in grouped_bar_chart(title="", values=values, series=trace_series)["data"]:
            if trace["name"] == letter:
                trace["marker"]["color"] = color
            else:
                trace["marker"] = {"color": color, "opacity": 0.35}
            chart["data"].append(trace)
        block = blocks.get(name) or {}
        if block.get("corrected_distributions") is not None:
            corrected = corrected_series(block, values, name=f"{letter} corrected")
            corrected["marker"] = {"color": color, "pattern": {"shape": "/"}}
            chart["data"].append(corrected)
    return chart


def compare_candidates(*, evaluation: Evaluation, limit: int) -> list[Evaluation]:
    """The newest finished evaluations of runs of `evaluation`'s spec (itself included): what a compare picker
    offers beside it."""
    return list(
        Evaluation.objects.filter(
            company_id=evaluation.company_id, run__spec_id=evaluation.run.spec_id, status=Evaluation.Status.SUCCEEDED
        )
        .select_related("run__spec_version")
        .order_by("-created_at")[:limit]
    )


def _paired_totals(first: Evaluation, others: list[Evaluation], names: list[str]) -> tuple[list[int], dict[str, int]]:
    """In one aggregate over the baseline's rows annotated with every evaluation's judged value of every shared
    property (`_v_{k}_{i}`, k = 0 the baseline itself): per other evaluation k how many samples pair with the
    baseline's, and per property i how many both decided and how many got the same value."""
    # Every value is the stratum as text (the judged value, or UNDECIDED / FAILED); "decided" and "same" count judged
    # values only.
    pairs = SampleClassification.objects.filter(evaluation=first).annotate(
        **{f"_v_0_{i}": SampleClassification.stratum_sql(name) for i, name in enumerate(names)},
        **{
            f"_v_{k}_{i}": _other_value(other, name)
            for k, other in enumerate(others, start=1)
            for i, name in enumerate(names)
        },
        **{f"_p_{k}": Exists(_paired(other)) for k, other in enumerate(others, start=1)},
    )
    aggregates: dict[str, Any] = {}
    for k in range(1, len(others) + 1):
        aggregates[f"paired_{k}"] = Count("id", filter=Q(**{f"_p_{k}": True}))
        for i in range(len(names)):
            decided = _decided(f"_v_0_{i}") & _decided(f"_v_{k}_{i}")
            aggregates[f"decided_{k}_{i}"] = Count("id", filter=decided)
            aggregates[f"same_{k}_{i}"] = Count("id", filter=decided & Q(**{f"_v_0_{i}": F(f"_v_{k}_{i}")}))
    totals = pairs.aggregate(**aggregates)
    return [totals[f"paired_{k}"] for k in range(1, len(others) + 1)], totals


def _decided(field: str) -> Q:
    """The annotated stratum is a judged value (not UNDECIDED or FAILED, and the sample paired)."""
    return Q(**{f"{field}__isnull": False}) & ~Q(
        **{f"{field}__in": [SampleClassification.UNDECIDED, SampleClassification.FAILED]}
    )


def _paired(other: Evaluation) -> QuerySet[SampleClassification]:
    """`other`'s row for the outer row's sample: the same identifier, whichever run it belongs to."""
    # Naming the run (always other's) lets the (run, identifier) unique index find the sample, then the
    # (evaluation, sample) one the row: an index lookup per outer row rather than a scan of other's rows.
    return SampleClassification.objects.filter(
        evaluation=other, sample__run_id=other.run_id, sample__identifier=OuterRef("sample__identifier")
    )


def _other_value(other: Evaluation, name: str) -> Subquery:
    """`other`'s stratum for the outer row's sample on property `name` (NULL when no sample pairs with it)."""
    value = SampleClassification.stratum_sql(name)
    return Subquery(_paired(other).annotate(_v=value).values("_v")[:1], output_field=TextField())
