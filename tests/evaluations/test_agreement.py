"""evaluations/agreement.py: kappa against references, its interval near perfect agreement, and the human_review
block (census, partial estimates, what feeds it). The corrected distribution's coverage is simulated in
test_estimator.py."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluations.agreement import (
    FIT_FOR_USE_KAPPA,
    MIN_REVIEWS,
    PARTIAL_REVIEWS,
    SPREAD_LABELS,
    ReviewSample,
    cohen_kappa,
    design_estimate,
    human_review_block,
    kappa_interval,
    labels_to_halve,
    wilson,
)

VALUES = ["positive", "negative", "neutral"]
UNDECIDED = "(undecided)"
Z = 1.959963984540054


def queue_sample(
    pairs: list[tuple[str, str]], strata: dict[str, int], *, known: Sequence[tuple[str, str]] = ()
) -> ReviewSample:
    """The target's own queue drew `pairs` (human, judged stratum); `known` adds other labels (any selection)."""
    drawn = Counter(stratum for _, stratum in pairs)
    everything: dict[str, Counter[str]] = {}
    for human, stratum in [*pairs, *known]:
        everything.setdefault(stratum, Counter())[human] += 1
    return ReviewSample(
        strata=strata,
        known=everything,
        random=[(human, stratum, stratum, drawn[stratum] / strata[stratum]) for human, stratum in pairs],
        sampled={s: drawn[s] / strata[s] for s in strata if strata[s]},
        reviewed=len(pairs) + len(known),
        design="test",
    )


def random_pairs(rng, size, values, agreement):
    human = rng.integers(0, len(values), size=size)
    noise = rng.integers(0, len(values), size=size)
    judged = np.where(rng.random(size) < agreement, human, noise)
    return [(values[h], values[j]) for h, j in zip(human, judged, strict=True)]


# --- kappa ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_kappa_matches_sklearn_plain_and_weighted(seed):
    # Imported here: scikit-learn costs 1.2 s of CPU to import, paid at collection by every xdist process otherwise.
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    values = [f"v{i}" for i in range(int(rng.integers(2, 6)))]
    pairs = random_pairs(rng, int(rng.integers(30, 300)), values, float(rng.random()))
    human, judged = zip(*pairs, strict=True)
    assert cohen_kappa(pairs, values) == pytest.approx(cohen_kappa_score(human, judged, labels=values), abs=1e-12)
    weights = list(rng.uniform(0.5, 20, size=len(pairs)))
    reference = cohen_kappa_score(human, judged, labels=values, sample_weight=weights)
    assert cohen_kappa(pairs, values, weights) == pytest.approx(reference, abs=1e-12)


def test_kappa_interval_matches_a_bootstrap_away_from_the_edges():
    rng = np.random.default_rng(7)
    pairs = random_pairs(rng, 400, VALUES, 0.7)
    low, high = kappa_interval(pairs, VALUES)
    codes = np.array([VALUES.index(h) * 3 + VALUES.index(j) for h, j in pairs])
    counts = np.stack([np.bincount(rng.choice(codes, size=len(codes)), minlength=9) for _ in range(4000)])
    cells = counts.reshape(-1, 3, 3) / len(codes)
    observed = np.trace(cells, axis1=1, axis2=2)
    chance = np.einsum("bi,bi->b", cells.sum(axis=2), cells.sum(axis=1))
    kappas = (observed - chance) / (1 - chance)
    # Away from perfect agreement the bootstrap is the wider of the two: its percentiles, to Monte-Carlo error.
    reference = np.quantile(kappas, [0.025, 0.975])
    assert low == pytest.approx(reference[0], abs=0.01)
    assert high == pytest.approx(reference[1], abs=0.01)


