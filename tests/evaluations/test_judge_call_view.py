"""Why the judge said so (issue #25): the sample page shows the classification call as the ledger recorded it, from
the real Anthropic SDK over an httpx transport; what is kept is bounded, and LLM_STORE_PROMPTS turns the text off."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from evaluations.classify import PROMPT_VERSION, RATIONALES
from evaluations.models import Evaluation, SampleClassification
from llm.ledger import STORED_TEXT_MAX_CHARS, bounded
from llm.models import JudgeCall
from runs.models import Run
from runs.services import run_import
from tests.llm.fakes import first_values

MODEL = "anthropic/claude-haiku-4-5"


def _page(client: Client, evaluation: Evaluation, sample_code: Any, query: str = "") -> Any:
    return client.get(f"/evaluations/{evaluation.code}/samples/{sample_code}/{query}")


def _loud(schema: dict[str, Any], user: str) -> dict[str, Any]:
    """A judge whose free text carries markup: model output is untrusted and must be shown as text."""
    answer = first_values(schema, user)
    answer[RATIONALES] = {name: f"<img src=x onerror=alert(1)> {name}" for name in answer[RATIONALES]}
    return answer


def test_the_sample_page_shows_the_call_as_sent_escaped(
    client: Client, alice: Any, run_a: Run, evaluate: Any, fake_anthropic: Any
) -> None:
    fake_anthropic.answer = _loud
    evaluation = evaluate(run_a, MODEL)
    assert evaluation.status == Evaluation.Status.SUCCEEDED
    row = evaluation.classifications.select_related("sample").order_by("sample_id").first()
    call = JudgeCall.objects.get(item_id=row.sample_id, subject_id=evaluation.id)
    # What the SDK put on the wire is what the ledger kept.
    sent = next(r for r in fake_anthropic.requests if row.sample.content in r["messages"][0]["content"])
    assert call.user_prompt == sent["messages"][0]["content"]
    assert call.system_prompt == "".join(block["text"] for block in sent["system"])
    assert json.loads(call.raw_answer)[RATIONALES]["sentiment"] == "<img src=x onerror=alert(1)> sentiment"
    assert call.prompt_version == PROMPT_VERSION

    client.force_login(alice)
    response = _page(client, evaluation, row.sample.code)
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert 'id="judge-call"' in page
    assert '<details class="judge-call"' in page
    assert PROMPT_VERSION in page
    assert f"{call.input_tokens} in, {call.cache_read_tokens} cached, {call.output_tokens} out" in page
    assert '<dd id="judge-call-retries">0</dd>' in page
    assert "Customer 1:" in page
    assert "&lt;sample&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page


def test_retries_are_each_shown(client: Client, alice: Any, run_a: Run, evaluate: Any, fake_anthropic: Any) -> None:
    fake_anthropic.script.append(("status", 429, {"retry-after": "0"}))
    evaluation = evaluate(run_a, MODEL)
    retried = JudgeCall.objects.get(subject_id=evaluation.id, attempt=2)
    sample = run_a.samples.get(id=retried.item_id)
    client.force_login(alice)
    page = _page(client, evaluation, sample.code).content.decode()
    assert '<dd id="judge-call-retries">1</dd>' in page
    assert 'data-attempt="1"' in page
    assert 'data-attempt="2"' in page
    assert "rate_limited" in page


def test_a_cached_answer_says_no_call_was_made(
    client: Client, alice: Any, run_a: Run, evaluate: Any, fake_anthropic: Any
) -> None:
    evaluate(run_a, MODEL)
    again = evaluate(run_a, MODEL)
    row = again.classifications.select_related("sample").first()
    assert row.from_cache
    client.force_login(alice)
    page = _page(client, again, row.sample.code).content.decode()
    assert "Answered from the result cache" in page
    assert '<details class="judge-call"' not in page


def test_storing_the_text_can_be_turned_off(
    client: Client, alice: Any, run_a: Run, evaluate: Any, fake_anthropic: Any, settings: Any
) -> None:
    settings.LLM_STORE_PROMPTS = False
    evaluation = evaluate(run_a, MODEL)
    calls = JudgeCall.objects.filter(subject_id=evaluation.id, purpose="classify")
    assert calls.count() == 12
    # Numbers only: no prompt, no answer, anywhere in the ledger.
    assert not calls.exclude(system_prompt="", user_prompt="", raw_answer="").exists()
    assert calls.filter(input_tokens__gt=0, prompt_version=PROMPT_VERSION).count() == 12
    row = evaluation.classifications.select_related("sample").first()
    client.force_login(alice)
    page = _page(client, evaluation, row.sample.code).content.decode()
    assert "The text of this call was not kept" in page
    assert row.sample.content in page  # the sample's own content section still shows it


def test_what_is_kept_is_bounded(alice: Any, company_a: Any, spec_a: Any, evaluate: Any, fake_anthropic: Any) -> None:
    assert bounded("abc", 5) == "abc"
    assert bounded("abcdefgh", 5) == "abcde\n… [cut: 3 more characters not kept]"
    long = "Customer: this is fine. " * 2000  # 48,000 characters
    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=[
        {"identifier": "long", "content": long, "properties": {"sentiment": "neutral", "priority": "low"}},
    ])  # fmt: skip
    evaluation = evaluate(run, MODEL)
    call = JudgeCall.objects.get(subject_id=evaluation.id, purpose="classify")
    assert len(call.user_prompt) < STORED_TEXT_MAX_CHARS + 100
    assert call.user_prompt.endswith("more characters not kept]")


def test_the_embedded_judge_call_is_shown_too(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a, "local/embeddings")
    row = evaluation.classifications.select_related("sample").first()
    client.force_login(alice)
    page = _page(client, evaluation, row.sample.code).content.decode()
    assert "offline/local/embeddings" in page
    assert "Raw answer" in page


def test_it_checks_ownership(client: Client, charlie: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    row = evaluation.classifications.select_related("sample").first()
    client.force_login(charlie)
    assert _page(client, evaluation, row.sample.code).status_code == HTTPStatus.NOT_FOUND
    url = f"/evaluations/{evaluation.code}/samples/{row.sample.code}/correct/"
    assert client.get(url, headers={"HX-Request": "true"}).status_code == HTTPStatus.NOT_FOUND


def test_it_requires_rw_access(client: Client, bob: Any, run_a: Run, evaluate: Any) -> None:
    """bob reads the judge call but gets no correction forms, and the forms' URL refuses him."""
    evaluation = evaluate(run_a)
    row = evaluation.classifications.select_related("sample").first()
    client.force_login(bob)
    page = _page(client, evaluation, row.sample.code).content.decode()
    assert 'id="judge-call"' in page
    assert 'id="correct"' not in page
    url = f"/evaluations/{evaluation.code}/samples/{row.sample.code}/correct/"
    assert client.get(url, headers={"HX-Request": "true"}).status_code == HTTPStatus.FORBIDDEN


