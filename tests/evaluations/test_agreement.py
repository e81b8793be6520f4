"""evaluations/agreement.py: the corrected distribution is proven by simulation, kappa against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from evaluations.agreement import (
    FIT_FOR_USE_KAPPA,
    MIN_REVIEWS,
    calibration_estimate,
    cohen_kappa,
    human_review_block,
    kappa_interval,
)

VALUES = ["positive", "negative", "neutral"]
# A judge that hedges towards "neutral" (the way LLM judges fail): rows are the truth, columns what it says.
TRUTH = np.array([0.4, 0.3, 0.3])
JUDGE = np.array([[0.65, 0.05, 0.30], [0.05, 0.65, 0.30], [0.10, 0.10, 0.80]])
CLASSIFIED = 2000
PER_STRATUM = 40
TRIALS = 1000


def simulate(rng, truth, judge, classified, per_stratum, trials):
    """Judged counts over `classified` samples and a stratified review sample, for `trials` independent trials.

    Within a judged value the true labels are i.i.d. with P(truth | judged), so a uniform draw of
    min(per_stratum, c_j) of them is a multinomial draw: this is the review queue's design, exactly.
    Returns judged[trial, j] and reviewed[trial, j, v] (reviews judged j whose human label is v).
    """
    joint = truth[:, None] * judge
    judged_share = joint.sum(axis=0)
    posterior = (joint / judged_share).T  # [judged j, truth v]
    judged = rng.multinomial(classified, judged_share, size=trials)
    reviewed = np.stack(
        [rng.multinomial(np.minimum(per_stratum, judged[:, j]), posterior[j]) for j in range(len(truth))], axis=1
    )
    return judged, reviewed


def as_pairs(reviewed_counts, values):
    """(human, judged) pairs from a [judged j, human v] count matrix."""
    return [
        (values[v], values[j])
        for j in range(len(values))
        for v in range(len(values))
        for _ in range(int(reviewed_counts[j, v]))
    ]


# --- the corrected distribution, by simulation --------------------------------------------------------------------


def test_it_covers_the_truth_in_93_to_97_percent_of_trials_for_every_value():
    judged, reviewed = simulate(np.random.default_rng(14), TRUTH, JUDGE, CLASSIFIED, PER_STRATUM, TRIALS)
    _, low, high = calibration_estimate(reviewed, judged)
    coverage = ((low <= TRUTH) & (high >= TRUTH)).mean(axis=0)
    # Per value, not averaged: every value's interval must hold on its own. Binomial noise of 1,000 trials is
    # ±0.7 points, so a true 95% lands in [93, 97] by a wide margin; plain Wald misses it at this design's edges.
    assert np.all(coverage >= 0.93), coverage
    assert np.all(coverage <= 0.97), coverage


def test_the_api_block_gives_the_same_coverage_after_rounding():
    judged, reviewed = simulate(np.random.default_rng(14), TRUTH, JUDGE, CLASSIFIED, PER_STRATUM, TRIALS)
    covered = np.zeros(len(VALUES))
    for trial in range(TRIALS):
        block = human_review_block(
            values=VALUES,
            judged_counts=dict(zip(VALUES, judged[trial].tolist(), strict=True)),
            pairs=as_pairs(reviewed[trial], VALUES),
        )
        for i, value in enumerate(VALUES):
            low, high = block["corrected_ci"][value]
            covered[i] += low <= 100 * TRUTH[i] <= high
    coverage = covered / TRIALS
    assert np.all((coverage >= 0.93) & (coverage <= 0.97)), coverage


def test_it_halves_the_judges_error_at_least():
    judged, reviewed = simulate(np.random.default_rng(14), TRUTH, JUDGE, CLASSIFIED, PER_STRATUM, TRIALS)
    estimate, _, _ = calibration_estimate(reviewed, judged)
    uncorrected = judged / judged.sum(axis=1, keepdims=True)
    corrected_error = np.abs(estimate - TRUTH).mean()
    judge_error = np.abs(uncorrected - TRUTH).mean()
    assert corrected_error <= 0.5 * judge_error, (corrected_error, judge_error)


def test_it_is_unbiased():
    judged, reviewed = simulate(np.random.default_rng(15), TRUTH, JUDGE, CLASSIFIED, PER_STRATUM, TRIALS)
    estimate, _, _ = calibration_estimate(reviewed, judged)
    # The mean of 1,000 estimates has a standard error below 0.15 points here; the judge alone is 10+ points off.
    assert np.abs(estimate.mean(axis=0) - TRUTH).max() < 0.005


@pytest.mark.parametrize(
    ("truth", "classified", "per_stratum"),
    [(TRUTH, 500, 12), (np.array([0.6, 0.37, 0.03]), 2000, 40)],
    ids=["12-reviews-per-judged-value", "a-3-percent-value"],
)
def test_pseudo_counts_keep_covering_where_wald_does_not(truth, classified, per_stratum):
    judged, reviewed = simulate(np.random.default_rng(16), truth, JUDGE, classified, per_stratum, TRIALS)

    def coverage(pseudo_count):
        _, low, high = calibration_estimate(reviewed, judged, pseudo_count=pseudo_count)
        return ((low <= truth) & (high >= truth)).mean(axis=0)

    # Measured: Wald 92-93% with 12 reviews per judged value and 90% for the 3% value; add-1/2 95-98% in both.
    assert coverage(0.0).min() < 0.93
    assert coverage(0.5).min() >= 0.93


def test_a_judged_value_never_reviewed_widens_the_intervals_to_the_worst_case():
    judged, reviewed = simulate(np.random.default_rng(17), TRUTH, JUDGE, CLASSIFIED, PER_STRATUM, TRIALS)
    reviewed[:, 2, :] = 0  # nobody reviewed the samples judged neutral
    estimate, low, high = calibration_estimate(reviewed, judged)
    coverage = ((low <= TRUTH) & (high >= TRUTH)).mean(axis=0)
    assert np.all(coverage >= 0.95), coverage
    neutral_share = judged[:, 2] / judged.sum(axis=1)
    assert np.all(high - low >= neutral_share[:, None] - 1e-12)
    # The estimate takes the judge at its word there.
    ones = reviewed.sum(axis=2)
    own = (reviewed[:, :2, :] / ones[:, :2, None] * (judged[:, :2, None] / judged.sum(axis=1)[:, None, None])).sum(1)
    np.testing.assert_allclose(estimate[:, :2], own[:, :2])
    np.testing.assert_allclose(estimate[:, 2], own[:, 2] + neutral_share)


def test_the_block_says_which_judged_value_was_never_reviewed():
    pairs = [("positive", "positive")] * 20 + [("neutral", "negative")] * 5 + [("negative", "negative")] * 15
    block = human_review_block(
        values=VALUES, judged_counts={"positive": 500, "negative": 300, "neutral": 200}, pairs=pairs
    )
    assert any("never reviewed: neutral (20.00%" in note for note in block["notes"])
    low, high = block["corrected_ci"]["neutral"]
    assert high - low >= 20
    # Judged neutral: taken as neutral (20%); judged negative: a quarter neutral (7.5%).
    assert block["corrected_distributions"]["neutral"] == 27.5


# --- kappa -------------------------------------------------------------------------------------------------------


def random_pairs(rng, size, values, agreement):
    human = rng.integers(0, len(values), size=size)
    noise = rng.integers(0, len(values), size=size)
    judged = np.where(rng.random(size) < agreement, human, noise)
    return [(values[h], values[j]) for h, j in zip(human, judged, strict=True)]


@pytest.mark.parametrize("seed", range(20))
def test_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    values = [f"v{i}" for i in range(int(rng.integers(2, 6)))]
    pairs = random_pairs(rng, int(rng.integers(30, 300)), values, float(rng.random()))
    human, judged = zip(*pairs, strict=True)
    assert cohen_kappa(pairs, values) == pytest.approx(cohen_kappa_score(human, judged, labels=values), abs=1e-12)


def delta_method_variance(matrix):
    """Var(kappa) by the multivariate delta method with a numerical gradient: independent of FCE 1969's algebra.

    The cell shares are multinomial, Cov = (diag(p) - p p^T) / n; the gradient is taken by central differences on
    kappa as a function of the (unnormalised) cell shares.
    """
    n = matrix.sum()
    p = (matrix / n).ravel()
    size = matrix.shape[0]

    def kappa_of(cells):
        cells = cells.reshape(size, size)
        observed = np.trace(cells)
        chance = cells.sum(axis=1) @ cells.sum(axis=0)
        return (observed - chance) / (1 - chance)

    step = 1e-6
    gradient = np.array([(kappa_of(p + step * e) - kappa_of(p - step * e)) / (2 * step) for e in np.eye(len(p))])
    covariance = (np.diag(p) - np.outer(p, p)) / n
    return gradient @ covariance @ gradient


@pytest.mark.parametrize("seed", range(10))
def test_kappa_interval_matches_the_delta_method(seed):
    rng = np.random.default_rng(100 + seed)
    values = [f"v{i}" for i in range(int(rng.integers(2, 5)))]
    pairs = random_pairs(rng, 200, values, 0.7)
    matrix = np.zeros((len(values), len(values)))
    for human, judged in pairs:
        matrix[values.index(human), values.index(judged)] += 1
    kappa = cohen_kappa(pairs, values)
    low, high = kappa_interval(pairs, values)
    # FCE 1969 is the delta-method variance in closed form: they agree to the finite differences' precision.
    half = 1.959963984540054 * math.sqrt(delta_method_variance(matrix))
    assert low == pytest.approx(kappa - half, abs=1e-6)
    assert high == pytest.approx(kappa + half, abs=1e-6)


def test_kappa_interval_matches_a_bootstrap():
    rng = np.random.default_rng(7)
    pairs = random_pairs(rng, 400, VALUES, 0.7)
    low, high = kappa_interval(pairs, VALUES)
    # Brute-force bootstrap, vectorised: 4,000 resamples of the 400 pairs, kappa of each from its counts.
    codes = np.array([VALUES.index(h) * 3 + VALUES.index(j) for h, j in pairs])
    counts = np.stack([np.bincount(rng.choice(codes, size=len(codes)), minlength=9) for _ in range(4000)])
    cells = counts.reshape(-1, 3, 3) / len(codes)
    observed = np.trace(cells, axis1=1, axis2=2)
    chance = np.einsum("bi,bi->b", cells.sum(axis=2), cells.sum(axis=1))
    kappas = (observed - chance) / (1 - chance)
    # The bootstrap's standard error has a Monte-Carlo error of about 1/sqrt(2 * 4000) = 1.1%, and differs from
    # the large-sample one by O(1/n); 5% allows both with room, and still fails a variance off by a factor 1.1.
    assert (high - low) / 2 / 1.959963984540054 == pytest.approx(kappas.std(), rel=0.05)


def test_kappa_interval_covers_the_true_kappa():
    # 120 reviews of a judge right 80% of the time over three equally common values: true kappa 0.7.
    joint = np.full((3, 3), 0.2 / 6)
    np.fill_diagonal(joint, 0.8 / 3)
    cells = np.random.default_rng(14).multinomial(120, joint.ravel(), size=TRIALS)
    covered = 0
    for counts in cells:
        pairs = [(VALUES[i // 3], VALUES[i % 3]) for i in range(9) for _ in range(counts[i])]
        low, high = kappa_interval(pairs, VALUES)
        covered += low <= 0.7 <= high
    # A large-sample interval runs about a point under 95% at this size (measured 92.7-94.5% over four seeds);
    # a variance off by 20% either way would leave [92%, 97%].
    assert 0.92 <= covered / TRIALS <= 0.97, covered


def test_perfect_agreement_has_a_lower_bound_below_one():
    pairs = [(v, v) for v in VALUES for _ in range(10)]
    assert cohen_kappa(pairs, VALUES) == 1.0
    low, high = kappa_interval(pairs, VALUES)
    assert high == 1.0
    # 30 agreements in 30: the Wilson lower bound 30/33.84 = 0.886 of agreement, kappa (0.886 - 1/3) / (2/3).
    assert low == pytest.approx((30 / (30 + 1.959963984540054**2) - 1 / 3) / (2 / 3))


def test_kappa_is_undefined_when_both_raters_use_one_value():
    pairs = [("positive", "positive")] * 40
    assert cohen_kappa(pairs, VALUES) is None
    assert kappa_interval(pairs, VALUES) is None
    assert cohen_kappa([], VALUES) is None


def test_all_disagree_gives_a_negative_kappa():
    pairs = [("positive", "negative"), ("negative", "positive")] * 20
    assert cohen_kappa(pairs, VALUES) == pytest.approx(-1.0)
    block = human_review_block(values=VALUES, judged_counts={"positive": 20, "negative": 20}, pairs=pairs)
    assert block["judge_accuracy"] == 0.0
    assert block["fit_for_use"] is False
    # Every sample judged positive is negative and vice versa: the correction swaps the shares.
    assert block["corrected_distributions"] == {"positive": 50.0, "negative": 50.0, "neutral": 0.0}


# --- the API block -------------------------------------------------------------------------------------------------


def test_it_gives_no_numbers_below_the_minimum():
    pairs = [("positive", "positive")] * (MIN_REVIEWS - 1)
    block = human_review_block(values=VALUES, judged_counts={"positive": 100}, pairs=pairs, extra_pairs=pairs)
    assert block["reviewed"] == MIN_REVIEWS - 1
    assert block["extra_reviewed"] == MIN_REVIEWS - 1
    assert block["minimum"] == MIN_REVIEWS
    assert "29 of the 30" in block["message"]
    for key in ("judge_accuracy", "kappa", "kappa_ci", "fit_for_use", "judge_confusion", "corrected_distributions"):
        assert block[key] is None


def test_it_builds_the_block():
    rng = np.random.default_rng(3)
    judged, reviewed = simulate(rng, TRUTH, JUDGE, CLASSIFIED, PER_STRATUM, 1)
    pairs = as_pairs(reviewed[0], VALUES)
    extra = [("positive", "neutral")] * 7
    block = human_review_block(
        values=VALUES, judged_counts=dict(zip(VALUES, judged[0].tolist(), strict=True)), pairs=pairs, extra_pairs=extra
    )
    assert block["reviewed"] == 120
    assert block["extra_reviewed"] == 7
    assert block["message"] is None
    assert block["notes"] == []
    agree = sum(h == j for h, j in pairs)
    assert block["judge_accuracy"] == round(100 * agree / 120, 2)
    # Extra reviews never enter the estimates: the block is the same without them.
    assert block | {"extra_reviewed": 0} == human_review_block(
        values=VALUES, judged_counts=dict(zip(VALUES, judged[0].tolist(), strict=True)), pairs=pairs
    )
    assert block["judge_confusion"]["positive"]["neutral"] == int(reviewed[0, 2, 0])
    assert block["kappa"] == pytest.approx(cohen_kappa(pairs, VALUES), abs=1e-4)
    low, high = kappa_interval(pairs, VALUES)
    assert block["kappa_ci"] == [round(low, 4), round(high, 4)]
    assert block["fit_for_use"] is (low >= FIT_FOR_USE_KAPPA)
    estimate, _, _ = calibration_estimate(reviewed[0], judged[0])
    for i, value in enumerate(VALUES):
        assert block["corrected_distributions"][value] == pytest.approx(100 * estimate[i], abs=0.011)
    assert math.fsum(block["corrected_distributions"].values()) == pytest.approx(100.0, abs=1e-9)


def test_a_fit_judge_is_fit_for_use():
    pairs = [(v, v) for v in VALUES for _ in range(30)] + [("positive", "neutral")] * 3
    block = human_review_block(
        values=VALUES, judged_counts={"positive": 300, "negative": 300, "neutral": 300}, pairs=pairs
    )
    assert block["kappa_ci"][0] >= FIT_FOR_USE_KAPPA
    assert block["fit_for_use"] is True


def test_one_class_only_and_all_agree_has_no_kappa_but_a_distribution():
    block = human_review_block(values=VALUES, judged_counts={"positive": 400}, pairs=[("positive", "positive")] * 40)
    assert block["kappa"] is None
    assert block["kappa_ci"] is None
    assert block["fit_for_use"] is None
    assert any("kappa undefined" in note for note in block["notes"])
    assert block["judge_accuracy"] == 100.0
    assert block["corrected_distributions"] == {"positive": 100.0, "negative": 0.0, "neutral": 0.0}


def test_nothing_classified_gives_no_distribution():
    pairs = [(v, v) for v in VALUES for _ in range(10)]
    block = human_review_block(values=VALUES, judged_counts={}, pairs=pairs)
    assert block["kappa"] == 1.0
    assert block["corrected_distributions"] is None
    assert block["corrected_ci"] is None
    assert any("nothing classified" in note for note in block["notes"])


@pytest.mark.parametrize(
    ("judged_counts", "pairs", "extra"),
    [
        ({"mixed": 3}, [], []),
        ({}, [("mixed", "positive")], []),
        ({}, [("positive", "mixed")], []),
        ({}, [], [("positive", "mixed")]),
    ],
)
def test_it_refuses_unknown_values(judged_counts, pairs, extra):
    with pytest.raises(ValueError, match="'mixed' is not one of the property's values"):
        human_review_block(values=VALUES, judged_counts=judged_counts, pairs=pairs, extra_pairs=extra)


def test_it_refuses_negative_counts_and_bad_value_lists():
    with pytest.raises(ValueError, match="negative"):
        human_review_block(values=VALUES, judged_counts={"positive": -1}, pairs=[])
    with pytest.raises(ValueError, match="without repeats"):
        human_review_block(values=["a", "a"], judged_counts={}, pairs=[])


# --- hypothesis: whatever the reviews, the block is well formed ----------------------------------------------------

value_lists = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=5, unique=True)


@st.composite
def review_cases(draw):
    """Values, judged counts and pairs, drawn to hit the edge cases often: no reviews, one class only, all agree,
    all disagree, values never judged (absent or 0) and judged values never reviewed."""
    values = draw(value_lists)
    index = st.integers(0, len(values) - 1)
    size = draw(st.one_of(st.just(0), st.integers(MIN_REVIEWS, 150)))
    shape = draw(st.sampled_from(["random", "one class", "all agree", "all disagree"]))
    if shape == "one class":
        only = draw(index)
        pairs = [(only, only)] * size
    elif shape == "all agree":
        pairs = [(i, i) for i in draw(st.lists(index, min_size=size, max_size=size))]
    elif shape == "all disagree" and len(values) > 1:
        shifts = draw(st.lists(st.integers(1, len(values) - 1), min_size=size, max_size=size))
        starts = draw(st.lists(index, min_size=size, max_size=size))
        pairs = [(h, (h + k) % len(values)) for h, k in zip(starts, shifts, strict=True)]
    else:
        pairs = draw(st.lists(st.tuples(index, index), min_size=size, max_size=size))
    counts = draw(st.lists(st.integers(0, 5000), min_size=len(values), max_size=len(values)))
    judged_counts = {v: c for v, c in zip(values, counts, strict=True) if c or draw(st.booleans())}
    return values, judged_counts, [(values[h], values[j]) for h, j in pairs]


@settings(max_examples=300, deadline=None)
@given(review_cases())
def test_the_block_is_always_well_formed(case):
    values, judged_counts, pairs = case
    block = human_review_block(values=values, judged_counts=judged_counts, pairs=pairs)
    assert block["reviewed"] == len(pairs)
    assert set(block) >= {"judge_accuracy", "kappa", "kappa_ci", "judge_confusion", "corrected_distributions"}
    if len(pairs) < MIN_REVIEWS:
        assert block["corrected_distributions"] is None
        assert block["message"]
        return
    kappa = block["kappa"]
    if kappa is not None:
        low, high = block["kappa_ci"]
        assert -1 <= low <= kappa <= high <= 1
        assert block["fit_for_use"] is (low >= FIT_FOR_USE_KAPPA)
    else:
        assert len({v for pair in pairs for v in pair}) == 1
    assert sum(sum(row.values()) for row in block["judge_confusion"].values()) == len(pairs)
    # Rounded to two places: off by at most half a hundredth, plus the float error of 59.375 -> 59.38.
    assert block["judge_accuracy"] == pytest.approx(100 * sum(h == j for h, j in pairs) / len(pairs), abs=0.005001)
    unreviewed = [v for v in values if judged_counts.get(v) and all(j != v for _, j in pairs)]
    assert any("never reviewed" in note for note in block["notes"]) is bool(unreviewed)
    shares = block["corrected_distributions"]
    if sum(judged_counts.values()) == 0:
        assert shares is None
        return
    assert list(shares) == values
    assert math.fsum(shares.values()) == pytest.approx(100.0, abs=1e-9)
    for value in values:
        low, high = block["corrected_ci"][value]
        assert 0 <= low <= shares[value] <= high <= 100
        # A value the judge never gave and no human ever gave has no mass to correct.
        if not judged_counts.get(value) and all(h != value for h, _ in pairs):
            assert shares[value] == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 3000), min_size=2, max_size=5),
    st.data(),
)
def test_the_estimate_is_on_the_simplex_and_inside_its_interval(judged, data):
    size = len(judged)
    reviewed = np.array(
        [data.draw(st.lists(st.integers(0, 60), min_size=size, max_size=size)) for _ in range(size)], dtype=float
    )
    if sum(judged) == 0:
        judged[0] = 1
    estimate, low, high = calibration_estimate(reviewed, np.array(judged))
    assert estimate.sum() == pytest.approx(1.0)
    assert np.all((low >= 0) & (low <= estimate + 1e-12) & (estimate <= high + 1e-12) & (high <= 1))


@settings(max_examples=50, deadline=None)
@given(review_cases(), st.text(min_size=1, max_size=8), st.sampled_from(["judged", "human", "extra", "counts"]))
def test_an_unknown_value_anywhere_is_refused(case, unknown, where):
    values, judged_counts, pairs = case
    if unknown in values:
        return
    extra: list[tuple[str, str]] = []
    if where == "judged":
        pairs = [*pairs, (values[0], unknown)]
    elif where == "human":
        pairs = [(unknown, values[0]), *pairs]
    elif where == "extra":
        extra = [(values[0], unknown)]
    else:
        judged_counts = {**judged_counts, unknown: 1}
    with pytest.raises(ValueError, match="is not one of the property's values"):
        human_review_block(values=values, judged_counts=judged_counts, pairs=pairs, extra_pairs=extra)
