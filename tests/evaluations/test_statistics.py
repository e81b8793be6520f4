from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evaluations import analysis
from evaluations import statistics as stats
from runs.specfile import Property

VALUES = ["a", "b", "c", "d"]
counts = st.dictionaries(st.sampled_from(VALUES), st.integers(min_value=0, max_value=10_000), min_size=1)


@given(counts)
def test_shares_sum_to_100(c: dict[str, int]) -> None:
    shares = stats.shares(c)
    if sum(c.values()):
        assert sum(shares.values()) == pytest.approx(100)
    else:
        assert set(shares.values()) == {0.0}


@given(counts, counts)
def test_score_is_in_range_and_distance_is_a_metric(p: dict[str, int], q: dict[str, int]) -> None:
    sp, sq = stats.shares(p), stats.shares(q)
    distance = stats.total_variation_distance(sp, sq)
    assert 0 <= distance <= 100 + 1e-9
    assert distance == pytest.approx(stats.total_variation_distance(sq, sp))
    assert 0 <= stats.conformance_score([distance, 100 - distance / 2]) <= 100


@given(counts)
def test_identical_distributions_score_100(c: dict[str, int]) -> None:
    shares = stats.shares(c)
    assert stats.total_variation_distance(shares, shares) == 0
    assert stats.conformance_score([stats.total_variation_distance(shares, shares)] * 3) == 100


def test_conformance_score_examples() -> None:
    # DESIGN.md's example: expected 42/30/28 vs evaluated 45/28/27 → TVD 3 → 97.
    expected = {"positive": 42, "negative": 30, "neutral": 28}
    evaluated = {"positive": 45, "negative": 28, "neutral": 27}
    assert stats.total_variation_distance(expected, evaluated) == pytest.approx(3)
    assert stats.conformance_score([3, 9]) == 94
    assert stats.conformance_score([150]) == 0
    assert stats.conformance_score([]) == 100


@given(st.integers(min_value=0, max_value=500), st.integers(min_value=1, max_value=500))
def test_wilson_interval_contains_the_share(k: int, extra: int) -> None:
    n = k + extra
    low, high = stats.wilson_interval(k, n)
    assert 0 <= low <= 100 * k / n <= high <= 100


def test_wilson_interval_known_value() -> None:
    low, high = stats.wilson_interval(5, 10)
    assert (round(low, 2), round(high, 2)) == (23.66, 76.34)
    assert stats.wilson_interval(0, 0) == (0.0, 100.0)


@pytest.mark.parametrize(
    ("x", "dof", "p"),
    [
        (3.841458820694124, 1, 0.05),
        (5.991464547107979, 2, 0.05),
        (7.814727903251178, 3, 0.05),
        (0.5, 3, 0.91889),
    ],
)
def test_chi_square_survival_matches_tables(x: float, dof: int, p: float) -> None:
    assert stats.chi_square_survival(x, dof) == pytest.approx(p, abs=1e-4)


def test_chi_square_gof() -> None:
    result = stats.chi_square_gof({"a": 50, "b": 50}, {"a": 50, "b": 50})
    assert (result.statistic, result.dof, result.p_value, result.note) == (0.0, 1, 1.0, None)
    result = stats.chi_square_gof({"a": 90, "b": 10}, {"a": 50, "b": 50})
    assert result.statistic == pytest.approx(64)
    assert result.dof == 1
    assert result.p_value < 1e-10
    # Expected weights may be counts or percentages: they are scaled to the observed total.
    assert stats.chi_square_gof({"a": 90, "b": 10}, {"a": 1, "b": 1}) == result
    assert stats.chi_square_gof({}, {"a": 100}).p_value is None


def test_chi_square_pools_cells_with_small_expected_counts() -> None:
    # c and d expect 3 + 1 = 4 < 5 together, so the smallest large cell (b, 36) joins their pool.
    result = stats.chi_square_gof({"a": 60, "b": 36, "c": 3, "d": 1}, {"a": 60, "b": 36, "c": 3, "d": 1})
    assert result.pooled == ("b", "c", "d")
    assert result.dof == 1
    assert result.p_value == 1.0
    assert "pooled: b, c, d" in (result.note or "")
    # Large enough cells are left alone.
    assert stats.chi_square_gof({"a": 10, "b": 5}, {"a": 10, "b": 5}).pooled == ()


