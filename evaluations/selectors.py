"""Read-side queries and Plotly figures for the evaluation pages. Nothing here loads every sample."""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.utils import timezone

from companies.models import Company
from companies.quotas import InFlight
from config.charts import COLORS, grouped_bar_chart
from llm.catalog import OFFLINE_NAMES
from runs.models import Run, Spec

from .analysis import NOT_JUDGED, plan_summary
from .batch import batch_summary
from .forms import EvaluationListForm
from .models import Evaluation, Review, SampleClassification


def evaluations_in_flight(company_id: int) -> InFlight:
    """The company's PENDING/PROCESSING evaluations and their samples, in one aggregate (a quota source)."""
    totals = Evaluation.objects.filter(
        company_id=company_id, status__in=[Evaluation.Status.PENDING, Evaluation.Status.PROCESSING]
    ).aggregate(evaluations=Count("id"), samples=Sum("total_samples"))
    return InFlight(evaluations=totals["evaluations"], samples=totals["samples"] or 0)


def error_bars(shares: dict[str, float], intervals: dict[str, Any], values: list[str], color: str) -> dict[str, Any]:
    """Plotly's asymmetric error bars for percentages and their [low, high] intervals."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [max(0.0, intervals[v][1] - shares[v]) for v in values],
        "arrayminus": [max(0.0, shares[v] - intervals[v][0]) for v in values],
        "color": color,
    }


def property_views(*, evaluation: Evaluation, human: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per property: the requested/expected/evaluated chart (Wilson error bars) with a fourth series, "corrected"
    (with its 95% intervals), once `human` (human_review_blocks) has estimates; the confusion heatmap; the numbers.

    Built from the evaluation's stored analysis and the blocks given: no query beyond the evaluation row.
    """
    human = human or {}
    if not evaluation.distribution_analysis or not evaluation.statistics:
        return []
    stats_by_name = {p["property_name"]: p for p in evaluation.statistics["properties"]}
    views = []
    for analysis in evaluation.distribution_analysis:
        name = analysis["property_name"]
        stats = stats_by_name[name]
        values = stats["values"]
        chart = grouped_bar_chart(
            title=name,
            values=values,
            series={
                "requested": analysis["requested_distributions"],
                "expected": analysis["expected_distributions"],
                "evaluated": analysis["evaluated_distributions"],
            },
        )
        evaluated = analysis["evaluated_distributions"]
        chart["data"][2]["error_y"] = error_bars(evaluated, stats["wilson_intervals"], values, COLORS["evaluated"])
        block = human.get(name)
        if block and block["corrected_distributions"] is not None:
            corrected = corrected_series(block, values)
            chart["data"].append(corrected)
        views.append(
            {
                "name": name,
                "analysis": analysis,
                "stats": stats,
                "chart": chart,
                "heatmap": heatmap(stats),
                "human": block,
                # (value, share, low, high) of the corrected distribution, for the human-review table's line
                "corrected": [
                    (v, block["corrected_distributions"][v], *block["corrected_ci"][v])
                    for v in block["corrected_distributions"]
                ]
                if block and block["corrected_distributions"] is not None
                else [],
            }
        )
    return views


def corrected_series(block: dict[str, Any], values: list[str], name: str = "Corrected") -> dict[str, Any]:
    """The "corrected" bar series of a human_review block, with its 95% intervals as error bars."""
    shares = block["corrected_distributions"]
    series = grouped_bar_chart(title="", values=values, series={"corrected": shares})["data"][0]
    series["name"] = name
    series["error_y"] = error_bars(shares, block["corrected_ci"], values, COLORS["corrected"])
    return series  # type: ignore[no-any-return]


