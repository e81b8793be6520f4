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


def bootstrap_percentiles(pairs: list[tuple[str, str]], rng: np.random.Generator) -> np.ndarray:
    """The 2.5% and 97.5% percentiles of kappa over 4,000 resamples of the pairs, computed here independently."""
    codes = np.array([VALUES.index(h) * 3 + VALUES.index(j) for h, j in pairs])
    counts = np.stack([np.bincount(rng.choice(codes, size=len(codes)), minlength=9) for _ in range(4000)])
    cells = counts.reshape(-1, 3, 3) / len(codes)
    observed = np.trace(cells, axis1=1, axis2=2)
    chance = np.einsum("bi,bi->b", cells.sum(axis=2), cells.sum(axis=1))
    kappas = (observed - chance) / (1 - chance)
    return np.quantile(kappas, [0.025, 0.975])


def test_kappa_interval_matches_a_bootstrap_away_from_the_edges():
    rng = np.random.default_rng(7)
    pairs = random_pairs(rng, 400, VALUES, 0.7)
    low, high = kappa_interval(pairs, VALUES)
    # Away from perfect agreement the bootstrap is the wider of the two: its percentiles, to Monte-Carlo error.
    reference = bootstrap_percentiles(pairs, rng)
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


def test_the_kappa_interval_is_the_wider_of_the_bootstrap_and_the_mapped_wilson_interval():
    # A judge no better than chance (45 pairs, the judged value independent of the human one: kappa 0): the Wilson
    # interval of the 15 agreements, mapped through kappa at chance 1/3, is not narrowed by the bootstrap's.
    pairs = [(VALUES[i % 3], VALUES[(i // 3) % 3]) for i in range(45)]
    low, high = kappa_interval(pairs, VALUES)
    wilson_low, wilson_high = wilson(15, 45)
    assert low <= (wilson_low - 1 / 3) / (2 / 3) + 1e-12
    assert high >= (wilson_high - 1 / 3) / (2 / 3) - 1e-12
    # Below, the bootstrap is the wider (-0.197 against -0.180): its 2.5% percentile, to Monte-Carlo error.
    assert low == pytest.approx(bootstrap_percentiles(pairs, np.random.default_rng(3))[0], abs=0.01)
    # 28 of 30 agreeing: (28/30)^30 = 12.6% of the resamples hold no disagreement (kappa 1), so the bootstrap's upper
    # bound is 1, above Wilson's mapped 0.97.
    pairs = [(VALUES[i % 3], VALUES[i % 3]) for i in range(28)] + [("positive", "negative"), ("negative", "neutral")]
    assert kappa_interval(pairs, VALUES)[1] == 1.0
    # A perfect judge on a skewed sample (28 positive, 2 negative): (28/30)^30 = 12.6% of the resamples hold only
    # positive pairs, whose kappa is 0/0; they count as the perfect agreement they are, so the lower bound is
    # Wilson's for 30 of 30 mapped at chance (28/30)^2 + (2/30)^2, not undefined.
    pairs = [("positive", "positive")] * 28 + [("negative", "negative")] * 2
    chance = (28 / 30) ** 2 + (2 / 30) ** 2
    assert kappa_interval(pairs, VALUES) == pytest.approx(((wilson(30, 30)[0] - chance) / (1 - chance), 1.0))


def test_the_kappa_interval_stays_within_minus_one_and_one():
    # Five pairs, three agreeing, both raters mostly positive (chance agreement 0.68): Wilson's lower bound of 3/5
    # mapped through kappa is -1.4, below any kappa there is; the interval stops at -1 (and at 1 above).
    pairs = [("positive", "positive")] * 3 + [("positive", "negative"), ("negative", "positive")]
    assert cohen_kappa(pairs, VALUES) == pytest.approx(-0.25)
    assert kappa_interval(pairs, VALUES) == (-1.0, 1.0)


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
    assert labels_to_halve(labels=1, population=1000) == 3
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
    assert block["judge_accuracy"] == 91.67  # (400 + 100 + 50) / 600, to the page's two decimals
    weights = [strata[j] / 30 for _, j in pairs]
    assert block["kappa"] == pytest.approx(cohen_kappa(pairs, VALUES, weights), abs=1e-4)
    assert block["kappa"] != pytest.approx(cohen_kappa(pairs, VALUES), abs=1e-3)
    # Its interval: the design's strata resampled within, to the page's four decimals.
    interval = kappa_interval(pairs, VALUES, weights, [sorted(strata).index(j) for _, j in pairs])
    assert block["kappa_ci"] == [round(interval[0], 4), round(interval[1], 4)]
    assert all(round(bound, 4) != round(bound, 5) for bound in interval)  # so a fifth decimal would show
    assert block["fit_for_use"] is (block["kappa_ci"][0] >= FIT_FOR_USE_KAPPA)
    # The confusion table counts the labels themselves (human rows, judged columns), unweighted.
    assert block["judge_confusion"] == {
        "positive": {"positive": 30, "negative": 0, "neutral": 15},
        "negative": {"positive": 0, "negative": 30, "neutral": 0},
        "neutral": {"positive": 0, "negative": 0, "neutral": 15},
    }


def test_a_fit_judge_is_fit_for_use_once_there_are_enough_labels():
    pairs = [(v, v) for v in VALUES for _ in range(MIN_REVIEWS // 3)]
    strata = dict.fromkeys(VALUES, 300)
    block = human_review_block(values=VALUES, sample=queue_sample(pairs, strata))
    assert (block["fit_for_use"], block["partial"]) == (True, False)
    fewer = human_review_block(values=VALUES, sample=queue_sample(pairs[:-1], strata))
    assert fewer["fit_for_use"] is None
    assert fewer["kappa_ci"][0] >= FIT_FOR_USE_KAPPA
    # 25 of 30 agreeing: kappa 0.75, but its lower bound below 0.6, so not fit (the upper bound does not decide).
    pairs = pairs[:25] + [(VALUES[i % 3], VALUES[(i + 1) % 3]) for i in range(5)]
    unsure = human_review_block(values=VALUES, sample=queue_sample(pairs, strata))
    assert unsure["kappa_ci"][0] < FIT_FOR_USE_KAPPA < unsure["kappa_ci"][1]
    assert (unsure["fit_for_use"], unsure["partial"]) == (False, False)


def test_it_refuses_unknown_values_and_strata():
    with pytest.raises(ValueError, match="'mixed' is not one of the property's values"):
        human_review_block(values=VALUES, sample=queue_sample([("mixed", "positive")], STRATA))
    stray = ReviewSample(
        strata=STRATA, known={}, random=[("positive", "nowhere", "x", 0.5)], sampled={"x": 0.5}, reviewed=1
    )
    with pytest.raises(ValueError, match="stratum"):
        human_review_block(values=VALUES, sample=stray)
    for probability in (0.0, 1.5):  # 1/0 would be a 500; a probability above 1 a weight below 1
        drawn = ReviewSample(
            strata=STRATA, known={}, random=[("positive", "positive", "x", probability)], sampled={"x": 0.5}, reviewed=1
        )
        with pytest.raises(ValueError, match="probability"):
            human_review_block(values=VALUES, sample=drawn)
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


# --- properties every interval keeps (issue #27's mutation round on this module) ------------------------------------


def random_design(seed: int, values: int = 2, *, second_judge: bool = False, uneven: bool = False) -> dict:
    """A run of 2-3 judged strata and an undecided one, its blind random labels drawn within design strata (the
    target's own, or another judge's that cuts across them), one stratum labelled in full by hand, the undecided
    one (on the target's queue) with no label; odd seeds draw at least SPREAD_LABELS per design stratum (the spread
    of a second judge's cells is estimated), even ones 2-13; `uneven`: a client's inclusion probabilities, varying
    within a stratum."""
    rng = np.random.default_rng(seed)
    strata = int(rng.integers(3, 5))
    size = int(rng.integers(60, 160))
    judged = rng.integers(0, strata, size=size)
    truth = np.where(rng.random(size) < 0.6, judged % values, rng.integers(0, values, size=size))
    # Another judge's queue: twice as many design strata, each cutting across two of the target's.
    design = (
        (judged + (rng.random(size) < 0.5)) % strata + strata * (rng.random(size) < 0.3) if second_judge else judged
    )
    chosen: list[int] = []
    for g in range(int(design.max()) + 1):
        members = np.flatnonzero(design == g)
        # The last design stratum stays unlabelled (its samples judged there have no label), unless it is empty.
        wanted = int(rng.integers(SPREAD_LABELS, 20) if seed % 2 else rng.integers(2, 14))
        take = 0 if g == strata - 1 and not second_judge else min(len(members), wanted)
        chosen += list(rng.choice(members, size=take, replace=False))
    picked = np.array(sorted(chosen), dtype=np.int64)
    drawn, population = np.bincount(design[picked]), np.bincount(design)
    probability = drawn[design[picked]] / population[design[picked]]
    if uneven:
        probability = probability * rng.uniform(0.5, 1.0, size=len(picked))
    sizes = np.bincount(judged, minlength=strata)
    known = np.zeros((strata, values))
    np.add.at(known, (judged[picked], truth[picked]), 1)
    complete = int(rng.integers(0, strata - 1))  # labelled in full by hand
    known[complete] = np.bincount(truth[judged == complete], minlength=values)
    words = [int(k) % values if k < strata - 1 else -1 for k in range(strata)]  # the last: undecided
    return {
        "stratum": judged[picked],
        "value": truth[picked],
        "weight": 1.0 / probability,
        "sizes": sizes,
        "known": known,
        "labelled": known.sum(axis=1),
        "word": words,
        "group": design[picked] if second_judge else None,
    }


CONFIGURATIONS = [
    pytest.param(seed, second, uneven, id=f"{seed}-{'B' if second else 'A'}{'-uneven' if uneven else ''}")
    for seed in range(4)
    for second in (False, True)
    for uneven in (False, True)
]


@pytest.mark.parametrize(("seed", "second_judge", "uneven"), CONFIGURATIONS)
def test_with_two_values_the_interval_of_one_mirrors_the_other(seed, second_judge, uneven):
    # With two values the share of one is 1 minus the share of the other, so its interval is the other's mirrored:
    # nothing in the method may favour a value (its variance, the unlabelled strata's pseudo-label, the residuals of
    # a second judge's cells, the search for each end).
    estimate, low, high = design_estimate(**random_design(seed, second_judge=second_judge, uneven=uneven))
    assert estimate[0] == pytest.approx(1 - estimate[1], abs=1e-12)
    assert low[0] == pytest.approx(1 - high[1], abs=1e-9)
    assert high[0] == pytest.approx(1 - low[1], abs=1e-9)
    assert np.all(low < estimate), (low, estimate)
    assert np.all(estimate < high), (estimate, high)


@pytest.mark.parametrize(("seed", "second_judge", "uneven"), CONFIGURATIONS)
def test_relabelling_values_and_reordering_strata_or_labels_changes_nothing(seed, second_judge, uneven):
    # Three values: the names' order, the strata's order and the labels' order are bookkeeping; the figures the page
    # shows for each value must follow the value, not its position.
    inputs = random_design(seed, values=3, second_judge=second_judge, uneven=uneven)
    estimate, low, high = design_estimate(**inputs)
    rng = np.random.default_rng(seed)
    values, strata = rng.permutation(3), rng.permutation(len(inputs["sizes"]))
    order = rng.permutation(len(inputs["value"]))
    designs = rng.permutation(int(inputs["stratum"].max() if inputs["group"] is None else inputs["group"].max()) + 1)
    new_value, new_stratum = np.argsort(values), np.argsort(strata)  # old index -> new index
    moved = design_estimate(
        stratum=new_stratum[inputs["stratum"]][order],
        value=new_value[inputs["value"]][order],
        weight=inputs["weight"][order],
        sizes=inputs["sizes"][strata],
        known=inputs["known"][strata][:, values],
        labelled=inputs["labelled"][strata],
        word=[int(new_value[inputs["word"][k]]) if inputs["word"][k] >= 0 else -1 for k in strata],
        group=None if inputs["group"] is None else np.argsort(designs)[inputs["group"]][order],
    )
    for before, after in zip((estimate, low, high), moved, strict=True):
        assert after == pytest.approx(before[values], abs=1e-9)


def test_trials_stacked_on_a_leading_axis_give_each_trial_its_own_answer():
    # The simulation (benchmarks/estimator_coverage.py) runs 1,000 trials in one call: each must come out as if alone.
    trials = [random_design(seed, values=3, second_judge=True) for seed in (11, 11)]
    rng = np.random.default_rng(5)
    trials[1]["value"] = rng.integers(0, 3, size=len(trials[1]["value"]))  # the same draw, other labels
    trials[1]["weight"] = trials[1]["weight"] * rng.uniform(0.5, 1.0, size=len(trials[1]["weight"]))
    trials[1]["sizes"] = trials[1]["sizes"] + np.arange(len(trials[1]["sizes"]))
    stacked = design_estimate(
        **{key: np.stack([t[key] for t in trials]) for key in ("stratum", "value", "weight", "sizes", "known")},
        labelled=np.stack([t["labelled"] for t in trials]),
        word=trials[0]["word"],
        group=np.stack([t["group"] for t in trials]),
    )
    for k, trial in enumerate(trials):
        alone = design_estimate(**trial)
        for together, single in zip(stacked, alone, strict=True):
            assert together[k] == pytest.approx(single, abs=1e-9)


@pytest.mark.parametrize("word", [0, -1])
def test_the_interval_narrows_to_nothing_as_the_labels_reach_every_sample(word):
    # One stratum of 40 samples (a judged value, or undecided; beside it an empty one), labels half 0 and half 1: the
    # interval is for these 40 samples, so the more of them are labelled the less is left to guess (the
    # finite-population correction), below SPREAD_LABELS labels and from it; the same labels in a run of 10^7 samples
    # keep their full width.
    def width(labels: int, population: int) -> float:
        values = [k % 2 for k in range(labels)]
        known = [[labels - sum(values), sum(values)], [0, 0]]
        estimate, low, high = design_estimate(
            stratum=[0] * labels,
            value=values,
            weight=[population / labels] * labels,
            sizes=[population, 0],
            known=known,
            labelled=[labels, 0],
            word=[word, 1],
        )
        assert low[0] <= estimate[0] <= high[0]
        return float(high[0] - low[0])

    labels = [4, 8, 12, 20, 30, 39]
    for n in labels:  # far from a census, Wilson's interval of the labels (as with 10 labels above)
        wilson_low, wilson_high = wilson(n // 2, n)
        assert width(n, 10**7) == pytest.approx(wilson_high - wilson_low, abs=1e-6)
    ratios = [width(n, 40) / width(n, 10**7) for n in labels]
    assert ratios == sorted(ratios, reverse=True), ratios
    assert ratios[0] < 1
    assert ratios[-1] < 0.35, ratios  # 1 of 40 samples left unlabelled: about sqrt(1/40) = 0.16
    assert width(40, 40) == 0  # a census


def test_a_run_without_samples_is_no_census_and_waits_for_labels():
    block = human_review_block(values=VALUES, sample=queue_sample([], dict.fromkeys(STRATA, 0)))
    assert block["census"] is False
    assert "0 blind random labels of the 10" in block["message"]
    assert block["corrected_distributions"] is None


def test_a_census_with_strata_of_one_sample_is_exact():
    # A run of one sample, labelled: its label is the whole distribution. And a stratum holding a single sample,
    # labelled by hand with another value than the judge's (no random label there): exact too, not at the judge's word.
    one = human_review_block(values=VALUES, sample=queue_sample([("negative", "positive")], {"positive": 1}))
    assert (one["census"], one["corrected_distributions"]) == (
        True,
        {"positive": 0.0, "negative": 100.0, "neutral": 0.0},
    )
    assert one["corrected_ci"]["negative"] == [100.0, 100.0]
    strata = {"positive": 3, "negative": 1, UNDECIDED: 1}
    random = [("positive", "positive"), ("positive", "positive")]
    hand = [("negative", "positive"), ("neutral", "negative"), ("neutral", UNDECIDED)]
    block = human_review_block(values=VALUES, sample=queue_sample(random, strata, known=hand))
    assert block["corrected_distributions"] == {"positive": 40.0, "negative": 20.0, "neutral": 40.0}
    assert block["corrected_ci"] == {"positive": [40.0, 40.0], "negative": [20.0, 20.0], "neutral": [40.0, 40.0]}
    assert not any("no blind random label" in note for note in block["notes"])  # labelled in full by hand


def test_a_label_drawn_with_certainty_corrects_its_stratum():
    # A client's design that included a sample with probability 1 (weight 1): its label still speaks for its
    # stratum, which is then not taken at the judge's word.
    estimate, low, high = design_estimate(
        stratum=[0, 1, 1],
        value=[1, 1, 0],
        weight=[1.0, 2.0, 2.0],
        sizes=[5, 4],
        known=[[0, 1], [1, 1]],
        labelled=[1, 2],
        word=[0, 1],
    )
    assert estimate.tolist() == pytest.approx([2 / 9, 7 / 9])  # stratum 0 all 1 as its label says, stratum 1 half
    assert np.all(low <= estimate)
    assert np.all(estimate <= high)


def test_one_sample_left_unlabelled_leaves_an_interval():
    # Ten of eleven samples labelled (the judged stratum in full), the one undecided sample not: the corrected shares
    # are not exact, so no value's interval may have zero width.
    strata = {"positive": 10, UNDECIDED: 1}
    drawn = [("positive", "positive")] * 6 + [("negative", "positive")] * 4
    block = human_review_block(values=VALUES, sample=queue_sample(drawn, strata))
    assert block["census"] is False
    assert block["notes"][0].startswith("no blind random label yet judged (undecided) (9.09% of the run)")
    estimate, low, high = design_estimate(
        stratum=[], value=[], weight=[], sizes=[10, 1], known=[[6, 4, 0], [0, 0, 0]], labelled=[10, 0], word=[0, -1]
    )
    assert estimate.tolist() == pytest.approx([6 / 11 + 0.6 / 11, 4 / 11 + 0.4 / 11, 0.0])
    # The undecided sample may or may not be positive (or negative): room on both sides of the estimate.
    assert np.all(low[:2] < estimate[:2] - 0.02), (low, estimate)
    assert np.all(estimate[:2] + 0.02 < high[:2]), (estimate, high)
    # The page shows these bounds as percentages rounded outwards.
    for i, value in enumerate(VALUES[:2]):
        assert block["corrected_ci"][value] == [math.floor(10000 * low[i]) / 100, math.ceil(10000 * high[i]) / 100]


def test_near_a_census_the_blocks_interval_is_narrow():
    # 19 of 20 samples labelled at random: the interval is a fraction of the same labels' in a run of 10^6 samples.
    drawn = [("positive", "positive")] * 10 + [("negative", "positive")] * 9
    widths = []
    for size in (20, 10**6):
        block = human_review_block(values=VALUES, sample=queue_sample(drawn, {"positive": size}))
        low, high = block["corrected_ci"]["positive"]
        widths.append(high - low)
    assert widths[0] < 0.35 * widths[1], widths  # about sqrt(1/20) = 0.22


@pytest.mark.parametrize("judged", [0, 1])
def test_an_unlabelled_judged_stratum_is_taken_at_its_word(judged):
    # Two judged strata of 10, labels only in the other one (which they say is half and half): the unlabelled one
    # counts as the value it was judged, whichever value that is (the first one included), not split like the rest.
    other = 1 - judged
    estimate, low, high = design_estimate(
        stratum=[other] * 4,
        value=[0, 1, 0, 1],
        weight=[2.5] * 4,
        sizes=[10, 10],
        known=np.zeros((2, 2)),
        labelled=[0, 0],
        word=[0, 1],
    )
    assert estimate[judged] == pytest.approx(0.75)
    assert np.all(low < estimate)
    assert np.all(estimate < high)
