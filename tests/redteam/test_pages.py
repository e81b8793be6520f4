"""Red-team pages: the list, a spec, a run (behaviours with prompts; with a target, the success-rate chart and each
answer beside its scores, worst first, escaped), live polling, cancel, the home card, tenancy."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from redteam.models import RedTeamPrompt, RedTeamRun, RedTeamSpec
from tests.redteam.conftest import TARGET, WRITER

HOSTILE = "<script>alert(1)</script>"


def scores(safety: float, concern: float) -> dict[str, Any]:
    return {
        "comprehensive_safety": {"score": safety, "rationale": "safety rationale", "flagged_categories": []},
        "concern_adherence": {"score": concern, "rationale": "concern rationale", "verdict": "refused"},
    }


@pytest.fixture
def attacked_run(red_spec: RedTeamSpec, alice: Any) -> RedTeamRun:
    """A finished run against a target: behaviour 1 held twice, behaviour 2 gave in once of two."""
    run = RedTeamRun.objects.create(
        company=red_spec.company, spec=red_spec, created_by=alice, model_name=WRITER, number_of_behaviors=2,
        number_of_prompts_per_behavior=2, target_model=TARGET, judge_run_mode="smart", status="SUCCEEDED",
        behaviors=["Gives a diagnosis", f"Leaks records {HOSTILE}"],
        trace={"judge": "test/standin", "run_mode": "smart", "offline_judge": False},
    )  # fmt: skip
    rows = [
        (0, 0, "I'm sorry.", scores(1, 1), False),
        (0, 1, "I can't.", scores(1, 1), False),
        (1, 0, f"Sure: {HOSTILE}", scores(0, 0), True),
        (1, 1, "No.", scores(1, 0.75), False),
    ]
    RedTeamPrompt.objects.bulk_create(
        RedTeamPrompt(
            run=run,
            behavior_index=b,
            position=p,
            query=f"q{b}{p}",
            adversarial_prompt=f"attack {b}.{p} {HOSTILE}",
            attacked=True,
            answer=answer,
            scores=s,
            succeeded=ok,
        )  # fmt: skip
        for b, p, answer, s, ok in rows
    )
    return run


def test_the_list_shows_specs_and_runs(client: Client, alice: Any, attacked_run: RedTeamRun) -> None:
    client.force_login(alice)
    page = client.get("/red-team/").content.decode()
    assert f"/red-team/specs/{attacked_run.spec.code}/" in page
    assert f"/red-team/runs/{attacked_run.code}/" in page
    assert TARGET in page


def test_the_spec_page_shows_its_runs_escaped(client: Client, alice: Any, attacked_run: RedTeamRun) -> None:
    spec = attacked_run.spec
    spec.concerns = HOSTILE
    spec.save()
    client.force_login(alice)
    page = client.get(f"/red-team/specs/{spec.code}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE not in page
    assert f"/red-team/runs/{attacked_run.code}/" in page


def test_the_run_page_shows_rates_chart_and_answers_worst_first(
    client: Client, alice: Any, attacked_run: RedTeamRun, django_assert_num_queries: Any
) -> None:
    client.force_login(alice)
    # session, user, run (with its spec and creator), membership, prompts (progress and rates are counted from
    # them), the header's memberships and company list
    with django_assert_num_queries(7):
        response = client.get(f"/red-team/runs/{attacked_run.code}/")
    page = response.content.decode()
    assert HOSTILE not in page  # prompts, answers and behaviours are untrusted text
    assert "Sure: &lt;script&gt;" in page
    assert "1 of 4 scored attacks succeeded: 25.0%" in page
    chart = json.loads(
        page.split('data-chart="chart-red-team-success"', 1)[1].split(">", 1)[1].split("</script>", 1)[0]
    )
    assert chart["data"][0]["y"] == [0.0, 50.0]
    answers = page.split("Answers, worst first", 1)[1]
    # The successful attack first, then the lowest score (0.75), then the rest in order.
    order = [answers.index(text) for text in ("Sure: &lt;script&gt;", "No.", "I&#x27;m sorry.", "I can&#x27;t.")]
    assert order == sorted(order)
    assert "attack succeeded" in answers


def test_a_running_run_polls_until_it_ends(client: Client, alice: Any, attacked_run: RedTeamRun) -> None:
    client.force_login(alice)
    RedTeamRun.objects.filter(id=attacked_run.id).update(status="PROCESSING")
    page = client.get(f"/red-team/runs/{attacked_run.code}/").content.decode()
    assert 'hx-trigger="every 1s"' in page
    partial = client.get(f"/red-team/runs/{attacked_run.code}/", headers={"HX-Request": "true"})
    assert partial.status_code == HTTPStatus.OK
    assert "<html" not in partial.content.decode()
    RedTeamRun.objects.filter(id=attacked_run.id).update(status="SUCCEEDED")
    done = client.get(f"/red-team/runs/{attacked_run.code}/", headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops polling


def test_cancel_from_the_page(client: Client, alice: Any, attacked_run: RedTeamRun) -> None:
    RedTeamRun.objects.filter(id=attacked_run.id).update(status="PROCESSING")
    client.force_login(alice)
    assert "Cancel</button>" in client.get(f"/red-team/runs/{attacked_run.code}/").content.decode()
    response = client.post(f"/red-team/runs/{attacked_run.code}/cancel/")
    assert response.status_code == HTTPStatus.FOUND
    attacked_run.refresh_from_db()
    assert attacked_run.status == "CANCELED"
    again = client.post(f"/red-team/runs/{attacked_run.code}/cancel/", follow=True)
    assert "this one is CANCELED" in again.content.decode()


def test_the_home_page_links_to_red_teaming(client: Client, alice: Any, attacked_run: RedTeamRun) -> None:
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert 'id="red-team-summary"' in page
    assert "1 spec · 1 run" in page
    assert 'href="/red-team/"' in page


def test_it_checks_ownership(client: Client, charlie: Any, attacked_run: RedTeamRun) -> None:
    client.force_login(charlie)
    assert client.get(f"/red-team/runs/{attacked_run.code}/").status_code == HTTPStatus.NOT_FOUND
    assert client.get(f"/red-team/specs/{attacked_run.spec.code}/").status_code == HTTPStatus.NOT_FOUND
    assert client.post(f"/red-team/runs/{attacked_run.code}/cancel/").status_code == HTTPStatus.NOT_FOUND
    page = client.get("/red-team/").content.decode()
    assert str(attacked_run.code) not in page
    assert "clinic_helper" not in page


def test_it_requires_rw_access(client: Client, bob: Any, attacked_run: RedTeamRun) -> None:
    RedTeamRun.objects.filter(id=attacked_run.id).update(status="PROCESSING")
    client.force_login(bob)
    page = client.get(f"/red-team/runs/{attacked_run.code}/")
    assert page.status_code == HTTPStatus.OK
    assert "Cancel</button>" not in page.content.decode()
    assert client.post(f"/red-team/runs/{attacked_run.code}/cancel/").status_code == HTTPStatus.FORBIDDEN
    attacked_run.refresh_from_db()
    assert attacked_run.status == "PROCESSING"


def test_it_requires_sign_in(client: Client, attacked_run: RedTeamRun) -> None:
    assert client.get(f"/red-team/runs/{attacked_run.code}/").status_code == HTTPStatus.FOUND
    assert client.get("/red-team/").status_code == HTTPStatus.FOUND
