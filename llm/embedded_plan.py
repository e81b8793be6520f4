"""What the embedded judge (llm/embedded.py) will decide in one evaluation, per property: its plan (issue #20).

The judge is only worth its answers if what it decides can be believed, so before it classifies a run it looks at
evidence that needs no label and never reads the samples' assigned values, and declines a property it cannot
judge (every sample of the run is then undecided on it, with the reason on the page):

- topical properties (value prototypes): over an evenly spaced subsample of the run, the median margin between the
  best and the second prototype, and the share the most-chosen value takes. A low median margin means the
  prototypes do not tell this run's texts apart (the judge would be choosing on noise: recipe cuisines, film
  genres, job contract types); one value winning most of the run is the signature of a hub prototype, close to
  every text of the domain ("a sweet dish eaten after the meal" for recipes), which the judge cannot tell from a
  real majority, so it declines rather than guess;
- sentiment-like properties (the lexicon): decided only on runs worded strongly enough for a lexicon (median
  |VADER compound| over the subsample); flatly told complaints and requests, where it is wrong one time in four,
  are left to an LLM judge (the CEO's ruling on issue 13: knowledge-bound properties belong to an LLM judge).

Learning from reviews: given at least MIN_TAUGHT human labels on a property (blind, drawn at random, on the
teaching half of the samples: see evaluations/teaching.py), the judge measures its candidate methods on them
(the prototypes or the lexicon as they are, and a nearest centroid over the labelled samples' embeddings with the
prototypes beside them, leave-one-out) and uses the best if it reaches TAUGHT_MIN_AGREEMENT on what it decides;
otherwise it declines, whatever the label-free evidence said. The labels decide, where there are enough.

Thresholds: calibrated on the tuning split of benchmarks/fixtures/embedded_judge/ (`embedded_judge.py --calibrate`).
The plan is plain JSON: stored on the evaluation, read by every classify worker, part of the configuration hash.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import embedded
from .base import PropertyLike

if TYPE_CHECKING:
    from numpy.typing import NDArray

PLAN_VERSION = 1
DECLINED_REASON = "this property needs an LLM judge or human reviews"
# Texts of the run the label-free evidence reads (evenly spaced): bounds the plan's cost whatever the run's size.
RUN_SUBSAMPLE = 400
# Below this many texts the run says too little about itself; the judge then relies on the per-sample margin only.
MIN_RUN_TEXTS = 10
# Calibrated on the tuning rows: every topical property that reached 80% on decided samples there had a median
# margin >= 0.111 and a top share <= 0.50; every one that did not had a median margin <= 0.095 or (recipes course)
# a top share of 0.73. The thresholds sit between the two groups.
MIN_MEDIAN_MARGIN = 0.10
MAX_TOP_SHARE = 0.60
# The tuning rows' sentiment runs have a median |compound| of 0.40 (product reviews) and 0.44 (support tickets),
# where the lexicon decided 91% and 77% right; above 0.6 the texts are worded strongly (the tests' own runs: 0.86).
LEXICON_MIN_STRENGTH = 0.6
# Learning from reviews.
MIN_TAUGHT = 20
TAUGHT_MIN_AGREEMENT = 0.80  # issue #20's bar, on what the judge decides among the taught samples
TAUGHT_MIN_COVERAGE = 0.5  # a method that decides fewer of the taught samples than this is not taken up
TAUGHT_MARGINS = (0.0, 0.005, 0.01, 0.02, 0.04)  # candidate margins for the centroid method, smallest first


@dataclass(frozen=True)
class Taught:
    """Human labels on one property, to teach the judge: one entry per review, in the same order."""

    review_ids: tuple[int, ...]
    texts: tuple[str, ...]
    values: tuple[str, ...]


def _subsample(texts: Sequence[str]) -> list[str]:
    step = max(1, len(texts) // RUN_SUBSAMPLE)
    return list(texts[::step][:RUN_SUBSAMPLE])


def _vectors(texts: Sequence[str]) -> NDArray[np.float32]:
    loaded = embedded.models()
    rows = [v for v in (loaded.embed(t) for t in texts) if v is not None]
    return np.stack(rows) if rows else np.zeros((0, loaded.embedding.shape[1]), dtype=np.float32)


def _declined(why: str, **evidence: Any) -> dict[str, Any]:
    return {"mode": "declined", "reason": f"{DECLINED_REASON} ({why})", "why": why, "evidence": evidence}


def _label_free(prop: PropertyLike, texts: Sequence[str], vectors: NDArray[np.float32]) -> dict[str, Any]:
    """The plan from the run's own texts: no label, no assigned value."""
    method = "lexicon" if embedded.is_sentiment_like(prop.values) else "prototypes"
    if len(texts) < MIN_RUN_TEXTS or len(vectors) < MIN_RUN_TEXTS:
        return {"mode": method, "reason": f"only {len(texts)} texts: decided sample by sample", "evidence": {}}
    if method == "lexicon":
        vader = embedded.models().vader
        strength = float(np.median([abs(vader.polarity_scores(t)["compound"]) for t in texts]))
        evidence: dict[str, Any] = {"median_strength": round(strength, 3)}
        if strength < LEXICON_MIN_STRENGTH:
            return _declined(
                f"the texts are worded too plainly for a sentiment lexicon: median strength {strength:.2f} "
                f"< {LEXICON_MIN_STRENGTH}",
                **evidence,
            )
        return {
            "mode": method,
            "reason": f"strongly worded texts (median strength {strength:.2f})",
            **{"evidence": evidence},
        }
    matrix, _bias = embedded.prototypes(prop)
    scores = vectors @ matrix.T
    ordered = np.sort(scores, axis=1)
    median_margin = float(np.median(ordered[:, -1] - ordered[:, -2]))
    winners = Counter(np.argmax(scores, axis=1).tolist())
    top, top_count = winners.most_common(1)[0]
    top_share = top_count / len(scores)
    evidence = {
        "median_margin": round(median_margin, 4),
        "top_value": prop.values[top],
        "top_share": round(top_share, 3),
    }
    if median_margin < MIN_MEDIAN_MARGIN:
        return _declined(
            f"its values' prototypes barely tell this run's texts apart: median margin {median_margin:.3f} "
            f"< {MIN_MEDIAN_MARGIN}",
            **evidence,
        )
    if top_share > MAX_TOP_SHARE:
        return _declined(
            f"{prop.values[top]!r} would win {top_share:.0%} of the texts, the mark of a prototype close to every "
            "text of the domain",
            **evidence,
        )
    return {
        "mode": method,
        "reason": f"prototypes separate the texts (median margin {median_margin:.3f})",
        "evidence": evidence,
    }


