"""Turn an evaluation's classifications into the distribution analysis and statistics (DESIGN.md §4).

Counts come from SQL (one GROUP BY per property over (assigned, judged) pairs, one over assigned values);
the arithmetic is the pure functions of statistics.py.
"""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Count, F, Q
from django.db.models.fields.json import KeyTextTransform

from runs.selectors import assigned_value_counts
from runs.specfile import Property

from . import statistics as stats
from .models import Evaluation, SampleClassification

NON_CONFORMANT_TVD = 5.0  # percentage points beyond which a property is called non-conformant


def _pair_counts(evaluation: Evaluation, prop: Property) -> dict[tuple[str, str], int]:
    rows = (
        SampleClassification.objects.filter(evaluation=evaluation, status=SampleClassification.Status.OK)
        .annotate(
            assigned=KeyTextTransform(prop.name, "sample__properties"),
            judged=KeyTextTransform(prop.name, "classifications"),
        )
        .values("assigned", "judged")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(row["assigned"], row["judged"]): row["n"] for row in rows}


def _mismatched(evaluation: Evaluation, names: list[str]) -> int:
    """Samples whose judged value differs from the assigned one on at least one property (one COUNT)."""
    rows = SampleClassification.objects.filter(evaluation=evaluation, status=SampleClassification.Status.OK)
    differs = Q()
    for i, name in enumerate(names):
        rows = rows.annotate(
            **{
                f"_a{i}": KeyTextTransform(name, "sample__properties"),
                f"_j{i}": KeyTextTransform(name, "classifications"),
            }
        )
        differs |= ~Q(**{f"_a{i}": F(f"_j{i}")})
    return rows.filter(differs).count()


def _round(dist: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in dist.items()}


def analyse(
    evaluation: Evaluation,
) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """Return (distribution_analysis, statistics, conformance_score) for a fully classified evaluation."""
    run = evaluation.run
    total = evaluation.total_samples
    analysis, per_property, distances = [], [], []
    failed = SampleClassification.objects.filter(
        evaluation=evaluation, status=SampleClassification.Status.FAILED
    ).count()
    for prop in run.spec_version.parsed_properties:
        expected_counts = assigned_value_counts(run=run, prop=prop)
        pairs = _pair_counts(evaluation, prop)
        matrix = stats.confusion_matrix(pairs, prop.values)
        judged_counts = {v: sum(matrix[i][j] for i in range(len(prop.values))) for j, v in enumerate(prop.values)}
        analysed = sum(judged_counts.values())
        expected = stats.shares(expected_counts)
        evaluated = stats.shares(judged_counts)
        distance = stats.total_variation_distance(expected, evaluated) if analysed else 100.0
        distances.append(distance)
        statistic, dof, p_value = stats.chi_square_gof(judged_counts, expected)
        analysis.append(
            {
                "property_name": prop.name,
                "total_samples": total,
                "requested_distributions": _round(prop.base_distribution),
                "expected_distributions": _round(expected),
                "evaluated_distributions": _round(evaluated),
                "observed_distributions": _round(evaluated),
                "total_samples_analyzed": analysed,
            }
        )
        per_property.append(
            {
                "property_name": prop.name,
                "values": prop.values,
                "total_variation_distance": round(distance, 2),
                "requested_vs_expected_distance": round(
                    stats.total_variation_distance(prop.base_distribution, expected), 2
                ),
                "chi_square": {
                    "statistic": None if math.isinf(statistic) else round(statistic, 4),
                    "dof": dof,
                    "p_value": p_value,
                },
                "wilson_intervals": {
                    v: [round(x, 2) for x in stats.wilson_interval(judged_counts[v], analysed)] for v in prop.values
                },
                "agreement": None if (a := stats.agreement(matrix)) is None else round(a, 2),
                "confusion_matrix": matrix,
                "expected_counts": expected_counts,
                "evaluated_counts": judged_counts,
                "samples_analyzed": analysed,
            }
        )
    score = round(stats.conformance_score(distances), 2)
    names = [p.name for p in run.spec_version.parsed_properties]
    agreements = [p["agreement"] for p in per_property if p["agreement"] is not None]
    summary = {
        "conformance_score": score,
        "samples_total": total,
        "samples_failed": failed,
        "mean_agreement": round(sum(agreements) / len(agreements), 2) if agreements else None,
        "samples_mismatched": _mismatched(evaluation, names),
        "properties": per_property,
    }
    return analysis, summary, score


def template_explanation(summary: dict[str, Any]) -> dict[str, str]:
    """The explanation and area strings written from the numbers alone (used when no LLM judge is available)."""
    props = summary["properties"]
    good = [p for p in props if p["total_variation_distance"] < NON_CONFORMANT_TVD]
    bad = [p for p in props if p["total_variation_distance"] >= NON_CONFORMANT_TVD]
    mean_tvd = sum(p["total_variation_distance"] for p in props) / len(props) if props else 0.0
    explanation = (
        f"Conformance {summary['conformance_score']:.1f}/100: across {len(props)} properties the judged "
        f"distributions differ from the assigned ones by {mean_tvd:.1f} percentage points on average "
        f"(total variation distance)."
    )
    if summary["mean_agreement"] is not None:
        explanation += (
            f" Per sample, the judge agreed with the assigned value {summary['mean_agreement']:.1f}% of the time."
        )
    if summary["samples_failed"]:
        explanation += f" {summary['samples_failed']} of {summary['samples_total']} samples could not be classified."

    def deviation(p: dict[str, Any]) -> str:
        expected = p["expected_counts"]
        judged = p["evaluated_counts"]
        n_expected = sum(expected.values()) or 1
        n_judged = sum(judged.values()) or 1
        worst = max(
            p["values"],
            key=lambda v: abs(judged[v] / n_judged - expected[v] / n_expected),
        )
        return (
            f"{p['property_name']}: '{worst}' judged {100 * judged[worst] / n_judged:.1f}% vs "
            f"{100 * expected[worst] / n_expected:.1f}% assigned (TVD {p['total_variation_distance']:.1f} pp)"
        )

    return {
        "conformance_explanation": explanation,
        "conformant_areas": "; ".join(
            f"{p['property_name']} (TVD {p['total_variation_distance']:.1f} pp, agreement {p['agreement'] or 0:.0f}%)"
            for p in good
        )
        or "None: every property deviates by 5 percentage points or more.",
        "non_conformant_areas": "; ".join(deviation(p) for p in bad)
        or "None: every property is within 5 percentage points.",
    }
