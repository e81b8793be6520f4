"""The corrected distribution proven by simulation (issue #20; #27 item 6): every abstention scenario, review sizes
10, 30, 100, near-census and census, the judge whose queue drew the labels and a second judge of the same run.

1,000 trials per case with a fixed seed, vectorised (benchmarks/estimator_coverage.py, which also prints the
README's table; every coverage test checks its case's README row too, so the two cannot drift apart). Binomial
noise of 1,000 trials is ±0.7 points around a true 95%, so [93, 97] holds a right interval, and fails one too
narrow (no finite-population correction near a census, the variance taken at the estimate) or too wide (a
process-level variance term, the FPC left out near a census, the old worst case for unlabelled strata).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.estimator_coverage import (
    ABSTENTION,
    POPULATION,
    SCENARIO,
    SEED,
    TRIALS,
    Case,
    Scenario,
    coverage_percent,
    simulate,
)

N = POPULATION
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_coverage(target: str, abstention: str, labels: int) -> list[float]:
    """The README coverage table's cell for one case."""
    row = re.search(rf"^\| {target} \| {abstention} \| {labels} \| ([0-9. /]+) \|", README.read_text(), re.MULTILINE)
    assert row, (target, abstention, labels)
    return [float(cell) for cell in row.group(1).split(" / ")]


@pytest.mark.parametrize("abstention", list(ABSTENTION))
@pytest.mark.parametrize("labels", [30, 100, N - 20])
def test_the_queues_own_judge_is_covered_93_to_97_percent(abstention: str, labels: int) -> None:
    out = simulate(Case(N, labels, ABSTENTION[abstention]), trials=TRIALS, seed=SEED)
    # Per value, not averaged: every value's interval must hold on its own.
    assert np.all(out.coverage >= 0.93), out.coverage
    assert np.all(out.coverage <= 0.97), out.coverage
    assert coverage_percent(out) == readme_coverage("A", abstention, labels)


@pytest.mark.parametrize("abstention", list(ABSTENTION))
def test_ten_labels_cover_at_least_93_percent_for_the_queues_own_judge(abstention: str) -> None:
    out = simulate(Case(N, 10, ABSTENTION[abstention]), trials=TRIALS, seed=SEED)
    # 2-3 labels per stratum: the score interval never runs short (the old normal interval covered 85.9% here),
    # and is conservative instead, up to 99.0% in these cases: not the 97% (README says so).
    assert np.all(out.coverage >= 0.93), out.coverage
    assert np.all(out.coverage <= 0.995), out.coverage
    assert (out.high - out.low).mean() > 0.3  # wide, as 10 labels must be
    assert coverage_percent(out) == readme_coverage("A", abstention, 10)


@pytest.mark.parametrize("abstention", list(ABSTENTION))
@pytest.mark.parametrize("labels", [100, N - 20])
def test_a_second_judge_corrected_with_labels_drawn_for_the_first_is_covered_93_to_97_percent(
    abstention: str, labels: int
) -> None:
    out = simulate(Case(N, labels, ABSTENTION[abstention], target="B"), trials=TRIALS, seed=SEED)
    # B's strata are domains of A's stratified sample: the design variance over cells (A's stratum, B's stratum)
    # counts how B's cells within one of A's strata move against each other. Treating B's strata as independent
    # samples (round 1) covered 95.0-98.5% here; dropping the cells' spread term, 73-91%. At 380 of 400 labels
    # weights of 1/π alone left a bias that did not shrink with the error (92.7-92.8% here, 84.5% at 395): the
    # calibrated weights and each label's own finite-population correction (agreement.py) bring it to 93.5-96.9%.
    assert np.all(out.coverage >= 0.93), out.coverage
    assert np.all(out.coverage <= 0.97), out.coverage
    assert coverage_percent(out) == readme_coverage("B", abstention, labels)


@pytest.mark.parametrize("abstention", list(ABSTENTION))
@pytest.mark.parametrize("labels", [10, 30])
def test_a_second_judge_with_few_labels_per_design_stratum_is_covered_conservatively(
    abstention: str, labels: int
) -> None:
    out = simulate(Case(N, labels, ABSTENTION[abstention], target="B"), trials=TRIALS, seed=SEED)
    # 2-6 labels per design stratum are too few to estimate the spread within it (the design variance covered
    # 90-91.5% on held-out truths there), so B's strata stand in for A's until agreement.SPREAD_LABELS: never short,
    # but up to 99% here, not the 97% (README says so).
    assert np.all(out.coverage >= 0.93), out.coverage
    assert np.all(out.coverage <= 0.995), out.coverage
    assert coverage_percent(out) == readme_coverage("B", abstention, labels)