def heatmap(stats: dict[str, Any]) -> dict[str, Any]:
    """Assigned (rows) against judged (columns), with a column for the samples left undecided and, when some
    failed, one for those (statistics stored before issue #20 have neither)."""
    values = stats["values"]
    columns, matrix = list(values), [list(row) for row in stats["confusion_matrix"]]
    not_judged = stats.get("confusion_not_judged")
    if not_judged is not None:
        for j, stratum in enumerate(NOT_JUDGED):
            if stratum == SampleClassification.UNDECIDED or any(row[j] for row in not_judged):
                columns.append(stratum)
                for row, extra in zip(matrix, not_judged, strict=True):
                    row.append(extra[j])
    return {
        "data": [
            {
                "type": "heatmap",
                "z": matrix,
                "x": columns,
                "y": values,
                "colorscale": "Blues",
                "showscale": False,
                "reversescale": True,
                "texttemplate": "%{z}",
                "hovertemplate": "assigned %{y}, judged %{x}: %{z}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": f"{stats['property_name']}: assigned vs judged", "font": {"size": 14}},
            "xaxis": {"title": {"text": "judged"}},
            "yaxis": {"title": {"text": "assigned"}, "autorange": "reversed"},
            "height": 300,
            "margin": {"l": 80, "r": 10, "t": 40, "b": 50},
            "paper_bgcolor": "rgba(0,0,0,0)",
        },
    }


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


CHANGED_SAMPLES_SHOWN = 20
COMPARE_MAX = 6  # evaluations on one compare page: six series still read as distinct bars
COMPARE_LETTERS = "ABCDEF"
# The evaluated series' colours, one per compared evaluation (the first is the evaluated colour of every page).
COMPARE_COLORS = (COLORS["evaluated"], "#1f7a4d", "#7b3fb2", "#c2185b", "#00838f", "#5d4037")


def compare_label(letter: str, evaluation: Evaluation) -> str:
    """ "A: run name · model · date", so evaluations of different runs cannot be confused."""
    model = evaluation.model_used or evaluation.requested_model
    return f"{letter}: {evaluation.run} · {model} · {evaluation.created_at:%Y-%m-%d %H:%M}"


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 2)


