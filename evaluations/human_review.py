"""Human labels as the estimator reads them (issue #20): who labelled what, by which design, and each evaluation's
`human_review` blocks. The statistics themselves are in evaluations.agreement; this module only gathers their
inputs, a handful of queries per evaluation, none over every sample."""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from runs.models import Sample

from . import agreement
from .models import Evaluation, Review, SampleClassification

# A design is how a set of random labels was drawn: the review queue of one evaluation (random within its strata),
# or a client that drew at random over the whole run through the API, with or without inclusion probabilities.
API_SIMPLE = "api"
API_GIVEN = "api-probability"


@dataclass(frozen=True)
class Draw:
    """A sample's blind random label(s) of one design, combined over reviewers."""

    design: str  # "queue:<evaluation id>", API_SIMPLE or API_GIVEN
    stratum: str  # the design's stratum it was drawn from ("" for the API's draws over the whole run)
    probability: float | None  # the client's inclusion probability (API_GIVEN only)
    value: str


@dataclass(frozen=True)
class HumanLabel:
    """Every reviewer's labels on one sample and property, combined into one."""

    value: str  # over every label, whatever chose the sample: the truth for this sample
    random: bool  # has a blind random label: one of the sets that feed the estimates
    reviewers: int
    draws: tuple[Draw, ...] = ()  # one per design that drew it


def combined_label(labels: list[tuple[str, datetime.datetime]]) -> str:
    """Several reviewers' labels as one: the value most of them gave; a tie goes to the most recently given of the
    tied values (the later look is usually the considered one, and the rule needs no third reviewer)."""
    counts = Counter(value for value, _ in labels)
    top = max(counts.values())
    return max((when, value) for value, when in labels if counts[value] == top)[1]


def _design(selection: str, blind: bool, evaluation_id: int | None, stratum: str, probability: float | None) -> str:
    """The design key of one label, or "" when it does not count as random (hand-picked, not blind, no design)."""
    if selection != Review.Selection.RANDOM or not blind:
        return ""
    if stratum:
        return f"queue:{evaluation_id}" if evaluation_id is not None else ""
    return API_GIVEN if probability is not None else API_SIMPLE


def run_labels(
    *, run_id: int, prop: str | None = None, taught: frozenset[int] = frozenset()
) -> dict[str, dict[int, HumanLabel]]:
    """property → sample id → the combined human label, over the run's reviewed samples. One query over the
    reviews (a few hundred rows per property), none over the samples. `taught`: review ids that taught the judge
    being measured (evaluations.teaching); they stay the truth for their samples but are never a random draw, so
    they cannot also measure that judge's error."""
    rows = Review.objects.filter(sample__run_id=run_id)
    if prop is not None:
        rows = rows.filter(property_name=prop)
    grouped: dict[tuple[str, int], list[tuple[str, datetime.datetime, str, str, float | None]]] = defaultdict(list)
    fields = ("property_name", "sample_id", "value", "updated_at", "selection", "blind", "evaluation_id", "stratum")
    for name, sample_id, value, updated, selection, blind, evaluation_id, stratum, probability, pk in rows.values_list(
        *fields, "inclusion_probability", "id"
    ).iterator(chunk_size=2000):
        design = "" if pk in taught else _design(selection, blind, evaluation_id, stratum, probability)
        grouped[(name, sample_id)].append((value, updated, design, stratum, probability))
    labels: dict[str, dict[int, HumanLabel]] = defaultdict(dict)
    for (name, sample_id), given in grouped.items():
        by_design: dict[str, list[tuple[str, datetime.datetime, str, float | None]]] = defaultdict(list)
        for value, when, design, stratum, probability in given:
            if design:
                by_design[design].append((value, when, stratum, probability))
        draws = tuple(
            # The queue keeps a label's stratum and probability fixed once drawn: any of its labels gives them.
            Draw(design, drawn[0][2], drawn[0][3], combined_label([(v, w) for v, w, _, _ in drawn]))
            for design, drawn in sorted(by_design.items())
        )
        labels[name][sample_id] = HumanLabel(
            value=combined_label([(value, when) for value, when, *_ in given]),
            random=bool(draws),
            reviewers=len(given),
            draws=draws,
        )
    return labels


def _judged_text(prop: str) -> Cast:
    return Cast(KeyTextTransform(prop, "classifications"), TextField())


def _stratum(status: str, judged: str | None) -> str:
    """SampleClassification.stratum's rule on a row's status and judged text (a JSON null, which stratum() would
    spell "None", is undecided here and in every count alike)."""
    if status == SampleClassification.Status.FAILED:
        return SampleClassification.FAILED
    return SampleClassification.UNDECIDED if judged is None else judged


def strata_sizes(*, evaluation_id: int, prop: str, population: int) -> dict[str, int]:
    """N_h: the run's samples per stratum of `evaluation_id` on `prop` (SampleClassification.stratum's rule), one
    aggregate query. Samples with no row (a canceled evaluation) count as failed."""
    rows = (
        SampleClassification.objects.filter(evaluation_id=evaluation_id)
        .annotate(_judged=_judged_text(prop))
        .values_list("status", "_judged")
        .annotate(n=Count("id"))
    )
    sizes: Counter[str] = Counter()
    for status, judged, n in rows:
        sizes[_stratum(status, judged)] += n
    sizes[SampleClassification.FAILED] += population - sum(sizes.values())
    return {key: n for key, n in sizes.items() if n > 0}


