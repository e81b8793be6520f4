"""Which property values each generated sample gets, decided before any sample is written (DESIGN.md §4). Pure.

By quota (the default): within each group of samples that share a distribution, each value goes to exactly its
largest-remainder share of the group, so `expected` is within 100/N percentage points of `requested` for every
value of an unconditioned property. A property conditioned on another is assigned group by group: the samples
whose parent value has a conditional distribution take that one, the others the base distribution. The values
are then shuffled across positions, so that sample order says nothing about them.

By draw (`random`, our extension): each sample's value is drawn from its distribution, as independent sampling
would; the shares then drift by about 100·sqrt(p(1-p)/N) points.

The plan is a function of (properties, N, seed, mode): a run stores its seed, and every work item that resumes it
computes the very same plan, so a sample written before a worker was killed keeps the values it was written for.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from .distributions import largest_remainder
from .specfile import Property

Mode = Literal["quota", "random"]
MODES: tuple[Mode, ...] = ("quota", "random")
GroupKey = tuple[str, str] | None  # (parent property, its value) whose conditional applies; None: the base


def distribution_for(prop: Property, assigned: dict[str, str]) -> tuple[GroupKey, dict[str, float]]:
    """The distribution `prop` follows for a sample with the `assigned` values so far: the conditional of the first
    parent (in the spec's order) whose value has one, else the base distribution."""
    for parent, by_value in prop.conditional_distributions.items():
        value = assigned.get(parent)
        if value is not None and value in by_value:
            return (parent, value), by_value[value]
    return None, prop.base_distribution


def plan(properties: Sequence[Property], n: int, *, seed: int, mode: Mode = "quota") -> list[dict[str, str]]:
    """{property: value} for each of `n` samples, in position order. Parents come before the properties
    conditioned on them (the spec parser requires it), so one pass in spec order sees every parent assigned."""
    if mode not in MODES:
        raise ValueError(f"unknown assignment mode {mode!r}: one of {', '.join(MODES)}")
    rng = random.Random(seed)
    assignments: list[dict[str, str]] = [{} for _ in range(n)]
    for prop in properties:
        # 1. Group the positions by the distribution this property follows there.
        groups: dict[GroupKey, list[int]] = {}
        distributions: dict[GroupKey, dict[str, float]] = {}
        for position, assigned in enumerate(assignments):
            key, distribution = distribution_for(prop, assigned)
            groups.setdefault(key, []).append(position)
            distributions[key] = distribution
        # 2. Give each group its values: exact quotas shuffled, or draws.
        for key, positions in groups.items():
            weights = [distributions[key].get(value, 0) for value in prop.values]
            if mode == "quota":
                counts = largest_remainder(dict(zip(prop.values, weights, strict=True)), len(positions))
                values = [value for value in prop.values for _ in range(counts[value])]
                rng.shuffle(values)
            else:
                values = rng.choices(prop.values, weights=weights, k=len(positions))
            for position, value in zip(positions, values, strict=True):
                assignments[position][prop.name] = value
    return assignments