# --- Previous / next within the filtered set ---


def _codes(evaluation: Evaluation, **filters: Any) -> list[Any]:
    rows = SampleClassification.objects.filter(evaluation=evaluation, **filters).order_by("sample_id")
    return list(rows.values_list("sample__code", flat=True))


@pytest.mark.parametrize("query", ["", "?sort=-position", "?property=sentiment&assigned=negative"])
def test_previous_and_next_follow_the_tables_filters(
    client: Client, alice: Any, run_a: Run, evaluate: Any, query: str
) -> None:
    evaluation = evaluate(run_a)
    if "assigned" in query:
        codes = [
            c for c in _codes(evaluation)
            if run_a.samples.get(code=c).properties["sentiment"] == "negative"
            and SampleClassification.objects.get(evaluation=evaluation, sample__code=c).status == "ok"
        ]  # fmt: skip
    else:
        codes = _codes(evaluation)[:: -1 if "-position" in query else 1]
    assert len(codes) >= 3
    client.force_login(alice)
    response = _page(client, evaluation, codes[1], query)
    page = response.content.decode()
    carried = query.replace("&", "&amp;")
    assert f'rel="prev" href="/evaluations/{evaluation.code}/samples/{codes[0]}/{carried}"' in page
    assert f'rel="next" href="/evaluations/{evaluation.code}/samples/{codes[2]}/{carried}"' in page
    assert f"2 of {len(codes)}" in page
    # The ends have no link on the far side.
    first = _page(client, evaluation, codes[0], query).content.decode()
    assert 'rel="prev"' not in first
    assert 'rel="next"' in first
    last = _page(client, evaluation, codes[-1], query).content.decode()
    assert 'rel="next"' not in last
    assert 'rel="prev"' in last


def test_the_table_links_carry_its_filters(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    page = client.get(f"/evaluations/{evaluation.code}/?sort=-position&q=Customer&partial=x").content.decode()
    first = _codes(evaluation)[-1]
    assert f'href="/evaluations/{evaluation.code}/samples/{first}/?q=Customer&amp;sort=-position"' in page


@pytest.mark.parametrize(
    "query",
    ["?sort=bogus", "?page=abc", "?property=%00", "?size=-1", "?judged=nope&property=sentiment", "?q=" + "x" * 500],
)
def test_bad_filters_on_a_sample_page_are_ignored(
    client: Client, alice: Any, run_a: Run, evaluate: Any, query: str
) -> None:
    evaluation = evaluate(run_a)
    code = _codes(evaluation)[0]
    client.force_login(alice)
    response = _page(client, evaluation, code, query)
    assert response.status_code in {HTTPStatus.OK, HTTPStatus.BAD_REQUEST}
