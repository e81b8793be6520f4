"""The regression gate (issue #25): Newcombe's interval, the verdict against the GATE_* thresholds, `manage.py gate`'s
exit codes on a regressed and a non-regressed pair, and the API's compare; an evaluation's name and note."""

from __future__ import annotations

import io
import json
from http import HTTPStatus
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from evaluations.models import Evaluation
from evaluations.statistics import newcombe_difference
from runs.models import Run
from runs.services import run_import, spec_create
from tests.conftest import SPEC_YAML, make_rows
from tests.evaluations.test_compare_diff import set_sentiment, wrong

EVALUATIONS = "/api/dataframer/evaluations/"


def test_newcombe_matches_the_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (b): 56/70 vs 48/80, method 10 gives 0.0524 to 0.3339.
    low, high = newcombe_difference(48, 80, 56, 70)  # type: ignore[misc]
    assert (round(low, 2), round(high, 2)) == (5.24, 33.39)
    assert newcombe_difference(0, 0, 1, 2) is None


@pytest.fixture
def pair(alice: Any, company_a: Any, spec_a: Any, evaluate: Any) -> dict[str, Evaluation]:
    """A baseline judged right on all 60 samples, a candidate just as good, and one wrong on 30 of them."""
    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(60))
    baseline = set_sentiment(evaluate(run), {})
    same = set_sentiment(evaluate(run), {"sample_1": wrong("sample_1")})
    regressed = set_sentiment(evaluate(run), {f"sample_{i}": wrong(f"sample_{i}") for i in range(1, 31)})
    return {"baseline": baseline, "same": same, "regressed": regressed}


