"""The run page's evaluations card and the runs app's slots: history with ETA, the latest score and judged values."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Count, OuterRef, QuerySet, Subquery, Value, When
from django.utils import timezone

from llm.catalog import OFFLINE_NAMES
from runs.models import Run

from .models import Evaluation, SampleClassification


def evaluations_for_run(run_id: int) -> QuerySet[Evaluation]:
    """A run's evaluations, newest first (the run page's history and the API's list)."""
    return Evaluation.objects.filter(run_id=run_id).select_related("run", "created_by").order_by("-created_at")


ETA_MIN_SAMPLES = 5  # samples judged before a rate says anything
ETA_MIN_SECONDS = 3.0


def eta_text(*, done: int, total: int, elapsed: float | None) -> str:
    """Time left from the rate so far (samples done / elapsed), or "estimating…" until there is enough to say."""
    if elapsed is None or done < ETA_MIN_SAMPLES or elapsed < ETA_MIN_SECONDS:
        return "estimating…"
    if done >= total:
        return "finishing…"
    left = (total - done) * elapsed / done
    if left < 60:
        return f"about {max(1, round(left))} s left"
    if left < 3600:
        return f"about {round(left / 60)} min left"
    return f"about {left / 3600:.1f} h left"


def run_evaluation_rows(run_id: int) -> tuple[list[Evaluation], bool]:
    """The run page's evaluations, newest first, the unfinished ones with `done` (samples judged) and `eta`; and
    whether any is unfinished (the table then polls). Two queries: the evaluations, the in-flight counts."""
    rows = list(evaluations_for_run(run_id))
    running = [e for e in rows if not e.is_terminal]
    if running:
        done = dict(
            SampleClassification.objects.filter(evaluation__in=running)
            .values_list("evaluation_id")
            .annotate(n=Count("id"))
            .values_list("evaluation_id", "n")
        )
        now = timezone.now()
        for evaluation in running:
            evaluation.done = done.get(evaluation.id, 0)  # type: ignore[attr-defined]
            elapsed = (now - evaluation.started_at).total_seconds() if evaluation.started_at else None
            evaluation.eta = eta_text(  # type: ignore[attr-defined]
                done=evaluation.done,  # type: ignore[attr-defined]
                total=evaluation.total_samples,
                elapsed=elapsed,
            )
    return rows, bool(running)


def latest_classifications(run: Run) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The latest successful evaluation's id and its judged values per sample; (None, {}) before any."""
    latest = Evaluation.objects.filter(run=run, status=Evaluation.Status.SUCCEEDED).order_by("-completed_at").first()
    if latest is None:
        return None, {}
    rows = SampleClassification.objects.filter(evaluation=latest, status=SampleClassification.Status.OK)
    judged: dict[str, dict[str, Any]] = dict(
        rows.values_list("sample__identifier", "classifications").iterator(chunk_size=2000)  # type: ignore[arg-type]
    )
    return str(latest.code), judged


def annotate_latest_score(runs: QuerySet[Run]) -> QuerySet[Run]:
    """Annotate `latest_score` (the conformance score of the run's newest successful evaluation) and
    `latest_score_offline` (whether the embedded judge gave it): two subqueries, no per-row query."""
    latest = Evaluation.objects.filter(run=OuterRef("pk"), status=Evaluation.Status.SUCCEEDED).order_by("-completed_at")
    return runs.annotate(
        latest_score=Subquery(latest.values("conformance_score")[:1]),
        latest_score_model=Subquery(latest.values("model_used")[:1]),
    ).annotate(
        latest_score_offline=Case(When(latest_score_model__in=OFFLINE_NAMES, then=Value(True)), default=Value(False))
    )
