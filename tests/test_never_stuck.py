"""Never stuck, round 2 (issue 28), through real worker processes against the stand-in provider: a SIGTERM with
hanging and trickling calls in flight hands the item back within 5 s and sends nothing new; twice as many SIGKILLs
during one evaluation as it has attempts do not use them up; claims that all die without progress still end FAILED
with the reason.

Runs on both CI legs: SQLite with the ORM broker, PostgreSQL with Redis.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from benchmarks.standin import StandIn
from companies.models import Company
from evaluations.models import Evaluation
from llm.models import JudgeCall
from tests.test_worker import FAST, assert_nothing_lost_or_doubled, classified, evaluation_of, status, wait_for
from work.models import WorkItem


def classify_item(evaluation: Evaluation) -> WorkItem:
    return WorkItem.objects.get(kind="evaluation.classify", subject_id=evaluation.id)


def test_sigterm_with_hanging_and_trickling_calls_in_flight_hands_back_within_five_seconds(
    start_worker: Any, standin: StandIn, company_a: Company
) -> None:
    # One call in five hangs (60 s), one in five trickles (60 s, a piece a second): the default 120 s call deadline
    # ends neither before the stop, so the stop has to.
    standin.configure(latency=0.2, faults={"hang": 0.2, "trickle": 0.2}, hang_seconds=60, trickle_chunks=60)
    evaluation = evaluation_of(company_a, 400)
    worker = start_worker(**FAST)
    wait_for(lambda: classified(evaluation) >= 8, timeout=60)
    faults = standin.stats()["faults"]
    wait_for(lambda: sum(standin.stats()["faults"].values()) >= 4, timeout=30)  # some are surely in flight
    faults = standin.stats()["faults"]
    stopped_at = time.monotonic()
    worker.signal_group(signal.SIGTERM)  # what systemd sends
    worker.wait_gone(timeout=15)
    item = classify_item(evaluation)
    took = time.monotonic() - stopped_at
    print(f"SIGTERM with {faults} faults served: every process gone, item handed back in {took:.2f} s")
    assert took < 5
    assert (item.state, item.attempts) == ("queued", 0)  # handed back, and the stop is not an attempt
    # No new request once stopping. 0.5 s: a request whose sending began before the signal landed (the last look at
    # `stopping` comes before the SDK builds and sends it) can arrive late when 6 test processes share 2 cores (one
    # arrived after 0.1 s, the slack before, in a CI run of 2026-12-07). This line is a weak check here: the slots
    # are soon all held by hanging or trickling calls, so even with the stop's checks taken out (tried) nothing new
    # went out. Those checks (no retry, no new call) are proven in tests/llm/test_deadline.py.
    assert standin.arrivals_after(stopped_at + 0.5) == 0
    # The calls cut short are in the ledger as such, and their samples stay unjudged for the next worker.
    abandoned = JudgeCall.objects.filter(evaluation=evaluation, outcome="abandoned")
    assert abandoned.count() >= 1
    assert not evaluation.classifications.filter(sample_id__in=abandoned.values("item_id")).exists()
    standin.configure(faults={})
    start_worker(**FAST)
    wait_for(lambda: status(evaluation) != "PROCESSING", timeout=90)
    assert_nothing_lost_or_doubled(evaluation)
    # Every request the stand-in served has its ledger row: answered, failed or abandoned.
    requests = sum(n for path, n in standin.stats()["paths"].items() if not path.startswith("/_"))
    assert JudgeCall.objects.filter(evaluation=evaluation).count() == requests


def kill_the_worker_holding(evaluation: Evaluation, claim: int, *, after: float = 0.0) -> None:
    """SIGKILL the worker process that holds the item's `claim`-th claim (its pid is on the row), `after` seconds
    into the claim; django-q's sentinel starts a fresh worker process in its place, as a supervisor would."""
    claimed = WorkItem.objects.filter(kind="evaluation.classify", subject_id=evaluation.id, claim__gte=claim)
    wait_for(claimed.exists, timeout=60, every=0.05)
    time.sleep(after)
    item = classify_item(evaluation)
    assert (item.state, item.claim) == ("running", claim)
    os.kill(int(item.worker.rsplit(":", 1)[1]), signal.SIGKILL)


# Kills after progress are not counted: twice as many kills as attempts, each after progress, end it SUCCEEDED. (It
# was ten kills at the default 5 attempts, ~100 s of the suite's longest test: each kill waits out a lease. The
# same ratio at 2 attempts proves the same; counted kills would end it FAILED at the second.)
MAX_ATTEMPTS = 2
KILLS = 2 * MAX_ATTEMPTS


