"""The per-sample diff of a compare: samples paired on their identifier, and per shared property whether the
assigned value, the judged value or their agreement changed from the baseline, as an improvement (the candidate's
judge now agrees with the assigned value), a regression (it no longer does) or a change (agreement the same).

Judged values are strata (SampleClassification.stratum): a judge that abstains or fails where the baseline's
decided shows as a change. One query per evaluation, streamed; the baseline's rows are held as a dict by identifier
(a few hundred bytes per sample) while each candidate's stream past it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from .compare import COMPARE_LETTERS
from .models import Evaluation, SampleClassification

DIFF_SHOWN = 50  # rows of the diff on the compare page; the CSV has them all

IMPROVEMENT, REGRESSION, CHANGED = "improvement", "regression", "changed"
KINDS = (REGRESSION, IMPROVEMENT, CHANGED)
CSV_HEADER = (
    "sample", "property", "change", "candidate", "baseline_assigned", "baseline_judged", "candidate_assigned",
    "candidate_judged",
)  # fmt: skip


@dataclass(frozen=True)
class Change:
    identifier: str
    property_name: str
    kind: str
    letter: str  # the candidate's letter on the compare page
    baseline_assigned: str | None
    baseline_judged: str
    candidate_assigned: str | None
    candidate_judged: str
    baseline_sample: UUID
    candidate_evaluation: UUID
    candidate_sample: UUID

    def csv_row(self) -> tuple[str, ...]:
        return (
            self.identifier, self.property_name, self.kind, self.letter, self.baseline_assigned or "",
            self.baseline_judged, self.candidate_assigned or "", self.candidate_judged,
        )  # fmt: skip


def _rows(evaluation: Evaluation) -> Iterator[tuple[str, UUID, dict[str, Any], str, dict[str, Any] | None]]:
    rows = SampleClassification.objects.filter(evaluation=evaluation).order_by("sample_id")
    fields = ("sample__identifier", "sample__code", "sample__properties", "status", "classifications")
    yield from rows.values_list(*fields).iterator(chunk_size=2000)


def _stratum(status: str, classifications: dict[str, Any] | None, name: str) -> str:
    # The same rule as SampleClassification.stratum, on a values_list row.
    if status == SampleClassification.Status.FAILED or classifications is None:
        return SampleClassification.FAILED
    return str(classifications.get(name, SampleClassification.UNDECIDED))


def kind_of(base_assigned: Any, base_judged: str, new_assigned: Any, new_judged: str) -> str:
    """Whether agreement with the assigned value was gained, lost or kept (the pair changed in some way)."""
    before, after = base_judged == base_assigned, new_judged == new_assigned
    if after and not before:
        return IMPROVEMENT
    if before and not after:
        return REGRESSION
    return CHANGED


Baseline = dict[str, tuple[UUID, dict[str, Any], str, dict[str, Any] | None]]


def baseline_rows(baseline: Evaluation) -> Baseline:
    """The baseline's rows by sample identifier, read once for every candidate."""
    rows = _rows(baseline)
    return {identifier: (code, assigned, status, judged) for identifier, code, assigned, status, judged in rows}


def sample_changes(*, base: Baseline, candidate: Evaluation, names: list[str], letter: str) -> Iterator[Change]:
    """Every (paired sample, shared property) whose assigned or judged value differs, in the candidate's order."""
    for identifier, code, assigned, status, judged in _rows(candidate):
        if identifier not in base:
            continue
        base_code, base_assigned, base_status, base_judged = base[identifier]
        for name in names:
            a0, j0 = (base_assigned or {}).get(name), _stratum(base_status, base_judged, name)
            a1, j1 = (assigned or {}).get(name), _stratum(status, judged, name)
            if (a0, j0) == (a1, j1):
                continue
            yield Change(
                identifier=identifier,
                property_name=name,
                kind=kind_of(a0, j0, a1, j1),
                letter=letter,
                baseline_assigned=None if a0 is None else str(a0),
                baseline_judged=j0,
                candidate_assigned=None if a1 is None else str(a1),
                candidate_judged=j1,
                baseline_sample=base_code,
                candidate_evaluation=candidate.code,
                candidate_sample=code,
            )


def compare_diff(
    *, evaluations: list[Evaluation], names: list[str], kind: str = "", prop: str = "", letter: str = ""
) -> Iterator[Change]:
    """The diff of every candidate (evaluations[1:], letters B, C, ...) against the baseline (evaluations[0]),
    filtered by kind, property and candidate letter (an empty filter keeps all)."""
    base = baseline_rows(evaluations[0])
    for i, candidate in enumerate(evaluations[1:], start=1):
        this_letter = COMPARE_LETTERS[i]
        if letter and letter != this_letter:
            continue
        chosen = [n for n in names if not prop or n == prop]
        for change in sample_changes(base=base, candidate=candidate, names=chosen, letter=this_letter):
            if not kind or change.kind == kind:
                yield change


def diff_page(
    *, evaluations: list[Evaluation], names: list[str], kind: str = "", prop: str = "", letter: str = ""
) -> dict[str, Any]:
    """What the compare page shows of the diff: the count of each kind (under the property and letter filters),
    the count and the first DIFF_SHOWN rows of the chosen kind, and the samples paired."""
    counts = dict.fromkeys(KINDS, 0)
    rows: list[Change] = []
    for change in compare_diff(evaluations=evaluations, names=names, prop=prop, letter=letter):
        counts[change.kind] += 1
        if (not kind or change.kind == kind) and len(rows) < DIFF_SHOWN:
            rows.append(change)
    total = counts[kind] if kind in counts else sum(counts.values())
    return {"counts": counts, "all": sum(counts.values()), "total": total, "rows": rows, "shown": DIFF_SHOWN}
