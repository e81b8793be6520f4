"""The review queue (issue #20): which sample a reviewer labels next, how far the team has got, and how well the
reviewers agree with each other.

The random queue is the design the estimates rely on: for one evaluation and property it draws at random within
each stratum (the judged value, or UNDECIDED / FAILED when the judge gave none), with equal allocation across the
strata, and it is blind (the card shows neither the judged nor the assigned value until the reviewer answered).
Several reviewers share one shuffled order per stratum, so a second reviewer continues down it (new ground) and
now and then takes a sample a colleague already labelled (REVIEW_OVERLAP_PERCENT), which is what measures their
agreement. The disagreement queue (judged ≠ assigned) is not blind and never feeds the estimates.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Mod

from runs.models import Sample

from . import agreement
from .interrater import ReviewerAgreement, reviewer_agreement
from .models import Evaluation, Review, SampleClassification


class QueueMode(StrEnum):
    RANDOM = "random"  # stratified random per judged value (undecided and failed included), blind: the unbiased set
    DISAGREEMENT = "disagreement"  # judged ≠ assigned: kept apart from the unbiased set in every statistic

    @property
    def selection(self) -> str:
        """The selection a label made in this queue is stored with."""
        return Review.Selection.RANDOM if self is QueueMode.RANDOM else Review.Selection.DISAGREEMENT


SHUFFLE_PRIME = 4_294_967_291  # the largest prime below 2**32: sample_id * multiplier stays within 64 bits


def _shuffle_order(evaluation: Evaluation, prop: str, field: str) -> Mod:
    """A deterministic shuffle of the samples per evaluation and property, computed in SQL: an affine map of the
    sample id modulo a prime (a permutation), its constants drawn from a hash of (evaluation, property)."""
    digest = hashlib.sha256(f"{evaluation.code}:{prop}".encode()).digest()
    multiplier = 1 + int.from_bytes(digest[:4]) % (SHUFFLE_PRIME - 1)
    offset = int.from_bytes(digest[4:8]) % SHUFFLE_PRIME
    return Mod(F(field) * multiplier + offset, SHUFFLE_PRIME)


@dataclass(frozen=True)
class QueueState:
    sample: Sample | None  # the card to show; None when the queue is empty
    reviewed: int  # samples of this queue's set labelled on the property (by anyone)
    total: int  # the goal: agreement.MIN_REVIEWS (at most the run's size) for the random set, every disagreement


def _json_text(key: str, field: str) -> Cast:
    # As plain text: a JSON key lookup compares against JSON (SQLite refuses a bare string as malformed JSON).
    return Cast(KeyTextTransform(key, field), TextField())


def samples_with_stratum(evaluation: Evaluation, prop: str) -> QuerySet[Sample]:
    """The run's samples, each with `_stratum`: the evaluation's judged value on `prop`, or UNDECIDED / FAILED (a
    sample with no row counting as FAILED), in SQL over one LEFT JOIN."""
    return (
        Sample.objects.filter(run_id=evaluation.run_id)
        .annotate(_row=FilteredRelation("classifications", condition=Q(classifications__evaluation=evaluation)))
        .annotate(
            _stratum=Case(
                When(_row__id__isnull=True, then=Value(SampleClassification.FAILED)),
                default=SampleClassification.stratum_sql(prop, "_row__"),
                output_field=TextField(),
            )
        )
    )


def sample_stratum(*, evaluation: Evaluation, sample_id: int, prop: str) -> str:
    """One sample's stratum on `prop` in this evaluation (the design a random label is stored with)."""
    row = SampleClassification.objects.filter(evaluation=evaluation, sample_id=sample_id).first()
    return row.stratum(prop) if row is not None else SampleClassification.FAILED


def _random_set(evaluation: Evaluation, prop: str) -> QuerySet[Review]:
    """The labels drawn by this evaluation's random queue on `prop` (their design names this evaluation)."""
    return Review.objects.filter(evaluation=evaluation, property_name=prop, selection=Review.Selection.RANDOM)


def _overlap_due(*, mine: int, overlapping: int) -> bool:
    """Whether the reviewer's next label should go to a sample a colleague labelled: the reviewer's share of
    overlapping labels is kept at REVIEW_OVERLAP_PERCENT (the next label's own count included, so 100 asks for
    every label and 0 for none)."""
    return (mine + 1) * settings.REVIEW_OVERLAP_PERCENT // 100 > overlapping


