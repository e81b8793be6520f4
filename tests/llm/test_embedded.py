"""The embedded judge on its labelled fixtures: deterministic, offline, abstaining, and measured (DESIGN.md §5)."""

from __future__ import annotations

import random
import socket
from collections import Counter
from typing import Any

import pytest

from benchmarks.embedded_judge import FixtureSet, load_fixtures, measure
from evaluations.statistics import conformance_score, shares, total_variation_distance
from llm import embedded

FIXTURES = {f.domain: f for f in load_fixtures()}

# Held-out floors = the figures measured with the committed thresholds (benchmarks/embedded_judge.py), rounded
# down: (agreement on decided %, coverage %). Below the 80/85 targets where the models cannot reach them (see
# the benchmark's docstring): sentiment (lexicon) and recipes (needs culinary knowledge static embeddings lack).
FLOORS = {
    ("code_snippets", "language"): (94, 97),
    ("news", "section"): (94, 92),
    ("product_reviews", "category"): (93, 86),
    ("support_tickets", "topic"): (96, 84),
    ("product_reviews", "sentiment"): (81, 71),
    ("support_tickets", "sentiment"): (76, 89),
    ("recipes", "cuisine"): (64, 81),
    ("recipes", "course"): (53, 73),
}


def test_it_is_deterministic() -> None:
    fixture = FIXTURES["support_tickets"]
    texts = [r.content for r in fixture.rows[:20]]
    first = [embedded.classify(t, fixture.properties) for t in texts]
    embedded._prototypes.cache_clear()
    assert [embedded.classify(t, fixture.properties) for t in texts] == first


@pytest.mark.parametrize("text", ["", "   \n", "asdkjh qwpoe zxcmv", "xkcd zzzz qqq wwrr", "!!! ??? 12345 ..."])
def test_it_abstains_on_empty_and_gibberish(text: str) -> None:
    judged = embedded.classify(text, FIXTURES["product_reviews"].properties)
    assert {name: j.value for name, j in judged.items()} == {"sentiment": None, "category": None}


def test_it_loads_with_the_network_blocked(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(embedded, "_models", None)  # force a fresh load; the old one comes back afterwards
    embedded._prototypes.cache_clear()
    judged = embedded.classify(
        "My parcel never arrived and the courier's tracking is stuck.", FIXTURES["support_tickets"].properties
    )
    assert judged["topic"].value == "shipping"
    assert not (tmp_path / ".cache").exists()  # nothing cached outside the installed package
    embedded._prototypes.cache_clear()


@pytest.mark.parametrize(("domain", "prop"), sorted(FLOORS))
def test_it_reaches_its_measured_held_out_figures(domain: str, prop: str) -> None:
    figures = measure(FIXTURES[domain], FIXTURES[domain].split("heldout"))[prop]
    agreement_floor, coverage_floor = FLOORS[domain, prop]
    assert figures.agreement_decided >= agreement_floor
    assert figures.coverage >= coverage_floor


def _conformance_and_agreement(
    fixture: FixtureSet, labels: list[dict[str, str]], judged: list[dict[str, embedded.Judgement]]
) -> tuple[float, float]:
    """DESIGN.md §4 conformance (TVD of assigned vs judged shares over decided samples) and mean agreement."""
    distances, agreements = [], []
    for prop in fixture.properties:
        decided = [i for i, j in enumerate(judged) if j[prop.name].value is not None]
        assigned = Counter(dict.fromkeys(prop.values, 0)) | Counter(labels[i][prop.name] for i in decided)
        evaluated = Counter(dict.fromkeys(prop.values, 0)) | Counter(judged[i][prop.name].value for i in decided)
        distances.append(total_variation_distance(shares(assigned), shares(evaluated)))
        right = sum(labels[i][prop.name] == judged[i][prop.name].value for i in decided)
        agreements.append(100.0 * right / len(decided))
    return conformance_score(distances), sum(agreements) / len(agreements)


# Known failure, kept visible: on support_tickets the sentiment rule's decided values lean negative (23 judged vs
# 18 labelled, neutral 15 vs 23), so a random relabelling moves the labelled marginals towards the judged ones and
# the TVD score rises (93.8 vs 92.0) although agreement falls. Fix the bias, not this test.
_MARGINAL_BIAS = pytest.mark.xfail(strict=True, reason="sentiment marginal bias on support_tickets (see comment)")


@pytest.mark.parametrize(
    "domain", [pytest.param(d, marks=_MARGINAL_BIAS) if d == "support_tickets" else d for d in sorted(FIXTURES)]
)
def test_it_scores_corrupted_labels_lower(domain: str) -> None:
    fixture = FIXTURES[domain]
    judged = [embedded.classify(r.content, fixture.properties) for r in fixture.rows]
    faithful = [dict(r.labels) for r in fixture.rows]
    corrupted = [dict(labels) for labels in faithful]
    rng = random.Random(13)
    for i in rng.sample(range(len(corrupted)), len(corrupted) // 3):
        for prop in fixture.properties:
            corrupted[i][prop.name] = rng.choice([v for v in prop.values if v != corrupted[i][prop.name]])

    score, agreement = _conformance_and_agreement(fixture, faithful, judged)
    corrupted_score, corrupted_agreement = _conformance_and_agreement(fixture, corrupted, judged)
    # The TVD score compares marginals only, so on near-uniform labels a random relabelling barely moves it
    # (margins of 3-14 points at this seed, and one seed reverses recipes); the agreement falls by 14-33.
    assert corrupted_score < score
    assert corrupted_agreement <= agreement - 10
