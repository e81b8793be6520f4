"""Turn an evaluation's classifications into the distribution analysis and statistics (DESIGN.md §4).

Every share of a property is computed over one sample set: the samples classified OK whose judged values include
that property (a judge may abstain on a property, issue 13). Expected (assigned) and evaluated (judged) shares are
both taken over it, so a sample the judge failed on counts in neither. The counting is one streamed query over the
classifications, done in Python: JSON path lookups in SQL break on property names with quotes or backslashes, and
one pass gives every property's counts at once. The arithmetic is the pure functions of statistics.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llm import embedded_plan
from runs.specfile import Property

from . import statistics as stats
from .models import Evaluation, SampleClassification

NON_CONFORMANT_TVD = 5.0  # percentage points beyond which a property is called non-conformant
STREAM_CHUNK = 2000  # classifications fetched per round trip: memory stays flat whatever the run's size
TRACKED_ERRORS = 50  # distinct failure messages kept to name the commonest one
NOT_JUDGED = (SampleClassification.UNDECIDED, SampleClassification.FAILED)  # the confusion_not_judged columns


class NothingAnalysed(Exception):
    """Not one sample was analysed on any property, so there is nothing to score.

    The evaluation must end FAILED with this message as its error_message, not SUCCEEDED with a null or 0 score:
    - score 0 says "the data is as far from its spec as it can be" when nothing was measured;
    - the wire contract (pydataframer's EvaluationRetrieveResponse) documents conformance_score as "null until the
      evaluation completes", so SUCCEEDED with a null score reads as unfinished to a client polling on it, while
      FAILED is terminal and carries error_message, which the client shows;
    - the message names the cause (every judge call failed, with the commonest error; or the judge abstained
      everywhere), which is what the user has to fix. The per-sample rows stay, so the failures can be inspected.
    """

    def __init__(self, reason: str, *, samples_total: int, samples_failed: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.samples_total = samples_total
        self.samples_failed = samples_failed


@dataclass
class Tally:
    """Everything analyse needs from the classifications, counted in one pass."""

    names: list[str]
    pairs: dict[str, Counter[tuple[str, str]]] = field(init=False)
    undecided: Counter[str] = field(default_factory=Counter)
    # Per property, (assigned value, UNDECIDED or FAILED) → samples: the confusion matrix's not-judged columns.
    not_judged: dict[str, Counter[tuple[str, str]]] = field(init=False)
    unusable: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    failed: int = 0
    mismatched: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.pairs = {name: Counter() for name in self.names}
        self.not_judged = {name: Counter() for name in self.names}


# One classification as analyse reads it: (status, judged map, assigned map, error).
Row = tuple[str, Any, Any, str]


def tally_rows(rows: Iterable[Row], properties: list[Property]) -> Tally:
    """Count every property's (assigned, judged) pairs, abstentions and failures in one pass over the rows."""
    tally = Tally([p.name for p in properties])
    allowed = {p.name: set(p.values) for p in properties}
    for status, judged, assigned, error in rows:
        tally.rows += 1
        assigned = assigned if isinstance(assigned, dict) else {}
        if status != SampleClassification.Status.OK:
            for name in allowed:
                tally.not_judged[name][(str(assigned.get(name)), SampleClassification.FAILED)] += 1
            tally.failed += 1
            reason = error or "no reason recorded"
            if reason in tally.errors or len(tally.errors) < TRACKED_ERRORS:
                tally.errors[reason] += 1
            continue
        judged = judged if isinstance(judged, dict) else {}
        mismatch = False
        for name, values in allowed.items():
            j, a = judged.get(name), assigned.get(name)
            if j is None:
                # The judge abstained on this property for this sample: not analysed on it.
                tally.undecided[name] += 1
                tally.not_judged[name][(str(a), SampleClassification.UNDECIDED)] += 1
                continue
            # Same rule as the page's "judged ≠ assigned" filter (a SQL text comparison of both present values),
            # so the count read off the statistics equals the rows the filter shows.
            mismatch = mismatch or (a is not None and str(a) != str(j))
            if not (isinstance(j, str) and isinstance(a, str) and j in values and a in values):
                # A value outside the spec on either side cannot be placed in the distributions.
                tally.unusable[name] += 1
                continue
            tally.pairs[name][(a, j)] += 1
        tally.mismatched += mismatch
    return tally


def _nothing_analysed(tally: Tally, total: int, declined: dict[str, str]) -> NothingAnalysed:
    if declined and len(declined) == len(tally.names):
        reason = "No conformance score: the embedded judge declined every property. " + " ".join(
            f"{name}: {why}." for name, why in declined.items()
        )
    elif tally.failed and tally.failed == tally.rows:
        [(error, _count)] = tally.errors.most_common(1)
        reason = (
            f"No conformance score: the judge failed on all {tally.failed} samples, so none could be analysed "
            f"(most common error: {error})."
        )
    else:
        reason = (
            f"No conformance score: no sample could be analysed on any property ({tally.failed} of {total} samples "
            f"failed; on the other {tally.rows - tally.failed} the judge left every property undecided or gave "
            f"values outside the spec)."
        )
    return NothingAnalysed(reason, samples_total=total, samples_failed=tally.failed)


def analyse(
    evaluation: Evaluation,
) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """Return (distribution_analysis, statistics, conformance_score) for a fully classified evaluation.

    The score is 100 minus the mean distance over the properties with at least one analysed sample; a property
    with none is listed (distance None, coverage 0) but not scored, since no data is not the same as wrong data,
    and its coverage says so beside it. Raises NothingAnalysed when no property has an analysed sample.
    Queries: one, streamed (the run and its spec version are expected to be loaded with the evaluation).
    """
    rows = (
        SampleClassification.objects.filter(evaluation=evaluation)
        .values_list("status", "classifications", "sample__properties", "error")
        .order_by()
    )
    properties = evaluation.run.spec_version.parsed_properties
    counted = tally_rows(rows.iterator(chunk_size=STREAM_CHUNK), properties)
    return summarise(properties, counted, total=evaluation.total_samples, plan=evaluation.judge_plan)


def plan_summary(plan: dict[str, Any] | None, properties: list[Property]) -> dict[str, Any] | None:
    """The embedded judge's plan as the statistics and the trace show it: per property, in the spec's order (a list:
    PostgreSQL's jsonb does not keep a stored object's key order), its mode, reason and the number of labels that
    taught it; and every review id that taught it (the estimate of this evaluation's error leaves them out, see
    evaluations/teaching.py). The centroids and evidence stay on the evaluation's judge_plan."""
    if plan is None:
        return None
    entries = plan["properties"]
    return {
        "properties": [
            {
                "property_name": p.name,
                "mode": entries[p.name]["mode"],
                "reason": entries[p.name]["reason"],
                "labels": entries[p.name].get("labels", 0),
            }
            for p in properties
            if p.name in entries
        ],
        "taught_review_ids": plan["taught_review_ids"],
    }


def summarise(
    properties: list[Property], tally: Tally, *, total: int, plan: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """analyse's arithmetic on counted rows (no I/O): the wire's distribution_analysis, our statistics, the score."""
    analysis: list[dict[str, Any]] = []
    per_property: list[dict[str, Any]] = []
    distances: list[float] = []
    # A property the embedded judge declined has no judged value on any sample, so it is not analysed like any
    # property with none; its reason goes with it.
    declined = embedded_plan.declined(plan)
    for prop in properties:
        pairs = tally.pairs[prop.name]
        matrix = stats.confusion_matrix(dict(pairs), prop.values)
        n = len(prop.values)
        expected_counts = {v: sum(matrix[i]) for i, v in enumerate(prop.values)}
        judged_counts = {v: sum(matrix[i][j] for i in range(n)) for j, v in enumerate(prop.values)}
        analysed = sum(judged_counts.values())
        expected, evaluated = stats.shares(expected_counts), stats.shares(judged_counts)
        distance = stats.total_variation_distance(expected, evaluated) if analysed else None
        if distance is not None:
            distances.append(distance)
        shown_evaluated = stats.rounded_shares(judged_counts)
        requested = {v: prop.base_distribution.get(v, 0.0) for v in prop.values}
        analysis.append(
            {
                "property_name": prop.name,
                "total_samples": total,
                "requested_distributions": stats.rounded_shares(requested),
                "expected_distributions": stats.rounded_shares(expected_counts),
                "evaluated_distributions": shown_evaluated,
                "observed_distributions": dict(shown_evaluated),
                # "successfully classified for this property" (the client's docstring): the scored sample set.
                "total_samples_analyzed": analysed,
            }
        )
        per_property.append(
            {
                "property_name": prop.name,
                "values": prop.values,
                "total_variation_distance": None if distance is None else round(distance, 2),
                "requested_vs_expected_distance": (
                    round(stats.total_variation_distance(stats.shares(requested), expected), 2) if analysed else None
                ),
                "chi_square": stats.chi_square_gof(judged_counts, expected_counts).to_dict(),
                "wilson_intervals": {
                    v: [round(x, 2) for x in stats.wilson_interval(judged_counts[v], analysed)] for v in prop.values
                },
                "agreement": None if (a := stats.agreement(matrix)) is None else round(a, 2),
                "confusion_matrix": matrix,
                # The matrix's columns for samples the judge gave no value (issue #20): per assigned value (rows
                # as above), [undecided, failed].
                "confusion_not_judged": [
                    [tally.not_judged[prop.name][(v, stratum)] for stratum in NOT_JUDGED] for v in prop.values
                ],
                "expected_counts": expected_counts,
                "evaluated_counts": judged_counts,
                "samples_analyzed": analysed,
                "declined": declined.get(prop.name),
                # Where the samples not analysed went: failed + undecided + unusable + analysed = classified.
                "coverage": {
                    "analysed": analysed,
                    "total": total,
                    "percent": round(100 * analysed / total, 2) if total else 0.0,
                    "failed": tally.failed,
                    "undecided": tally.undecided[prop.name],
                    "unusable": tally.unusable[prop.name],
                },
            }
        )
    if not distances:
        raise _nothing_analysed(tally, total, declined)
    score = round(stats.conformance_score(distances), 2)
    agreements = [p["agreement"] for p in per_property if p["agreement"] is not None]
    summary = {
        "conformance_score": score,
        "samples_total": total,
        "samples_failed": tally.failed,
        "mean_agreement": round(sum(agreements) / len(agreements), 2) if agreements else None,
        "samples_mismatched": tally.mismatched,
        "properties_not_analysed": [p["property_name"] for p in per_property if p["samples_analyzed"] == 0],
        "properties": per_property,
        "embedded_judge": plan_summary(plan, properties),
    }
    return analysis, summary, score


def template_explanation(summary: dict[str, Any]) -> dict[str, str]:
    """The explanation and area strings written from the numbers alone (used when no LLM judge is available)."""
    # Properties with no analysed sample have no distance; they are named, not scored.
    props = [p for p in summary["properties"] if p["total_variation_distance"] is not None]
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
    partial = [p for p in props if p["coverage"]["analysed"] < p["coverage"]["total"]]
    if partial:
        explanation += (
            " Shares are over the samples analysed on each property: "
            + ", ".join(f"{p['property_name']} {p['coverage']['analysed']}/{p['coverage']['total']}" for p in partial)
            + "."
        )
    declined = {p["property_name"]: p["declined"] for p in summary["properties"] if p.get("declined")}
    if declined:
        explanation += (
            " Declined by the embedded judge, so not analysed: "
            + "; ".join(f"{name}, {why}" for name, why in declined.items())
            + "."
        )
    others = [name for name in summary["properties_not_analysed"] if name not in declined]
    if others:
        explanation += f" Not analysed on any sample, so not scored: {', '.join(others)}."

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
