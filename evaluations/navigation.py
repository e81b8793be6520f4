"""Moving around the samples of an evaluation: the sample table's filters carried to a sample page, and that
sample's previous and next within the same filtered, sorted set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.http import QueryDict

from .models import Evaluation
from .sample_table import classification_rows

# The sample table's own state in the URL; anything else (a partial's name, htmx's cache busters) stays behind.
TABLE_KEYS = ("property", "assigned", "judged", "mismatch", "q", "sort", "size", "page")


def table_query(params: QueryDict) -> str:
    """The table's filters, sort and page as a query string (empty values dropped), to carry to a sample page and
    back again."""
    carried = QueryDict(mutable=True)
    for key in TABLE_KEYS:
        value = params.get(key, "")
        if value and len(value) <= 200:
            carried[key] = value
    return carried.urlencode()


@dataclass(frozen=True)
class Neighbours:
    """Where a sample stands in the filtered set: 1-based `position` (0: not in it) of `total`, and the codes of
    the samples before and after it."""

    position: int
    total: int
    previous: UUID | None
    next: UUID | None


def sample_neighbours(*, evaluation: Evaluation, sample_code: UUID, filters: dict[str, Any]) -> Neighbours:
    """One query: the filtered set's sample codes in the table's order (one UUID column, so even 20,000 samples
    are a small read), then the sample's place among them."""
    rows = {k: v for k, v in filters.items() if k != "size"}
    codes = list(classification_rows(evaluation=evaluation, **rows).values_list("sample__code", flat=True))
    try:
        index = codes.index(sample_code)
    except ValueError:
        # Not in the set (a filter that excludes it, or a link from elsewhere): start from the set's first.
        return Neighbours(0, len(codes), None, codes[0] if codes else None)
    return Neighbours(
        index + 1,
        len(codes),
        codes[index - 1] if index > 0 else None,
        codes[index + 1] if index + 1 < len(codes) else None,
    )
