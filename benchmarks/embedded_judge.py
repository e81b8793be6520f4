"""How far the embedded judge (llm/embedded.py) can be trusted, on hand-labelled fixtures it was not tuned on.

Fixtures: benchmarks/fixtures/embedded_judge/<domain>/spec.yaml + samples.jsonl; each row has a "split" key,
"tune" (about 40-50%, the only rows thresholds were calibrated on) or "heldout" (the rest, reported here).
Prints per domain and property, each held-out split judged as one run under the plan the judge makes from its texts
(llm/embedded_plan.py): declined or judged, agreement on decided samples, coverage and agreement counting undecided
as wrong; then the same with the judge taught by the first 0 / 20 / 40 tuning rows' labels; then model load time,
throughput with and without a plan (one classify() call per sample with all of its domain's properties, single
thread) and the plan's own cost.

    python embedded_judge.py              # the report
    python embedded_judge.py --calibrate  # the settings' evidence on the tuning rows (prints, changes nothing)

Target (issue #20): every property either declined or right on at least 80% of what it decides. Known limits:
sentiment told plainly, recipe cuisine and course, film genre and setting, job contract types need knowledge or
cues static embeddings and a lexicon lack; the judge declines them. Measured and rejected: MiniLM
(all-MiniLM-L6-v2 from a wheel, torch CPU): 9 samples/s one at a time, 56 batched on 2 cores, and no better on
recipes (argmax cuisine 55%, course 37% held-out).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# The spec parser reads its limits from Django's settings (no database is needed).
import os  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from llm import embedded, embedded_plan  # noqa: E402
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
    mode: str = "none"  # the plan's mode for the property: prototypes, lexicon, taught or declined
    reason: str = ""

    @property
    def agreement_decided(self) -> float:
        return 100.0 * self.correct / self.decided if self.decided else 0.0

    @property
    def coverage(self) -> float:
        return 100.0 * self.decided / self.samples if self.samples else 0.0

    @property
    def agreement_all(self) -> float:
        return 100.0 * self.correct / self.samples if self.samples else 0.0


def taught_from(fixture: FixtureSet, rows: list[Row]) -> dict[str, embedded_plan.Taught]:
    """The rows' labels as the human labels the judge may learn from (one per row and property)."""
    return {
        p.name: embedded_plan.Taught(
            tuple(range(len(rows))), tuple(r.content for r in rows), tuple(r.labels[p.name] for r in rows)
        )
        for p in fixture.properties
    }


def measure(fixture: FixtureSet, rows: list[Row], taught_rows: list[Row] | None = None) -> dict[str, Figures]:
    """Plan the judge on `rows` as one run (their texts only; taught by `taught_rows`' labels if given), judge them
    under that plan and count per property against the hand labels."""
    taught = taught_from(fixture, taught_rows) if taught_rows else None
    plan = embedded_plan.make_plan([r.content for r in rows], fixture.properties, taught)
    prepared = embedded_plan.prepared(plan)
    judged = [embedded.classify(r.content, fixture.properties, prepared) for r in rows]
    figures = {}
    for prop in fixture.properties:
        values = [j[prop.name].value for j in judged]
        decided = sum(v is not None for v in values)
        correct = sum(v is not None and v == r.labels[prop.name] for v, r in zip(values, rows, strict=True))
        entry = plan["properties"][prop.name]
        figures[prop.name] = Figures(len(rows), decided, correct, entry["mode"], entry["reason"])
    return figures


def meets_target(fig: Figures) -> bool:
    """Issue #20: never confidently wrong. Declined, or right on at least 80% of what it decides."""
    return fig.mode == "declined" or (fig.decided > 0 and fig.agreement_decided >= TARGET_AGREEMENT)


def _raw_judgements(fixture: FixtureSet, rows: list[Row]) -> Iterator[tuple[Property, Row, embedded.Judgement]]:
    for row in rows:
        judged = embedded.classify(row.content, fixture.properties)
        for prop in fixture.properties:
            yield prop, row, judged[prop.name]


