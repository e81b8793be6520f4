"""Slots through which apps built on runs (evaluations) add to run pages and exports, so that runs never imports
them (DESIGN.md §3: dependencies point one way).

runs defines the slots and a harmless default for each; the providing app fills them in its `AppConfig.ready()`.
Plain function slots rather than signals: each slot has exactly one provider and returns a value, which a signal's
fan-out (a list of receiver/result pairs) would only obscure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.utils.safestring import SafeString

if TYPE_CHECKING:
    from django.http import HttpRequest

    from companies.models import Membership

    from .models import Run


def _no_section(request: HttpRequest, run: Run, membership: Membership) -> SafeString:
    return SafeString("")


def _no_score(runs: QuerySet[Run]) -> QuerySet[Run]:
    return runs


def _no_classifications(run: Run) -> tuple[str | None, dict[str, dict[str, Any]]]:
    return None, {}


@dataclass
class RunExtensions:
    # HTML of a run page section (the run's evaluations and the "evaluate" form).
    run_page_section: Callable[[HttpRequest, Run, Membership], SafeString] = _no_section
    # Annotates `latest_score` (and `latest_score_offline`) for the runs list.
    annotate_latest_score: Callable[[QuerySet[Run]], QuerySet[Run]] = _no_score
    # (id of the evaluation, {sample identifier: judged values}) written beside each file of the run ZIP.
    latest_classifications: Callable[[Run], tuple[str | None, dict[str, dict[str, Any]]]] = _no_classifications


extensions = RunExtensions()