def _chosen_design(labels: dict[int, HumanLabel], own: str) -> str | None:
    """The design with the most blind random labels on the property (ties: the target's own queue first, then by
    name). Each design is unbiased alone; the rule reads how many labels each has, never what they say."""
    counts = Counter(draw.design for label in labels.values() for draw in label.draws)
    if not counts:
        return None
    return max(counts, key=lambda design: (counts[design], design == own, design))


def review_sample(
    *,
    evaluation: Evaluation,
    prop: str,
    labels: dict[int, HumanLabel],
    judged: dict[int, str],
    population: int,
    sizes: dict[str, int],
) -> agreement.ReviewSample:
    """One property's ReviewSample for `evaluation`: its strata `sizes` over the run, `judged` (reviewed sample id →
    its stratum), the labels, and the chosen design's strata (one more aggregate query when another evaluation's
    queue drew them)."""
    own = f"queue:{evaluation.id}"
    design = _chosen_design(labels, own)
    known: dict[str, Counter[str]] = defaultdict(Counter)
    for sample_id, label in labels.items():
        known[judged.get(sample_id, SampleClassification.FAILED)][label.value] += 1
    draws = [(sample_id, draw) for sample_id, label in labels.items() for draw in label.draws if draw.design == design]
    drawn = Counter(draw.stratum for _, draw in draws)
    if design is None:
        design_sizes: dict[str, int] = {}
        words = None
    elif design.startswith("queue:"):
        source = int(design.split(":", 1)[1])
        design_sizes = (
            sizes if source == evaluation.id else strata_sizes(evaluation_id=source, prop=prop, population=population)
        )
        words = "the review queue of this evaluation" if source == evaluation.id else "another evaluation's queue"
    else:
        design_sizes = {"": population}
        words = "labels an API client drew at random over the run"
    # n_h / N_h; a stratum that holds fewer samples now than were drawn from it (judged while the evaluation still
    # ran) is taken as fully drawn rather than given a probability above 1.
    fraction = {h: min(1.0, n / max(design_sizes.get(h, 0), n)) for h, n in drawn.items()}
    if design == API_GIVEN:
        # The client's probabilities weight each label; their mean stands in for the sampling fraction in the FPC.
        probabilities = [draw.probability or 1.0 for _, draw in draws]
        fraction = {"": sum(probabilities) / len(probabilities)}
    random = [
        (
            draw.value,
            judged.get(sample_id, SampleClassification.FAILED),
            draw.stratum,
            draw.probability if design == API_GIVEN and draw.probability else fraction[draw.stratum],
        )
        for sample_id, draw in draws
    ]
    return agreement.ReviewSample(
        strata=sizes, known=known, random=random, sampled=fraction, reviewed=len(labels), design=words
    )


def human_review_blocks(*, evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """property → the `human_review` block (evaluations.agreement), computed when read since reviews arrive after
    the evaluation finished. Queries: the run's reviews, its sample count, the evaluation's rows of the reviewed
    samples, and per property one aggregate of the evaluation's strata (and of the design's, when another
    evaluation's queue drew the labels)."""
    if not evaluation.statistics:
        return {}
    taught = frozenset((evaluation.judge_plan or {}).get("taught_review_ids", []))
    labels = run_labels(run_id=evaluation.run_id, taught=taught)
    # No labels, nothing to estimate: the page of an unreviewed evaluation costs one query here.
    population = Sample.objects.filter(run_id=evaluation.run_id).count() if labels else 0
    reviewed = {sample_id for by_sample in labels.values() for sample_id in by_sample}
    names = [stats["property_name"] for stats in evaluation.statistics["properties"]]
    texts = {f"_judged_{i}": _judged_text(name) for i, name in enumerate(names)}
    rows = list(
        SampleClassification.objects.filter(evaluation=evaluation, sample_id__in=reviewed)
        .annotate(**texts)
        .values("sample_id", "status", *texts)
    )
    blocks = {}
    for i, stats in enumerate(evaluation.statistics["properties"]):
        name = stats["property_name"]
        judged = {row["sample_id"]: _stratum(row["status"], row[f"_judged_{i}"]) for row in rows}
        by_sample = labels.get(name, {})
        sizes = strata_sizes(evaluation_id=evaluation.id, prop=name, population=population) if by_sample else {}
        sample = review_sample(
            evaluation=evaluation, prop=name, labels=by_sample, judged=judged, population=population, sizes=sizes
        )
        blocks[name] = agreement.human_review_block(values=stats["values"], sample=sample)
    return blocks


def statistics_with_human_review(*, evaluation: Evaluation) -> dict[str, Any] | None:
    """The stored statistics, each property gaining `human_review` (the stored JSON is left as it is)."""
    if not evaluation.statistics:
        return evaluation.statistics
    blocks = human_review_blocks(evaluation=evaluation)
    return {
        **evaluation.statistics,
        "properties": [
            {**stats, "human_review": blocks[stats["property_name"]]} for stats in evaluation.statistics["properties"]
        ],
    }