def _best_threshold(
    by_property: dict[str, list[tuple[float, bool]]], thresholds: list[float] | None = None
) -> tuple[float, int, float]:
    """The margin threshold that (1) lets the most properties meet both targets, then (2) costs least.

    Cost = wrong decisions + ABSTAIN_COST x abstentions, pooled: decide only where ≥ 80% are expected right.
    Returns (threshold, properties on target, cost).
    """
    candidates = thresholds or sorted({0.0, *(m for pairs in by_property.values() for m, _ in pairs if m >= 0)})
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
    """(margin, right) per tuning row and property; a row the judge abstains on at margin 0 gets margin -1 (never
    decided by any threshold: the second opinion vetoed it, or the sentiment rule matched nothing)."""
    by_property: dict[str, list[tuple[float, bool]]] = {}
    for fixture in fixtures:
        for prop, row, judged in _raw_judgements(fixture, fixture.split("tune")):
            if judged.method == method:
                key = f"{fixture.domain}.{prop.name}"
                margin = judged.margin if judged.value is not None else -1.0
                by_property.setdefault(key, []).append((margin, judged.value == row.labels[prop.name]))
    return by_property


SENTIMENT_GRID = {
    "POSITIVE_MIN": [0.3, 0.4, 0.5, 0.6, 0.7],
    "NEGATIVE_MIN": [0.2, 0.3, 0.45, 0.6],
    "SENTENCE_FLOOR": [0.2, 0.4],
    "SENTENCE_CEILING": [0.3, 0.5, 0.7],
    "REQUEST_BAND": [0.0, 0.3, 0.5, 0.8],
    "CONTRAST_BAND": [0.0, 0.3, 0.45, 0.6],
}


def calibrate(fixtures: list[FixtureSet]) -> None:
    """Derive the settings from the tuning rows only, and print them with what they give there."""
    names = ["EMBEDDING_MIN_MARGIN", "DEBIAS_WEIGHT", *SENTIMENT_GRID]
    saved = {n: getattr(embedded, n) for n in names}
    try:
        embedded.EMBEDDING_MIN_MARGIN = 0.0
        chosen: tuple[float, float, int, float] = (0.0, 0.0, -1, float("inf"))
        for weight in (0.0, 0.25, 0.5, 0.75, 1.0):
            embedded.DEBIAS_WEIGHT = weight  # 0.0: the second opinion always agrees, i.e. none
            embedded._prototypes.cache_clear()
            margins = _tuning_margins(fixtures, "embeddings")
            threshold, on_target, cost = _best_threshold(margins)
            print(
                f"embeddings: second opinion weight {weight}: min margin {threshold:.4f}: {on_target} on target, cost {cost:.1f}"
            )
            if (on_target, -cost) > (chosen[2], -chosen[3] + 1e-9):
                chosen = (weight, threshold, on_target, cost)
        print(f"embeddings: chosen second opinion weight {chosen[0]}, min margin {chosen[1]:.4f}")
        best: tuple[dict[str, float], int, float] = ({}, -1, float("inf"))
        for combo in itertools.product(*SENTIMENT_GRID.values()):
            setting = dict(zip(SENTIMENT_GRID, combo, strict=True))
            for n, v in setting.items():
                setattr(embedded, n, v)
            # the rule's own thresholds are what is calibrated: every decision it makes counts
            _, on_target, cost = _best_threshold(
                {
                    k: [(max(m, 0.0) if m >= 0 else m, ok) for m, ok in v]
                    for k, v in _tuning_margins(fixtures, "lexicon").items()
                },
                thresholds=[0.0],
            )
            if (on_target, -cost) > (best[1], -best[2] + 1e-9):
                best = (setting, on_target, cost)
        print(f"lexicon: chosen {best[0]}: {best[1]} on target, cost {best[2]:.1f}")
    finally:
        for n, v in saved.items():
            setattr(embedded, n, v)
        embedded._prototypes.cache_clear()


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def calibrate_plan(fixtures: list[FixtureSet]) -> None:
    """The label-free evidence of llm/embedded_plan.py on each tuning split, beside how right the judge is there
    sample by sample (no plan): the thresholds must put the properties under 80% on the declined side."""
    print("plan evidence on the tuning rows (per-sample judge, no plan):")
    for fixture in fixtures:
        rows = fixture.split("tune")
        plan = embedded_plan.make_plan([r.content for r in rows], fixture.properties)
        judged = [embedded.classify(r.content, fixture.properties) for r in rows]
        for prop in fixture.properties:
            pairs = [(j[prop.name].value, r.labels[prop.name]) for j, r in zip(judged, rows, strict=True)]
            decided = [(j, label) for j, label in pairs if j is not None]
            agreement = 100.0 * sum(j == label for j, label in decided) / len(decided) if decided else 0.0
            entry = plan["properties"][prop.name]
            print(
                f"  {fixture.domain:16} {prop.name:9} agree(dec) {agreement:5.1f}%  evidence {entry['evidence']}"
                f" -> {entry['mode']}"
            )


