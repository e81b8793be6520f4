"""Krippendorff's alpha between reviewers, checked against the worked examples of K. Krippendorff, "Computing
Krippendorff's Alpha-Reliability" (2011), and its bootstrap interval."""

from __future__ import annotations

import pytest

from evaluations.interrater import krippendorff_alpha_nominal, reviewer_agreement


def columns(*observers: str) -> list[list[str]]:
    """Each unit's values from the observers' rows ("." = not labelled by that observer)."""
    return [[v for v in unit if v != "."] for unit in zip(*(row.split() for row in observers), strict=True)]


# Section C of the paper: four observers, twelve units, missing values; nominal alpha = 0.743.
FOUR_OBSERVERS = columns(
    "1 2 3 3 2 1 4 1 2 . . .",
    "1 2 3 3 2 2 4 1 2 5 . 3",
    ". 3 3 3 2 3 4 2 2 5 1 .",
    "1 2 3 3 2 4 4 1 2 5 1 .",
)
# Section A: two observers, binary values, no missing values; alpha = 0.095.
TWO_OBSERVERS = columns("0 1 0 0 0 0 0 0 1 0", "1 1 1 0 0 1 0 0 0 0")


def test_it_reproduces_krippendorffs_worked_examples() -> None:
    assert krippendorff_alpha_nominal(FOUR_OBSERVERS) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha_nominal(TWO_OBSERVERS) == pytest.approx(0.095, abs=5e-4)


def test_it_is_one_at_perfect_agreement_and_about_zero_by_chance() -> None:
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b", "b"], ["c", "c"]]) == 1
    # Every pairing equally often: agreement no better than chance.
    chance = [["a", "a"], ["a", "b"], ["b", "a"], ["b", "b"]] * 10
    assert krippendorff_alpha_nominal(chance) == pytest.approx(0, abs=0.05)
    assert krippendorff_alpha_nominal([["a", "b"], ["b", "a"]]) < 0  # systematic disagreement


def test_it_is_undefined_without_pairs_or_variation() -> None:
    assert krippendorff_alpha_nominal([]) is None
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None  # nobody labelled a sample twice
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "a", "a"]]) is None  # one value throughout
    assert reviewer_agreement([["a"], ["b"]]) is None


def test_singly_labelled_samples_do_not_count() -> None:
    assert krippendorff_alpha_nominal([*FOUR_OBSERVERS, ["1"], ["5"]]) == krippendorff_alpha_nominal(FOUR_OBSERVERS)
    found = reviewer_agreement([*FOUR_OBSERVERS, ["1"]])
    assert found is not None
    assert (found.samples, found.reviewers) == (11, 4)  # unit 12 of the paper has one value: not pairable


def test_the_bootstrap_interval_holds_alpha_and_narrows_with_more_samples() -> None:
    few = reviewer_agreement(FOUR_OBSERVERS)
    many = reviewer_agreement(FOUR_OBSERVERS * 10)
    assert few is not None
    assert many is not None
    assert few.low is not None
    assert many.low is not None
    assert few.low < few.alpha < few.high <= 1
    assert many.low < many.alpha < many.high
    assert many.high - many.low < 0.5 * (few.high - few.low)  # about 1/sqrt(10) as wide
    assert reviewer_agreement(FOUR_OBSERVERS) == few  # a fixed seed: the same interval on every visit


def test_the_bootstrap_covers_the_truth() -> None:
    """Two reviewers who copy the truth with probability p and otherwise guess uniformly among three values: the
    interval covers the population alpha in about 95% of 200 simulated teams (fixed seed)."""
    import random

    rng = random.Random(5)
    values, p = ["x", "y", "z"], 0.7

    def label(truth: str) -> str:
        return truth if rng.random() < p else rng.choice(values)

    # The population alpha: with uniform marginals it is (agreement - 1/3) / (1 - 1/3), where two labels agree when
    # both copy or land on the same value: (p + (1 - p)/3)^2 + 2 ((1 - p)/3)^2 = 0.66 at p = 0.7, so alpha = 0.49.
    agree = (p + (1 - p) / 3) ** 2 + 2 * ((1 - p) / 3) ** 2
    truth_alpha = (agree - 1 / 3) / (1 - 1 / 3)
    covered = 0
    for _ in range(200):
        units = [[label(t), label(t)] for t in rng.choices(values, k=60)]
        found = reviewer_agreement(units, resamples=500, seed=rng.randrange(1_000_000))
        assert found is not None
        assert found.low is not None
        covered += found.low <= truth_alpha <= found.high
    print(f"bootstrap interval of alpha: covered the population alpha in {covered} of 200 teams")
    assert 0.88 <= covered / 200 <= 0.99