def centroids(prop: PropertyLike, vectors: NDArray[np.float32], values: Sequence[str]) -> NDArray[np.float32]:
    """One unit vector per value: its labelled samples' embeddings summed with its prototype (one pseudo-sample, so
    a value nobody labelled yet keeps its prototype)."""
    matrix, _bias = embedded.prototypes(prop)
    sums = matrix.astype(np.float64).copy()
    index = {v: i for i, v in enumerate(prop.values)}
    for vector, value in zip(vectors, values, strict=True):
        sums[index[value]] += vector
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _agreement(pairs: Sequence[tuple[str | None, str]]) -> tuple[int, int, int]:
    """(right, decided, total) of (judged, label) pairs."""
    decided = [(j, label) for j, label in pairs if j is not None]
    return sum(j == label for j, label in decided), len(decided), len(pairs)


def wilson_lower(right: int, n: int, z: float = 1.96) -> float:
    """Lower end of the Wilson 95% interval of a proportion (0 when n = 0)."""
    if n == 0:
        return 0.0
    p = right / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def _taught(prop: PropertyLike, taught: Taught, label_free: dict[str, Any]) -> dict[str, Any]:
    """What the labels change. A method the texts alone trusted is kept unless the labels show it right on fewer
    than 80% of what it decides; a property the texts alone declined is taken up by the method whose agreement on
    the labels is at least 80% with 95% confidence (Wilson lower bound), the centroids measured leave-one-out."""
    n = len(taught.review_ids)
    teaching: dict[str, Any] = {"labels": n, "review_ids": list(taught.review_ids)}
    base_method = "lexicon" if embedded.is_sentiment_like(prop.values) else "prototypes"
    right, decided, total = _agreement(
        [
            (embedded.judge_property(t, prop, {"mode": base_method}).value, v)
            for t, v in zip(taught.texts, taught.values, strict=True)
        ]
    )
    base_evidence = {"taught_agreement": round(right / decided, 3) if decided else None, "taught_decided": decided}
    if label_free["mode"] != "declined":
        if decided and right / decided >= TAUGHT_MIN_AGREEMENT:
            reason = f"{label_free['reason']}; checked against {n} human labels: right on {right} of the {decided} it decides"
            return {**label_free, "reason": reason, "evidence": label_free["evidence"] | base_evidence, **teaching}
        return _declined(
            f"measured on {n} human labels it is right on {right} of the {decided} it decides",
            **base_evidence,
            **teaching,
        )
    candidates: list[tuple[float, int, int, dict[str, Any]]] = [
        (wilson_lower(right, decided), right, decided, {"mode": base_method})
    ]
    vectors = _vectors(taught.texts)
    if len(vectors) == n:
        # Leave-one-out: each labelled sample is judged by centroids built without it.
        loo_scores = []
        for i in range(n):
            keep = [k for k in range(n) if k != i]
            loo_scores.append(centroids(prop, vectors[keep], [taught.values[k] for k in keep]) @ vectors[i])
        for margin in TAUGHT_MARGINS:
            pairs = []
            for scores, label in zip(loo_scores, taught.values, strict=True):
                ordered = np.sort(scores)
                judged = prop.values[int(np.argmax(scores))] if ordered[-1] - ordered[-2] >= margin else None
                pairs.append((judged, label))
            r, d, _ = _agreement(pairs)
            candidates.append((wilson_lower(r, d), r, d, {"mode": "taught", "min_margin": margin}))
    lower, right, decided, chosen = max(candidates, key=lambda c: (c[0], c[2]))
    evidence = {"taught_right": right, "taught_decided": decided, "taught_lower_bound": round(lower, 3)}
    if lower < TAUGHT_MIN_AGREEMENT or decided < TAUGHT_MIN_COVERAGE * n:
        return _declined(
            f"{label_free['why']}; on {n} human labels its best method is right on "
            f"{right} of the {decided} it decides, not enough to be sure of 80%",
            **evidence,
            **teaching,
        )
    how = "nearest centroid of the labelled samples (leave-one-out)" if chosen["mode"] == "taught" else chosen["mode"]
    plan: dict[str, Any] = {
        **chosen,
        "reason": f"taught by {n} human labels: {how} right on {right} of the {decided} it decides among them",
        "evidence": evidence,
        **teaching,
    }
    if chosen["mode"] == "taught":
        plan["centroids"] = centroids(prop, vectors, taught.values).round(6).tolist()
    return plan


