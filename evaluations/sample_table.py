"""The evaluation page's sample table: filters, search, sorts, and counts read off the stored confusion matrices."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform

from .analysis import NOT_JUDGED
from .models import Evaluation, SampleClassification

SAMPLE_PAGE_SIZES = (25, 50, 100, 200)
# The sample table's sorts besides "judged:<property>" (by the value judged on that property).
SAMPLE_SORTS = {
    "position": "position",
    "-position": "position, last first",
    "identifier": "identifier",
    "-identifier": "identifier, Z→A",
    "agreement": "fewest values agreeing first",
    "-agreement": "most values agreeing first",
}


def sample_sort_choices(properties: list[str]) -> list[tuple[str, str]]:
    """Every valid value of the sample table's `sort`, with its label."""
    return [*SAMPLE_SORTS.items(), *((f"judged:{name}", f"judged {name}") for name in properties)]


def classification_rows(
    *,
    evaluation: Evaluation,
    prop: str = "",
    assigned: str = "",
    judged: str = "",
    mismatch: bool = False,
    q: str = "",
    sort: str = "position",
) -> QuerySet[SampleClassification]:
    """The sample table: filter by assigned and judged value of a property, or to samples the judge disagreed on;
    search the content and identifier; sort (`sort` must be one of sample_sort_choices: the view checks it)."""
    rows = (
        SampleClassification.objects.filter(evaluation=evaluation)
        .select_related("sample")
        .only("code", "status", "classifications", "error", "sample__code", "sample__identifier",
              "sample__content", "sample__properties")
    )  # fmt: skip
    names = [p["property_name"] for p in evaluation.distribution_analysis or []]
    if prop in names and (assigned or judged):
        if judged in (SampleClassification.UNDECIDED, SampleClassification.FAILED):
            # The samples the judge gave no value on the property: the stratum rule, in SQL.
            rows = rows.annotate(_stratum=SampleClassification.stratum_sql(prop)).filter(_stratum=judged)
        else:
            # Filtering on a property (and a judged value) shows the samples judged on it.
            rows = rows.filter(status=SampleClassification.Status.OK)
            if judged:
                rows = rows.annotate(_judged=KeyTransform(prop, "classifications")).filter(_judged=judged)
        if assigned:
            rows = rows.annotate(_assigned=KeyTransform(prop, "sample__properties")).filter(_assigned=assigned)
    if mismatch:
        # "Judged ≠ assigned" on the chosen property, or on any property when none is chosen.
        differs = Q()
        for i, name in enumerate([prop] if prop in names else names):
            a, j = f"_a_{i}", f"_j_{i}"
            rows = rows.annotate(
                **{a: KeyTextTransform(name, "sample__properties"), j: KeyTextTransform(name, "classifications")}
            )
            differs |= ~Q(**{a: F(j)})
        rows = rows.filter(differs, status=SampleClassification.Status.OK)
    if q:
        # A substring of the identifier or the content, case-insensitive (a scan of the evaluation's rows:
        # measured in benchmarks/pages.py at 20,000 samples).
        rows = rows.filter(Q(sample__identifier__icontains=q) | Q(sample__content__icontains=q))
    # Samples are inserted in position order, so sample_id is that order, and the (evaluation, sample) unique index
    # serves the default sort without sorting 20,000 rows. Every other sort ends on sample_id so pages are stable.
    if sort == "-position":
        return rows.order_by("-sample_id")
    if sort.lstrip("-") == "identifier":
        return rows.order_by(sort.replace("identifier", "sample__identifier"), "sample_id")
    if sort.lstrip("-") == "agreement" and names:
        agreeing = sum(
            (Case(When(**{f"_sa_{i}": F(f"_sj_{i}")}, then=Value(1)), default=Value(0)) for i in range(len(names))),
            start=Value(0),
        )
        rows = rows.annotate(
            **{f"_sa_{i}": KeyTextTransform(n, "sample__properties") for i, n in enumerate(names)},
            **{f"_sj_{i}": KeyTextTransform(n, "classifications") for i, n in enumerate(names)},
        ).annotate(_agreeing=agreeing)
        return rows.order_by("-_agreeing" if sort.startswith("-") else "_agreeing", "sample_id")
    if sort.startswith("judged:") and sort[len("judged:") :] in names:
        value = KeyTextTransform(sort[len("judged:") :], "classifications")
        return rows.order_by(value.asc(nulls_last=True), "sample_id")
    return rows.order_by("sample_id")


def classification_count(
    *,
    evaluation: Evaluation,
    prop: str = "",
    assigned: str = "",
    judged: str = "",
    mismatch: bool = False,
    q: str = "",
    sort: str = "",
) -> int | None:
    """How many rows classification_rows gives, read off the stored confusion matrices where it can be.

    Counting with a JSON filter scans every classification; the matrices already hold those counts.
    None means "count in SQL" (an evaluation without statistics, e.g. one still running).
    """
    if q or evaluation.status != Evaluation.Status.SUCCEEDED or not evaluation.statistics:
        return None  # a text search: no stored count knows it
    by_name = {p["property_name"]: p for p in evaluation.statistics["properties"]}
    stats = by_name.get(prop)
    if stats is None or not (assigned or judged or mismatch):
        known: int | None = evaluation.statistics.get("samples_mismatched") if mismatch else evaluation.total_samples
        return known
    values, matrix = stats["values"], stats["confusion_matrix"]
    if judged in NOT_JUDGED:
        not_judged = stats.get("confusion_not_judged")
        if not_judged is None or mismatch:
            return None  # statistics stored before the column existed
        j = NOT_JUDGED.index(judged)
        return int(sum(row[j] for a, row in zip(values, not_judged, strict=True) if not assigned or a == assigned))
    return int(
        sum(
            matrix[i][j]
            for i, a in enumerate(values)
            for j, v in enumerate(values)
            if (not assigned or a == assigned) and (not judged or v == judged) and (not mismatch or i != j)
        )
    )


class _KnownCountPaginator(Paginator):  # type: ignore[type-arg]
    def __init__(self, *args: Any, known_count: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if known_count is not None:
            self.__dict__["count"] = known_count  # Paginator.count is a cached_property


def classification_page(
    *, evaluation: Evaluation, page: str | int = 1, size: int = 0, **filters: Any
) -> Page[SampleClassification]:
    rows = classification_rows(evaluation=evaluation, **filters)
    known = classification_count(evaluation=evaluation, **filters)
    return _KnownCountPaginator(rows, size or settings.PAGE_SIZE, known_count=known).get_page(page)
