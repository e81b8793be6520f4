"""Human labels as the pages read them (the estimates built from them are in evaluations.human_review)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import QuerySet

from .models import Review


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