def compare(*, evaluations: list[Evaluation], human: list[dict[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """2..COMPARE_MAX finished evaluations of runs of one spec (the same run, or runs of any of its versions); the
    first is the baseline. Per property every evaluation has: the evaluated distributions side by side, the stored
    TVD and agreement with their deltas against the baseline; per sample (paired with the baseline's on the sample
    identifier), how often each judge agrees with the baseline's and which judged values changed. `human` (one
    human_review_blocks per evaluation, in order) adds each judge's kappa and corrected series."""
    human = human or [{} for _ in evaluations]
    first, others = evaluations[0], evaluations[1:]
    letters = COMPARE_LETTERS[: len(evaluations)]
    same_run = all(e.run_id == first.run_id for e in others)
    stats = [{p["property_name"]: p for p in (e.statistics or {}).get("properties", [])} for e in evaluations]
    analyses = [{a["property_name"]: a for a in e.distribution_analysis or []} for e in evaluations]
    columns: list[dict[str, Any]] = [
        {
            "letter": letter,
            "evaluation": evaluation,
            "label": compare_label(letter, evaluation),
            "score": evaluation.conformance_score,
            "score_delta": _delta(first.conformance_score, evaluation.conformance_score) if i else None,
        }
        for i, (letter, evaluation) in enumerate(zip(letters, evaluations, strict=True))
    ]
    charts, properties = [], []
    for name in analyses[0]:
        if not all(name in a for a in analyses):
            continue
        values: list[str] = []
        for s_, a in zip(stats, analyses, strict=True):
            values += [
                v for v in s_.get(name, {}).get("values") or a[name]["evaluated_distributions"] if v not in values
            ]
        series = {letter: a[name]["evaluated_distributions"] for letter, a in zip(letters, analyses, strict=True)}
        if same_run:  # one run, one assigned distribution: show it too
            series = {"expected": analyses[0][name]["expected_distributions"], **series}
        chart = grouped_bar_chart(title=name, values=values, series=series)
        for trace, color in zip(chart["data"][-len(letters) :], COMPARE_COLORS, strict=False):
            trace["marker"]["color"] = color
        for letter, blocks in zip(letters, human, strict=True):
            block = blocks.get(name) or {}
            if block.get("corrected_distributions") is not None:
                chart["data"].append(corrected_series(block, values, name=f"{letter} corrected"))
        charts.append({"name": name, "chart": chart})
        cells: list[dict[str, Any]] = []
        for letter, s_, blocks in zip(letters, stats, human, strict=True):
            block = blocks.get(name) or {}
            tvd, agreement = s_.get(name, {}).get("total_variation_distance"), s_.get(name, {}).get("agreement")
            base = stats[0].get(name, {})
            cells.append(
                {
                    "letter": letter,
                    "tvd": tvd,
                    "tvd_delta": _delta(base.get("total_variation_distance"), tvd) if cells else None,
                    "agreement": agreement,
                    "agreement_delta": _delta(base.get("agreement"), agreement) if cells else None,
                    "between": None,
                    "kappa": (
                        {"kappa": block["kappa"], "ci": block["kappa_ci"], "fit": block["fit_for_use"]}
                        if block.get("kappa") is not None
                        else None
                    ),
                }
            )
        properties.append({"name": name, "cells": cells})
    names = [c["name"] for c in charts]
    pairs, paired, totals = _paired_totals(first, others, names)
    for row in properties:
        i = names.index(row["name"])
        for k, cell in enumerate(row["cells"][1:], start=1):
            decided = totals[f"decided_{k}_{i}"]
            cell["between"] = (100 * totals[f"same_{k}_{i}"] / decided) if decided else None
    changed_count = totals.get("changed", 0)
    changed = _changed_samples(pairs, others, names) if changed_count else []
    for sample in changed:  # (letter, evaluation, sample) of each sample page, for links
        sample["links"] = [
            (column["letter"], column["evaluation"].code, code)
            for column, code in zip(columns, sample["samples"], strict=True)
            if code
        ]
    return {
        "columns": columns,
        "same_run": same_run,
        "charts": charts,
        "properties": properties,
        "paired": paired,
        "samples_compared": max(paired, default=0),
        "changed": changed,
        "changed_count": changed_count,
        "changed_shown": CHANGED_SAMPLES_SHOWN,
    }


def compare_candidates(*, evaluation: Evaluation, limit: int) -> list[Evaluation]:
    """The newest finished evaluations of runs of `evaluation`'s spec (itself included): what a compare picker
    offers beside it."""
    return list(
        Evaluation.objects.filter(
            company_id=evaluation.company_id, run__spec_id=evaluation.run.spec_id, status=Evaluation.Status.SUCCEEDED
        )
        .select_related("run__spec_version")
        .order_by("-created_at")[:limit]
    )


def _paired_totals(
    first: Evaluation, others: list[Evaluation], names: list[str]
) -> tuple[QuerySet[SampleClassification], list[int], dict[str, int]]:
    """The baseline's rows annotated with every evaluation's judged value of every shared property (`_v_{k}_{i}`,
    k = 0 the baseline itself), and in one aggregate: per other evaluation k how many samples pair with the
    baseline's, and per property i how many both decided and how many got the same value."""
    # Every value is the stratum as text (the judged value, or UNDECIDED / FAILED), so a judge that abstains or fails
    # where the baseline decided shows as a change; "decided" and "same" count judged values only.
    pairs = SampleClassification.objects.filter(evaluation=first).annotate(
        **{f"_v_0_{i}": SampleClassification.stratum_sql(name) for i, name in enumerate(names)},
        **{
            f"_v_{k}_{i}": _other_value(other, name)
            for k, other in enumerate(others, start=1)
            for i, name in enumerate(names)
        },
        **{f"_p_{k}": Exists(_paired(other)) for k, other in enumerate(others, start=1)},
    )
    aggregates: dict[str, Any] = {}
    if names:  # (with no shared property an empty filter would count every row)
        aggregates["changed"] = Count("id", filter=_differs(len(others), len(names)))
    for k in range(1, len(others) + 1):
        aggregates[f"paired_{k}"] = Count("id", filter=Q(**{f"_p_{k}": True}))
        for i in range(len(names)):
            decided = _decided(f"_v_0_{i}") & _decided(f"_v_{k}_{i}")
            aggregates[f"decided_{k}_{i}"] = Count("id", filter=decided)
            aggregates[f"same_{k}_{i}"] = Count("id", filter=decided & Q(**{f"_v_0_{i}": F(f"_v_{k}_{i}")}))
    totals = pairs.aggregate(**aggregates)
    return pairs, [totals[f"paired_{k}"] for k in range(1, len(others) + 1)], totals


def _decided(field: str) -> Q:
    """The annotated stratum is a judged value (not UNDECIDED or FAILED, and the sample paired)."""
    return Q(**{f"{field}__isnull": False}) & ~Q(
        **{f"{field}__in": [SampleClassification.UNDECIDED, SampleClassification.FAILED]}
    )


def _differs(others: int, properties: int) -> Q:
    """Some other evaluation judged some property of a paired sample differently from the baseline: another value,
    or undecided or failed where the other decided."""
    differs = Q()
    for k in range(1, others + 1):
        for i in range(properties):
            both = Q(**{f"_v_{k}_{i}__isnull": False})
            differs |= both & ~Q(**{f"_v_0_{i}": F(f"_v_{k}_{i}")})
    return differs


def _changed_samples(
    pairs: QuerySet[SampleClassification], others: list[Evaluation], names: list[str]
) -> list[dict[str, Any]]:
    """The first CHANGED_SAMPLES_SHOWN samples (in the baseline's order) on which some evaluation decided a
    property differently from the baseline (their count is in _paired_totals' aggregate)."""
    changed_rows = (
        pairs.filter(_differs(len(others), len(names)))
        .annotate(**{f"_s_{k}": _other_sample_code(other) for k, other in enumerate(others, start=1)})
        # Position order: samples are inserted in it, and the (evaluation, sample) index serves it, so the query
        # stops at the first CHANGED_SAMPLES_SHOWN rows instead of sorting them all.
        .order_by("sample_id")
    )
    shown = list(changed_rows.select_related("sample")[:CHANGED_SAMPLES_SHOWN])
    changed = []
    for row in shown:
        per_column = [[getattr(row, f"_v_{k}_{i}") for k in range(len(others) + 1)] for i in range(len(names))]
        changed.append(
            {
                "identifier": row.sample.identifier,
                "samples": [row.sample.code, *(getattr(row, f"_s_{k}") for k in range(1, len(others) + 1))],
                "changes": [
                    {"name": name, "values": values}
                    for name, values in zip(names, per_column, strict=True)
                    if any(v is not None and v != values[0] for v in values[1:])
                ],
            }
        )
    return changed


def _paired(other: Evaluation) -> QuerySet[SampleClassification]:
    """`other`'s row for the outer row's sample: the same identifier, whichever run it belongs to."""
    # Naming the run (always other's) lets the (run, identifier) unique index find the sample, then the
    # (evaluation, sample) one the row: an index lookup per outer row rather than a scan of other's rows.
    return SampleClassification.objects.filter(
        evaluation=other, sample__run_id=other.run_id, sample__identifier=OuterRef("sample__identifier")
    )


def _other_value(other: Evaluation, name: str) -> Subquery:
    """`other`'s stratum for the outer row's sample on property `name` (NULL when no sample pairs with it)."""
    value = SampleClassification.stratum_sql(name)
    return Subquery(_paired(other).annotate(_v=value).values("_v")[:1], output_field=TextField())


def _other_sample_code(other: Evaluation) -> Subquery:
    """The code of `other`'s sample paired with the outer row's (for a link to its sample page)."""
    return Subquery(_paired(other).values("sample__code")[:1])


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


def evaluation_trace(evaluation: Evaluation) -> dict[str, Any]:
    """Task id, models requested and used (and why they differ), prompt and configuration, calls, tokens, cost,
    and progress (classified / failed / total), readable while the evaluation runs."""
    totals = evaluation.ledger_totals()
    if evaluation.status == Evaluation.Status.SUCCEEDED and evaluation.statistics:
        # Finished: every sample has a row, and the failures were counted when it finished.
        classified, failed = evaluation.total_samples, evaluation.statistics["samples_failed"]
    else:
        classified = evaluation.classifications.count()
        failed = evaluation.classifications.filter(status=SampleClassification.Status.FAILED).count()
    return {
        "task_id": evaluation.task_id or None,
        "requested_model": evaluation.requested_model,
        "model_used": evaluation.model_used or None,
        "offline_judge": evaluation.is_offline,
        "fallback_reason": evaluation.fallback_reason or None,
        "prompt_version": evaluation.prompt_version,
        "config_hash": evaluation.config_hash or None,
        "calls": totals["calls"],
        "input_tokens": totals["input_tokens"],
        "output_tokens": totals["output_tokens"],
        "cache_read_tokens": totals["cache_read_tokens"],
        "cache_write_tokens": totals["cache_write_tokens"],
        "cost_usd": totals["cost_usd"],
        "calls_outcome_unknown": totals["unknown"],
        "progress": {
            "classified": classified,
            "failed": failed,
            "total": evaluation.total_samples,
        },
        "chunks": evaluation.chunks_total,
        # The embedded judge's plan: per property judged how, or declined and why, and the review ids that taught
        # it (evaluations/teaching.py); None for an LLM judge.
        "embedded_plan": plan_summary(evaluation.judge_plan, evaluation.run.spec_version.parsed_properties)
        if evaluation.judge_plan
        else None,
        "batch": batch_summary(evaluation),
    }


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


def evaluation_list(
    *,
    company: Company,
    spec: Spec | None = None,
    run: Run | None = None,
    judge: str = "",
    status: str = "",
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
    sort: str = "-date",
) -> QuerySet[Evaluation]:
    """The evaluations list page: the company's evaluations, filtered and sorted (unscored ones sort last)."""
    rows = Evaluation.objects.for_company(company).select_related("run__spec", "run__spec_version")
    if spec is not None:
        rows = rows.filter(run__spec=spec)
    if run is not None:
        rows = rows.filter(run=run)
    if judge == "embedded":
        rows = rows.filter(model_used__in=OFFLINE_NAMES)
    elif judge == "llm":
        rows = rows.exclude(model_used__in=OFFLINE_NAMES)
    if status in Evaluation.Status.values:
        rows = rows.filter(status=status)
    if date_from is not None:
        rows = rows.filter(created_at__date__gte=date_from)
    if date_to is not None:
        rows = rows.filter(created_at__date__lte=date_to)
    field = EvaluationListForm.SORTS.get(sort.lstrip("-"), "created_at")
    order = F(field).desc(nulls_last=True) if sort.startswith("-") else F(field).asc(nulls_last=True)
    return rows.order_by(order, "-id")


def recent_evaluations(*, company: Company, limit: int = 5) -> list[Evaluation]:
    """The home dashboard's newest evaluations, with their run and spec in the same query."""
    return list(Evaluation.objects.for_company(company).select_related("run__spec").order_by("-created_at")[:limit])


TREND_POINTS = 500  # the newest scores drawn on the home dashboard's trend


def score_trend_chart(*, company: Company) -> dict[str, Any] | None:
    """Conformance score over time, one line per spec (the newest TREND_POINTS scores); None before any. One query."""
    rows = list(
        Evaluation.objects.for_company(company)
        .filter(status=Evaluation.Status.SUCCEEDED, conformance_score__isnull=False, completed_at__isnull=False)
        .order_by("-completed_at")
        .values_list("run__spec__name", "completed_at", "conformance_score")[:TREND_POINTS]
    )
    if not rows:
        return None
    by_spec: dict[str, list[tuple[str, float]]] = {}
    for spec, completed_at, score in reversed(rows):
        if completed_at is not None and score is not None:  # filtered out above; this tells mypy
            by_spec.setdefault(spec, []).append((completed_at.isoformat(), score))
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": spec,
            "x": [x for x, _ in points],
            "y": [y for _, y in points],
            "hovertemplate": "%{x|%Y-%m-%d %H:%M}: %{y:.1f}<extra>" + spec + "</extra>",
        }
        for spec, points in sorted(by_spec.items())
    ]
    layout = {
        "yaxis": {"title": {"text": "conformance score"}, "range": [0, 100]},
        "xaxis": {"type": "date"},
        "height": 300,
        "margin": {"l": 55, "r": 15, "t": 20, "b": 45},
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    return {"data": data, "layout": layout}


# --- Human reviews (the estimates' inputs are in evaluations.human_review) ---


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
