"""Human reviews written: a reviewer's labels saved (blind or not) and withdrawn, checked against the spec's values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from runs.models import Sample
from runs.specfile import Property

from .models import Evaluation, Review

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class ReviewError(ValueError):
    """A label that cannot be stored; the message names the field and the problem."""

    def __init__(self, field: str, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.index = index  # the item's position in a list of labels


@dataclass(frozen=True)
class ReviewInput:
    sample_identifier: str
    property_name: str
    value: str
    selection: str = Review.Selection.RANDOM
    # The design of a random label (issue #20; Review's fields say what each means).
    stratum: str = ""
    inclusion_probability: float | None = None
    blind: bool = False


def _review_sample(*, item: ReviewInput, properties: dict[str, Property], samples: dict[str, Sample]) -> Sample:
    """Check one label against the run's spec and samples; the sample it is about."""
    prop = properties.get(item.property_name)
    if prop is None:
        raise ReviewError(
            "property_name", f"No property {item.property_name!r}; the spec has: {', '.join(properties)}."
        )
    if item.value not in prop.value_set:
        raise ReviewError("value", f"{item.value!r} is not a value of {prop.name}: one of {', '.join(prop.values)}.")
    if item.selection not in Review.Selection.values:
        raise ReviewError("selection", f"selection must be one of {', '.join(Review.Selection.values)}.")
    sample = samples.get(item.sample_identifier)
    if sample is None:
        raise ReviewError("sample_identifier", f"No sample {item.sample_identifier!r} in this evaluation's run.")
    return sample


def _current_labels(*, reviewer: User, checked: list[tuple[Sample, ReviewInput]]) -> dict[tuple[int, str], Review]:
    """The reviewer's labels the items would update, by (sample id, property), in one query."""
    rows = Review.objects.filter(
        reviewer=reviewer,
        sample__in=[sample for sample, _ in checked],
        property_name__in={item.property_name for _, item in checked},
    )
    return {(r.sample_id, r.property_name): r for r in rows}


@transaction.atomic
def review_save(*, evaluation: Evaluation, reviewer: User, items: list[ReviewInput]) -> list[Review]:
    """Store the reviewer's labels for samples of the evaluation's run, all or none: the first bad item raises
    ReviewError (its `index` set) and nothing is stored. Labelling again updates the reviewer's label; a label
    once made from the random queue stays `random` with its design (the sample was drawn at random whatever
    corrects it later, and dropping it would bias the unbiased set towards the samples nobody corrected)."""
    identifiers = {item.sample_identifier for item in items}
    rows = Sample.objects.filter(run_id=evaluation.run_id, identifier__in=identifiers).only("id", "identifier")
    samples = {s.identifier: s for s in rows}
    properties = {p.name: p for p in evaluation.run.spec_version.parsed_properties}
    checked = []
    for index, item in enumerate(items):
        try:
            checked.append((_review_sample(item=item, properties=properties, samples=samples), item))
        except ReviewError as exc:
            raise ReviewError(exc.field, str(exc), index=index) from None
    current = _current_labels(reviewer=reviewer, checked=checked)
    saved = []
    for sample, item in checked:
        key = (sample.id, item.property_name)
        review = current.get(key)
        if review is None:
            try:
                # Its own savepoint: a concurrent request by the same reviewer may have created it (a double
                # submit); then it is updated below, never a 500.
                with transaction.atomic():
                    review = Review.objects.create(
                        company_id=evaluation.company_id,
                        sample=sample,
                        property_name=item.property_name,
                        reviewer=reviewer,
                        value=item.value,
                        selection=item.selection,
                        evaluation=evaluation,
                        stratum=item.stratum,
                        inclusion_probability=item.inclusion_probability,
                        blind=item.blind,
                    )
            except IntegrityError:
                review = Review.objects.get(reviewer=reviewer, sample=sample, property_name=item.property_name)
            else:
                current[key] = review
                saved.append(review)
                continue
        review.value = item.value
        if review.selection != Review.Selection.RANDOM:
            # A random label's design (its evaluation, stratum, probability, blindness) stays as drawn: relabelling
            # it from another page must not move it to another design or make it look blind.
            review.selection, review.evaluation = item.selection, evaluation
            review.stratum, review.inclusion_probability, review.blind = (
                item.stratum,
                item.inclusion_probability,
                item.blind,
            )
        review.save()
        current[key] = review
        saved.append(review)
    return saved


def review_withdraw(*, review: Review) -> None:
    """Withdraw a label (any writer of the company may: an admin removes a colleague's mistaken labels too)."""
    review.delete()
