"""A finished item's next step runs at once in the same worker process (work/runner.py `_next_step`, issue #26):
through real `manage.py worker` processes, an evaluation's classify and finalize are never sent to the broker, and a
SIGKILL of the process running a chained step loses nothing.

Runs on both CI legs: SQLite with the ORM broker, PostgreSQL with Redis.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from benchmarks.standin import StandIn
from companies.models import Company
from evaluations.models import Evaluation
from tests.test_worker import FAST, assert_nothing_lost_or_doubled, classified, evaluation_of, status, wait_for
from work.models import WorkItem


def step(evaluation: Evaluation, kind: str) -> WorkItem:
    return WorkItem.objects.get(kind=f"evaluation.{kind}", subject_id=evaluation.id)


def test_an_evaluation_s_steps_run_in_the_worker_that_ran_the_one_before(
    start_worker: Any, standin: StandIn, company_a: Company
) -> None:
    # Two processes: the idle one would take any step the broker carried.
    start_worker(Q_WORKERS="2")
    evaluation = evaluation_of(company_a, 40)
    wait_for(lambda: status(evaluation) not in {"PENDING", "PROCESSING"}, timeout=90)
    assert_nothing_lost_or_doubled(evaluation)
    start, classify, finalize = (step(evaluation, kind) for kind in ("start", "classify", "finalize"))
    assert start.enqueued_at is not None  # the API's start went through the broker
    # The next steps never did: each was claimed by the process that finished the step before.
    assert (classify.enqueued_at, finalize.enqueued_at) == (None, None)
    assert start.worker == classify.worker == finalize.worker
    assert (classify.claim, finalize.claim) == (1, 1)


def kill(item: WorkItem) -> None:
    os.kill(int(item.worker.rsplit(":", 1)[1]), signal.SIGKILL)


def test_a_worker_killed_in_a_chained_step_loses_nothing(
    start_worker: Any, standin: StandIn, company_a: Company
) -> None:
    standin.configure(latency=0.1)
    evaluation = evaluation_of(company_a, 60)
    start_worker(**FAST)
    # Killed during the classification it took as the start's next step.
    wait_for(lambda: classified(evaluation) >= 10, timeout=60, every=0.05)
    classify = step(evaluation, "classify")
    assert (classify.state, classify.enqueued_at, classify.worker) == (
        "running",
        None,
        step(evaluation, "start").worker,
    )
    kill(classify)
    # Killed again during the finalize that the second classification took as its next step: its explanation's call
    # is slow (the last few samples' calls too), so the kill lands while it runs.
    wait_for(lambda: classified(evaluation) >= 56, timeout=60, every=0.05)
    standin.configure(latency=3)
    wait_for(lambda: WorkItem.objects.filter(kind="evaluation.finalize", state="running").exists(), timeout=60)
    finalize = step(evaluation, "finalize")
    assert finalize.enqueued_at is None  # a chained step
    kill(finalize)
    standin.configure(latency=0.05)
    wait_for(lambda: status(evaluation) not in {"PENDING", "PROCESSING"}, timeout=90)
    assert_nothing_lost_or_doubled(evaluation)
    assert step(evaluation, "classify").claim == 2
    assert step(evaluation, "finalize").claim == 2
