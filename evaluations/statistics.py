"""Pure statistics for comparing distributions (DESIGN.md §4). No Django, no I/O: unit-tested with hypothesis."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from runs.distributions import shares as shares  # re-exported: the evaluation statistics read as one module

WILSON_Z = 1.959963984540054  # two-sided 95%


def total_variation_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Half the L1 distance between two percentage distributions, in percentage points (0-100)."""
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def conformance_score(distances: Iterable[float]) -> float:
    """100 minus the mean total variation distance over properties, clamped to [0, 100]."""
    values = list(distances)
    if not values:
        return 100.0
    return min(100.0, max(0.0, 100.0 - sum(values) / len(values)))


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval for a proportion, in percent. (0, 100) when there are no trials."""
    if trials <= 0:
        return 0.0, 100.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # At k = 0 (k = n) the bound is exactly 0 (100); floating point would leave a 1e-16 residue.
    low = 0.0 if successes == 0 else max(0.0, 100 * (centre - half))
    high = 100.0 if successes == trials else min(100.0, 100 * (centre + half))
    return low, high


def chi_square_gof(
    observed: Mapping[str, int], expected_shares: Mapping[str, float]
) -> tuple[float, int, float | None]:
    """Pearson's goodness-of-fit of observed counts against expected shares: (statistic, dof, p-value).

    Categories the expected distribution gives 0% are left out unless something was observed there, in which
    case the fit is impossible (p = 0). With fewer than two usable categories or no observations, p is None.
    """
    n = sum(observed.values())
    if n == 0:
        return 0.0, 0, None
    statistic = 0.0
    categories = 0
    for key in set(observed) | set(expected_shares):
        expected = n * expected_shares.get(key, 0.0) / 100.0
        seen = observed.get(key, 0)
        if expected <= 0:
            if seen > 0:
                return math.inf, max(categories, 1), 0.0
            continue
        statistic += (seen - expected) ** 2 / expected
        categories += 1
    dof = categories - 1
    if dof < 1:
        return statistic, 0, None
    return statistic, dof, chi_square_survival(statistic, dof)


def chi_square_survival(x: float, dof: int) -> float:
    """P(X >= x) for a chi-square variable with `dof` degrees of freedom: Q(dof/2, x/2)."""
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    return _upper_regularized_gamma(dof / 2.0, x / 2.0)


def _upper_regularized_gamma(a: float, x: float) -> float:
    # Numerical Recipes §6.2: the series converges fast for x < a + 1, the continued fraction otherwise.
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        denominator = a
        for _ in range(1000):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def confusion_matrix(pair_counts: Mapping[tuple[str, str], int], values: list[str]) -> list[list[int]]:
    """matrix[i][j] = samples assigned values[i] and judged values[j], from {(assigned, judged): count}."""
    index = {v: i for i, v in enumerate(values)}
    matrix = [[0] * len(values) for _ in values]
    for (assigned, judged), count in pair_counts.items():
        if assigned in index and judged in index:
            matrix[index[assigned]][index[judged]] += count
    return matrix


def agreement(matrix: list[list[int]]) -> float | None:
    """Share (percent) of samples whose judged value equals the assigned one; None with no samples."""
    total = sum(sum(row) for row in matrix)
    if total == 0:
        return None
    return 100.0 * sum(matrix[i][i] for i in range(len(matrix))) / total