def test_one_stray_judgement_in_a_0_percent_cell_is_flagged_not_p_0() -> None:
    result = stats.chi_square_gof({"a": 50, "b": 49, "c": 1}, {"a": 50, "b": 50, "c": 0})
    assert result.unexpected == {"c": 1}
    assert "judged where none was expected: 'c' ×1" in (result.note or "")
    assert result.p_value is not None
    assert result.p_value > 0.5
    assert result.statistic is not None
    assert math.isfinite(result.statistic)


def test_chi_square_is_not_run_without_two_cells_of_expected_count_5() -> None:
    result = stats.chi_square_gof({"a": 4, "b": 4, "c": 4}, {"a": 4, "b": 4, "c": 4})
    assert (result.statistic, result.dof, result.p_value) == (None, 0, None)
    assert "not tested" in (result.note or "")
    assert result.to_dict()["p_value"] is None


@given(counts, st.randoms(use_true_random=False))
def test_chi_square_does_not_depend_on_dict_order(observed: dict[str, int], rnd: Any) -> None:
    expected = {v: (i + 1) * 7 for i, v in enumerate(VALUES)}
    keys = list(observed)
    rnd.shuffle(keys)
    reordered = {k: observed[k] for k in keys}
    backwards = dict(reversed(list(expected.items())))
    assert stats.chi_square_gof(reordered, backwards) == stats.chi_square_gof(observed, expected)


def test_chi_square_does_not_depend_on_the_hash_seed() -> None:
    # The old code iterated a set of keys: degrees of freedom changed with PYTHONHASHSEED.
    code = (
        "from evaluations import statistics as s;"
        "print(s.chi_square_gof({'x': 9, 'y': 1, 'z': 0, 'w': 5}, {'x': 40, 'y': 0, 'z': 30, 'w': 30}))"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("0", "1", "2", "3")
    }
    assert len(outputs) == 1


money = st.dictionaries(st.text(min_size=1, max_size=8), st.integers(min_value=0, max_value=10**6), min_size=1)


@given(money)
def test_rounded_shares_sum_to_exactly_100(c: dict[str, int]) -> None:
    rounded = stats.rounded_shares(c)
    assert list(rounded) == list(c)
    # As they are written on the wire: JSON holds the shortest repr of each float.
    on_the_wire = [Decimal(json.dumps(v)) for v in rounded.values()]
    if sum(c.values()):
        assert sum(on_the_wire) == Decimal(100)
        exact = stats.shares(c)
        assert all(abs(rounded[k] - exact[k]) < 0.01 + 1e-9 for k in c)
    else:
        assert set(on_the_wire) == {Decimal(0)}


@given(st.dictionaries(st.sampled_from(VALUES), st.floats(min_value=0, max_value=100), min_size=1))
def test_rounded_shares_of_percentages_sum_to_exactly_100(weights: dict[str, float]) -> None:
    rounded = stats.rounded_shares(weights)
    if sum(weights.values()) > 0:
        assert sum(Decimal(json.dumps(v)) for v in rounded.values()) == Decimal(100)


@given(money)
def test_rounded_shares_do_not_depend_on_dict_order(c: dict[str, int]) -> None:
    backwards = dict(reversed(list(c.items())))
    assert stats.rounded_shares(backwards) == stats.rounded_shares(c)


def test_rounded_shares_examples() -> None:
    assert stats.rounded_shares({"a": 1, "b": 1, "c": 1}) == {"a": 33.34, "b": 33.33, "c": 33.33}
    assert stats.rounded_shares({"a": 0, "b": 0}) == {"a": 0.0, "b": 0.0}
    # A hand-written spec that misses 100 by rounding is normalised.
    assert stats.rounded_shares({"x": 33.3, "y": 33.3, "z": 33.3}) == {"x": 33.34, "y": 33.33, "z": 33.33}
    assert stats.rounded_shares({"p": 40, "n": 30, "u": 30}) == {"p": 40.0, "n": 30.0, "u": 30.0}


@given(st.lists(st.tuples(st.sampled_from(VALUES), st.sampled_from(VALUES)), max_size=200))
def test_confusion_matrix_and_agreement(pairs: list[tuple[str, str]]) -> None:
    counted: dict[tuple[str, str], int] = {}
    for pair in pairs:
        counted[pair] = counted.get(pair, 0) + 1
    matrix = stats.confusion_matrix(counted, VALUES)
    assert sum(map(sum, matrix)) == len(pairs)
    share = stats.agreement(matrix)
    if pairs:
        assert share == pytest.approx(100 * sum(a == j for a, j in pairs) / len(pairs))
    else:
        assert share is None


