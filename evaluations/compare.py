"""Compare: 2..COMPARE_MAX finished evaluations of one spec side by side, and their per-sample changes."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, TextField

from config.charts import COLORS, grouped_bar_chart

from .charts import corrected_series
from .models import Evaluation, SampleClassification

CHANGED_SAMPLES_SHOWN = 20
COMPARE_MAX = 6  # evaluations on one compare page: six series still read as distinct bars
COMPARE_LETTERS = "ABCDEF"
# The evaluated series' colours, one per compared evaluation (the first is the evaluated colour of every page).
COMPARE_COLORS = (COLORS["evaluated"], "#1f7a4d", "#7b3fb2", "#c2185b", "#00838f", "#5d4037")


def compare_label(letter: str, evaluation: Evaluation) -> str:
    """ "A: run name · model · date", so evaluations of different runs cannot be confused."""
    model = evaluation.model_used or evaluation.requested_model
    return f"{letter}: {evaluation.run} · {model} · {evaluation.created_at:%Y-%m-%d %H:%M}"


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 2)


def compare(*, evaluations: list[Evaluation], human: list[dict[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """2..COMPARE_MAX finished evaluations of runs of one spec (the same run, or runs of any of its versions); the
    first is the baseline. Per property every evaluation has: the evaluated distributions side by side, the stored
    TVD and agreement with their deltas against the baseline; per sample (paired with the baseline's on the sample
    identifier), how often each judge agrees with the baseline's and which judged values changed. `human` (one
    human_review_blocks per evaluation, in order) adds each judge's kappa and corrected series."""
    human = human or [{} for _ in evaluations]
    first, others = evaluations[0], evaluations[1:]
    letters = COMPARE_LETTERS[: len(evaluations)]
    same_run = all(e.run_id == first.run_id for e in others)
    stats = [{p["property_name"]: p for p in (e.statistics or {}).get("properties", [])} for e in evaluations]
    analyses = [{a["property_name"]: a for a in e.distribution_analysis or []} for e in evaluations]
    columns: list[dict[str, Any]] = [
        {
            "letter": letter,
            "evaluation": evaluation,
            "label": compare_label(letter, evaluation),
            "score": evaluation.conformance_score,
            "score_delta": _delta(first.conformance_score, evaluation.conformance_score) if i else None,
        }
        for i, (letter, evaluation) in enumerate(zip(letters, evaluations, strict=True))
    ]
    charts, properties = [], []
    for name in analyses[0]:
        if not all(name in a for a in analyses):
            continue
        values: list[str] = []
        for s_, a in zip(stats, analyses, strict=True):
            values += [
                v for v in s_.get(name, {}).get("values") or a[name]["evaluated_distributions"] if v not in values
            ]
        series = {letter: a[name]["evaluated_distributions"] for letter, a in zip(letters, analyses, strict=True)}
        if same_run:  # one run, one assigned distribution: show it too
            series = {"expected": analyses[0][name]["expected_distributions"], **series}
        chart = grouped_bar_chart(title=name, values=values, series=series)
        for trace, color in zip(chart["data"][-len(letters) :], COMPARE_COLORS, strict=False):
            trace["marker"]["color"] = color
        for letter, blocks in zip(letters, human, strict=True):
            block = blocks.get(name) or {}
            if block.get("corrected_distributions") is not None:
                chart["data"].append(corrected_series(block, values, name=f"{letter} corrected"))
        charts.append({"name": name, "chart": chart})
        cells: list[dict[str, Any]] = []
        for letter, s_, blocks in zip(letters, stats, human, strict=True):
            block = blocks.get(name) or {}
            tvd, agreement = s_.get(name, {}).get("total_variation_distance"), s_.get(name, {}).get("agreement")
            base = stats[0].get(name, {})
            cells.append(
                {
                    "letter": letter,
                    "tvd": tvd,
                    "tvd_delta": _delta(base.get("total_variation_distance"), tvd) if cells else None,
                    "agreement": agreement,
                    "agreement_delta": _delta(base.get("agreement"), agreement) if cells else None,
                    "between": None,
                    "kappa": (
                        {"kappa": block["kappa"], "ci": block["kappa_ci"], "fit": block["fit_for_use"]}
                        if block.get("kappa") is not None
                        else None
                    ),
                }
            )
        properties.append({"name": name, "cells": cells})
    names = [c["name"] for c in charts]
    pairs, paired, totals = _paired_totals(first, others, names)
    for row in properties:
        i = names.index(row["name"])
        for k, cell in enumerate(row["cells"][1:], start=1):
            decided = totals[f"decided_{k}_{i}"]
            cell["between"] = (100 * totals[f"same_{k}_{i}"] / decided) if decided else None
    changed_count = totals.get("changed", 0)
    changed = _changed_samples(pairs, others, names) if changed_count else []
    for sample in changed:  # (letter, evaluation, sample) of each sample page, for links
        sample["links"] = [
            (column["letter"], column["evaluation"].code, code)
            for column, code in zip(columns, sample["samples"], strict=True)
            if code
        ]
    return {
        "columns": columns,
        "same_run": same_run,
        "charts": charts,
        "properties": properties,
        "paired": paired,
        "samples_compared": max(paired, default=0),
        "changed": changed,
        "changed_count": changed_count,
        "changed_shown": CHANGED_SAMPLES_SHOWN,
    }


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


