"""Human review statistics (issues #14, #20): judge-human agreement and the corrected distribution. Pure.

One module over 400 lines on purpose: the estimator, its variance, kappa's interval and the block that combines
them are one method, documented once here; split, the docstring's formulas would sit apart from their code.

What feeds the numbers. Only **blind random** labels estimate: the sample was drawn at random by a known design and
the reviewer saw neither the judged nor the assigned value before answering (a reviewer shown a model's answer
agrees with it more). A design is the review queue of one evaluation, which draws at random within that
evaluation's strata (its judged values, plus "(undecided)" and "(failed)"), or a client that says it drew at random
through the API. A label's inclusion probability is n_h / N_h for its design's stratum h (n_h distinct samples of
the design labelled there, N_h samples of the run in that stratum), or the one the client gave. Hand-picked,
disagreement-queue, non-random API and non-blind labels never enter as random ones; they only count where they
complete a stratum (a label is the truth for its sample, whatever chose it).

The corrected distribution is of every one of the run's N samples. The target evaluation (the judge being
corrected) splits them into strata j, its judged values plus undecided and failed, of known sizes N_j (q_j =
N_j/N). Within each stratum the true shares are estimated from the blind random labels with weights w_i = 1/π_i
(Hájek ratio), then post-stratified:

    p_v = Σ_j q_j · r(v|j),    r(v|j) = Σ_{i∈j} w_i·[y_i = v] / Σ_{i∈j} w_i

Each r(v|j) is a ratio of Horvitz-Thompson totals, so it is (nearly, to O(1/n)) unbiased whichever design drew the
labels: labels drawn within judge A's values stay unbiased for judge B of the same run, since B's strata are just
domains of A's sample. When the review queue of the target itself drew them, w is constant within j and this is
the classic calibration estimator (Cochran 1977, §12.2). A stratum whose every sample carries a human label (any
selection) is known exactly: r(v|j) is its labelled share with no variance, so a census gives the human-labelled
shares exactly, with an interval of zero width.

The interval is for these N samples, not for the process that made them: the question a reviewer asks is "what is
in this run", and only a finite-population target lets a census answer it exactly. So q_j is known (no variance
term for it; the process-level term (1/N)·Σ_j q_j (r(v|j) − p_v)² would make a census interval wider than zero),
and every design stratum carries a finite-population correction. The variance is the design's own, by
linearisation (Särndal, Swensson & Wretman 1992, §5.7): with u_i = w_i · (q_j/Ŵ_j)·([y_i = v] − r(v|j)) for label
i in target stratum j (Ŵ_j = Σ_{i∈j} w_i),

    Var(p_v) = Σ_h (1 − f_h) · n_h/(n_h − 1) · Σ_{i∈h} (u_i − ū_h)²        (h: the design's strata, f_h = n_h/N_h)

which for the target's own queue is Σ_j q_j² (1 − f_j) s_j²/n_j. It is right in large samples but has no variance
at all for a stratum whose few labels agree (2-3 labels per stratum at 10 labels), and runs short for a second
judge with small domains. The pseudo-count variance, Σ_j q_j² (1 − f_j) r~(1 − r~)/n~_j with r~ = (r·n~_j + c)/
(n~_j + 2c) and n~_j the stratum's effective (Kish) label count, errs the other way (it ignores the design's
stratification). The interval takes the mean of the two, centred on the smoothed shares (Agresti-Coull); the
unsmoothed p_v is the estimate. The mean and c = 0.3 were chosen by simulation, not derived: alone, the design
variance covered 59-82% at 10 labels and 89-93% at 30 for a second judge, the pseudo-count one 96-99.9% at 10 and
up to 99.1% at 30; the mean covers 93-97% at 30-380 labels for the queue's own judge. tests/evaluations/
test_estimator.py simulates it (README's human-review section has the coverage table).

A stratum with samples but no blind random label cannot be corrected: a judged value is taken at its word, an
undecided or failed stratum is split like the labelled strata, and every interval is widened by its whole share
(the worst case). The queue draws from every stratum first, so this happens only with a handful of labels.

Several designs on one run: each is unbiased on its own, but the union of two is not a sample with known inclusion
probabilities (a sample could have been drawn by either queue), so exactly one design feeds the estimates of a
property: the one with the most blind random labels on it (ties: the target's own queue first). The rule looks at
how many labels each design has, never at what they say, so the chosen design's estimate stays unbiased.

Kappa and judge accuracy use the chosen design's blind random labels where the target judge decided a value
("paired"), weighted by 1/π to the run (not to the equal-allocation review sample, which over-represents rare
judged values). Kappa's interval is the wider of a stratified bootstrap (percentile, resampling within each design
stratum, so the uncertainty of chance agreement counts) and the Wilson interval of the observed agreement (with
the Kish effective sample size) mapped through kappa's formula at the observed chance agreement. The bootstrap
collapses to a point at perfect agreement; the Wilson bound does not and moves monotonically with agreement, so
30/30 agreements never get a lower bound below 29/30's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from runs.distributions import rounded_shares

# From 10 blind random labels the block shows a running estimate with its (wide) interval: a reviewer sees where the
# numbers are heading. With the usual 3-5 strata that is 2-3 labels per stratum; the simulation's 10-label case
# shows the intervals still cover.
PARTIAL_REVIEWS: int = 10

# The "fit for use" verdict waits for 30 paired labels. The kappa interval rests on a bootstrap of the review
# sample; below 30 a kappa interval spans most of [-1, 1] and the verdict would be noise.
MIN_REVIEWS: int = 30

# Landis & Koch (1977) call kappa 0.61-0.80 "substantial" and above "almost perfect" agreement. The judge is fit for
# use when the 95% interval's lower bound reaches 0.6: agreement is then at least substantial with 97.5% confidence
# (one-sided), not merely by luck of a small review sample.
FIT_FOR_USE_KAPPA: float = 0.6

Z95 = 1.959963984540054  # two-sided 95%
PSEUDO_COUNT = 0.3  # added to each (stratum, value) share for the interval's centre and smoothed variance
BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_SEED = 20  # fixed: the page shows the same interval for the same labels on every load

METHOD = (
    "corrected: design-weighted calibration over every sample of the run, p_v = sum_j q_j r(v|j), q_j = the "
    "target judge's share of stratum j (its judged values, undecided and failed), r(v|j) = 1/pi-weighted human "
    "share of v among the blind random labels judged j (exact where every sample of j is labelled); 95% intervals "
    "for these N samples: mean of the linearised design variance and the add-0.3 pseudo-count variance, both with "
    "a finite-population correction; kappa and judge accuracy: blind random labels weighted to the run, interval the wider "
    "of a stratified bootstrap and a Wilson interval mapped through kappa; other labels never estimate"
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --- the corrected distribution ---------------------------------------------------------------------------------


def design_estimate(
    *,
    stratum: npt.ArrayLike,
    value: npt.ArrayLike,
    group: npt.ArrayLike,
    weight: npt.ArrayLike,
    sampled: npt.ArrayLike,
    sizes: npt.ArrayLike,
    known: npt.ArrayLike,
    labelled: npt.ArrayLike,
    word: Sequence[int],
    z: float = Z95,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Corrected shares of every sample and their 95% interval, as fractions; vectorised over leading trial axes.

    Per blind random label i (arrays `[..., n]`): `stratum` (the target's stratum index j), `value` (the human
    value index v), `group` (its design stratum index h) and `weight` (1/π). `sampled[..., h]`: the design
    stratum's sampling fraction f_h (1 at a census of it). `sizes[..., j]`: N_j. `known[..., j, v]` and
    `labelled[..., j]`: human label counts and labelled samples per target stratum, over every label of any
    selection (used where labelled = N_j). `word[j]`: the value index stratum j stands for, -1 for undecided,
    failed or a value outside the spec. Returns (estimate, low, high), each `[..., v]`.
    """
    s = np.asarray(stratum, dtype=np.int64)
    y = np.asarray(value, dtype=np.int64)
    g = np.asarray(group, dtype=np.int64)
    w = np.asarray(weight, dtype=np.float64)
    f = np.asarray(sampled, dtype=np.float64)
    big_n = np.asarray(sizes, dtype=np.float64)
    exact = np.asarray(known, dtype=np.float64)
    done = np.asarray(labelled, dtype=np.float64)
    strata, values, groups = big_n.shape[-1], exact.shape[-1], f.shape[-1]
    in_j = (s[..., None] == np.arange(strata)).astype(np.float64)  # [..., n, j]
    is_v = (y[..., None] == np.arange(values)).astype(np.float64)  # [..., n, v]
    in_h = (g[..., None] == np.arange(groups)).astype(np.float64)  # [..., n, h]
    q = big_n / big_n.sum(axis=-1, keepdims=True)
    # 1. Per target stratum: exact where every sample is labelled, else the weighted (Hájek) human shares.
    totals = np.einsum("...n,...nj,...nv->...jv", w, in_j, is_v)
    mass = totals.sum(axis=-1)  # Ŵ_j
    count = in_j.sum(axis=-2)
    complete = (done >= big_n) & (big_n > 0)
    seen = (mass > 0) & ~complete
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = totals / mass[..., None]
        full = exact / big_n[..., None]
        kish = mass**2 / np.einsum("...n,...nj->...j", w**2, in_j)
    # An unlabelled stratum: a judged value at its word, anything else split like the labelled part of the run.
    labelled_part = np.where(seen | complete, q, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = labelled_part[..., None] * np.where((seen | complete)[..., None], np.nan_to_num(weighted), 0.0)
        pooled = np.where(complete[..., None], labelled_part[..., None] * np.nan_to_num(full), pooled).sum(axis=-2)
        pooled = pooled / pooled.sum(axis=-1, keepdims=True)
    pooled = np.where(np.isfinite(pooled), pooled, 1.0 / values)
    words = np.array([np.eye(values)[k] if k >= 0 else np.full(values, np.nan) for k in word]).reshape(strata, values)
    guess = np.where(np.isnan(words), pooled[..., None, :], words)
    share = np.where(complete[..., None], np.nan_to_num(full), np.where(seen[..., None], weighted, guess))
    estimate = (q[..., None] * share).sum(axis=-2)
    # 2. Linearised design variance with each design stratum's finite-population correction.
    scale = np.where(seen, q / np.where(mass > 0, mass, 1.0), 0.0)  # q_j / Ŵ_j, 0 where nothing is estimated
    label_scale = np.einsum("...nj,...j->...n", in_j, scale)
    label_share = np.einsum("...nj,...jv->...nv", in_j, np.nan_to_num(share))
    u = w[..., None] * label_scale[..., None] * (is_v - label_share)  # [..., n, v]
    m = in_h.sum(axis=-2)  # labels per design stratum
    first = np.einsum("...nh,...nv->...hv", in_h, u)
    second = np.einsum("...nh,...nv->...hv", in_h, u**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(m[..., None] > 1, (second - first**2 / m[..., None]) * m[..., None] / (m[..., None] - 1), 0.0)
    linear = ((1.0 - f)[..., None] * spread).sum(axis=-2)
    # 3. The pseudo-count floor and centre: a stratum whose labels all agree still has sampling error.
    n_eff = np.where(seen, kish, 1.0)[..., None]
    smoothed = (np.nan_to_num(weighted) * n_eff + PSEUDO_COUNT) / (n_eff + 2 * PSEUDO_COUNT)
    # The centre leaves the unlabelled strata out (share 0); step 4 adds their whole share on top.
    smooth = np.where(seen[..., None], smoothed, np.where(complete[..., None], share, 0.0))
    fraction = np.where(seen, np.minimum(1.0, count / np.where(big_n > 0, big_n, 1.0)), 1.0)[..., None]
    floor = (np.where(seen, q, 0.0)[..., None] ** 2 * (1 - fraction) * smooth * (1 - smooth) / n_eff).sum(axis=-2)
    centre = (q[..., None] * smooth).sum(axis=-2)
    half = z * np.sqrt((linear + floor) / 2)
    # 4. The unlabelled strata could be anything: their whole share goes on top of every interval.
    unknown = np.where(~seen & ~complete & (big_n > 0), q, 0.0).sum(axis=-1, keepdims=True)
    low = np.clip(np.minimum(centre - half, estimate), 0.0, 1.0)
    high = np.clip(np.maximum(centre + half + unknown, estimate), 0.0, 1.0)
    return estimate, low, high


def labels_to_halve(*, labels: int, population: int) -> int:
    """About how many more blind random labels would halve the interval's width.

    The width shrinks as sqrt((1 − n/N)/n) (the usual 1/√n, with the finite-population correction): halving it
    takes m labels with 1/m − 1/N = (1/n − 1/N)/4, m = 4nN/(N + 3n). Far from a census that is 4n, about 3n more.
    """
    if labels <= 0 or labels >= population:
        return 0
    return max(0, math.ceil(4 * labels * population / (population + 3 * labels)) - labels)


# --- agreement ------------------------------------------------------------------------------------------------------


def confusion(pairs: Sequence[tuple[str, str]], values: Sequence[str], weights: Sequence[float] = ()) -> FloatArray:
    """matrix[i, j] = (weighted) pairs whose first element is values[i] and second values[j]; ValueError on
    unknown values."""
    index = {value: i for i, value in enumerate(values)}
    matrix = np.zeros((len(values), len(values)), dtype=np.float64)
    for k, (first, second) in enumerate(pairs):
        for value in (first, second):
            if value not in index:
                raise ValueError(f"{value!r} is not one of the property's values")
        matrix[index[first], index[second]] += weights[k] if weights else 1.0
    return matrix


def _kappa_parts(matrix: FloatArray) -> tuple[float, float, float] | None:
    """(kappa, observed agreement, chance agreement) of a (weighted) count matrix; None when kappa is undefined."""
    n = float(matrix.sum())
    if n == 0:
        return None
    p = matrix / n
    observed = float(np.trace(p))
    chance = float(p.sum(axis=1) @ p.sum(axis=0))
    # Chance agreement is 1 only when both raters put every sample in the same single value: kappa is 0/0 there.
    if chance >= 1 - 1e-12:
        return None
    return (observed - chance) / (1 - chance), observed, chance


def cohen_kappa(pairs: Sequence[tuple[str, str]], values: Sequence[str], weights: Sequence[float] = ()) -> float | None:
    """Cohen's kappa of (human, judged) pairs, weighted when `weights` are given; None when undefined."""
    parts = _kappa_parts(confusion(pairs, values, weights))
    return None if parts is None else parts[0]


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (n may be an effective, non-integer sample size)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def kappa_interval(
    pairs: Sequence[tuple[str, str]],
    values: Sequence[str],
    weights: Sequence[float] = (),
    groups: Sequence[int] = (),
    z: float = Z95,
) -> tuple[float, float] | None:
    """95% interval of (weighted) Cohen's kappa: the wider of a stratified percentile bootstrap and the Wilson
    interval of the observed agreement mapped through kappa (module docstring). `groups`: each pair's design
    stratum, resampled within. Clipped to [-1, 1]; None when kappa is undefined."""
    w = np.asarray(weights if weights else [1.0] * len(pairs), dtype=np.float64)
    matrix = confusion(pairs, values, list(w))
    parts = _kappa_parts(matrix)
    if parts is None:
        return None
    kappa, observed, chance = parts
    size = len(values)
    index = {value: i for i, value in enumerate(values)}
    cells = np.array([index[a] * size + index[b] for a, b in pairs], dtype=np.int64)
    g = np.asarray(groups if groups else [0] * len(pairs), dtype=np.int64)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    tables = np.zeros((BOOTSTRAP_REPLICATES, size * size))
    for h in np.unique(g):
        members = np.flatnonzero(g == h)
        draw = members[rng.integers(0, len(members), size=(BOOTSTRAP_REPLICATES, len(members)))]
        flat = (np.arange(BOOTSTRAP_REPLICATES)[:, None] * size * size + cells[draw]).ravel()
        tables += np.bincount(flat, weights=w[draw].ravel(), minlength=tables.size).reshape(tables.shape)
    p = tables.reshape(-1, size, size) / tables.sum(axis=1)[:, None, None]
    boot_observed = np.trace(p, axis1=1, axis2=2)
    boot_chance = np.einsum("bi,bi->b", p.sum(axis=2), p.sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (boot_observed - boot_chance) / (1 - boot_chance)
    # A replicate whose chance agreement is 1 (every pair one value) has no kappa: it agrees perfectly, count it 1.
    boot = np.where(boot_chance >= 1 - 1e-12, 1.0, boot)
    boot_low, boot_high = np.quantile(boot, [0.025, 0.975])
    effective = float(w.sum() ** 2 / (w**2).sum())
    wilson_low, wilson_high = wilson(observed * effective, effective, z)
    low = min(float(boot_low), (wilson_low - chance) / (1 - chance))
    high = max(float(boot_high), (wilson_high - chance) / (1 - chance))
    return max(-1.0, min(low, kappa)), min(1.0, max(high, kappa))


# --- the API block --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewSample:
    """One property's human labels as the estimator reads them, for one target evaluation.

    `strata`: stratum key → N_j, the target's strata over every sample of the run (judged values, undecided,
    failed). `known`: stratum key → human value → labelled samples (every label, any selection). `random`: the
    chosen design's blind random labels, as (human value, target stratum key, design stratum key, inclusion
    probability). `sampled`: design stratum key → sampling fraction f_h. `reviewed`: samples with any label.
    `design`: which design the random labels came from, in words (None when there are none).
    """

    strata: Mapping[str, int]
    known: Mapping[str, Mapping[str, int]]
    random: Sequence[tuple[str, str, str, float]]
    sampled: Mapping[str, float]
    reviewed: int
    design: str | None = None


def _check(values: Sequence[str], sample: ReviewSample) -> None:
    if not values or len(set(values)) != len(values):
        raise ValueError("values must be a non-empty list without repeats")
    for key, count in sample.strata.items():
        if count < 0:
            raise ValueError(f"negative count for {key!r}")
    labels = [v for counts in sample.known.values() for v in counts] + [human for human, *_ in sample.random]
    for value in labels:
        if value not in values:
            raise ValueError(f"{value!r} is not one of the property's values")
    for _, stratum, group, probability in sample.random:
        if stratum not in sample.strata or group not in sample.sampled or not 0 < probability <= 1:
            raise ValueError(f"a random label's stratum {stratum!r}, group {group!r} or probability is unknown")


def human_review_block(*, values: Sequence[str], sample: ReviewSample) -> dict[str, Any]:
    """The statistics endpoint's `human_review` block for one property (issues #14, #20).

    Every key is always present. From PARTIAL_REVIEWS blind random labels (or a census) the corrected distribution
    and, where the judge decided some of them, kappa and judge accuracy are shown, `partial` true below MIN_REVIEWS
    paired labels; `fit_for_use` waits for MIN_REVIEWS. Shares and intervals are percentages (0-100, 2 decimals; the
    shares sum to exactly 100); kappa and its interval are on kappa's own scale, -1 to 1.
    """
    _check(values, sample)
    population = sum(sample.strata.values())
    random_count = len(sample.random)
    census = population > 0 and sample.reviewed >= population
    value_set = set(values)
    paired = [(human, stratum, group, p) for human, stratum, group, p in sample.random if stratum in value_set]
    block: dict[str, Any] = {
        "reviewed": sample.reviewed,
        "blind_random": random_count,
        "paired": len(paired),
        "extra_reviewed": sample.reviewed - random_count,
        "design": sample.design,
        "minimum": MIN_REVIEWS,
        "partial_minimum": PARTIAL_REVIEWS,
        "partial": None,
        "census": census,
        "message": None,
        "judge_accuracy": None,
        "kappa": None,
        "kappa_ci": None,
        "fit_for_use": None,
        "judge_confusion": None,
        "corrected_distributions": None,
        "corrected_ci": None,
        "labels_to_halve": None,
        "method": METHOD,
        "notes": [],
    }
    if random_count < PARTIAL_REVIEWS and not census:
        block["message"] = (
            f"{random_count} blind random labels of the {PARTIAL_REVIEWS} needed for a first estimate "
            f"({MIN_REVIEWS} for the fit-for-use verdict)."
        )
        return block
    notes: list[str] = block["notes"]
    block["partial"] = len(paired) < MIN_REVIEWS
    if paired:
        _agreement(block, values, paired)
    if population == 0:
        notes.append("the run has no samples: no corrected distribution.")
        return block
    keys = list(sample.strata)
    groups = sorted(sample.sampled)
    estimate, low, high = design_estimate(
        stratum=[keys.index(s) for _, s, _, _ in sample.random],
        value=[values.index(v) for v, *_ in sample.random],
        group=[groups.index(h) for _, _, h, _ in sample.random],
        weight=[1.0 / p for *_, p in sample.random],
        sampled=[sample.sampled[h] for h in groups] or [0.0],
        sizes=[sample.strata[k] for k in keys],
        known=[[sample.known.get(k, {}).get(v, 0) for v in values] for k in keys],
        labelled=[sum(sample.known.get(k, {}).values()) for k in keys],
        word=[values.index(k) if k in value_set else -1 for k in keys],
    )
    labelled_strata = {s for _, s, _, _ in sample.random} | {
        k for k in keys if sum(sample.known.get(k, {}).values()) >= sample.strata[k]
    }
    unlabelled = [k for k in keys if sample.strata[k] > 0 and k not in labelled_strata]
    if unlabelled:
        share = 100.0 * sum(sample.strata[k] for k in unlabelled) / population
        notes.append(
            f"no blind random label yet judged {', '.join(unlabelled)} ({share:.2f}% of the run): a judged value is "
            "taken at its word, undecided or failed samples are split like the rest, and every interval is widened "
            "by that share."
        )
    corrected = rounded_shares({value: float(estimate[i]) for i, value in enumerate(values)})
    block["corrected_distributions"] = corrected
    # Bounds are rounded outwards, and never exclude the rounded estimate.
    block["corrected_ci"] = {
        value: [
            min(corrected[value], math.floor(10000 * float(low[i]) + 1e-9) / 100),
            max(corrected[value], math.ceil(10000 * float(high[i]) - 1e-9) / 100),
        ]
        for i, value in enumerate(values)
    }
    if not census:
        block["labels_to_halve"] = labels_to_halve(labels=random_count, population=population)
    return block


def _agreement(block: dict[str, Any], values: Sequence[str], paired: Sequence[tuple[str, str, str, float]]) -> None:
    """Kappa, its interval, judge accuracy and the confusion of the paired labels, weighted to the run."""
    pairs = [(human, judged) for human, judged, _, _ in paired]
    weights = [1.0 / p for *_, p in paired]
    group_keys = sorted({h for _, _, h, _ in paired})
    groups = [group_keys.index(h) for _, _, h, _ in paired]
    matrix = confusion(pairs, values, weights)
    block["judge_accuracy"] = round(100.0 * float(np.trace(matrix) / matrix.sum()), 2)
    counts = confusion(pairs, values)
    block["judge_confusion"] = {
        human: {judged: int(counts[i, j]) for j, judged in enumerate(values)} for i, human in enumerate(values)
    }
    parts = _kappa_parts(matrix)
    interval = kappa_interval(pairs, values, weights, groups)
    if parts is None or interval is None:
        block["notes"].append(
            "kappa undefined: human and judge gave every reviewed sample the same single value, so chance "
            "agreement is 1; review samples of other values."
        )
        return
    block["kappa"] = round(parts[0], 4)
    block["kappa_ci"] = [round(interval[0], 4), round(interval[1], 4)]
    if len(paired) >= MIN_REVIEWS:
        block["fit_for_use"] = interval[0] >= FIT_FOR_USE_KAPPA