# --- The analysis on counted rows (analysis.tally_rows + summarise: no database) ---

PROPERTIES = [
    Property("sentiment", ["positive", "negative", "neutral"], {"positive": 40, "negative": 30, "neutral": 30}),
    Property("priority", ["high", "medium", "low"], {"high": 20, "medium": 50, "low": 30}),
]
assignments = st.fixed_dictionaries({p.name: st.sampled_from(p.values) for p in PROPERTIES})


def perfect_rows(assigned: list[dict[str, str]], fails: Callable[[dict[str, str]], bool]) -> list[analysis.Row]:
    return [("failed", None, a, "HTTP 400") if fails(a) else ("ok", dict(a), a, "") for a in assigned]


@given(st.lists(assignments, min_size=1, max_size=60), st.sampled_from(PROPERTIES[0].values))
def test_a_perfect_judge_scores_100_whatever_class_it_fails_on(assigned: list[dict[str, str]], lost: str) -> None:
    rows = perfect_rows(assigned, lambda a: a["sentiment"] == lost)
    counted = analysis.tally_rows(rows, PROPERTIES)
    if counted.failed == len(rows):
        with pytest.raises(analysis.NothingAnalysed):
            analysis.summarise(PROPERTIES, counted, total=len(rows))
        return
    distribution, summary, score = analysis.summarise(PROPERTIES, counted, total=len(rows))
    assert score == 100
    assert summary["mean_agreement"] == 100
    assert all(item["expected_distributions"] == item["evaluated_distributions"] for item in distribution)
    assert all(item["total_samples_analyzed"] == len(rows) - counted.failed for item in distribution)


@given(st.lists(assignments, min_size=0, max_size=30))
def test_all_failed_gives_no_score(assigned: list[dict[str, str]]) -> None:
    rows = perfect_rows(assigned, lambda a: True)
    with pytest.raises(analysis.NothingAnalysed, match="No conformance score"):
        analysis.summarise(PROPERTIES, analysis.tally_rows(rows, PROPERTIES), total=len(rows))


judgements = st.one_of(
    st.none(),  # the sample failed
    st.fixed_dictionaries(
        {},
        optional={p.name: st.sampled_from([*p.values, "off-spec"]) for p in PROPERTIES},  # absent = abstained
    ),
)


@given(st.lists(st.tuples(assignments, judgements), min_size=1, max_size=60))
def test_any_judge_gives_sums_of_100_and_coverage_that_adds_up(
    pairs: list[tuple[dict[str, str], dict[str, str] | None]],
) -> None:
    rows: list[analysis.Row] = [("failed", None, a, "boom") if j is None else ("ok", j, a, "") for a, j in pairs]
    counted = analysis.tally_rows(rows, PROPERTIES)
    try:
        distribution, summary, score = analysis.summarise(PROPERTIES, counted, total=len(rows))
    except analysis.NothingAnalysed:
        assert all(not counted.pairs[p.name] for p in PROPERTIES)
        return
    assert 0 <= score <= 100
    for item, prop_stats in zip(distribution, summary["properties"], strict=True):
        for key in ("requested", "expected", "evaluated"):
            shown = sum(Decimal(json.dumps(v)) for v in item[f"{key}_distributions"].values())
            assert shown == (100 if key == "requested" or item["total_samples_analyzed"] else 0)
        c = prop_stats["coverage"]
        assert c["analysed"] + c["failed"] + c["undecided"] + c["unusable"] == len(rows)
        assert sum(map(sum, prop_stats["confusion_matrix"])) == item["total_samples_analyzed"] == c["analysed"]


# --- Edges the mutation run of evaluations/statistics.py found untested (README, Tests) ---


def test_the_score_is_clamped_to_100_even_for_a_negative_distance() -> None:
    # Distances are never negative; the clamp the docstring promises still holds if one were.
    assert stats.conformance_score([-10.0]) == 100.0


def test_wilson_interval_of_a_single_trial() -> None:
    # One trial is a sample, not "no trials": k = 0 of 1 gives (0, z²/(1 + z²)), k = 1 of 1 its mirror.
    z2 = stats.WILSON_Z**2
    assert stats.wilson_interval(0, 1) == (0.0, pytest.approx(100 * z2 / (1 + z2)))
    assert stats.wilson_interval(1, 1) == (pytest.approx(100 / (1 + z2)), 100.0)