def test_twice_as_many_sigkills_as_attempts_during_one_evaluation_do_not_use_them_up(
    start_worker: Any, standin: StandIn, company_a: Company
) -> None:
    standin.configure(latency=0.2)
    evaluation = evaluation_of(company_a, 400)  # 400 × 0.2 s / 8 ≈ 10 s of judging, cut into KILLS + 1 claims
    # No backoff: a killed claim is due again as soon as its lease is found expired (the backoff is not under test).
    start_worker(**FAST | {"WORK_BACKOFF_MAX_SECONDS": "0"}, WORK_MAX_ATTEMPTS=str(MAX_ATTEMPTS))
    started = time.monotonic()
    for claim in range(1, KILLS + 1):
        progress = classified(evaluation) + 20
        wait_for(lambda progress=progress: classified(evaluation) >= progress, timeout=60)
        # The heartbeat after progress gives a fresh allowance; the kill lands after it.
        wait_for(lambda: classify_item(evaluation).attempts == 0, timeout=10, every=0.05)
        kill_the_worker_holding(evaluation, claim)
        assert status(evaluation) == "PROCESSING", f"after kill {claim}"
    wait_for(lambda: status(evaluation) != "PROCESSING", timeout=120)
    took = time.monotonic() - started
    print(f"{KILLS} SIGKILLs at {MAX_ATTEMPTS} attempts, 400 samples: SUCCEEDED {took:.1f} s after the first")
    assert_nothing_lost_or_doubled(evaluation)
    assert classify_item(evaluation).claim == KILLS + 1


def test_on_the_default_timings_a_killed_worker_s_item_resumes_within_30_seconds(
    start_worker: Any, standin: StandIn, company_a: Company
) -> None:
    standin.configure(latency=0.2)
    evaluation = evaluation_of(company_a, 150)  # enough to be running at the kill and at the resume, no more
    start_worker()  # no overrides: the lease, heartbeat, reconcile and backoff a deployment gets
    wait_for(lambda: classified(evaluation) >= 20, timeout=90)
    kill_the_worker_holding(evaluation, 1)
    time.sleep(0.5)  # calls the killed process had answered may still land in the ledger; nothing more after this
    before = classified(evaluation)
    # django-q's sentinel has a fresh worker process up within a second: "a worker available again".
    took = wait_for(lambda: classified(evaluation) > before, timeout=60, every=0.2) + 0.5
    print(f"default timings: SIGKILL to the next classified sample {took:.1f} s")
    assert took < 30
    wait_for(lambda: status(evaluation) != "PROCESSING", timeout=90)
    assert_nothing_lost_or_doubled(evaluation)


def test_claims_that_all_die_without_progress_still_end_failed_with_the_reason(
    start_worker: Any, standin: StandIn, company_a: Company
) -> None:
    standin.configure(faults={"hang": 1.0}, hang_seconds=120)  # no call ever answers: no progress at all
    evaluation = evaluation_of(company_a, 20)
    start_worker(**FAST, WORK_MAX_ATTEMPTS="3")
    for claim in (1, 2, 3):
        kill_the_worker_holding(evaluation, claim, after=2.5)  # two heartbeats in: alive, but no progress
    # A worker's reconciler finds the third lease expired: that was the last attempt.
    wait_for(lambda: status(evaluation) != "PROCESSING", timeout=60)
    evaluation.refresh_from_db()
    assert evaluation.status == "FAILED"
    assert "gave up after 3 attempts" in evaluation.error_message
    assert "its lease expired" in evaluation.error_message
    assert classify_item(evaluation).state == "failed"


def test_on_the_default_timings_the_items_a_killed_cluster_was_sent_resume_within_30_seconds_of_a_new_worker(
    start_worker: Any, standin: StandIn, company_a: Company, company_b: Company
) -> None:
    """Issue #26: "its items", not only the one it ran. A worker's broker hands it the next item before it is free
    (the ORM broker locks the message, Redis pops it): SIGKILL the cluster and that item's only record is its row."""
    standin.configure(latency=0.2)
    busy = evaluation_of(company_a, 400)
    worker = start_worker()  # no overrides: one process, the default lease, reconcile and redelivery
    wait_for(lambda: classified(busy) >= 8, timeout=90)
    waiting = evaluation_of(company_b, 20)  # sent to the broker, which hands it to the busy cluster's queue
    wait_for(
        lambda: (
            WorkItem.objects.filter(kind="evaluation.start", subject_id=waiting.id).exclude(enqueued_at=None).exists()
        ),
        timeout=10,
    )
    time.sleep(1)  # the broker has handed it over
    worker.kill()
    assert status(waiting) == "PENDING"
    started = time.monotonic()
    start_worker()
    took = wait_for(lambda: status(waiting) != "PENDING", timeout=90, every=0.2)
    wait_for(lambda: classified(busy) > 8 and classify_item(busy).claim >= 2, timeout=90, every=0.2)
    print(
        f"default timings, cluster killed: the item it was sent started {took:.1f} s after a new worker, the one it ran {time.monotonic() - started:.1f} s"
    )
    assert took < 30
    wait_for(lambda: status(busy) != "PROCESSING" and status(waiting) != "PROCESSING", timeout=120)
    assert_nothing_lost_or_doubled(waiting)
    assert_nothing_lost_or_doubled(busy)
