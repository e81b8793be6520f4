"""runs.assignment: quotas within 100/N points, conditionals honoured per group, reproducible from the seed."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.assignment import distribution_for, plan
from runs.distributions import largest_remainder
from runs.specfile import Property, parse_spec
from tests.conftest import SPEC_YAML


@st.composite
def distributions(draw: st.DrawFn, values: list[str]) -> dict[str, float]:
    """Integer percentages over `values` that sum to 100 (zeros allowed), as a spec's YAML gives them."""
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(values) - 1, max_size=len(values) - 1)))
    bounds = [0, *cuts, 100]
    return {v: float(bounds[i + 1] - bounds[i]) for i, v in enumerate(values)}


@st.composite
def properties(draw: st.DrawFn) -> list[Property]:
    parent_values = [f"p{i}" for i in range(draw(st.integers(1, 4)))]
    parent = Property("parent", parent_values, draw(distributions(parent_values)))
    child_values = [f"c{i}" for i in range(draw(st.integers(1, 5)))]
    conditioned = draw(st.lists(st.sampled_from(parent_values), unique=True))
    child = Property(
        "child",
        child_values,
        draw(distributions(child_values)),
        conditional_distributions={"parent": {v: draw(distributions(child_values)) for v in conditioned}}
        if conditioned
        else {},
    )
    return [parent, child]


@given(properties(), st.integers(1, 400), st.integers(0, 2**32))
@settings(max_examples=150, deadline=None)
def test_quota_is_within_100_over_n_points_of_requested_in_every_group(
    props: list[Property], n: int, seed: int
) -> None:
    assignments = plan(props, n, seed=seed)
    assert len(assignments) == n
    assert all(set(a) == {"parent", "child"} for a in assignments)
    parent, child = props
    # The unconditioned property: every value within 100/N points of its requested share.
    counts = Counter(a["parent"] for a in assignments)
    for value, percent in parent.base_distribution.items():
        assert abs(100 * counts[value] / n - percent) < 100 / n
    # The conditioned one: within each group (same distribution), each value within one sample of its quota.
    groups: dict[tuple[str, str] | None, list[str]] = {}
    for a in assignments:
        key, _ = distribution_for(child, a)
        groups.setdefault(key, []).append(a["child"])
    for key, values in groups.items():
        _, distribution = distribution_for(child, {"parent": key[1]} if key else {})
        counted = Counter(values)
        for value in child.values:
            exact = Fraction(distribution.get(value, 0)) * len(values) / 100
            assert abs(counted[value] - exact) < 1
            if distribution.get(value, 0) == 0:
                assert counted[value] == 0  # a value asked for 0% is never assigned


@given(properties(), st.integers(1, 200), st.integers(0, 2**32))
@settings(max_examples=50, deadline=None)
def test_the_same_seed_gives_the_same_plan(props: list[Property], n: int, seed: int) -> None:
    assert plan(props, n, seed=seed) == plan(props, n, seed=seed)
    assert plan(props, n, seed=seed, mode="random") == plan(props, n, seed=seed, mode="random")


@given(properties(), st.integers(1, 200), st.integers(0, 2**32))
@settings(max_examples=50, deadline=None)
def test_random_mode_draws_only_values_with_weight(props: list[Property], n: int, seed: int) -> None:
    for a in plan(props, n, seed=seed, mode="random"):
        for prop in props:
            _, distribution = distribution_for(prop, a)
            assert distribution.get(a[prop.name], 0) > 0


def test_values_are_shuffled_across_positions_and_the_seed_matters() -> None:
    props = parse_spec(SPEC_YAML).properties
    first, second = plan(props, 300, seed=1), plan(props, 300, seed=2)
    assert first != second
    sentiments = [a["sentiment"] for a in first]
    # Not in blocks: a quota laid out in value order would have only 2 changes of value.
    assert sum(x != y for x, y in zip(sentiments, sentiments[1:], strict=False)) > 100
    assert Counter(sentiments) == {"positive": 120, "negative": 90, "neutral": 90}
    # Priority follows 50/40/10 among the 90 negative samples, 20/50/30 among the others.
    negative = Counter(a["priority"] for a in first if a["sentiment"] == "negative")
    assert negative == {"high": 45, "medium": 36, "low": 9}
    others = Counter(a["priority"] for a in first if a["sentiment"] != "negative")
    assert others == {"high": 42, "medium": 105, "low": 63}


def test_random_mode_drifts_where_quota_does_not() -> None:
    props = parse_spec(SPEC_YAML).properties
    drawn = Counter(a["sentiment"] for a in plan(props, 1000, seed=3, mode="random"))
    assert drawn != {"positive": 400, "negative": 300, "neutral": 300}
    assert abs(drawn["positive"] - 400) < 60  # about 3 standard deviations


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown assignment mode"):
        plan([], 1, seed=0, mode="lottery")  # type: ignore[arg-type]


def test_largest_remainder_hands_out_exactly_the_units() -> None:
    assert largest_remainder({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder({"a": 40, "b": 30, "c": 30}, 7) == {"a": 3, "b": 2, "c": 2}
    assert largest_remainder({"a": 0, "b": 0}, 5) == {"a": 0, "b": 0}
    with pytest.raises(ValueError, match="negative"):
        largest_remainder({"a": -1, "b": 2}, 5)


@pytest.mark.parametrize("mode", ["quota", "random"])
def test_a_value_its_distribution_leaves_out_is_never_assigned(mode: str) -> None:
    # A parsed spec lists every value (0 where the YAML gives none); a Property built in code may leave one out,
    # and it weighs 0, not some small share (1,000 samples: a weight of 1 in 101 would give it about 10).
    prop = Property("p", ["a", "b"], {"a": 100.0})
    assert {row["p"] for row in plan([prop], 1000, seed=1, mode=mode)} == {"a"}  # type: ignore[arg-type]
