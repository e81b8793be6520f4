from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evaluations import statistics as stats

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
    statistic, dof, p = stats.chi_square_gof({"a": 50, "b": 50}, {"a": 50, "b": 50})
    assert (statistic, dof, p) == (0.0, 1, 1.0)
    statistic, dof, p = stats.chi_square_gof({"a": 90, "b": 10}, {"a": 50, "b": 50})
    assert statistic == pytest.approx(64)
    assert dof == 1
    assert p < 1e-10
    # Something observed where nothing was expected cannot fit.
    assert stats.chi_square_gof({"a": 5, "b": 1}, {"a": 100, "b": 0})[2] == 0.0
    assert math.isinf(stats.chi_square_gof({"a": 5, "b": 1}, {"a": 100, "b": 0})[0])
    assert stats.chi_square_gof({}, {"a": 100})[2] is None


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
