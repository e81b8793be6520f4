"""Human labels as the pages read them (the estimates built from them are in evaluations.human_review)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from .models import Review

if TYPE_CHECKING:
    from runs.specfile import Property


def sample_reviews(*, sample_id: int) -> QuerySet[Review]:
    """A sample's human labels, every reviewer's, by property."""
    return (
        Review.objects.filter(sample_id=sample_id).select_related("reviewer").order_by("property_name", "-updated_at")
    )


def reviewer_labels(*, sample_ids: list[int], reviewer_id: int) -> dict[int, dict[str, str]]:
    """sample id → property → the reviewer's own label, for a page of the sample table (one query)."""
    labels: dict[int, dict[str, str]] = defaultdict(dict)
    for sample_id, name, value in Review.objects.filter(sample_id__in=sample_ids, reviewer_id=reviewer_id).values_list(
        "sample_id", "property_name", "value"
    ):
        labels[sample_id][name] = value
    return labels


def corrections_for(properties: list[Property], sample_id: int, reviewer_id: int) -> list[dict[str, Any]]:
    """Per property, the values to choose from and the writer's own label of this sample (one query): the forms
    that correct a judged value in place, on the sample page and behind a table row's "Correct" button."""
    mine = reviewer_labels(sample_ids=[sample_id], reviewer_id=reviewer_id).get(sample_id, {})
    return [{"name": p.name, "values": p.values, "mine": mine.get(p.name)} for p in properties]
