"""Pure statistics for comparing distributions (DESIGN.md §4). No Django, no I/O: unit-tested with hypothesis."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Re-exported: the evaluation statistics read as one module.
from runs.distributions import rounded_shares as rounded_shares
from runs.distributions import shares as shares

WILSON_Z = 1.959963984540054  # two-sided 95%


def total_variation_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Half the L1 distance between two percentage distributions, in percentage points (0-100)."""
    # fsum is exactly rounded, so the result does not depend on the (hash-seeded) order of the key set.
    return 0.5 * math.fsum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def conformance_score(distances: Iterable[float]) -> float:
    """100 minus the mean total variation distance over properties, clamped to [0, 100]."""
    values = list(distances)
    if not values:
        return 100.0
    return min(100.0, max(0.0, 100.0 - math.fsum(values) / len(values)))


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


MIN_EXPECTED = 5.0  # Cochran's rule: the chi-square approximation needs every expected count >= 5


@dataclass(frozen=True)
class ChiSquare:
    """Pearson's goodness-of-fit result, with what was done to make it valid and what to be careful about."""

    statistic: float | None
    dof: int
    p_value: float | None
    # Categories merged into one cell because their expected counts were below MIN_EXPECTED.
    pooled: tuple[str, ...] = ()
    # Observed counts in categories expected 0 times: impossible under the expected distribution.
    unexpected: dict[str, int] = field(default_factory=dict)
    # Why p_value is None, or what was pooled and flagged; None when the test ran as is.
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "statistic": None if self.statistic is None else round(self.statistic, 4),
            "dof": self.dof,
            "p_value": self.p_value,
            "pooled": list(self.pooled),
            "unexpected": self.unexpected,
            "note": self.note,
        }


def chi_square_gof(
    observed: Mapping[str, int], expected: Mapping[str, float], min_expected: float = MIN_EXPECTED
) -> ChiSquare:
    """Pearson's goodness-of-fit of observed counts against expected weights (counts or percentages).

    The expected weights are scaled to the observed total. Cells with expected count < `min_expected` are pooled
    into one cell (the smallest remaining cells are added until the pool reaches it), rather than the test
    being dropped: with 3-4 values and a few dozen samples most cells are small, and a pooled test still says
    whether the large cells fit. A category expected 0 times but observed is flagged in `unexpected` and pooled
    like any small cell, so one stray judgement cannot by itself turn p into 0 (the per-sample agreement and the
    distance already count it). Fewer than two cells after pooling: p is None, with the reason in `note`.
    Categories are processed in sorted order and summed with fsum, so the result does not depend on dict order.
    """
    keys = sorted(set(observed) | set(expected))
    n = sum(observed.get(k, 0) for k in keys)
    weight = math.fsum(expected.get(k, 0.0) for k in keys)
    if n == 0:
        return ChiSquare(None, 0, None, note="nothing was observed")
    if weight <= 0:
        return ChiSquare(None, 0, None, note="nothing was expected")
    want = {k: n * expected.get(k, 0.0) / weight for k in keys}
    seen = {k: observed.get(k, 0) for k in keys}
    unexpected = {k: seen[k] for k in keys if want[k] == 0 and seen[k] > 0}
    # Categories neither expected nor observed carry no information: leave them out instead of pooling them.
    keys = [k for k in keys if want[k] > 0 or seen[k] > 0]
    pool = [k for k in keys if want[k] < min_expected]
    large = sorted((k for k in keys if want[k] >= min_expected), key=lambda k: (want[k], k))
    while pool and math.fsum(want[k] for k in pool) < min_expected and large:
        pool.append(large.pop(0))
    cells = [(seen[k], want[k]) for k in sorted(large)]
    if pool:
        cells.append((sum(seen[k] for k in pool), math.fsum(want[k] for k in pool)))
    pooled = tuple(sorted(pool)) if len(pool) > 1 else ()
    notes = []
    if unexpected:
        listed = ", ".join(f"{k!r} ×{count}" for k, count in unexpected.items())
        notes.append(f"judged where none was expected: {listed}")
    if pooled:
        notes.append(f"cells with expected count < {min_expected:g} pooled: {', '.join(pooled)}")
    dof = len(cells) - 1
    if dof < 1:
        notes.append(f"not tested: fewer than two cells with expected count >= {min_expected:g} after pooling")
        return ChiSquare(None, 0, None, pooled, unexpected, "; ".join(notes))
    statistic = math.fsum((o - e) ** 2 / e for o, e in cells)
    return ChiSquare(statistic, dof, chi_square_survival(statistic, dof), pooled, unexpected, "; ".join(notes) or None)


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


def newcombe_difference(
    base_k: int, base_n: int, new_k: int, new_n: int, z: float = WILSON_Z
) -> tuple[float, float] | None:
    """95% interval of the change of a share (new minus base), in percentage points: Newcombe's hybrid score
    interval (his method 10), built from the two Wilson intervals, so it stays inside [-100, 100] and behaves at
    shares near 0 or 100 and with a few dozen samples, where the Wald interval does not. None with no trials.

    It treats the two shares as independent. Two judges of the same samples are positively correlated, so for them
    the interval is wider than a paired one: a change it calls significant is, if anything, understated."""
    if base_n <= 0 or new_n <= 0:
        return None
    p0, p1 = 100 * base_k / base_n, 100 * new_k / new_n
    l0, u0 = wilson_interval(base_k, base_n, z)
    l1, u1 = wilson_interval(new_k, new_n, z)
    delta = p1 - p0
    low = delta - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = delta + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return max(-100.0, low), min(100.0, high)
