"""Per-property rationales: the embedded judge's factual line, the LLM judge's sentence, stored, shown escaped."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from evaluations.classify import PROMPT_VERSION, RATIONALES, answer_schema, embedded_answer, validate_answer
from evaluations.models import SampleClassification
from llm.base import BadReply
from runs.models import Run
from runs.specfile import Property


def _props(*names: str) -> list[Property]:
    return [Property(name=n, values=["yes", "no"], base_distribution={"yes": 50, "no": 50}) for n in names]


def test_the_schema_stays_strict_with_the_rationales() -> None:
    schema = answer_schema(_props("a", "b"))
    assert schema["required"] == ["a", "b", RATIONALES]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["a"]["enum"] == ["yes", "no"]
    nested = schema["properties"][RATIONALES]
    assert nested["required"] == ["a", "b"]
    assert nested["additionalProperties"] is False
    assert PROMPT_VERSION == "classify-v2"


def test_a_property_named_rationales_gets_none() -> None:
    schema = answer_schema(_props(RATIONALES, "b"))
    assert schema["properties"][RATIONALES]["enum"] == ["yes", "no"]
    assert schema["required"] == [RATIONALES, "b"]
    answer = validate_answer({RATIONALES: "yes", "b": "no"}, _props(RATIONALES, "b"))
    assert answer == {"values": {RATIONALES: "yes", "b": "no"}, "rationales": {}}


def test_rationales_are_optional_and_cut_but_values_stay_strict() -> None:
    props = _props("a", "b")
    answer = validate_answer({"a": "yes", "b": "no", RATIONALES: {"a": "  x" * 200, "b": 3}}, props)
    assert answer["values"] == {"a": "yes", "b": "no"}
    assert list(answer["rationales"]) == ["a"]
    assert len(answer["rationales"]["a"]) == 300
    assert validate_answer({"a": "yes", "b": "no"}, props)["rationales"] == {}
    assert validate_answer({"a": "yes", "b": "no", RATIONALES: "nope"}, props)["rationales"] == {}
    with pytest.raises(BadReply):
        validate_answer({"a": "maybe", "b": "no", RATIONALES: {"a": "x", "b": "y"}}, props)


def test_the_embedded_judge_says_how_it_decided() -> None:
    props = [
        Property(name="sentiment", values=["positive", "negative", "neutral"], base_distribution={}),
        Property(name="topic", values=["shipping", "billing"], base_distribution={}, description="a parcel (shipping)"),
    ]
    answer = embedded_answer("This is terrible. The order arrived broken and I want a refund.", props)
    rationales = answer[RATIONALES]
    assert answer["sentiment"] == "negative"
    assert rationales["sentiment"].startswith("lexicon: negative (compound -")
    # Topical: the best and runner-up value with their scores, or why it stayed undecided.
    assert rationales["topic"].startswith(("embeddings: best", "undecided: "))
    assert "runner-up" in rationales["topic"] or "debiased" in rationales["topic"]
    gibberish = embedded_answer("zxqv plorf grunth", props)
    assert "sentiment" not in gibberish
    assert gibberish[RATIONALES]["sentiment"].startswith("undecided: 0% of the words are known")


def test_the_sample_page_shows_rationales_escaped(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    row = evaluation.classifications.select_related("sample").order_by("sample_id").first()
    assert set(row.rationales) == {"sentiment", "priority"}
    SampleClassification.objects.filter(pk=row.pk).update(rationales={"sentiment": "<b>loud</b> & clear"})
    client.force_login(alice)
    response = client.get(f"/evaluations/{evaluation.code}/samples/{row.sample.code}/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "&lt;b&gt;loud&lt;/b&gt; &amp; clear" in page
    assert "<b>loud</b>" not in page
    values = {v["name"]: v["rationale"] for v in response.context["values"]}
    assert values == {"sentiment": "<b>loud</b> & clear", "priority": ""}


def test_cached_results_keep_their_rationales(run_a: Run, evaluate: Any) -> None:
    first = evaluate(run_a)
    second = evaluate(run_a)
    cached = second.classifications.order_by("sample_id")
    assert all(row.from_cache for row in cached)
    assert [r.rationales for r in cached] == [r.rationales for r in first.classifications.order_by("sample_id")]
