"""The regression gate: what changed from a baseline evaluation to a candidate, per property, with 95% intervals,
and a verdict against the GATE_* settings. The compare page's deltas, the API's compare and `manage.py gate` all
read it, so the three can never disagree.

A change of a share (an evaluated share, or the agreement) is *significant* when its 95% Newcombe interval
(evaluations.statistics.newcombe_difference) leaves out 0. The verdict is REGRESSION when any of:
1. the conformance score dropped by more than GATE_MAX_SCORE_DROP points;
2. a property's TVD (evaluated vs expected) rose by more than GATE_MAX_TVD_RISE percentage points;
3. a property's agreement dropped by more than GATE_MAX_AGREEMENT_DROP percentage points, significantly (so that
   a handful of samples flipping on a small run does not fail a pipeline).
Properties the two evaluations do not share are listed, never judged. Built from the stored statistics: no query.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings

from . import statistics as stats
from .models import Evaluation

PASS, REGRESSION = "PASS", "REGRESSION"


class GateError(ValueError):
    """The two evaluations cannot be compared (the message says why)."""


@dataclass(frozen=True)
class Thresholds:
    score_drop: float
    tvd_rise: float
    agreement_drop: float

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(
            score_drop=float(settings.GATE_MAX_SCORE_DROP),
            tvd_rise=float(settings.GATE_MAX_TVD_RISE),
            agreement_drop=float(settings.GATE_MAX_AGREEMENT_DROP),
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def share_change(base_k: int, base_n: int, new_k: int, new_n: int) -> dict[str, Any]:
    """A share before and after (percent), its change (pp), the change's 95% interval and whether it is beyond
    noise. Shares of no samples are None."""
    base = 100 * base_k / base_n if base_n else None
    new = 100 * new_k / new_n if new_n else None
    interval = stats.newcombe_difference(base_k, base_n, new_k, new_n)
    return {
        "baseline": _round(base),
        "candidate": _round(new),
        "delta": None if base is None or new is None else round(new - base, 2),
        "interval": None if interval is None else [round(interval[0], 2), round(interval[1], 2)],
        "significant": interval is not None and (interval[0] > 0 or interval[1] < 0),
    }


def _agreement_counts(prop: dict[str, Any]) -> tuple[int, int]:
    """(samples whose judged value equals the assigned one, samples judged) from the confusion matrix."""
    matrix = prop.get("confusion_matrix") or []
    return sum(matrix[i][i] for i in range(len(matrix))), sum(sum(row) for row in matrix)


def _number_change(base: float | None, new: float | None) -> dict[str, Any]:
    return {"baseline": base, "candidate": new, "delta": None if base is None or new is None else round(new - base, 2)}


def property_change(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """One shared property: TVD, agreement (with interval) and each evaluated share (with interval)."""
    values = list(dict.fromkeys([*base["values"], *new["values"]]))
    base_n, new_n = base.get("samples_analyzed") or 0, new.get("samples_analyzed") or 0
    base_counts, new_counts = base.get("evaluated_counts") or {}, new.get("evaluated_counts") or {}
    return {
        "property_name": base["property_name"],
        "tvd": _number_change(base.get("total_variation_distance"), new.get("total_variation_distance")),
        "agreement": share_change(*_agreement_counts(base), *_agreement_counts(new)),
        "evaluated": [
            {"value": v, **share_change(base_counts.get(v, 0), base_n, new_counts.get(v, 0), new_n)} for v in values
        ],
    }


def evaluation_changes(
    *, baseline: Evaluation, candidate: Evaluation, thresholds: Thresholds | None = None
) -> dict[str, Any]:
    """Per shared property what changed from `baseline` to `candidate` (both finished), the checks against the
    thresholds, and the verdict."""
    thresholds = thresholds or Thresholds.from_settings()
    by_name = [
        {p["property_name"]: p for p in (e.statistics or {}).get("properties", [])} for e in (baseline, candidate)
    ]
    shared = [name for name in by_name[0] if name in by_name[1]]
    properties = [property_change(by_name[0][name], by_name[1][name]) for name in shared]
    score = _number_change(_round(baseline.conformance_score), _round(candidate.conformance_score))
    checks: list[dict[str, Any]] = []

    def check(name: str, prop: str | None, change: float | None, limit: float, failed: bool) -> None:
        checks.append({"check": name, "property_name": prop, "change": change, "threshold": limit, "failed": failed})

    drop = None if score["delta"] is None else -score["delta"]
    check("score_drop", None, drop, thresholds.score_drop, drop is not None and drop > thresholds.score_drop)
    for prop in properties:
        rise = prop["tvd"]["delta"]
        check(
            "tvd_rise",
            prop["property_name"],
            rise,
            thresholds.tvd_rise,
            rise is not None and rise > thresholds.tvd_rise,
        )
        agreement = prop["agreement"]
        fell = None if agreement["delta"] is None else -agreement["delta"]
        failed = fell is not None and fell > thresholds.agreement_drop and agreement["significant"]
        check("agreement_drop", prop["property_name"], fell, thresholds.agreement_drop, failed)
    return {
        "baseline": str(baseline.code),
        "candidate": str(candidate.code),
        "score": score,
        "properties": properties,
        "properties_not_shared": sorted(set(by_name[0]) ^ set(by_name[1])),
        "thresholds": asdict(thresholds),
        "checks": checks,
        "verdict": REGRESSION if any(c["failed"] for c in checks) else PASS,
    }


def gate_compare(*, baseline: Evaluation, candidate: Evaluation) -> dict[str, Any]:
    """evaluation_changes after the checks the API and the command share: both finished, runs of one spec."""
    if baseline.run.spec_id != candidate.run.spec_id:
        raise GateError("The baseline evaluates a run of another spec: only evaluations of one spec compare.")
    for role, evaluation in (("baseline", baseline), ("candidate", candidate)):
        if evaluation.status != Evaluation.Status.SUCCEEDED or not evaluation.statistics:
            raise GateError(f"The {role} has not finished successfully (status {evaluation.status}).")
    return evaluation_changes(baseline=baseline, candidate=candidate)
