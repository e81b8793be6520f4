"""A run or an evaluation in a terminal state never changes again: canceled while calls are in flight, their answers
land in the ledger (they were paid for) but not in the run or the evaluation. Real workers, the stand-in provider;
each test reads the object through the API right after the cancel and again once the calls in flight have landed.
Only the figures that are the ledger's sums (a run's total_cost, an evaluation's trace of calls, tokens and cost)
may grow: they say what was paid.
"""

from __future__ import annotations

import time
from typing import Any

from rest_framework.test import APIClient

from benchmarks.standin import StandIn
from companies.models import Company
from evaluations.services import evaluation_cancel
from runs.generation import run_cancel, run_generate
from runs.models import Run, Spec
from tests.conftest import STANDIN_MODEL
from tests.test_worker import FAST, classified, evaluation_of, wait_for

LATENCY = 0.5  # every call is in flight for half a second: the cancel always finds some


LEDGER_SUMS = {
    "total_cost",
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
}


def without_ledger_sums(read: dict[str, Any]) -> dict[str, Any]:
    return {
        key: without_ledger_sums(value) if isinstance(value, dict) else value
        for key, value in read.items()
        if key not in LEDGER_SUMS
    }


def settled(read: Any, landed_late: Any) -> Any:
    """Read again once answers in flight at the cancel have landed in the ledger, and the rest had time to: longer
    than a call takes, plus a heartbeat for the worker to see the cancel."""
    wait_for(lambda: bool(landed_late()), timeout=60)
    time.sleep(LATENCY + 2 * int(FAST["WORK_HEARTBEAT_SECONDS"]))
    return read()


def test_a_canceled_run_keeps_what_it_had_at_the_cancel(
    start_worker: Any, standin: StandIn, company_a: Company, alice: Any, spec_a: Spec, alice_api: APIClient
) -> None:
    standin.configure(latency=LATENCY)
    run = run_generate(
        company=company_a, created_by=alice, spec=spec_a, number_of_samples=2000, generation_model=STANDIN_MODEL
    )
    start_worker(**FAST)
    wait_for(lambda: run.samples.count() >= 20, timeout=60)
    assert run_cancel(run=Run.objects.get(pk=run.pk))

    def read() -> dict[str, Any]:
        return without_ledger_sums(alice_api.get(f"/api/dataframer/runs/{run.code}/").json())

    def landed_late() -> set[int]:
        """Positions written by the provider and paid for (in the ledger) that got no sample."""
        written = set(run.samples.values_list("position", flat=True))
        return set(run.judge_calls.filter(outcome="ok").values_list("item_id", flat=True)) - written

    at_cancel, samples_at_cancel = read(), run.samples.count()
    assert at_cancel["status"] == "CANCELED"
    assert at_cancel["samples_completed"] == samples_at_cancel  # exact as it ended
    assert settled(read, landed_late) == at_cancel
    assert run.samples.count() == samples_at_cancel


def test_a_canceled_evaluation_keeps_what_it_had_at_the_cancel(
    start_worker: Any, standin: StandIn, company_a: Company, alice: Any, alice_api: APIClient
) -> None:
    standin.configure(latency=LATENCY)
    evaluation = evaluation_of(company_a, 400)
    start_worker(**FAST)
    wait_for(lambda: classified(evaluation) >= 16, timeout=60)
    evaluation_cancel(evaluation=evaluation, canceled_by=alice)

    def read() -> dict[str, Any]:
        return without_ledger_sums(alice_api.get(f"/api/dataframer/evaluations/{evaluation.code}/").json())

    def landed_late() -> set[int]:
        """Samples the provider judged and was paid for (in the ledger) that got no classification."""
        judged = set(evaluation.classifications.values_list("sample_id", flat=True))
        return set(evaluation.judge_calls.filter(outcome="ok").values_list("item_id", flat=True)) - judged

    at_cancel, classified_at_cancel = read(), classified(evaluation)
    assert at_cancel["status"] == "FAILED"  # the Dataframer client's word for canceled
    assert settled(read, landed_late) == at_cancel
    assert classified(evaluation) == classified_at_cancel