def make_plan(
    texts: Sequence[str], properties: Sequence[PropertyLike], taught: Mapping[str, Taught] | None = None
) -> dict[str, Any]:
    """The judge's plan for a run: per property, its mode (prototypes, lexicon, taught or declined) and why.

    `texts`: the run's texts (any order; an evenly spaced subsample is read); `taught`: per property, the human
    labels it may learn from (a property with fewer than MIN_TAUGHT is planned from the texts alone).
    """
    sample = _subsample(texts)
    vectors = _vectors(sample)
    plans: dict[str, Any] = {}
    for prop in properties:
        labels = (taught or {}).get(prop.name)
        if len(prop.values) < 2:
            plans[prop.name] = _declined("fewer than two values to choose from")
        elif labels is not None and len(labels.review_ids) >= MIN_TAUGHT:
            plans[prop.name] = _taught(prop, labels, _label_free(prop, sample, vectors))
        else:
            plans[prop.name] = _label_free(prop, sample, vectors)
    return {
        "version": PLAN_VERSION,
        "properties": plans,
        # Every review that taught the judge in this evaluation: the estimate of this evaluation's error must not
        # use them (evaluations/teaching.py states the rule).
        "taught_review_ids": sorted({i for p in plans.values() for i in p.get("review_ids", [])}),
    }


def prepared(plan: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The plan with its centroids as arrays, converted once per job instead of once per sample."""
    if plan is None:
        return None
    properties = {
        name: entry | {"centroids": np.asarray(entry["centroids"], dtype=np.float32)} if "centroids" in entry else entry
        for name, entry in plan.get("properties", {}).items()
    }
    return {**plan, "properties": properties}


def declined(plan: Mapping[str, Any] | None) -> dict[str, str]:
    """The properties a plan declines, with the reason."""
    properties = (plan or {}).get("properties", {})
    return {name: p["reason"] for name, p in properties.items() if p.get("mode") == "declined"}
