"""The embedded judge on its labelled fixtures: deterministic, offline, abstaining, and measured (DESIGN.md §5)."""

from __future__ import annotations

import inspect
import random
import socket
import statistics
from collections import Counter
from typing import Any

import pytest

from benchmarks.embedded_judge import Row, learning_rows, load_fixtures, measure, meets_target
from evaluations.statistics import conformance_score, shares, total_variation_distance
from llm import embedded, embedded_plan
from runs.specfile import Property

FIXTURES = {f.domain: f for f in load_fixtures()}

# Held-out figures with the committed thresholds (benchmarks/embedded_judge.py), each held-out split judged as one
# run: None = declined (the judge says the property needs an LLM judge or human reviews), else the floors
# (agreement on decided %, coverage %) rounded down from the measured figures.
EXPECTED: dict[tuple[str, str], tuple[int, int] | None] = {
    ("code_snippets", "language"): (94, 97),
    ("news", "section"): (94, 92),
    ("product_reviews", "category"): (93, 86),
    ("support_tickets", "topic"): (96, 84),
    ("product_reviews", "sentiment"): None,
    ("support_tickets", "sentiment"): None,
    ("recipes", "cuisine"): None,
    ("recipes", "course"): None,
    ("films", "genre"): None,
    ("films", "setting"): None,
    ("job_ads", "field"): None,
    ("job_ads", "contract"): None,
}


def test_every_fixture_property_is_pinned() -> None:
    assert set(EXPECTED) == {(d, p.name) for d, f in FIXTURES.items() for p in f.properties}


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


@pytest.mark.parametrize(("domain", "prop"), sorted(EXPECTED))
def test_it_is_right_on_what_it_decides_or_declines(domain: str, prop: str) -> None:
    """Issue #20: never confidently wrong, on every property of every domain's held-out split."""
    figures = measure(FIXTURES[domain], FIXTURES[domain].split("heldout"))[prop]
    assert meets_target(figures)
    expected = EXPECTED[domain, prop]
    if expected is None:
        assert figures.mode == "declined"
        assert figures.decided == 0
        assert figures.reason.startswith(embedded_plan.DECLINED_REASON)
    else:
        assert figures.mode != "declined"
        assert figures.agreement_decided >= expected[0]
        assert figures.coverage >= expected[1]


@pytest.mark.parametrize("labels", [20, 40])
@pytest.mark.parametrize("domain", sorted(FIXTURES))
def test_labels_never_make_it_confidently_wrong(domain: str, labels: int) -> None:
    """Taught by the tuning rows' labels, it still meets the target on the held-out rows."""
    taught = learning_rows(FIXTURES[domain], labels)
    if taught is None:
        pytest.skip(f"{domain}'s tuning split has fewer than {labels} rows")
    for figures in measure(FIXTURES[domain], FIXTURES[domain].split("heldout"), taught).values():
        assert meets_target(figures)


def test_enough_right_labels_take_up_a_declined_property() -> None:
    """job_ads field: declined from the held-out texts alone; 40 labels show the centroids right often enough."""
    fixture = FIXTURES["job_ads"]
    heldout = fixture.split("heldout")
    assert measure(fixture, heldout)["field"].mode == "declined"
    figures = measure(fixture, heldout, learning_rows(fixture, 40))["field"]
    assert figures.mode == "taught"
    assert figures.agreement_decided >= 85  # measured 87.9% (29 of 33)
    assert figures.coverage >= 80  # measured 82.5%


def test_wrong_labels_make_it_decline_what_it_decided() -> None:
    """The labels outrank the label-free evidence: taught that every ticket is about billing, it declines topic."""
    fixture = FIXTURES["support_tickets"]
    rows = fixture.split("heldout")
    wrong = [Row(r.identifier, r.content, r.labels | {"topic": "billing"}, r.split) for r in fixture.split("tune")]
    assert measure(fixture, rows)["topic"].mode == "prototypes"
    figures = measure(fixture, rows, wrong[:20])["topic"]
    assert figures.mode == "declined"
    assert "human labels" in figures.reason


def test_a_plan_reads_only_texts() -> None:
    """The plan is a function of the texts (and taught labels): the samples' assigned values cannot reach it."""
    fixture = FIXTURES["support_tickets"]
    texts = [r.content for r in fixture.rows]
    assert list(inspect.signature(embedded_plan.make_plan).parameters) == ["texts", "properties", "taught"]
    assert embedded_plan.make_plan(texts, fixture.properties) == embedded_plan.make_plan(texts, fixture.properties)


def _conformance_and_agreement(
    properties: list[Property], labels: list[dict[str, str]], judged: list[dict[str, embedded.Judgement]]
) -> tuple[float, float]:
    """DESIGN.md §4 conformance (TVD of assigned vs judged shares over decided samples) and mean agreement."""
    distances, agreements = [], []
    for prop in properties:
        decided = [i for i, j in enumerate(judged) if j[prop.name].value is not None]
        assigned = Counter(dict.fromkeys(prop.values, 0)) | Counter(labels[i][prop.name] for i in decided)
        evaluated = Counter(dict.fromkeys(prop.values, 0)) | Counter(judged[i][prop.name].value for i in decided)
        distances.append(total_variation_distance(shares(assigned), shares(evaluated)))
        right = sum(labels[i][prop.name] == judged[i][prop.name].value for i in decided)
        agreements.append(100.0 * right / len(decided))
    return conformance_score(distances), sum(agreements) / len(agreements)


SEEDS = 200


@pytest.mark.parametrize("domain", sorted(FIXTURES))
def test_corrupted_labels_score_lower_on_average(domain: str) -> None:
    """Relabel a third of the samples at random: the conformance score falls on average over the seeds, and in
    most of them, not in all (issue #27: one seed proved nothing). The TVD score compares marginals only, so a
    random relabelling of near-uniform labels can leave them as close or closer; agreement falls every time.

    Measured (200 seeds, the decided properties of each whole fixture judged as one run): mean drop 3.6-7.1
    points, a drop in 77% (product_reviews) to 99% (news) of the seeds, agreement down by at least 17 points.
    """
    fixture = FIXTURES[domain]
    plan = embedded_plan.prepared(embedded_plan.make_plan([r.content for r in fixture.rows], fixture.properties))
    judged = [embedded.classify(r.content, fixture.properties, plan) for r in fixture.rows]
    decided = [p for p in fixture.properties if any(j[p.name].value is not None for j in judged)]
    if not decided:
        pytest.skip(f"the judge declines every property of {domain}: there is no score to compare")
    faithful = [dict(r.labels) for r in fixture.rows]
    score, agreement = _conformance_and_agreement(decided, faithful, judged)
    drops = []
    for seed in range(SEEDS):
        rng = random.Random(seed)
        corrupted = [dict(labels) for labels in faithful]
        for i in rng.sample(range(len(corrupted)), len(corrupted) // 3):
            for prop in fixture.properties:
                corrupted[i][prop.name] = rng.choice([v for v in prop.values if v != corrupted[i][prop.name]])
        corrupted_score, corrupted_agreement = _conformance_and_agreement(decided, corrupted, judged)
        drops.append(score - corrupted_score)
        assert corrupted_agreement <= agreement - 10
    mean = statistics.fmean(drops)
    assert mean - 1.96 * statistics.stdev(drops) / len(drops) ** 0.5 > 0  # the mean drop is above zero (95%)
    assert sum(d > 0 for d in drops) / SEEDS >= 0.7