@pytest.mark.parametrize("target", ["A", "B"])
def test_it_is_unbiased_for_both_judges(target: str) -> None:
    out = simulate(Case(N, 100, ABSTENTION["value-dependent"], target), trials=TRIALS, seed=21)
    bias = (out.estimate - out.truth).mean(axis=0)
    # The standard error of a mean over 1,000 trials is about 0.15 points here; the reuse bias was 3.3.
    assert np.all(np.abs(bias) < 0.006), bias
    # The judge itself is biased by several points on some value, and abstention follows the truth.
    assert np.abs((out.judged - out.truth).mean(axis=0)).max() > 0.03


@pytest.mark.parametrize("abstention", list(ABSTENTION))
def test_a_second_judge_near_a_census_is_unbiased(abstention: str) -> None:
    out = simulate(Case(N, N - 5, ABSTENTION[abstention], target="B"), trials=TRIALS, seed=25)
    error = out.estimate - out.truth
    # Five samples unlabelled, all in A's largest stratum. Weighting B's labels by 1/π alone under-weights that
    # stratum whenever B's stratum still has unlabelled samples (the only time it is estimated): a bias of 0.07-0.12
    # points that stayed as the error shrank, 0.7 of its spread at 395 of 400, coverage 84.5-92%. Calibrating what
    # each label stands for to the unlabelled count removes it.
    assert np.all(np.abs(error.mean(axis=0)) < 0.2 * error.std(axis=0)), (error.mean(axis=0), error.std(axis=0))
    assert np.all(out.coverage >= 0.91), out.coverage


@pytest.mark.parametrize("target", ["A", "B"])
@pytest.mark.parametrize("abstention", list(ABSTENTION))
def test_a_census_is_exact_with_no_width(target: str, abstention: str) -> None:
    out = simulate(Case(N, N, ABSTENTION[abstention], target), trials=200, seed=22)
    assert np.abs(out.estimate - out.truth).max() < 1e-12
    assert (out.high - out.low).max() < 1e-12


@pytest.mark.parametrize("target", ["A", "B"])
def test_near_a_census_the_interval_shrinks_with_the_unlabelled_share(target: str) -> None:
    near = simulate(Case(N, N - 20, ABSTENTION["value-dependent"], target), trials=TRIALS, seed=23)
    half = simulate(Case(N, N // 2, ABSTENTION["value-dependent"], target), trials=TRIALS, seed=23)
    # 95% of the run labelled: width about sqrt(0.05/0.95 / (0.5/0.5) * 200/380) = 0.17 of half-labelled's.
    ratio = (near.high - near.low).mean() / (half.high - half.low).mean()
    assert 0.1 < ratio < 0.3, ratio


@pytest.mark.parametrize("target", ["A", "B"])
@pytest.mark.parametrize("abstention", list(ABSTENTION))
def test_100_labels_at_least_halve_the_judges_error(target: str, abstention: str) -> None:
    out = simulate(Case(N, 100, ABSTENTION[abstention], target), trials=TRIALS, seed=24)
    # 100 labels leave the corrected share about 2.5 points off, so a judge off by 5 points or more on a value (the
    # judges here are off by 7-14 points on some) must be at least halved; one off by 3 cannot be by 100 labels.
    biased = out.judged_error >= 0.05
    assert biased.any()
    assert np.all(out.error[biased] <= out.judged_error[biased] / 2), (out.error, out.judged_error)


@pytest.mark.parametrize("labels", [10, 30, 100])
def test_a_judge_that_is_always_right_is_covered_in_more_than_97_percent_of_trials(labels: int) -> None:
    # Why the 93-97% cannot hold for every judge (README, "What holds"): where the judge is always right and
    # decides every sample, its strata are pure, every label agrees with it, the estimate is the truth whatever n,
    # and any interval around the estimate covers it. Only the failed samples (2%, mixed values) leave any doubt.
    # So an interval that never runs short for a sloppy judge over-covers for a sharp one at small n.
    right = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    scenario = Scenario("always right", SCENARIO.truth, right, right)
    out = simulate(Case(N, labels, ABSTENTION["none"], scenario=scenario), trials=TRIALS, seed=SEED)
    assert np.all(out.coverage > 0.97), out.coverage
    assert np.all(out.high - out.low > 0)  # not a census: the interval still has a width
