"""Agreement between human reviewers: Krippendorff's alpha for nominal data, with a bootstrap interval (no I/O).

When two or more reviewers labelled the same samples, their agreement is the ceiling any judge can reach: a judge
cannot agree with "the truth" better than the people who define it agree with each other. Alpha, unlike Cohen's or
Fleiss' kappa, takes any number of reviewers per sample and samples labelled by different subsets of reviewers,
which is what a shared review queue produces.

Reference: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), whose worked examples the tests
reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20  # fixed: the page shows the same interval on every visit


def _coincidences(units: Sequence[Sequence[str]]) -> NDArray[np.float64]:
    """Each pairable sample's contribution to the coincidence matrix, flattened: every ordered pair of values
    within the sample (i ≠ j) weighted 1 / (m - 1), m its number of values. Shape (samples, k * k)."""
    codes = {v: i for i, v in enumerate(sorted({v for values in units for v in values}))}
    k = len(codes)
    rows = np.zeros((len(units), k * k))
    for row, values in zip(rows, units, strict=True):
        counts = np.bincount([codes[v] for v in values], minlength=k).astype(float)
        # Pairs of two different labels, and pairs of one value with another copy of itself (never with itself).
        row += ((np.outer(counts, counts) - np.diag(counts)) / (len(values) - 1)).ravel()
    return rows


def _alpha(matrices: NDArray[np.float64]) -> NDArray[np.float64]:
    """Alpha of each coincidence matrix (rows of k * k), NaN where undefined."""
    k = int(round(np.sqrt(matrices.shape[-1])))
    o = matrices.reshape(-1, k, k)
    totals = o.sum(axis=2)
    n = totals.sum(axis=1)
    observed = n - np.trace(o, axis1=1, axis2=2)
    expected = n**2 - (totals**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1 - (n - 1) * observed / expected
    return np.where((expected > 0) & (n >= 2), alpha, np.nan)


def krippendorff_alpha_nominal(units: Sequence[Sequence[str]]) -> float | None:
    """Alpha over `units`, each the values the reviewers gave one sample. Samples labelled by fewer than two
    reviewers cannot be paired and are left out. None when undefined: no pairable values, or a single value used
    throughout (no disagreement is expected, so none can be measured against it)."""
    paired = [values for values in units if len(values) >= 2]
    if not paired:
        return None
    alpha = float(_alpha(_coincidences(paired).sum(axis=0, keepdims=True))[0])
    return None if np.isnan(alpha) else alpha


@dataclass(frozen=True)
class ReviewerAgreement:
    alpha: float | None
    low: float | None  # the 95% bootstrap interval (percentile, over samples); None when too few resamples define it
    high: float | None
    samples: int  # samples labelled by two or more reviewers
    reviewers: int  # the most reviewers on one of them


def reviewer_agreement(
    units: Sequence[Sequence[str]], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> ReviewerAgreement | None:
    """Alpha over the samples two or more reviewers labelled, with a percentile bootstrap interval that resamples
    whole samples (the reviewers' labels of one sample move together); None when no sample has two labels."""
    paired = [list(values) for values in units if len(values) >= 2]
    if not paired:
        return None
    alpha = krippendorff_alpha_nominal(paired)
    # A resample is a count per sample (multinomial), so every resample's matrix is one matrix product.
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(paired), np.full(len(paired), 1 / len(paired)), size=resamples)
    draws = _alpha(weights @ _coincidences(paired))
    draws = draws[~np.isnan(draws)]
    # An interval needs most resamples defined (a resample of unanimous samples has no alpha).
    low = high = None
    if alpha is not None and len(draws) >= 0.9 * resamples:
        low, high = (float(x) for x in np.quantile(draws, [0.025, 0.975]))
    return ReviewerAgreement(
        alpha=alpha, low=low, high=high, samples=len(paired), reviewers=max(len(values) for values in paired)
    )
