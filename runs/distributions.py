"""Percentage distributions, pure: shared by the run pages (requested vs expected) and the evaluation statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction


def shares(counts: Mapping[str, float]) -> dict[str, float]:
    """Percent of the total for each key, unrounded (all 0 when there is nothing to count).

    The arithmetic (distances, scores) uses these; what is shown or sent uses rounded_shares.
    """
    total = math.fsum(counts.values())
    return {key: (100.0 * n / total if total else 0.0) for key, n in counts.items()}


def rounded_shares(weights: Mapping[str, float], places: int = 2) -> dict[str, float]:
    """Percent of the total for each key, rounded to `places` decimals so that they sum to exactly 100.

    Rounding each share on its own gives 33.33 + 33.33 + 33.33 = 99.99; largest remainder hands the units lost to
    truncation to the keys that lost the most (ties by key, so the result does not depend on dict order). The
    quotas are exact fractions, so no float error decides a tie. All 0 when there is nothing to count.
    """
    units = largest_remainder(weights, 100 * 10**places)
    # n / 10**places is the float nearest that decimal, so JSON (shortest repr) writes it back exactly.
    return {key: units[key] / 10**places for key in weights}


def largest_remainder(weights: Mapping[str, float], units: int) -> dict[str, int]:
    """Split `units` whole units between the keys in proportion to `weights`, each key's count within 1 of its
    exact quota (Hamilton's method): every key gets the floor of its quota, and the units lost to the floors go
    to the keys that lost the most (ties by key, so the result does not depend on dict order). The quotas are
    exact fractions, so no float error decides a tie. All 0 when the weights are all 0.

    The one largest-remainder implementation: shares that sum to exactly 100 (rounded_shares) and the number of
    samples that get each value when a run is generated (runs.assignment) both come from here.
    """
    exact = {key: Fraction(weight) for key, weight in weights.items()}
    if any(weight < 0 for weight in exact.values()):
        raise ValueError("shares of negative weights")
    total = sum(exact.values(), Fraction(0))
    if total == 0:
        return dict.fromkeys(weights, 0)
    quotas = {key: weight * units / total for key, weight in exact.items()}
    floors = {key: math.floor(quota) for key, quota in quotas.items()}
    left = units - sum(floors.values())
    for key in sorted(quotas, key=lambda k: (floors[k] - quotas[k], k))[:left]:
        floors[key] += 1
    return {key: floors[key] for key in weights}