def test_chi_square_with_nothing_expected_or_observed_says_so() -> None:
    result = stats.chi_square_gof({"a": 3}, {"a": 0.0, "b": 0.0})
    assert (result.statistic, result.dof, result.p_value, result.note) == (None, 0, None, "nothing was expected")
    result = stats.chi_square_gof({}, {"a": 1.0})
    assert (result.statistic, result.dof, result.p_value, result.note) == (None, 0, None, "nothing was observed")


def test_chi_square_counts_an_expected_value_never_observed_as_0() -> None:
    # Expected 25 and 25, observed 50 and nothing: (50 - 25)²/25 + (0 - 25)²/25 = 50.
    result = stats.chi_square_gof({"a": 50}, {"a": 50, "b": 50})
    assert (result.statistic, result.dof) == (50.0, 1)


def test_chi_square_takes_fractions_as_weights() -> None:
    # Weights summing to 1 (or less) are weights like percentages: scaled to the observed total.
    result = stats.chi_square_gof({"a": 30, "b": 30}, {"a": 0.5, "b": 0.5})
    assert (result.statistic, result.dof, result.p_value) == (0.0, 1, 1.0)


def test_chi_square_of_a_single_observation_is_not_run_for_want_of_cells() -> None:
    result = stats.chi_square_gof({"a": 1}, {"a": 50, "b": 50})
    assert result.p_value is None
    assert result.note is not None
    assert result.note.startswith("cells with expected count < 5 pooled: a, b")


def test_a_pool_that_reaches_exactly_5_takes_no_more_cells() -> None:
    # Expected counts 2 + 3 = 5: the pool is big enough (>= 5) without the next cell.
    result = stats.chi_square_gof({"a": 2, "b": 3, "c": 45, "d": 50}, {"a": 2, "b": 3, "c": 45, "d": 50})
    assert (result.pooled, result.dof) == (("a", "b"), 2)


def test_one_small_cell_alone_is_not_called_pooled() -> None:
    result = stats.chi_square_gof({"a": 3}, {"a": 1})
    assert result.pooled == ()
    assert result.note is not None
    assert "pooled" not in result.note


def test_chi_square_survival_of_an_infinite_statistic_is_0() -> None:
    assert stats.chi_square_survival(math.inf, 3) == 0.0


def test_the_confusion_matrix_leaves_out_pairs_with_a_value_outside_the_list() -> None:
    # A value outside the spec on either side (an old spec's value, a failed judgement) is not counted.
    pairs = {("a", "a"): 1, ("a", "zzz"): 3, ("zzz", "b"): 2}
    assert stats.confusion_matrix(pairs, ["a", "b"]) == [[1, 0], [0, 0]]


def test_wilson_lower_bound_of_a_rare_event_is_near_0() -> None:
    # 1 in 1,000: the lower bound is about 0.018%, not floored at anything.
    low, high = stats.wilson_interval(1, 1000)
    assert 0.0 < low < 0.05
    assert 0.5 < high < 0.6


def test_a_stray_value_missing_from_the_expected_weights_is_flagged_and_pooled() -> None:
    # "z" is not among the expected keys at all: expected 0 times, so flagged and pooled with the smallest cell
    # (a); the weights are 50 + 50, scaled to the 61 observed: 30.5 each.
    result = stats.chi_square_gof({"a": 30, "b": 30, "z": 1}, {"a": 50, "b": 50})
    assert result.unexpected == {"z": 1}
    assert (result.pooled, result.dof) == (("a", "z"), 1)
    assert result.statistic == pytest.approx(0.5 / 30.5, rel=1e-12)
    assert result.to_dict()["statistic"] == 0.0164  # rounded to 4 places on the wire


def test_a_value_neither_expected_nor_observed_is_left_out() -> None:
    result = stats.chi_square_gof({"a": 30, "b": 30}, {"a": 50, "b": 50, "c": 0})
    assert (result.unexpected, result.pooled, result.dof, result.statistic) == ({}, (), 1, 0.0)


def test_a_small_expected_value_never_observed_is_pooled_not_dropped() -> None:
    # c is expected once in 100 and never seen: it joins the pool (with b), it is not left out.
    result = stats.chi_square_gof({"a": 50, "b": 50}, {"a": 50, "b": 49, "c": 1})
    assert (result.pooled, result.dof, result.statistic) == (("b", "c"), 1, 0.0)


def test_a_cell_expected_exactly_5_times_is_a_cell_of_its_own() -> None:
    result = stats.chi_square_gof({"a": 5, "b": 45, "c": 50}, {"a": 5, "b": 45, "c": 50})
    assert (result.pooled, result.dof, result.statistic) == ((), 2, 0.0)
