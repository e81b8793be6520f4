"""Percentage distributions, pure: shared by the run pages (requested vs expected) and the evaluation statistics."""

from __future__ import annotations

from collections.abc import Mapping


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    """Percent of the total for each key, unrounded (all 0 when there is nothing to count)."""
    total = sum(counts.values())
    return {key: (100.0 * n / total if total else 0.0) for key, n in counts.items()}
