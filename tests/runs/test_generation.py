"""Run generation (runs.create): the official client in strict mode, bad input, the plan stored on the samples,
failures with reasons, the conformance filter, resume after a stopped worker (in process, and a real worker killed
mid-run), and cancel stopping the calls. The LLM is played by the fakes (tests/llm/fakes.py) or the stand-in."""

from __future__ import annotations

import json
import time
from collections import Counter
from http import HTTPStatus
from typing import Any

import pytest
from dataframer import Dataframer
from django.db.models import Count, Sum

from benchmarks.standin import StandIn
from companies.models import Company
from llm.models import JudgeCall
from runs import assignment, generation
from runs.models import GenerationFailure, Run, Sample, Spec
from runs.specfile import parse_spec
from tests.conftest import SPEC_YAML, STANDIN_MODEL
from tests.llm.fakes import sample_text
from work import dispatch, runner
from work.models import WorkItem

RUNS = "/api/dataframer/runs/"
SONNET = "anthropic/claude-sonnet-4-6"


class WorkerStopped(BaseException):
    """What a killed worker looks like from inside: not an Exception, nothing catches it."""


def assigned_in(user: str) -> dict[str, str]:
    """The values a write request asks for (runs/writing.py write_request puts them as JSON after the first line)."""
    return json.loads(user.split("\n", 1)[1].split("\n\nA previous", 1)[0])


def writes_as_told(schema: dict[str, Any], user: str) -> dict[str, Any]:
    """A writer that writes exactly its assigned values, and a judge that reads the values a text names."""
    if "content" in schema["properties"]:
        values = assigned_in(user)
        return {
            "title": f"A {values['sentiment']} one",
            "content": f"A {values['sentiment']} {values['priority']} chat.",
        }
    text = sample_text(user)
    # One value per property (the judge's answer also offers optional rationales, which carry no enum).
    return {
        name: next(v for v in prop["enum"] if v in text.split())
        for name, prop in schema["properties"].items()
        if "enum" in prop
    }


def generate(company: Company, user: Any, spec: Spec, n: int, **params: Any) -> Run:
    return generation.run_generate(company=company, created_by=user, spec=spec, number_of_samples=n, **params)


def items(run: Run, kind: str) -> list[WorkItem]:
    return list(WorkItem.objects.filter(kind=kind, subject_id=run.id).order_by("id"))


# --- The official client, strict, against a live server ---


@pytest.mark.django_db(transaction=True)
def test_it_generates_retrieves_lists_and_evaluates_through_the_official_client(
    live_server: Any, alice_key: str, fake_anthropic: Any, company_a: Company
) -> None:
    fake_anthropic.answer = writes_as_told
    client = Dataframer(base_url=live_server.url, api_key=alice_key, _strict_response_validation=True, max_retries=0)
    spec_id = client.dataframer.specs.create(name="Support", extra_body={"content_yaml": SPEC_YAML}).id
    assert spec_id
    # Tasks run inline in tests: the run is written before the answer leaves.
    created = client.dataframer.runs.create(
        spec_id=spec_id, number_of_samples=20, generation_model=SONNET, skip_outline=True, tools=["calculator"]
    )
    assert created.id
    run = client.dataframer.runs.retrieve(created.id)
    assert (run.status, run.samples_completed, run.samples_failed) == ("SUCCEEDED", 20, 0)
    assert run.total_cost
    assert run.total_cost > 0
    params = run.runtime_params
    assert params is not None
    assert (params.number_of_samples, params.generation_model, params.skip_outline) == (20, SONNET, True)
    assert params.tools == ["calculator"]
    extra = params.model_extra or {}
    assert extra["assignment_mode"] == "quota"
    assert extra["ignored_params"] == ["skip_outline", "tools"]
    files = run.generated_files or []
    assert len(files) == 20
    assert files[0].path == "sample_00001-a-{}-one.txt".format(Sample.objects.get(position=0).properties["sentiment"])
    assert files[0].file_type == "text/plain"
    [listed] = client.dataframer.runs.list()
    assert (listed.id, listed.status, listed.samples_completed) == (created.id, "SUCCEEDED", 20)
    # Exactly one writer call per sample, and the cost is the ledger's.
    db_run = Run.objects.get(code=created.id)
    calls = JudgeCall.objects.filter(run=db_run)
    assert calls.filter(purpose="generate").count() == 20
    assert float(calls.aggregate(s=Sum("cost_usd"))["s"]) == pytest.approx(run.total_cost, abs=1e-6)
    # The generated run evaluates like an imported one: the judge reads what the writer was told.
    evaluation = client.dataframer.evaluations.create(run_id=created.id, evaluation_model=SONNET)
    done = client.dataframer.evaluations.retrieve(evaluation.id or "")
    assert done.status == "SUCCEEDED"
    assert done.conformance_score == 100


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("by_hand")
def test_it_cancels_a_pending_run_through_the_official_client(
    live_server: Any, alice_key: str, fake_anthropic: Any, spec_a: Spec
) -> None:
    client = Dataframer(base_url=live_server.url, api_key=alice_key, _strict_response_validation=True, max_retries=0)
    created = client.dataframer.runs.create(spec_id=str(spec_a.code), number_of_samples=5, generation_model=SONNET)
    assert client.dataframer.runs.retrieve(created.id or "").status == "PENDING"
    client.dataframer.runs.cancel(created.id or "")  # typed as returning nothing
    assert client.dataframer.runs.retrieve(created.id or "").status == "CANCELED"
    run = Run.objects.get(code=created.id)
    # Its work is ended: running the start item now writes nothing and calls no one.
    assert {i.state for i in items(run, "run.start")} == {"canceled"}
    runner.run_item(items(run, "run.start")[0].id)
    assert fake_anthropic.calls == 0
    assert not run.samples.exists()