def _paired_totals(
    first: Evaluation, others: list[Evaluation], names: list[str]
) -> tuple[QuerySet[SampleClassification], list[int], dict[str, int]]:
    """The baseline's rows annotated with every evaluation's judged value of every shared property (`_v_{k}_{i}`,
    k = 0 the baseline itself), and in one aggregate: per other evaluation k how many samples pair with the
    baseline's, and per property i how many both decided and how many got the same value."""
    # Every value is the stratum as text (the judged value, or UNDECIDED / FAILED), so a judge that abstains or fails
    # where the baseline decided shows as a change; "decided" and "same" count judged values only.
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
    if names:  # (with no shared property an empty filter would count every row)
        aggregates["changed"] = Count("id", filter=_differs(len(others), len(names)))
    for k in range(1, len(others) + 1):
        aggregates[f"paired_{k}"] = Count("id", filter=Q(**{f"_p_{k}": True}))
        for i in range(len(names)):
            decided = _decided(f"_v_0_{i}") & _decided(f"_v_{k}_{i}")
            aggregates[f"decided_{k}_{i}"] = Count("id", filter=decided)
            aggregates[f"same_{k}_{i}"] = Count("id", filter=decided & Q(**{f"_v_0_{i}": F(f"_v_{k}_{i}")}))
    totals = pairs.aggregate(**aggregates)
    return pairs, [totals[f"paired_{k}"] for k in range(1, len(others) + 1)], totals


def _decided(field: str) -> Q:
    """The annotated stratum is a judged value (not UNDECIDED or FAILED, and the sample paired)."""
    return Q(**{f"{field}__isnull": False}) & ~Q(
        **{f"{field}__in": [SampleClassification.UNDECIDED, SampleClassification.FAILED]}
    )


def _differs(others: int, properties: int) -> Q:
    """Some other evaluation judged some property of a paired sample differently from the baseline: another value,
    or undecided or failed where the other decided."""
    differs = Q()
    for k in range(1, others + 1):
        for i in range(properties):
            both = Q(**{f"_v_{k}_{i}__isnull": False})
            differs |= both & ~Q(**{f"_v_0_{i}": F(f"_v_{k}_{i}")})
    return differs


def _changed_samples(
    pairs: QuerySet[SampleClassification], others: list[Evaluation], names: list[str]
) -> list[dict[str, Any]]:
    """The first CHANGED_SAMPLES_SHOWN samples (in the baseline's order) on which some evaluation decided a
    property differently from the baseline (their count is in _paired_totals' aggregate)."""
    changed_rows = (
        pairs.filter(_differs(len(others), len(names)))
        .annotate(**{f"_s_{k}": _other_sample_code(other) for k, other in enumerate(others, start=1)})
        # Position order: samples are inserted in it, and the (evaluation, sample) index serves it, so the query
        # stops at the first CHANGED_SAMPLES_SHOWN rows instead of sorting them all.
        .order_by("sample_id")
    )
    shown = list(changed_rows.select_related("sample")[:CHANGED_SAMPLES_SHOWN])
    changed = []
    for row in shown:
        per_column = [[getattr(row, f"_v_{k}_{i}") for k in range(len(others) + 1)] for i in range(len(names))]
        changed.append(
            {
                "identifier": row.sample.identifier,
                "samples": [row.sample.code, *(getattr(row, f"_s_{k}") for k in range(1, len(others) + 1))],
                "changes": [
                    {"name": name, "values": values}
                    for name, values in zip(names, per_column, strict=True)
                    if any(v is not None and v != values[0] for v in values[1:])
                ],
            }
        )
    return changed


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


def _other_sample_code(other: Evaluation) -> Subquery:
    """The code of `other`'s sample paired with the outer row's (for a link to its sample page)."""
    return Subquery(_paired(other).values("sample__code")[:1])
