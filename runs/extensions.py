"""Slots through which apps built on runs (evaluations) add to run pages and exports, so that runs never imports
them (DESIGN.md §3: dependencies point one way).

runs defines the slots and a harmless default for each; the providing app fills them in its `AppConfig.ready()`.
Plain function slots rather than signals: each slot has exactly one provider and returns a value, which a signal's
fan-out (a list of receiver/result pairs) would only obscure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.db.models import QuerySet
from django.utils.safestring import SafeString

if TYPE_CHECKING:
    from django.http import HttpRequest

    from companies.models import Membership
    from llm.catalog import JudgeModel
    from llm.engine import Outcome
    from llm.ledger import CallLedger

    from .models import Run, SpecVersion


class SampleJudge(Protocol):
    """Classifies a text on a spec version's properties: the answer is {"values": {property: value}, "rationales":
    {property: text}}, an abstained property left out of the values."""

    @property
    def model(self) -> JudgeModel: ...

    def classify_text(
        self, text: str, *, deadline: float | None = None, ledger: CallLedger | None = None
    ) -> Outcome: ...


def _no_section(request: HttpRequest, run: Run, membership: Membership) -> SafeString:
    return SafeString("")


def _no_score(runs: QuerySet[Run]) -> QuerySet[Run]:
    return runs


def _no_classifications(run: Run) -> tuple[str | None, dict[str, dict[str, Any]]]:
    return None, {}


def _no_judge(spec_version: SpecVersion) -> SampleJudge | None:
    return None


@dataclass
class RunExtensions:
    # HTML of a run page section (the run's evaluations and the "evaluate" form).
    run_page_section: Callable[[HttpRequest, Run, Membership], SafeString] = _no_section
    # Annotates `latest_score` (and `latest_score_offline`) for the runs list.
    annotate_latest_score: Callable[[QuerySet[Run]], QuerySet[Run]] = _no_score
    # (id of the evaluation, {sample identifier: judged values}) written beside each file of the run ZIP.
    latest_classifications: Callable[[Run], tuple[str | None, dict[str, dict[str, Any]]]] = _no_classifications
    # The judge of run generation's conformance filter: the evaluations' own (same prompt, same default model).
    # Without it (evaluations not installed), `filtering_types: ["conformance"]` is accepted and has no effect.
    # Raises FatalJudgeError when the judge cannot be used (no credentials and no offline fallback).
    conformance_judge: Callable[[SpecVersion], SampleJudge | None] = _no_judge


extensions = RunExtensions()
