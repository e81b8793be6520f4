"""The estimator's simulation (issue #20), shared by tests/evaluations/test_estimator.py and the README's table.

Every trial makes a run of N samples with true values, a judge A that errs, abstains (more often on some true
values than others) and fails, the review queue's design (equal allocation over A's strata, uniform within each,
without replacement), and a second judge B of the same run. Vectorised over trials: a case of 1,000 trials runs
in well under a second. `python -m tests.evaluations.simulation` prints the coverage table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from evaluations.agreement import design_estimate

VALUES = 3
UNDECIDED, FAILED = VALUES, VALUES + 1  # stratum indices after the values
STRATA = VALUES + 2
TRUTH = np.array([0.45, 0.35, 0.20])
# Judges that hedge towards the last value (the way LLM judges fail): rows are the truth, columns what they say.
JUDGE_A = np.array([[0.75, 0.05, 0.20], [0.05, 0.70, 0.25], [0.10, 0.10, 0.80]])
JUDGE_B = np.array([[0.60, 0.30, 0.10], [0.10, 0.85, 0.05], [0.20, 0.05, 0.75]])
FAILURE = 0.02


@dataclass(frozen=True)
class Case:
    population: int  # N
    labels: int  # n, drawn by A's queue
    abstain: tuple[float, float, float]  # P(judge abstains | true value): abstention that depends on the truth
    target: str = "A"  # the judge corrected: A (its own queue's labels) or B (labels drawn for A)


@dataclass(frozen=True)
class Outcome:
    truth: npt.NDArray[np.float64]  # [trial, v]: the true shares of the N samples
    judged: npt.NDArray[np.float64]  # [trial, v]: the target judge's shares over the samples it decided
    estimate: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]

    @property
    def coverage(self) -> npt.NDArray[np.float64]:
        return ((self.low <= self.truth) & (self.truth <= self.high)).mean(axis=0)  # type: ignore[no-any-return]

    @property
    def error(self) -> npt.NDArray[np.float64]:
        return np.abs(self.estimate - self.truth).mean(axis=0)  # type: ignore[no-any-return]

    @property
    def judged_error(self) -> npt.NDArray[np.float64]:
        return np.abs(self.judged - self.truth).mean(axis=0)  # type: ignore[no-any-return]


def _judge(
    rng: np.random.Generator, truth: npt.NDArray[np.int64], matrix: npt.NDArray[np.float64], case: Case
) -> npt.NDArray[np.int64]:
    """Each sample's stratum under a judge: its judged value, UNDECIDED or FAILED."""
    cumulative = matrix.cumsum(axis=1)[truth]  # [trial, N, v]
    said = (rng.random(truth.shape)[..., None] > cumulative).sum(axis=-1)
    said = np.minimum(said, VALUES - 1)
    said = np.where(rng.random(truth.shape) < np.asarray(case.abstain)[truth], UNDECIDED, said)
    return np.where(rng.random(truth.shape) < FAILURE, FAILED, said)


def simulate(case: Case, *, trials: int, seed: int) -> Outcome:
    """Run `trials` independent trials of `case` through agreement.design_estimate."""
    rng = np.random.default_rng(seed)
    n_pop, n = case.population, case.labels
    truth = (rng.random((trials, n_pop))[..., None] > TRUTH.cumsum()).sum(axis=-1)
    truth = np.minimum(truth, VALUES - 1)
    design = _judge(rng, truth, JUDGE_A, case)
    target = design if case.target == "A" else _judge(rng, truth, JUDGE_B, case)
    strata = np.arange(STRATA)
    design_sizes = (design[..., None] == strata).sum(axis=1)  # [trial, h]
    # The queue: the stratum with the fewest labels that still has unlabelled samples gets the next one.
    allocated = np.zeros((trials, STRATA), dtype=np.int64)
    for _ in range(n):
        open_ = allocated < design_sizes
        pick = np.where(open_, allocated, np.iinfo(np.int64).max).argmin(axis=1)
        allocated[np.arange(trials), pick] += 1
    # Uniform within each stratum: the samples with the lowest random keys there.
    keys = rng.random((trials, n_pop))
    order = np.lexsort((keys, design), axis=1)
    ranked = np.take_along_axis(design, order, axis=1)
    start = np.concatenate([np.zeros((trials, 1), dtype=np.int64), design_sizes.cumsum(axis=1)[:, :-1]], axis=1)
    rank = np.arange(n_pop)[None, :] - np.take_along_axis(start, ranked, axis=1)
    chosen_sorted = rank < np.take_along_axis(allocated, ranked, axis=1)
    chosen = np.zeros_like(chosen_sorted)
    np.put_along_axis(chosen, order, chosen_sorted, axis=1)
    picked = np.argsort(~chosen, axis=1, kind="stable")[:, :n]
    take = lambda a: np.take_along_axis(a, picked, axis=1)  # noqa: E731
    groups, strata_of, values = take(design), take(target), take(truth)
    safe = np.maximum(allocated, 1)
    weight = np.take_along_axis(design_sizes / safe, groups, axis=1)
    sampled = np.where(design_sizes > 0, allocated / np.maximum(design_sizes, 1), 1.0)
    target_sizes = (target[..., None] == strata).sum(axis=1)
    known = np.zeros((trials, STRATA, VALUES))
    np.add.at(known, (np.arange(trials)[:, None], strata_of, values), 1.0)
    estimate, low, high = design_estimate(
        stratum=strata_of,
        value=values,
        group=groups,
        weight=weight,
        sampled=sampled,
        sizes=target_sizes,
        known=known,
        labelled=known.sum(axis=-1),
        word=[0, 1, 2, -1, -1],
    )
    truth_share = (truth[..., None] == np.arange(VALUES)).mean(axis=1)
    decided = target_sizes[:, :VALUES]
    judged = decided / decided.sum(axis=1, keepdims=True)
    return Outcome(truth=truth_share, judged=judged, estimate=estimate, low=low, high=high)


ABSTENTION = {
    "none": (0.0, 0.0, 0.0),
    "value-dependent": (0.05, 0.30, 0.15),  # about 15% in all, twice as often on the second value as on average
    "heavy": (0.30, 0.30, 0.30),
}


def table(trials: int = 1000, population: int = 400) -> list[tuple[str, str, int, list[float], float, float]]:
    """(target, abstention, n, coverage per value, corrected MAE, judged MAE) for every case, in percent."""
    rows = []
    for target in ("A", "B"):
        for name, abstain in ABSTENTION.items():
            for n in (10, 30, 100, population - 20, population):
                out = simulate(Case(population, n, abstain, target), trials=trials, seed=20)
                rows.append(
                    (
                        target,
                        name,
                        n,
                        [round(100 * c, 1) for c in out.coverage] if n < population else [],
                        round(100 * float(out.error.mean()), 2),
                        round(100 * float(out.judged_error.mean()), 2),
                    )
                )
    return rows


if __name__ == "__main__":
    print("| judge | abstention | labels | coverage per value (%) | corrected MAE (pp) | judged MAE (pp) |")
    print("|---|---|---|---|---|---|")
    for target, name, n, coverage, error, judged_error in table():
        shown = " / ".join(map(str, coverage)) or "census: error 0, width 0"
        print(f"| {target} | {name} | {n} | {shown} | {error} | {judged_error} |")