# --- Bad input ---


def test_it_refuses_bad_input(alice_api: Any, spec_a: Spec, fake_anthropic: Any) -> None:
    ok = {"spec_id": str(spec_a.code), "number_of_samples": 5}
    for body in (
        {**ok, "number_of_samples": "5"},
        {**ok, "number_of_samples": True},
        {**ok, "number_of_samples": 2.5},
        {**ok, "number_of_samples": 0},
        {**ok, "number_of_samples": 20_001},
        {**ok, "spec_id": "not-a-uuid"},
        {**ok, "filtering_types": ["everything"]},
        {**ok, "assignment_mode": "lottery"},
        {**ok, "skip_outline": "yes"},
        {"spec_id": str(spec_a.code)},
        [ok],
    ):
        response = alice_api.post(RUNS, body, format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST, body
    response = alice_api.post(RUNS, "{not json", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    response = alice_api.post(RUNS, {**ok, "generation_model": "nobody/nothing"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "Allowed:" in response.json()["detail"]
    response = alice_api.post(RUNS, {**ok, "spec_version": 2}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "no version 2" in response.json()["detail"]
    Spec.objects.filter(pk=spec_a.pk).update(status=Spec.Status.PROCESSING)
    response = alice_api.post(RUNS, ok, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "SUCCEEDED" in response.json()["detail"]
    assert not Run.objects.exists()
    # The largest run is accepted.
    Spec.objects.filter(pk=spec_a.pk).update(status=Spec.Status.SUCCEEDED)
    assert alice_api.post(RUNS, {**ok, "number_of_samples": 20_000}, format="json").status_code == HTTPStatus.CREATED


def test_a_spent_monthly_budget_stops_new_runs(
    alice_api: Any, client: Any, alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any, settings: Any
) -> None:
    settings.MONTHLY_BUDGET_USD = 1
    JudgeCall.objects.create(company=company_a, provider="anthropic", model=SONNET, purpose="generate", cost_usd=2)
    response = alice_api.post(RUNS, {"spec_id": str(spec_a.code), "number_of_samples": 5}, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Monthly LLM budget reached" in response.json()["detail"]
    client.force_login(alice)
    form = {"number_of_samples": 3, "generation_model": SONNET, "assignment_mode": "quota"}
    response = client.post(f"/specs/{spec_a.code}/generate/", form)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Retry-After" in response
    assert not Run.objects.exists()


def test_it_says_how_to_configure_a_provider_when_there_is_none(alice_api: Any, spec_a: Spec) -> None:
    response = alice_api.post(RUNS, {"spec_id": str(spec_a.code), "number_of_samples": 5}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    detail = response.json()["detail"]
    assert "ANTHROPIC_API_KEY" in detail
    assert "OpenAI-compatible" in detail
    response = alice_api.post(
        RUNS,
        {"spec_id": str(spec_a.code), "number_of_samples": 5, "generation_model": "local/embeddings"},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "does not write data" in response.json()["detail"]
    assert not Run.objects.exists()


def test_it_checks_ownership(charlie_api: Any, spec_a: Spec, fake_anthropic: Any) -> None:
    response = charlie_api.post(RUNS, {"spec_id": str(spec_a.code), "number_of_samples": 5}, format="json")
    assert response.status_code == HTTPStatus.NOT_FOUND
    response = charlie_api.post(
        RUNS, {"spec_id": "00000000-0000-4000-8000-000000000000", "number_of_samples": 5}, format="json"
    )
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not Run.objects.exists()


def test_it_requires_rw_access(bob_api: Any, spec_a: Spec, fake_anthropic: Any) -> None:
    response = bob_api.post(RUNS, {"spec_id": str(spec_a.code), "number_of_samples": 5}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not Run.objects.exists()


def test_it_never_stores_the_databricks_secret(
    alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any
) -> None:
    run = generate(company_a, alice, spec_a, 1, databricks_client_secret="s3cret", databricks_client_id="id")
    assert "s3cret" not in json.dumps(run.runtime_params)
    assert run.runtime_params["databricks_client_id"] == "id"


# --- What is written ---


def test_samples_are_stored_like_imports_with_the_planned_values(
    alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any, django_capture_on_commit_callbacks: Any
) -> None:
    fake_anthropic.answer = writes_as_told
    with django_capture_on_commit_callbacks(execute=True):
        run = generate(company_a, alice, spec_a, 50)
    run.refresh_from_db()
    assert (run.status, run.samples_completed, run.samples_failed) == ("SUCCEEDED", 50, 0)
    assert run.started_at
    assert run.completed_at
    assert run.source == "generated"
    samples = list(run.samples.order_by("position"))
    plan = assignment.plan(parse_spec(SPEC_YAML).properties, 50, seed=run.runtime_params["assignment_seed"])
    assert [s.properties for s in samples] == plan
    assert [s.position for s in samples] == list(range(50))
    assert len({s.identifier for s in samples}) == 50
    assert all(s.content == f"A {s.properties['sentiment']} {s.properties['priority']} chat." for s in samples)
    assert all(s.size_bytes == len(s.content) for s in samples)
    # Quota: 40/30/30 of 50 is 20/15/15, exactly.
    assert Counter(s.properties["sentiment"] for s in samples) == {"positive": 20, "negative": 15, "neutral": 15}
    # The shared part is in the system prompt (cached), the sample's values only in the user turn.
    systems = {"".join(b["text"] for b in r["system"]) for r in fake_anthropic.requests}
    assert len(systems) == 1
    assert "Customer support conversations" in systems.pop()
    assert all(r["system"][0]["cache_control"] == {"type": "ephemeral"} for r in fake_anthropic.requests)


def test_a_failed_sample_is_counted_with_its_reason(
    alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    settings.JUDGE_CONCURRENCY = 1  # one call at a time: the scripted replies go to positions 0, 1 and 1 again
    fake_anthropic.script.extend([("refusal",), ("malformed",), ("malformed",)])
    with django_capture_on_commit_callbacks(execute=True):
        run = generate(company_a, alice, spec_a, 6, generation_model=SONNET)
    run.refresh_from_db()
    assert run.status == "SUCCEEDED"
    assert (run.samples_completed, run.samples_failed) == (4, 2)
    [refused, bad] = run.runtime_params["failed_samples"]
    assert refused["position"] == 0
    assert "refused" in refused["reason"]
    assert bad["position"] == 1
    assert "did not fit the schema twice" in bad["reason"]
    assert GenerationFailure.objects.filter(run=run).count() == 2
    assert JudgeCall.objects.filter(run=run).count() == fake_anthropic.calls == 7


def test_a_run_with_no_sample_written_fails_with_the_reason(
    alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any, django_capture_on_commit_callbacks: Any
) -> None:
    fake_anthropic.script.extend([("refusal",)] * 2)
    with django_capture_on_commit_callbacks(execute=True):
        run = generate(company_a, alice, spec_a, 2)
    run.refresh_from_db()
    assert run.status == "FAILED"
    assert "No sample could be written" in run.runtime_params["error"]


def test_bad_credentials_fail_the_run_with_the_reason(
    alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any, django_capture_on_commit_callbacks: Any
) -> None:
    fake_anthropic.script.append(("status", 401, {}))
    with django_capture_on_commit_callbacks(execute=True):
        run = generate(company_a, alice, spec_a, 3)
    run.refresh_from_db()
    assert run.status == "FAILED"
    assert "The writer failed" in run.runtime_params["error"]
    assert not WorkItem.objects.for_subject("run.", run.id).open().exists()


def test_the_conformance_filter_rewrites_samples_the_judge_reads_otherwise(
    alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any, django_capture_on_commit_callbacks: Any
) -> None:
    written: Counter[str] = Counter()

    def first_draft_is_always_positive(schema: dict[str, Any], user: str) -> dict[str, Any]:
        if "content" in schema["properties"]:
            values = assigned_in(user)
            key = json.dumps(values, sort_keys=True) + user
            written[key] += 1
            # The first attempt of every sample reads positive; told what went wrong, the writer gets it right.
            sentiment = values["sentiment"] if "A previous attempt" in user else "positive"
            return {"title": "t", "content": f"A {sentiment} {values['priority']} chat."}
        return writes_as_told(schema, user)

    fake_anthropic.answer = first_draft_is_always_positive
    with django_capture_on_commit_callbacks(execute=True):
        run = generate(company_a, alice, spec_a, 10, filtering_types=["conformance", "structural"])
    run.refresh_from_db()
    assert (run.status, run.samples_completed, run.samples_failed) == ("SUCCEEDED", 10, 0)
    assert all(s.content.split()[1] == s.properties["sentiment"] for s in run.samples.all())
    calls = JudgeCall.objects.filter(run=run)
    # 4 positive samples pass at once; the 6 others take a second draft: 16 writes, each judged.
    assert calls.filter(purpose="generate").count() == 16
    assert calls.filter(purpose="conformance").count() == 16
    assert run.runtime_params["ignored_params"] == ["filtering_types:structural"]


def test_the_conformance_filter_gives_up_after_its_attempts(
    alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    settings.GENERATION_FILTER_ATTEMPTS = 2

    def always_positive(schema: dict[str, Any], user: str) -> dict[str, Any]:
        if "content" in schema["properties"]:
            return {"title": "t", "content": f"A positive {assigned_in(user)['priority']} chat."}
        return writes_as_told(schema, user)

    fake_anthropic.answer = always_positive
    with django_capture_on_commit_callbacks(execute=True):
        run = generate(company_a, alice, spec_a, 5, filtering_types=["conformance"])
    run.refresh_from_db()
    assert (run.samples_completed, run.samples_failed) == (2, 3)  # 40% of 5 are positive
    assert all(
        "rejected all 2 attempts (it read as sentiment=positive)" in f.reason for f in run.generation_failures.all()
    )


# --- Resume and cancel ---


@pytest.mark.usefixtures("by_hand")
def test_a_worker_stopped_half_way_loses_nothing_and_the_retry_writes_only_the_rest(
    alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any, settings: Any
) -> None:
    settings.JUDGE_CONCURRENCY = 1
    settings.WORK_BACKOFF_MAX_SECONDS = 0  # the stopped item is due again at once
    calls = iter(range(1, 1000))

    def dies_on_the_fifth_call(schema: dict[str, Any], user: str) -> dict[str, Any]:
        if next(calls) == 5:
            raise WorkerStopped
        return writes_as_told(schema, user)

    fake_anthropic.answer = dies_on_the_fifth_call
    run = generate(company_a, alice, spec_a, 12)
    runner.run_item(items(run, "run.start")[0].id)
    [write] = items(run, "run.write")
    with pytest.raises(WorkerStopped):
        runner.run_item(write.id)
    assert run.samples.count() == 4
    write.refresh_from_db()
    assert (write.state, write.attempts) == ("queued", 1)
    runner.run_item(write.id)
    run.refresh_from_db()
    assert (run.status, run.samples_completed) == ("SUCCEEDED", 12)
    assert fake_anthropic.calls == 13  # 12 samples, plus the call the stop interrupted
    # The resumed plan is the same plan: every sample holds the values it was written for.
    assert all(
        s.content == f"A {s.properties['sentiment']} {s.properties['priority']} chat." for s in run.samples.all()
    )
    # A duplicate delivery changes nothing.
    write.refresh_from_db()
    WorkItem.objects.filter(pk=write.pk).update(state="queued")
    runner.run_item(write.id)
    assert fake_anthropic.calls == 13
    assert Run.objects.get(pk=run.pk).samples_completed == 12


FAST = {
    "WORK_LEASE_SECONDS": "3",
    "WORK_HEARTBEAT_SECONDS": "1",
    "WORK_RECONCILE_SECONDS": "1",
    "WORK_REDELIVER_SECONDS": "5",
    "WORK_BACKOFF_MAX_SECONDS": "1",
    "GENERATION_DEFAULT_MODEL": STANDIN_MODEL,
}


def wait_for(condition: Any, timeout: float) -> None:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"still waiting after {timeout} s")
        time.sleep(0.05)


def model_requests(server: StandIn) -> int:
    return sum(n for path, n in server.stats()["paths"].items() if not path.startswith("/_"))


class Calls:
    """The stand-in's model requests, and when their count last grew (a wait_for condition polls it)."""

    def __init__(self, server: StandIn) -> None:
        self.server = server
        self.count = model_requests(server)
        self.last_grew_at = time.monotonic()

    def quiet_for(self, seconds: float) -> bool:
        count = model_requests(self.server)
        if count != self.count:
            self.count, self.last_grew_at = count, time.monotonic()
        return time.monotonic() - self.last_grew_at >= seconds


def test_a_killed_worker_resumes_with_no_sample_lost_or_written_twice(
    start_worker: Any, standin: StandIn, company_a: Company, alice: Any, spec_a: Spec
) -> None:
    standin.configure(latency=0.2)
    run = generate(company_a, alice, spec_a, 160, generation_model=STANDIN_MODEL)  # 160 × 0.2 s / 8 ≈ 4 s
    for progress in (30, 90):
        worker = start_worker(**FAST)
        wait_for(lambda progress=progress: run.samples.count() >= progress, timeout=60)
        worker.kill()
        assert Run.objects.get(pk=run.pk).status == "PROCESSING"
    start_worker(**FAST)
    wait_for(lambda: Run.objects.get(pk=run.pk).status != "PROCESSING", timeout=60)
    run.refresh_from_db()
    assert (run.status, run.samples_completed, run.samples_failed) == ("SUCCEEDED", 160, 0)
    assert sorted(run.samples.values_list("position", flat=True)) == list(range(160))
    assert not run.samples.values("position").annotate(n=Count("id")).filter(n__gt=1).exists()
    plan = assignment.plan(spec_a.latest_version.parsed_properties, 160, seed=run.runtime_params["assignment_seed"])
    assert [s.properties for s in run.samples.order_by("position")] == plan
    # Every request the stand-in served is in the ledger, those a kill cut off included (their rows were written
    # before they left, issue #26); a row beyond them is one a kill cut off before it reached the stand-in, and it
    # still says "sent" (outcome unknown).
    ledger = JudgeCall.objects.filter(run=run)
    assert (
        160
        <= model_requests(standin)
        <= ledger.count()
        <= model_requests(standin) + ledger.filter(outcome="sent").count()
    )
    [write] = items(run, "run.write")
    # Both kills came after progress, so neither is held against the item (issue #28): the last claim's own count,
    # reset by its first heartbeat after progress.
    assert write.attempts in {0, 1}


def test_cancel_stops_the_calls_within_5_seconds(
    start_worker: Any, standin: StandIn, company_a: Company, alice: Any, spec_a: Spec
) -> None:
    standin.configure(latency=0.2)
    run = generate(company_a, alice, spec_a, 2000, generation_model=STANDIN_MODEL)
    start_worker(**FAST)
    wait_for(lambda: run.samples.count() >= 20, timeout=60)
    assert generation.run_cancel(run=Run.objects.get(pk=run.pk))
    canceled_at = time.monotonic()
    # Calls go out back to back (0.2 s each): a second without one means the worker stopped calling.
    calls = Calls(standin)
    wait_for(lambda: calls.quiet_for(1.0), timeout=7)
    assert calls.last_grew_at - canceled_at < 5  # no call started after the first 5 s
    # The stopped item recounts on its way out; still no call after that.
    wait_for(lambda: Run.objects.get(pk=run.pk).samples_completed == run.samples.count(), timeout=5)
    assert model_requests(standin) == calls.count
    run.refresh_from_db()
    assert run.status == "CANCELED"
    assert run.samples.count() < 400
    # The stopped item recounted on its way out: the counters say what is stored.
    assert run.samples_completed == run.samples.count()
    assert float(run.total_cost) == pytest.approx(
        float(JudgeCall.objects.filter(run=run).aggregate(s=Sum("cost_usd"))["s"] or 0)
    )


# --- Pages ---


def test_the_spec_page_generates_a_run_and_the_run_page_shows_its_progress(
    client: Any, alice: Any, spec_a: Spec, fake_anthropic: Any, django_capture_on_commit_callbacks: Any
) -> None:
    fake_anthropic.answer = writes_as_told
    client.force_login(alice)
    page = client.get(f"/specs/{spec_a.code}/").content.decode()
    assert "Generate a run" in page
    assert "local/embeddings" not in page  # the embedded judge does not write
    form = {"number_of_samples": 6, "generation_model": SONNET, "assignment_mode": "quota"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/specs/{spec_a.code}/generate/", form)
    run = Run.objects.get()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/runs/{run.code}/"
    page = client.get(f"/runs/{run.code}/").content.decode()
    assert "6 written / 6 samples" in page
    assert 'hx-trigger="every 1s"' not in page  # finished: no polling
    assert 'class="primary">Evaluate</button>' in page  # the evaluations' card, with its form
    # The poll answers 286 (stop) once the run has ended.
    poll = client.get(f"/runs/{run.code}/?partial=progress", headers={"HX-Request": "true"})
    assert poll.status_code == 286
    assert "6 written" in poll.content.decode()


@pytest.mark.usefixtures("by_hand")
def test_the_run_page_polls_while_running_and_cancels(
    client: Any, alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any
) -> None:
    run = generate(company_a, alice, spec_a, 5)
    client.force_login(alice)
    page = client.get(f"/runs/{run.code}/").content.decode()
    assert 'hx-trigger="every 1s"' in page
    assert "0 written / 5 samples" in page
    poll = client.get(f"/runs/{run.code}/?partial=progress", headers={"HX-Request": "true"})
    assert poll.status_code == HTTPStatus.OK
    response = client.post(f"/runs/{run.code}/cancel/", headers={"HX-Request": "true"})
    assert response.status_code == HTTPStatus.OK
    assert "CANCELED" in response.content.decode()
    assert Run.objects.get(pk=run.pk).status == "CANCELED"
    assert not WorkItem.objects.for_subject("run.", run.id).open().exists()


def test_the_generate_form_explains_what_is_wrong(client: Any, alice: Any, spec_a: Spec) -> None:
    client.force_login(alice)
    response = client.post(f"/specs/{spec_a.code}/generate/", {"number_of_samples": 0, "generation_model": SONNET})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    # Valid form, but no provider configured: the page says how to configure one.
    form = {"number_of_samples": 3, "generation_model": SONNET, "assignment_mode": "quota"}
    response = client.post(f"/specs/{spec_a.code}/generate/", form)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "ANTHROPIC_API_KEY" in response.content.decode()
    assert not Run.objects.exists()


def test_pages_check_ownership(
    client: Any, charlie: Any, alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dispatch, "dispatch", lambda **_: 0)
        run = generate(company_a, alice, spec_a, 5)
    client.force_login(charlie)
    form = {"number_of_samples": 3, "generation_model": SONNET, "assignment_mode": "quota"}
    assert client.post(f"/specs/{spec_a.code}/generate/", form).status_code == HTTPStatus.NOT_FOUND
    assert client.post(f"/runs/{run.code}/cancel/").status_code == HTTPStatus.NOT_FOUND
    poll = client.get(f"/runs/{run.code}/?partial=progress", headers={"HX-Request": "true"})
    assert poll.status_code == HTTPStatus.NOT_FOUND
    assert Run.objects.get(pk=run.pk).status == "PENDING"


def test_pages_require_rw_access(
    client: Any, bob: Any, alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dispatch, "dispatch", lambda **_: 0)
        run = generate(company_a, alice, spec_a, 5)
    client.force_login(bob)
    page = client.get(f"/specs/{spec_a.code}/").content.decode()
    assert "Generate a run" not in page
    assert "Cancel</button>" not in client.get(f"/runs/{run.code}/").content.decode()
    form = {"number_of_samples": 3, "generation_model": SONNET, "assignment_mode": "quota"}
    assert client.post(f"/specs/{spec_a.code}/generate/", form).status_code == HTTPStatus.FORBIDDEN
    assert client.post(f"/runs/{run.code}/cancel/").status_code == HTTPStatus.FORBIDDEN
    assert Run.objects.count() == 1
    assert Run.objects.get(pk=run.pk).status == "PENDING"


@pytest.mark.usefixtures("by_hand")
def test_deleting_a_running_run_ends_its_work(
    alice_api: Any, alice: Any, company_a: Company, spec_a: Spec, fake_anthropic: Any
) -> None:
    run = generate(company_a, alice, spec_a, 5)
    runner.run_item(items(run, "run.start")[0].id)
    assert alice_api.delete(f"{RUNS}{run.code}/").status_code == HTTPStatus.NO_CONTENT
    assert not WorkItem.objects.for_subject("run.", run.id).open().exists()
    assert fake_anthropic.calls == 0