def _random_queue(
    *, evaluation: Evaluation, prop: str, reviewer_id: int, skip: list[str] | tuple[str, ...]
) -> QueueState:
    # 1. The run's blind labels on the property (a few hundred rows at most): this evaluation's random set per
    # stratum, and who labelled what (overlap counts any blind label: it is what reviewers' agreement reads).
    per_stratum: dict[str, set[int]] = defaultdict(set)
    by_reviewer: dict[int, set[int]] = defaultdict(set)
    blind = Review.objects.filter(sample__run_id=evaluation.run_id, property_name=prop, blind=True)
    for drawn_for, selection, stratum, sample_id, who in blind.values_list(
        "evaluation_id", "selection", "stratum", "sample_id", "reviewer_id"
    ):
        if drawn_for == evaluation.id and selection == Review.Selection.RANDOM:
            per_stratum[stratum].add(sample_id)
        by_reviewer[who].add(sample_id)
    done = {stratum: len(ids) for stratum, ids in per_stratum.items()}
    mine = by_reviewer.pop(reviewer_id, set())
    others = set().union(*by_reviewer.values())
    want_overlap = _overlap_due(mine=len(mine), overlapping=len(mine & others))
    # 2. One query for the card: the reviewer's unlabelled samples (never one they labelled in any way: relabelled
    # here it would pass a label given with the judged value in view for a blind one), ordered by the kind wanted
    # (a colleague's sample or new ground), then the stratum with the fewest labels (equal allocation), then the
    # shuffle (random within the stratum). Strata with no labels yet sort first, undecided and failed included.
    # Both subqueries are on (sample, property): the index that keeps them a lookup per sample.
    labelled_by_colleague = Exists(
        Review.objects.filter(sample_id=OuterRef("id"), property_name=prop, blind=True).exclude(reviewer_id=reviewer_id)
    )
    labelled_by_me = Exists(
        Review.objects.filter(sample_id=OuterRef("id"), property_name=prop, reviewer_id=reviewer_id)
    )
    prefer = 0 if want_overlap else 1
    sample: Sample | None = (
        samples_with_stratum(evaluation, prop)
        .exclude(labelled_by_me)
        .exclude(code__in=skip)
        .annotate(
            _kind=Case(When(labelled_by_colleague, then=Value(prefer)), default=Value(1 - prefer)),
            _done=Case(
                *(When(_stratum=stratum, then=Value(n)) for stratum, n in done.items()),
                default=Value(0),
                output_field=IntegerField(),
            ),
            _order=_shuffle_order(evaluation, prop, "id"),
        )
        .order_by("_kind", "_done", "_order")
        .first()
    )
    # Enough for the estimates is the documented minimum, or every sample of a smaller run (a census).
    total = min(agreement.MIN_REVIEWS, evaluation.total_samples or agreement.MIN_REVIEWS)
    return QueueState(sample=sample, reviewed=sum(done.values()), total=total)


def _disagreement_queue(*, evaluation: Evaluation, prop: str, skip: list[str] | tuple[str, ...]) -> QueueState:
    mismatched = (
        SampleClassification.objects.filter(evaluation=evaluation, status=SampleClassification.Status.OK)
        .annotate(_judged=_json_text(prop, "classifications"), _assigned=_json_text(prop, "sample__properties"))
        .filter(_judged__isnull=False)
        .exclude(_assigned=F("_judged"))
    )
    labelled = Exists(Review.objects.filter(sample_id=OuterRef("sample_id"), property_name=prop))
    totals = mismatched.annotate(_labelled=labelled).aggregate(
        total=Count("id"), reviewed=Count("id", filter=Q(_labelled=True))
    )
    row: SampleClassification | None = (
        mismatched.exclude(sample__code__in=skip)
        .exclude(labelled)
        .select_related("sample")
        .annotate(_order=_shuffle_order(evaluation, prop, "sample_id"))
        .order_by("_order")
        .first()
    )
    return QueueState(sample=row.sample if row else None, reviewed=totals["reviewed"], total=totals["total"])


def review_queue(
    *, evaluation: Evaluation, prop: str, mode: QueueMode, reviewer_id: int, skip: list[str] | tuple[str, ...] = ()
) -> QueueState:
    """The next sample for this reviewer to label on `prop`, and how many are labelled. `skip` holds sample codes
    passed over in this session. Two queries, neither loading the run's samples."""
    if mode == QueueMode.DISAGREEMENT:
        return _disagreement_queue(evaluation=evaluation, prop=prop, skip=skip)
    return _random_queue(evaluation=evaluation, prop=prop, reviewer_id=reviewer_id, skip=skip)


def review_card_sample(*, evaluation: Evaluation, sample_code: str) -> Sample | None:
    """One sample of the run for the review card (undo and back show a labelled sample again)."""
    return Sample.objects.filter(run_id=evaluation.run_id, code=sample_code).first()


def reviewer_history(*, evaluation: Evaluation, reviewer_id: int, prop: str, mode: QueueMode) -> QuerySet[Review]:
    """The reviewer's labels on the property made in this evaluation's queue, most recent first (undo and back).
    Only this queue's: relabelling a disagreement through the random queue's "back" would pass it off as randomly
    drawn, and another evaluation's random labels belong to that evaluation's design."""
    return (
        Review.objects.filter(
            evaluation=evaluation,
            sample__run_id=evaluation.run_id,
            reviewer_id=reviewer_id,
            property_name=prop,
            selection=mode.selection,
        )
        .select_related("sample")
        .order_by("-updated_at", "-id")
    )


def reviewer_agreements(*, evaluation: Evaluation) -> dict[str, ReviewerAgreement]:
    """property → how well the reviewers agree with each other on the samples two or more of them labelled blind
    (on any evaluation of the run: labels belong to the samples). Only blind labels: labels given with the judge's
    answer in view lean towards it, and so towards each other. One query over the run's blind labels."""
    units: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    rows = Review.objects.filter(sample__run_id=evaluation.run_id, blind=True)
    for name, sample_id, value in rows.values_list("property_name", "sample_id", "value"):
        units[name][sample_id].append(value)
    agreements: dict[str, ReviewerAgreement] = {}
    for name, by_sample in units.items():
        found = reviewer_agreement(list(by_sample.values()))
        if found is not None:
            agreements[name] = found
    return agreements


def reveal(*, evaluation: Evaluation, sample: Sample, prop: str, label: str) -> dict[str, Any]:
    """What the card shows once the reviewer answered: the judged and assigned values and whether the judge agreed
    with the reviewer (so reviewers learn the judge)."""
    judged = sample_stratum(evaluation=evaluation, sample_id=sample.id, prop=prop)
    return {
        "sample": sample,
        "label": label,
        "judged": judged,
        "assigned": sample.properties.get(prop),
        "agreed": judged == label,
    }