def learning_rows(fixture: FixtureSet, count: int) -> list[Row] | None:
    """The first `count` tuning rows (file order, which is shuffled), or None when the split has fewer."""
    tune = fixture.split("tune")
    return tune[:count] if len(tune) >= count else None


LEARNING_LABELS = (0, 20, 40)


def report(fixtures: list[FixtureSet]) -> bool:
    load_seconds = _timed(embedded.models)
    print(
        f"Embedded judge {embedded.MODEL_NAME}: held-out split of each domain judged as one run (plan from its texts, "
        f"no label); target: declined, or agreement on decided ≥ {TARGET_AGREEMENT:.0f}%."
    )
    print(f"{'domain':16} {'property':10} {'mode':10} {'n':>4} {'agree(dec)':>10} {'coverage':>9} {'agree(all)':>10}")
    all_met = True
    for fixture in fixtures:
        for name, fig in measure(fixture, fixture.split("heldout")).items():
            met = meets_target(fig)
            all_met &= met
            print(
                f"{fixture.domain:16} {name:10} {fig.mode:10} {fig.samples:>4} {fig.agreement_decided:>9.1f}%"
                f" {fig.coverage:>8.1f}% {fig.agreement_all:>9.1f}%{'' if met else '  BELOW TARGET'}"
            )
            if fig.mode == "declined":
                print(f"{'':28}{fig.reason}")
    print()
    print("Learning from reviews: taught by the first 0 / 20 / 40 tuning rows' labels, measured on the held-out rows")
    print("(agreement on decided / coverage; '-' where the tuning split has fewer rows; D = declined).")
    print(f"{'domain':16} {'property':10} " + " ".join(f"{f'{k} labels':>18}" for k in LEARNING_LABELS))
    for fixture in fixtures:
        heldout = fixture.split("heldout")
        by_count: dict[int, dict[str, Figures] | None] = {}
        for count in LEARNING_LABELS:
            taught = learning_rows(fixture, count) if count else []
            by_count[count] = None if taught is None else measure(fixture, heldout, taught or None)
        for prop in fixture.properties:
            cells = []
            for count in LEARNING_LABELS:
                figures = by_count[count]
                if figures is None:
                    cells.append(f"{'-':>18}")
                    continue
                fig = figures[prop.name]
                cell = "D" if fig.mode == "declined" else f"{fig.agreement_decided:.0f}% / {fig.coverage:.0f}%"
                cells.append(f"{cell + ('' if meets_target(fig) else ' !'):>18}")
            print(f"{fixture.domain:16} {prop.name:10} " + " ".join(cells))
    print()
    runs = [([r.content for r in f.rows], f.properties) for f in fixtures]
    plans = [embedded_plan.prepared(embedded_plan.make_plan(texts, props)) for texts, props in runs]
    embedded._prototypes.cache_clear()  # the first call per spec embeds its prototypes: count that too
    rounds = 5
    texts = [(t, props, plan) for (ts, props), plan in zip(runs, plans, strict=True) for t in ts]
    seconds = _timed(lambda: [embedded.classify(t, props, plan) for _ in range(rounds) for t, props, plan in texts])
    plan_seconds = _timed(lambda: [embedded_plan.make_plan(ts, props) for ts, props in runs])
    unplanned = _timed(lambda: [embedded.classify(t, props) for _ in range(rounds) for t, props, _plan in texts])
    print(
        f"model load {load_seconds * 1000:.0f} ms; {rounds * len(texts) / seconds:.0f} samples/s under a plan, "
        f"{rounds * len(texts) / unplanned:.0f} samples/s without (single thread, same run); planning "
        f"{len(runs)} runs of {min(len(t) for t, _ in runs)}-{max(len(t) for t, _ in runs)} texts: "
        f"{plan_seconds * 1000 / len(runs):.0f} ms per run"
    )
    return all_met


if __name__ == "__main__":
    fixtures = load_fixtures()
    if "--calibrate" in sys.argv:
        calibrate(fixtures)
        calibrate_plan(fixtures)
    else:
        report(fixtures)
