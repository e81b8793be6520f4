"""No call unrecorded (issue #26): each call's ledger row is written before its request leaves (outcome "sent") and
completed when the answer comes, so a worker SIGKILLed mid-call leaves a row for every request the provider saw;
a row still "sent" once no worker can complete it reads as "outcome unknown", costed at the request's ceiling."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from benchmarks.standin import StandIn
from companies.models import Company
from llm.models import JudgeCall
from tests.test_worker import FAST, classified, evaluation_of, model_requests, status, wait_for


def test_a_worker_killed_mid_call_leaves_a_row_for_every_request_the_provider_saw(
    start_worker: Any, standin: StandIn, company_a: Company, settings: Any
) -> None:
    standin.configure(latency=0.5)  # eight calls in flight half a second each: the kill lands mid-call
    evaluation = evaluation_of(company_a, 120)
    worker = start_worker(**FAST)
    wait_for(lambda: classified(evaluation) >= 16, timeout=60)
    worker.kill()
    time.sleep(0.3)  # the stand-in finishes reading what was already on the wire
    served = model_requests(standin)
    calls = JudgeCall.objects.filter(evaluation=evaluation)
    in_flight = calls.filter(outcome="sent")
    print(f"SIGKILL mid-call: {served} requests served, {calls.count()} ledger rows, {in_flight.count()} still sent")
    assert in_flight.count() >= 1  # the kill did land with calls in flight
    # Every request the provider saw has its row. A row beyond them can only be one still "sent": a kill landing
    # between the row's write and the request reaching the provider (rare; equal in the runs we watched).
    assert served <= calls.count() <= served + in_flight.count() - 1
    # Nothing completes them now: past the call timeout and the lease they are "outcome unknown".
    assert calls.totals()["unknown"] == 0
    settings.JUDGE_TIMEOUT_SECONDS, settings.WORK_LEASE_SECONDS = 0, 0
    assert calls.totals()["unknown"] == in_flight.count()
    assert {row.display_outcome for row in in_flight} == {"outcome unknown"}
    settings.JUDGE_TIMEOUT_SECONDS, settings.WORK_LEASE_SECONDS = 120, 15
    # The next worker asks those samples again: their new calls get rows of their own; the old ones stay sent.
    standin.configure(latency=0.05)
    start_worker(**FAST)
    wait_for(lambda: status(evaluation) != "PROCESSING", timeout=90)
    assert status(evaluation) == "SUCCEEDED"
    assert model_requests(standin) <= calls.count() <= model_requests(standin) + in_flight.count() - 1
    assert calls.filter(outcome="sent").count() == in_flight.count()


def test_a_sent_row_is_costed_at_its_ceiling_until_the_answer_settles_it(
    transactional_db: None, standin: StandIn, company_a: Company, settings: Any, monkeypatch: Any
) -> None:
    from django_q.conf import Conf

    from evaluations.services import ClassificationJob
    from llm import providers

    monkeypatch.setattr(Conf, "SYNC", False)  # no worker runs the evaluation: this test makes its one call itself
    monkeypatch.setattr(providers, "http_client_for", None)  # the stand-in on 127.0.0.1, through the real SDK

    entry = settings.JUDGE_MODELS["test/standin"] | {"prices": {"input": 3, "output": 15}}
    settings.JUDGE_MODELS = {**settings.JUDGE_MODELS, "test/standin": entry}
    evaluation = evaluation_of(company_a, 1)
    job = ClassificationJob.for_evaluation(evaluation)
    sample = evaluation.run.samples.get()
    seen: list[tuple[str, Decimal]] = []

    def policy(request: dict[str, Any]) -> dict[str, Any]:
        # While the provider works on it, the row is there, "sent", at the most the call can cost.
        row = JudgeCall.objects.get()
        seen.append((row.outcome, row.cost_usd))
        return {"sentiment": "positive", "priority": "high", "rationales": {"sentiment": "x", "priority": "y"}}

    standin.policy = policy
    # The stand-in runs on a thread of this process: its policy reads the row through this test's connection.
    outcome = job.classify(sample)
    assert outcome.ok, outcome.error
    ceiling = job.resolved.judge.ceiling(job.request_for(sample.content))
    assert seen == [("sent", ceiling)]
    from llm.ledger import record_calls

    record_calls(
        company_id=company_a.id, model=job.model, purpose="classify", attempts=outcome.attempts, subject=evaluation
    )
    row = JudgeCall.objects.get()
    assert row.outcome == "ok"
    assert row.cost_usd == outcome.attempts[0].cost_usd < ceiling
    assert row.item_id == sample.id