def test_kappa_interval_covers_the_true_kappa():
    # 120 reviews of a judge right 80% of the time over three equally common values: true kappa 0.7.
    joint = np.full((3, 3), 0.2 / 6)
    np.fill_diagonal(joint, 0.8 / 3)
    cells = np.random.default_rng(14).multinomial(120, joint.ravel(), size=400)
    covered = 0
    for counts in cells:
        pairs = [(VALUES[i // 3], VALUES[i % 3]) for i in range(9) for _ in range(counts[i])]
        low, high = kappa_interval(pairs, VALUES)
        covered += low <= 0.7 <= high
    # 400 trials: ±2.2 points of binomial noise around 95%.
    assert 0.92 <= covered / 400 <= 0.985, covered


def test_the_lower_bound_is_monotone_near_perfect_agreement():
    # 30 pairs over three values, k of them agreeing: more agreement never lowers the lower bound (issue #20: 30/30
    # gave 0.830 where 29/30 gave 0.854).
    lows = []
    for agree in range(24, 31):
        pairs = [(VALUES[i % 3], VALUES[i % 3]) for i in range(agree)]
        pairs += [(VALUES[i % 3], VALUES[(i + 1) % 3]) for i in range(30 - agree)]
        low, high = kappa_interval(pairs, VALUES)
        assert low <= cohen_kappa(pairs, VALUES) <= high
        lows.append(low)
    assert lows == sorted(lows), lows
    # 30/30 is not certainty: the Wilson lower bound of 30 agreements in 30, mapped through kappa at chance 1/3.
    assert lows[-1] == pytest.approx((30 / (30 + Z**2) - 1 / 3) / (2 / 3))


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (3, 10), (10, 10), (29, 30), (140, 200)])
def test_the_wilson_interval_solves_the_score_equation(successes, n):
    # Its bounds are the p where the score test sits on the edge: (p_hat - p)^2 = z^2 p (1 - p) / n, a quadratic.
    p_hat = successes / n
    roots = np.sort(np.roots([n + Z**2, -(2 * n * p_hat + Z**2), n * p_hat**2]).real)
    assert wilson(successes, n) == pytest.approx(tuple(roots), abs=1e-9)


@pytest.mark.parametrize("successes", [0, 1, 3, 7, 10])
def test_with_one_stratum_the_corrected_interval_is_wilsons(successes):
    # One stratum (a judge that abstained on everything) of 10^7 samples, 10 labels: the stratified score interval
    # reduces to Wilson's, the finite-population correction to nothing.
    values = [0] * successes + [1] * (10 - successes)
    estimate, low, high = design_estimate(
        stratum=[0] * 10, value=values, weight=[1e6] * 10, sizes=[10**7], known=[[0, 0]], labelled=[0], word=[-1]
    )
    assert estimate[0] == pytest.approx(successes / 10)
    assert (low[0], high[0]) == pytest.approx(wilson(successes, 10), abs=1e-6)


def test_a_stratum_whose_labels_agree_still_has_a_wide_interval():
    # Three strata, 2-3 labels each, every label agreeing with the judge: a normal interval would have width 0.
    estimate, low, high = design_estimate(
        stratum=[0, 0, 0, 1, 1, 1, 2, 2, 2, 2],
        value=[0, 0, 0, 1, 1, 1, 2, 2, 2, 2],
        weight=[40.0] * 6 + [25.0] * 4,
        sizes=[120, 120, 100],
        known=np.zeros((3, 3)),
        labelled=[0, 0, 0],
        word=[0, 1, 2],
    )
    assert list(estimate) == pytest.approx([120 / 340, 120 / 340, 100 / 340])
    assert np.all(high - low > 0.15), (low, high)
    assert np.all(low < estimate)
    assert np.all(estimate < high)


def _second_judge(per_design_stratum: int, group: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Judge A's queue drew `per_design_stratum` labels in each of its two strata (100 samples each), and A's stratum
    decides the human value outright; judge B's two strata take half of each of A's."""
    k = per_design_stratum
    return design_estimate(
        stratum=[0, 1] * k,
        value=[0] * k + [1] * k,
        weight=[100 / k] * (2 * k),
        sizes=[100, 100],
        known=np.zeros((2, 2)),
        labelled=[0, 0],
        word=[0, 1],
        group=([0] * k + [1] * k) if group else None,
    )


def test_a_second_judges_interval_counts_the_first_judges_strata():
    # B's strata hold half 0s and half 1s, but every label in A's stratum 0 says 0 and A's queue drew a fixed number
    # from each: B's interval is then A's own (two strata whose labels agree), not that of B's strata as
    # independent samples of 50/50 labels, which ignores the design and is half as wide again.
    k = SPREAD_LABELS
    design, ignored = _second_judge(k, group=True), _second_judge(k, group=False)
    own = design_estimate(
        stratum=[0] * k + [1] * k,
        value=[0] * k + [1] * k,
        weight=[100 / k] * (2 * k),
        sizes=[100, 100],
        known=np.zeros((2, 2)),
        labelled=[0, 0],
        word=[0, 1],
    )
    assert design[0] == pytest.approx([0.5, 0.5])
    assert np.concatenate(design) == pytest.approx(np.concatenate(own), abs=1e-9)
    assert np.all(ignored[2] - ignored[1] > 1.4 * (design[2] - design[1])), (design, ignored)  # 0.38 vs 0.26


def test_below_the_spread_labels_a_second_judge_falls_back_to_its_own_strata():
    # With fewer labels per design stratum the spread within it is not estimated: B's strata stand in for A's.
    design, ignored = _second_judge(SPREAD_LABELS - 1, group=True), _second_judge(SPREAD_LABELS - 1, group=False)
    for ours, theirs in zip(design, ignored, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_kappa_is_undefined_when_both_raters_use_one_value():
    pairs = [("positive", "positive")] * 40
    assert cohen_kappa(pairs, VALUES) is None
    assert kappa_interval(pairs, VALUES) is None
    assert cohen_kappa([], VALUES) is None


# --- the block -----------------------------------------------------------------------------------------------------

STRATA = {"positive": 200, "negative": 100, "neutral": 100, UNDECIDED: 80, "(failed)": 20}


def test_below_ten_labels_it_says_how_many_and_gives_no_numbers():
    block = human_review_block(values=VALUES, sample=queue_sample([("positive", "positive")] * 9, STRATA))
    assert "9 blind random labels of the 10" in block["message"]
    for key in ("judge_accuracy", "kappa", "fit_for_use", "corrected_distributions", "partial"):
        assert block[key] is None


def test_ten_labels_give_a_partial_estimate_with_how_many_would_halve_it():
    pairs = [("positive", "positive"), ("negative", "negative"), ("neutral", "neutral"), ("positive", "neutral")]
    pairs += [("negative", UNDECIDED), ("positive", UNDECIDED), ("neutral", "(failed)"), ("positive", "positive")]
    pairs += [("negative", "negative"), ("neutral", "neutral")]
    block = human_review_block(values=VALUES, sample=queue_sample(pairs, STRATA))
    assert block["message"] is None
    assert block["partial"] is True
    assert block["fit_for_use"] is None  # waits for MIN_REVIEWS paired labels
    assert block["kappa"] is not None
    assert (block["blind_random"], block["paired"], block["reviewed"]) == (10, 7, 10)
    # 4nN/(N + 3n) = 4*10*500/530 = 37.7 -> 38 labels in all, 28 more.
    assert block["labels_to_halve"] == labels_to_halve(labels=10, population=500) == 28
    assert math.fsum(block["corrected_distributions"].values()) == pytest.approx(100.0)
    for value in VALUES:
        low, high = block["corrected_ci"][value]
        assert high - low > 20  # wide, and honest about it


def test_labels_to_halve_follows_one_over_root_n_with_the_fpc():
    assert labels_to_halve(labels=30, population=10**9) == 90  # 4n in all, far from a census
    # Near a census the FPC does much of the work: 4nN/(N+3n) = 4*300*400/1300 = 369.2 -> 370, 70 more.
    assert labels_to_halve(labels=300, population=400) == 70
    assert labels_to_halve(labels=400, population=400) == 0


def test_a_census_gives_the_human_shares_exactly_whatever_chose_the_labels():
    strata = {"positive": 5, "negative": 3, "neutral": 0, UNDECIDED: 2}
    # Three drawn at random, the other seven hand-picked: every sample has a label, so the labels are the truth.
    random = [("positive", "positive"), ("neutral", "negative"), ("negative", UNDECIDED)]
    hand = [("positive", "positive")] * 3 + [("neutral", "positive"), ("negative", "negative")]
    hand += [("negative", "negative"), ("neutral", UNDECIDED)]
    block = human_review_block(values=VALUES, sample=queue_sample(random, strata, known=hand))
    assert block["census"] is True
    assert block["reviewed"] == 10
    assert block["corrected_distributions"] == {"positive": 40.0, "negative": 30.0, "neutral": 30.0}
    assert block["corrected_ci"] == {"positive": [40.0, 40.0], "negative": [30.0, 30.0], "neutral": [30.0, 30.0]}
    assert block["labels_to_halve"] is None
    assert block["notes"] == []  # a value no sample was judged is no unlabelled stratum


def test_hand_picked_labels_never_enter_as_random_ones():
    pairs = [(v, v) for v in VALUES for _ in range(10)] + [("negative", UNDECIDED)] * 5
    alone = human_review_block(values=VALUES, sample=queue_sample(pairs, STRATA))
    # Hand-picked labels that all say "neutral" on samples judged positive: counted, never estimated on.
    hand = [("neutral", "positive")] * 20
    both = human_review_block(values=VALUES, sample=queue_sample(pairs, STRATA, known=hand))
    assert both["extra_reviewed"] == 20
    for key in ("corrected_distributions", "corrected_ci", "kappa", "kappa_ci", "judge_accuracy"):
        assert both[key] == alone[key], key


def test_undecided_samples_count_in_the_corrected_distribution():
    # The judge abstains on 80 of 500 samples, and those are all negative: the classified part alone would say
    # negative is 20%, the run holds 36%.
    pairs = [(v, v) for v in VALUES for _ in range(10)] + [("negative", UNDECIDED)] * 10
    pairs += [("positive", "(failed)")] * 10
    block = human_review_block(values=VALUES, sample=queue_sample(pairs, STRATA))
    assert block["corrected_distributions"] == {"positive": 44.0, "negative": 36.0, "neutral": 20.0}
    assert (block["reviewed"], block["paired"]) == (50, 30)


def test_a_stratum_without_random_labels_widens_every_interval_and_says_so():
    pairs = [(v, v) for v in VALUES for _ in range(10)]
    block = human_review_block(values=VALUES, sample=queue_sample(pairs, STRATA))
    assert any("(undecided), (failed) (20.00% of the run)" in note for note in block["notes"])
    # Undecided and failed are split like the rest (40/20/20 of the 80% labelled), and could be anything: their 20%
    # of the run counts as one label's worth, so the interval is far wider than the same labels' on a run without
    # them (about +-10 points), though not the whole 20 points on top of each bound as the old worst case was.
    assert block["corrected_distributions"] == {"positive": 50.0, "negative": 25.0, "neutral": 25.0}
    without = human_review_block(values=VALUES, sample=queue_sample(pairs, {v: STRATA[v] for v in VALUES}))
    for value in VALUES:
        (low, high), (alone_low, alone_high) = block["corrected_ci"][value], without["corrected_ci"][value]
        assert high - low > alone_high - alone_low + 10, value
        assert low < alone_low - 5, value
        assert high > alone_high, value


def test_kappa_and_accuracy_are_weighted_to_the_run():
    # Equal allocation: 30 labels per judged value, but positive holds 4 times neutral's samples. The judge is right
    # on every positive and on half the neutral: the review sample says 83.3%, the run 1/(1+...) more.
    strata = {"positive": 400, "negative": 100, "neutral": 100}
    pairs = [("positive", "positive")] * 30 + [("negative", "negative")] * 30
    pairs += [("neutral", "neutral")] * 15 + [("positive", "neutral")] * 15
    block = human_review_block(values=VALUES, sample=queue_sample(pairs, strata))
    run_accuracy = (400 + 100 + 50) / 600
    assert block["judge_accuracy"] == pytest.approx(100 * run_accuracy, abs=0.005)
    weights = [strata[j] / 30 for _, j in pairs]
    assert block["kappa"] == pytest.approx(cohen_kappa(pairs, VALUES, weights), abs=1e-4)
    assert block["kappa"] != pytest.approx(cohen_kappa(pairs, VALUES), abs=1e-3)
    assert block["fit_for_use"] is (block["kappa_ci"][0] >= FIT_FOR_USE_KAPPA)


def test_a_fit_judge_is_fit_for_use_once_there_are_enough_labels():
    pairs = [(v, v) for v in VALUES for _ in range(MIN_REVIEWS // 3)]
    strata = dict.fromkeys(VALUES, 300)
    block = human_review_block(values=VALUES, sample=queue_sample(pairs, strata))
    assert (block["fit_for_use"], block["partial"]) == (True, False)
    fewer = human_review_block(values=VALUES, sample=queue_sample(pairs[:-1], strata))
    assert fewer["fit_for_use"] is None
    assert fewer["kappa_ci"][0] >= FIT_FOR_USE_KAPPA


def test_it_refuses_unknown_values_and_strata():
    with pytest.raises(ValueError, match="'mixed' is not one of the property's values"):
        human_review_block(values=VALUES, sample=queue_sample([("mixed", "positive")], STRATA))
    stray = ReviewSample(
        strata=STRATA, known={}, random=[("positive", "nowhere", "x", 0.5)], sampled={"x": 0.5}, reviewed=1
    )
    with pytest.raises(ValueError, match="stratum"):
        human_review_block(values=VALUES, sample=stray)
    with pytest.raises(ValueError, match="without repeats"):
        human_review_block(values=["a", "a"], sample=queue_sample([], {}))


# --- hypothesis: whatever the labels, the block is well formed ------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 300), min_size=5, max_size=5),
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 4)), min_size=0, max_size=80),
)
def test_the_block_is_always_well_formed(sizes, drawn):
    keys = [*VALUES, UNDECIDED, "(failed)"]
    strata = dict(zip(keys, sizes, strict=True))
    room: Counter[int] = Counter()
    pairs = []
    for human, stratum in drawn:
        if room[stratum] < sizes[stratum]:  # never more labels than samples in a stratum
            room[stratum] += 1
            pairs.append((VALUES[human], keys[stratum]))
    block = human_review_block(values=VALUES, sample=queue_sample(pairs, strata))
    assert block["blind_random"] == len(pairs)
    if len(pairs) < PARTIAL_REVIEWS and not block["census"]:
        assert block["corrected_distributions"] is None
        assert block["message"]
        return
    if block["kappa"] is not None:
        low, high = block["kappa_ci"]
        assert -1 <= low <= block["kappa"] <= high <= 1
    if sum(sizes) == 0:
        assert block["corrected_distributions"] is None
        return
    shares = block["corrected_distributions"]
    assert math.fsum(shares.values()) == pytest.approx(100.0, abs=1e-9)
    for value in VALUES:
        low, high = block["corrected_ci"][value]
        assert 0 <= low <= shares[value] <= high <= 100


def test_with_no_label_at_all_an_undecided_stratum_is_split_evenly() -> None:
    # Nothing labelled anywhere: an undecided stratum has no labelled part of the run to be split like, so its
    # samples are split evenly between the values, and the interval is the whole range.
    estimate, low, high = design_estimate(
        stratum=[], value=[], group=[], weight=[], sizes=[10], known=[[0, 0]], labelled=[0], word=[-1]
    )
    assert estimate.tolist() == [0.5, 0.5]
    assert low.tolist() == pytest.approx([0.0, 0.0], abs=1e-9)  # the score interval's bounds, to rounding
    assert high.tolist() == pytest.approx([1.0, 1.0], abs=1e-9)