def gate(company: str, baseline: Any, candidate: Any, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = ["--company", company, "--baseline", str(baseline), "--candidate", str(candidate), *extra]
    try:
        call_command("gate", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_the_gate_exits_non_zero_on_a_regression_only(pair: dict[str, Evaluation], company_a: Any) -> None:
    baseline = pair["baseline"].code
    code, out, _ = gate(company_a.name, baseline, pair["same"].code)
    assert code == 0
    assert out.strip().endswith("verdict: PASS")
    code, out, _ = gate(company_a.name, baseline, pair["regressed"].code)
    assert code == 1
    assert "FAIL agreement_drop sentiment: +50.00 (limit 5)" in out
    assert out.strip().endswith("verdict: REGRESSION")
    code, out, _ = gate(company_a.name, baseline, pair["regressed"].code, "--json")
    assert code == 1
    assert json.loads(out)["verdict"] == "REGRESSION"


def test_the_gate_thresholds_are_settings(pair: dict[str, Evaluation], company_a: Any, settings: Any) -> None:
    settings.GATE_MAX_AGREEMENT_DROP = 60
    settings.GATE_MAX_TVD_RISE = 60
    settings.GATE_MAX_SCORE_DROP = 60
    code, out, _ = gate(company_a.name, pair["baseline"].code, pair["regressed"].code)
    assert code == 0, out


def test_the_gate_says_why_it_cannot_run(
    pair: dict[str, Evaluation], company_a: Any, company_b: Any, alice: Any, run_a: Run
) -> None:
    baseline = pair["baseline"].code
    assert gate("No such company", baseline, baseline)[0] == 2
    assert gate(company_a.name, "not-an-id", baseline)[0] == 2
    code, _, err = gate(company_b.name, baseline, pair["same"].code)  # another company's evaluations
    assert code == 2
    assert "no evaluation" in err
    pending = Evaluation.objects.create(company=company_a, run=run_a, requested_model="local/embeddings")
    code, _, err = gate(company_a.name, baseline, pending.code)
    assert (code, "not finished" in err) == (2, True)


def test_the_api_compare_gives_the_changes_and_the_verdict(
    pair: dict[str, Evaluation], alice_api: APIClient, bob_api: APIClient, charlie_api: APIClient
) -> None:
    baseline, regressed = pair["baseline"], pair["regressed"]
    url = f"{EVALUATIONS}{regressed.code}/compare/"
    response = bob_api.get(url, {"baseline": str(baseline.code)})  # a viewer may read it
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["verdict"] == "REGRESSION"
    [sentiment] = [p for p in body["properties"] if p["property_name"] == "sentiment"]
    assert sentiment["agreement"]["delta"] == -50.0
    assert sentiment["agreement"]["significant"] is True
    assert sentiment["agreement"]["interval"][1] < 0
    assert (
        alice_api.get(f"{EVALUATIONS}{pair['same'].code}/compare/", {"baseline": str(baseline.code)}).json()["verdict"]
        == "PASS"
    )
    assert alice_api.get(url).status_code == HTTPStatus.BAD_REQUEST
    assert alice_api.get(url, {"baseline": "nope"}).status_code == HTTPStatus.BAD_REQUEST
    assert alice_api.get(url, {"baseline": "\x00"}).status_code == HTTPStatus.BAD_REQUEST
    unknown = "00000000-0000-0000-0000-000000000000"
    assert alice_api.get(url, {"baseline": unknown}).status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(url, {"baseline": str(baseline.code)}).status_code == HTTPStatus.NOT_FOUND


def test_the_api_compare_refuses_another_spec_or_unfinished(
    pair: dict[str, Evaluation], alice: Any, company_a: Any, alice_api: APIClient, run_a: Run, evaluate: Any
) -> None:
    other_spec = spec_create(company=company_a, created_by=alice, name="Other", content_yaml=SPEC_YAML)
    other = evaluate(run_import(company=company_a, created_by=alice, spec=other_spec, rows=make_rows(4)))
    url = f"{EVALUATIONS}{pair['baseline'].code}/compare/"
    assert alice_api.get(url, {"baseline": str(other.code)}).status_code == HTTPStatus.BAD_REQUEST
    pending = Evaluation.objects.create(company=company_a, run=pair["baseline"].run, requested_model="local/x")
    assert alice_api.get(url, {"baseline": str(pending.code)}).status_code == HTTPStatus.BAD_REQUEST


def test_it_checks_ownership(run_a: Run, evaluate: Any, charlie_api: APIClient) -> None:
    evaluation = evaluate(run_a)
    assert charlie_api.get(f"{EVALUATIONS}{evaluation.code}/meta/").status_code == HTTPStatus.NOT_FOUND
    response = charlie_api.patch(f"{EVALUATIONS}{evaluation.code}/meta/", {"name": "x"}, format="json")
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_it_requires_rw_access(run_a: Run, evaluate: Any, bob_api: APIClient) -> None:
    evaluation = evaluate(run_a)
    assert bob_api.get(f"{EVALUATIONS}{evaluation.code}/meta/").status_code == HTTPStatus.OK
    response = bob_api.patch(f"{EVALUATIONS}{evaluation.code}/meta/", {"name": "x"}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_the_api_names_an_evaluation(run_a: Run, evaluate: Any, alice_api: APIClient) -> None:
    evaluation = evaluate(run_a)
    url = f"{EVALUATIONS}{evaluation.code}/meta/"
    body = alice_api.get(url).json()
    assert body == {
        "id": str(evaluation.code),
        "name": "",
        "note": "",
        "display_name": f"{run_a} · local/embeddings",
    }
    response = alice_api.patch(url, {"name": " Baseline <b>v1</b> ", "note": "before the prompt change"}, format="json")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["display_name"] == "Baseline <b>v1</b>"
    assert alice_api.patch(url, {"note": "only the note"}, format="json").json()["name"] == "Baseline <b>v1</b>"
    for bad in ({"name": ["a list"]}, {"name": "x" * 201}, {"note": {"a": 1}}):
        assert alice_api.patch(url, bad, format="json").status_code == HTTPStatus.BAD_REQUEST, bad
    response = alice_api.patch(url, "{not json", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    # The Dataframer evaluation keeps its documented keys.
    assert "name" not in alice_api.get(f"{EVALUATIONS}{evaluation.code}/").json()
