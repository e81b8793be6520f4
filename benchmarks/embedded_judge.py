"""How far the embedded judge (llm/embedded.py) can be trusted, on hand-labelled fixtures it was not tuned on.

Fixtures: benchmarks/fixtures/embedded_judge/<domain>/spec.yaml + samples.jsonl; each row has a "split" key,
"tune" (about 40%, the only rows thresholds were calibrated on) or "heldout" (the rest, reported here).
Prints per domain and property, on the held-out rows: agreement on decided samples, coverage (share decided) and
agreement counting undecided as wrong; then model load time and throughput (one classify() call per sample with
all of its domain's properties, single thread).

    python embedded_judge.py              # the report
    python embedded_judge.py --calibrate  # re-derive the thresholds from the tuning rows (prints, changes nothing)

Known limits: sentiment (VADER) stays near 60-70% three-way agreement at any margin on these sets (polite
complaints, reviews that state faults without emotive words), so it decides only strongly worded texts; recipe
cuisine and course depend on culinary knowledge (parmesan -> italian, syrup -> dessert) that mean-pooled static
embeddings do not carry, and no margin threshold separates their right answers from their wrong ones.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from llm import embedded  # noqa: E402
from runs.specfile import Property, parse_spec  # noqa: E402

FIXTURES = ROOT / "benchmarks" / "fixtures" / "embedded_judge"
TARGET_AGREEMENT = 80.0
TARGET_COVERAGE = 85.0
# Deciding must be right at least 80% of the time to beat abstaining: a wrong answer costs 1, an abstention 0.2.
ABSTAIN_COST = 0.2


@dataclass(frozen=True)
class Row:
    identifier: str
    content: str
    labels: dict[str, str]
    split: str


@dataclass(frozen=True)
class FixtureSet:
    domain: str
    properties: list[Property]
    rows: list[Row]

    def split(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.split == name]


def load_fixtures() -> list[FixtureSet]:
    sets = []
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        spec = parse_spec((folder / "spec.yaml").read_text())
        rows = []
        for line in (folder / "samples.jsonl").read_text().splitlines():
            raw = json.loads(line)
            rows.append(Row(raw["identifier"], raw["content"], raw["properties"], raw["split"]))
        sets.append(FixtureSet(folder.name, spec.properties, rows))
    return sets


@dataclass(frozen=True)
class Figures:
    samples: int
    decided: int
    correct: int

    @property
    def agreement_decided(self) -> float:
        return 100.0 * self.correct / self.decided if self.decided else 0.0

    @property
    def coverage(self) -> float:
        return 100.0 * self.decided / self.samples if self.samples else 0.0

    @property
    def agreement_all(self) -> float:
        return 100.0 * self.correct / self.samples if self.samples else 0.0


def measure(fixture: FixtureSet, rows: list[Row]) -> dict[str, Figures]:
    judged = [embedded.classify(r.content, fixture.properties) for r in rows]
    figures = {}
    for prop in fixture.properties:
        values = [j[prop.name].value for j in judged]
        decided = sum(v is not None for v in values)
        correct = sum(v is not None and v == r.labels[prop.name] for v, r in zip(values, rows, strict=True))
        figures[prop.name] = Figures(len(rows), decided, correct)
    return figures


def _raw_judgements(fixture: FixtureSet, rows: list[Row]) -> Iterator[tuple[Property, Row, embedded.Judgement]]:
    for row in rows:
        judged = embedded.classify(row.content, fixture.properties)
        for prop in fixture.properties:
            yield prop, row, judged[prop.name]


def _best_threshold(by_property: dict[str, list[tuple[float, bool]]]) -> tuple[float, int, float]:
    """The margin threshold that (1) lets the most properties meet both targets, then (2) costs least.

    Cost = wrong decisions + ABSTAIN_COST x abstentions, pooled: decide only where ≥ 80% are expected right.
    Returns (threshold, properties on target, cost).
    """
    candidates = sorted({0.0, *(m for pairs in by_property.values() for m, _ in pairs)})
    best = (0.0, -1, float("inf"))
    for threshold in candidates:
        on_target, cost = 0, 0.0
        for pairs in by_property.values():
            decided = [ok for m, ok in pairs if m >= threshold]
            cost += sum(0.0 if ok else 1.0 for ok in decided) + ABSTAIN_COST * (len(pairs) - len(decided))
            agreement = 100.0 * sum(decided) / len(decided) if decided else 0.0
            on_target += agreement >= TARGET_AGREEMENT and 100.0 * len(decided) / len(pairs) >= TARGET_COVERAGE
        if (on_target, -cost) > (best[1], -best[2] + 1e-9):
            best = (threshold, on_target, cost)
    return best


def _tuning_margins(fixtures: list[FixtureSet], method: str) -> dict[str, list[tuple[float, bool]]]:
    by_property: dict[str, list[tuple[float, bool]]] = {}
    for fixture in fixtures:
        for prop, row, judged in _raw_judgements(fixture, fixture.split("tune")):
            if judged.method == method:
                key = f"{fixture.domain}.{prop.name}"
                by_property.setdefault(key, []).append((judged.margin, judged.value == row.labels[prop.name]))
    return by_property


def calibrate(fixtures: list[FixtureSet]) -> None:
    """Derive the thresholds from the tuning rows only, and print them with what they give there."""
    saved = (embedded.EMBEDDING_MIN_MARGIN, embedded.LEXICON_MIN_MARGIN, embedded.LEXICON_NEUTRAL_BAND)
    try:
        embedded.EMBEDDING_MIN_MARGIN = embedded.LEXICON_MIN_MARGIN = 0.0
        threshold, on_target, cost = _best_threshold(_tuning_margins(fixtures, "embeddings"))
        print(f"embeddings: min margin {threshold:.4f}: {on_target} properties on target, cost {cost:.1f}")
        best: tuple[float, float, int, float] = (0.0, 0.0, -1, float("inf"))
        for band in [b / 100 for b in range(5, 65, 5)]:
            embedded.LEXICON_NEUTRAL_BAND = band
            threshold, on_target, cost = _best_threshold(_tuning_margins(fixtures, "lexicon"))
            print(
                f"lexicon: neutral band {band:.2f}: min margin {threshold:.4f}: {on_target} on target, cost {cost:.1f}"
            )
            if (on_target, -cost) > (best[2], -best[3] + 1e-9):
                best = (band, threshold, on_target, cost)
        print(f"lexicon: chosen neutral band {best[0]:.2f}, min margin {best[1]:.4f}")
    finally:
        embedded.EMBEDDING_MIN_MARGIN, embedded.LEXICON_MIN_MARGIN, embedded.LEXICON_NEUTRAL_BAND = saved


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(fixtures: list[FixtureSet]) -> bool:
    load_seconds = _timed(embedded.models)
    print(
        f"Embedded judge {embedded.MODEL_NAME}: held-out split (targets: agreement on decided ≥ {TARGET_AGREEMENT:.0f}%,"
    )
    print(f"coverage ≥ {TARGET_COVERAGE:.0f}%); thresholds calibrated on the tuning split only.")
    print(f"{'domain':16} {'property':10} {'method':10} {'n':>4} {'agree(dec)':>10} {'coverage':>9} {'agree(all)':>10}")
    all_met = True
    for fixture in fixtures:
        rows = fixture.split("heldout")
        methods = {
            p.name: ("lexicon" if embedded.is_sentiment_like(p.values) else "embeddings") for p in fixture.properties
        }
        for name, fig in measure(fixture, rows).items():
            met = fig.agreement_decided >= TARGET_AGREEMENT and fig.coverage >= TARGET_COVERAGE
            all_met &= met
            print(
                f"{fixture.domain:16} {name:10} {methods[name]:10} {fig.samples:>4} {fig.agreement_decided:>9.1f}%"
                f" {fig.coverage:>8.1f}% {fig.agreement_all:>9.1f}%{'' if met else '  below target'}"
            )
    texts = [(r.content, f.properties) for f in fixtures for r in f.rows]
    embedded._prototypes.cache_clear()  # the first call per spec embeds its prototypes: count that too
    rounds = 5
    seconds = _timed(lambda: [embedded.classify(t, props) for _ in range(rounds) for t, props in texts])
    print(f"model load {load_seconds * 1000:.0f} ms; {rounds * len(texts) / seconds:.0f} samples/s (single thread)")
    return all_met


if __name__ == "__main__":
    fixtures = load_fixtures()
    if "--calibrate" in sys.argv:
        calibrate(fixtures)
    else:
        report(fixtures)
