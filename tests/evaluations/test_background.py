"""Background execution in-process: work items, duplicate deliveries, a worker stopped half-way, expired leases,
attempts running out, cancel, per-sample errors, fatal errors. (tests/test_worker.py does the same through a real
qcluster subprocess.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from evaluations import analysis, services
from evaluations.models import Evaluation, SampleClassification
from runs.models import Run
from runs.services import run_import
from tests.conftest import make_rows
from tests.llm.fakes import first_values, sample_text
from work import dispatch, runner
from work.models import WorkItem

SONNET = "anthropic/claude-sonnet-4-6"


class WorkerStopped(BaseException):
    """What a killed worker looks like from inside: not an Exception, nothing catches it."""


@pytest.fixture(autouse=True)
def _no_backoff(settings: Any) -> None:
    settings.WORK_BACKOFF_MAX_SECONDS = 0  # a failed item is due again at once


def created(run: Run, alice: Any, model: str = SONNET) -> Evaluation:
    """An evaluation as the API creates it (its start item queued)."""
    return services.evaluation_create(company=run.company, created_by=alice, run=run, model_name=model)


def item(evaluation: Evaluation, kind: str) -> WorkItem:
    return WorkItem.objects.get(kind=kind, subject_id=evaluation.id)


def test_a_duplicate_delivery_is_a_no_op(fake_anthropic: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a, SONNET)
    calls = fake_anthropic.calls
    for done in WorkItem.objects.filter(subject_id=evaluation.id):
        runner.run_item(done.id)
    assert fake_anthropic.calls == calls
    assert Evaluation.objects.get(pk=evaluation.pk).completed_at == evaluation.completed_at
    assert set(WorkItem.objects.filter(subject_id=evaluation.id).values_list("state", flat=True)) == {"done"}


def test_parallel_items_split_the_samples_and_one_finalizes(
    fake_anthropic: Any, alice: Any, company_a: Any, spec_a: Any, evaluate: Any, settings: Any
) -> None:
    settings.EVALUATION_PARALLEL_ITEMS = 3
    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(35))
    evaluation = evaluate(run, SONNET)
    assert evaluation.chunks_total == 3
    assert evaluation.status == "SUCCEEDED"
    assert evaluation.classifications.count() == 35
    assert WorkItem.objects.filter(subject_id=evaluation.id, kind="evaluation.classify").count() == 3
    assert WorkItem.objects.filter(subject_id=evaluation.id, kind="evaluation.finalize").count() == 1
    assert evaluation.judge_calls.filter(purpose="explain").count() == 1


@pytest.mark.usefixtures("by_hand")
def test_a_worker_stopped_half_way_loses_nothing_and_the_retry_skips_finished_samples(
    fake_anthropic: Any, run_a: Run, alice: Any, settings: Any
) -> None:
    settings.JUDGE_CONCURRENCY = 1
    evaluation = created(run_a, alice)
    runner.run_item(item(evaluation, "evaluation.start").id)
    asked: list[str] = []
    calls = iter(range(1, 1000))

    def dies_on_the_fifth_call(schema: dict[str, Any], user: str) -> dict[str, Any]:
        if "<sample>" in user:
            asked.append(sample_text(user))
            if next(calls) == 5:
                raise WorkerStopped
        return first_values(schema, user)

    fake_anthropic.answer = dies_on_the_fifth_call
    classify = item(evaluation, "evaluation.classify")
    with pytest.raises(WorkerStopped):
        runner.run_item(classify.id)
    saved = set(evaluation.classifications.values_list("sample__content", flat=True))
    # What was answered before the stop is saved; the row says what happened and that it is due again.
    assert set(asked[:4]) == saved
    classify.refresh_from_db()
    assert (classify.state, classify.attempts) == ("queued", 1)
    assert "WorkerStopped" in classify.last_error
    assert Evaluation.objects.get(pk=evaluation.pk).status == "PROCESSING"

    # Run again: only the unfinished samples are asked; the last one creates the finalize item.
    asked.clear()
    runner.run_item(classify.id)
    assert len(asked) == 12 - len(saved)
    assert not set(asked) & saved
    assert SampleClassification.objects.filter(evaluation=evaluation).values("sample").distinct().count() == 12
    runner.run_item(item(evaluation, "evaluation.finalize").id)
    assert Evaluation.objects.get(pk=evaluation.pk).status == "SUCCEEDED"


def test_an_expired_lease_is_counted_and_the_item_runs_again(
    fake_anthropic: Any,
    run_a: Run,
    alice: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evaluation = created(run_a, alice)
    start = item(evaluation, "evaluation.start")
    # A worker claimed it, then died: its lease runs out.
    WorkItem.objects.filter(pk=start.pk).update(state="running", claim=1, lease_until=timezone.now())
    # Tasks run inline in tests, and a finished item's last_error is cleared: look at the row when reconcile
    # dispatches it again, before it runs.
    at_dispatch: list[tuple[str, int, str]] = []
    real_dispatch = dispatch.dispatch

    def look_then_dispatch(**kwargs: Any) -> int:
        at_dispatch.append(WorkItem.objects.values_list("state", "attempts", "last_error").get(pk=start.pk))
        return real_dispatch(**kwargs)

    monkeypatch.setattr(dispatch, "dispatch", look_then_dispatch)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.reconcile()  # the re-queued item runs, and everything after it
    assert at_dispatch[0] == ("queued", 1, "the worker stopped while working on it (its lease expired)")
    start.refresh_from_db()
    assert (start.state, start.attempts) == ("done", 1)
    assert Evaluation.objects.get(pk=evaluation.pk).status == "SUCCEEDED"


def test_after_the_last_attempt_the_evaluation_fails_with_the_reason(
    fake_anthropic: Any, run_a: Run, evaluate: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WORK_MAX_ATTEMPTS = 2

    def broken(evaluation: Evaluation) -> Any:
        raise RuntimeError("the statistics broke")

    monkeypatch.setattr(analysis, "analyse", broken)
    evaluation = evaluate(run_a, SONNET)
    dispatch.reconcile()  # in tests the re-sent item runs inline, so both attempts are already made
    finalize = item(evaluation, "evaluation.finalize")
    evaluation.refresh_from_db()
    assert (finalize.state, finalize.attempts) == ("failed", 2)
    assert evaluation.status == "FAILED"
    assert evaluation.error_message == (
        "The evaluation could not finish: gave up after 2 attempts: RuntimeError: the statistics broke"
    )


@pytest.mark.usefixtures("by_hand")
def test_a_canceled_evaluation_asks_nothing_more(fake_anthropic: Any, run_a: Run, alice: Any) -> None:
    evaluation = created(run_a, alice)
    runner.run_item(item(evaluation, "evaluation.start").id)
    services.evaluation_cancel(evaluation=Evaluation.objects.get(pk=evaluation.pk), canceled_by=alice)
    calls = fake_anthropic.calls
    runner.run_item(item(evaluation, "evaluation.classify").id)
    assert fake_anthropic.calls == calls
    evaluation.refresh_from_db()
    assert evaluation.status == "FAILED"
    assert evaluation.error_message == f"Canceled by {alice.username}."
    assert evaluation.canceled_at is not None
    assert item(evaluation, "evaluation.classify").state == "canceled"


@pytest.mark.usefixtures("by_hand")
def test_it_moves_updated_at_with_every_status_change(
    fake_anthropic: Any, run_a: Run, alice: Any, time_machine: Any
) -> None:
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    evaluation = created(run_a, alice)
    assert evaluation.updated_at == start
    time_machine.move_to(start + timedelta(minutes=1), tick=False)
    runner.run_item(item(evaluation, "evaluation.start").id)
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.updated_at) == ("PROCESSING", timezone.now())
    runner.run_item(item(evaluation, "evaluation.classify").id)  # progress lives in the classification rows
    time_machine.move_to(start + timedelta(minutes=2), tick=False)
    runner.run_item(item(evaluation, "evaluation.finalize").id)
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.updated_at) == ("SUCCEEDED", timezone.now())
    assert evaluation.completed_at == evaluation.updated_at


@pytest.mark.usefixtures("by_hand")
def test_it_moves_updated_at_when_canceled(fake_anthropic: Any, run_a: Run, alice: Any, time_machine: Any) -> None:
    evaluation = created(run_a, alice)
    later = timezone.now() + timedelta(minutes=5)
    time_machine.move_to(later, tick=False)
    services.evaluation_cancel(evaluation=evaluation, canceled_by=alice)
    assert (evaluation.status, evaluation.updated_at, evaluation.canceled_at) == ("FAILED", later, later)


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([("status", 400, {})], "the provider rejected this request (HTTP 400"),
        ([("status", 413, {})], "the provider rejected this request (HTTP 413"),
        ([("html",), ("html",)], "the judge's reply did not fit the schema twice"),
        ([("cut",), ("cut",)], "the judge's reply did not fit the schema twice"),
        ([("refusal",)], "the judge refused"),
    ],
)
def test_one_sample_s_error_fails_that_sample_only(
    fake_anthropic: Any, run_a: Run, evaluate: Any, settings: Any, steps: list[tuple[Any, ...]], reason: str
) -> None:
    settings.JUDGE_CONCURRENCY = 1  # the scripted replies go to the first sample asked
    fake_anthropic.script.extend(steps)
    evaluation = evaluate(run_a, SONNET)
    assert evaluation.status == "SUCCEEDED"
    [failed] = evaluation.classifications.filter(status="failed")
    assert failed.error.startswith(reason), failed.error
    assert evaluation.classifications.filter(status="ok").count() == 11
    # Every call made is in the ledger: one per good sample, and each the failing sample took.
    assert evaluation.judge_calls.filter(purpose="classify").count() == 11 + len(steps)


def test_bad_credentials_fail_the_evaluation_clearly(fake_anthropic: Any, run_a: Run, evaluate: Any) -> None:
    fake_anthropic.script.append(("status", 401, {}))
    evaluation = evaluate(run_a, SONNET)
    assert evaluation.status == "FAILED"
    assert evaluation.error_message.startswith("The judge failed: the provider rejected the credentials (HTTP 401")
    assert evaluation.completed_at is not None
    assert evaluation.judge_calls.filter(outcome="fatal").exists()


def test_an_unknown_provider_model_fails_the_evaluation(fake_openai: Any, run_a: Run, evaluate: Any) -> None:
    fake_openai.script.append(("status", 404, {}))
    evaluation = evaluate(run_a, "openai/gpt-5.4")
    assert evaluation.status == "FAILED"
    assert "does not know this model" in evaluation.error_message


def test_without_credentials_development_falls_back_to_offline(run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a, SONNET)
    assert evaluation.status == "SUCCEEDED"
    assert (evaluation.requested_model, evaluation.model_used) == (SONNET, "local/embeddings")
    assert evaluation.fallback_reason.startswith("ANTHROPIC_API_KEY is not set")
    assert evaluation.statistics["explanation_source"] == "template"
    assert evaluation.judge_calls.filter(outcome="ok").count() == 12
    assert evaluation.ledger_totals()["cost_usd"] == 0


def test_without_credentials_production_fails(run_a: Run, evaluate: Any, settings: Any) -> None:
    settings.JUDGE_OFFLINE_FALLBACK = False
    evaluation = evaluate(run_a, "openai/gpt-5.4")
    assert evaluation.status == "FAILED"
    assert evaluation.error_message == (
        "No credentials for openai/gpt-5.4: set OPENAI_API_KEY (or choose another evaluation model)."
    )


def test_an_openai_compatible_server_needs_only_a_base_url(
    fake_openai: Any, run_a: Run, evaluate: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    settings.JUDGE_MODELS = {
        **settings.JUDGE_MODELS,
        "local/qwen3-8b": {"provider": "openai", "model": "Qwen/Qwen3-8B", "base_url": "http://gpu.internal:8000/v1",
                           "temperature": 0},
    }  # fmt: skip
    evaluation = evaluate(run_a, "local/qwen3-8b")
    assert evaluation.status == "SUCCEEDED"
    assert evaluation.model_used == "local/qwen3-8b"
    assert fake_openai.requests[0]["model"] == "Qwen/Qwen3-8B"
    assert fake_openai.requests[0]["temperature"] == 0


# --- Dispatch: what is sent, when again, and in which order ---


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Ids of the items dispatch sends to the broker, in order; none runs."""
    ids: list[int] = []
    monkeypatch.setattr(dispatch, "async_task", lambda task, item_id, group: ids.append(item_id))
    return ids


def queued(company: Any, number: int) -> int:
    dispatch.work_create(company_id=company.id, kind="test.item", subject_id=number, key=f"test:{company.id}:{number}")
    return WorkItem.objects.get(key=f"test:{company.id}:{number}").id


def test_dispatch_sends_an_item_once_until_its_message_is_presumed_lost(
    company_a: Any, sent: list[int], settings: Any, time_machine: Any
) -> None:
    first = queued(company_a, 1)
    assert dispatch.dispatch() == 1
    assert dispatch.dispatch() == 0  # sent and not started yet: its message may still be on its way
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.WORK_REDELIVER_SECONDS - 1))
    assert dispatch.dispatch() == 0
    time_machine.move_to(timezone.now() + timedelta(seconds=2))
    assert dispatch.dispatch() == 1  # presumed lost: sent again
    assert sent == [first, first]


def test_dispatch_takes_turns_between_companies_within_the_cap(
    company_a: Any, company_b: Any, sent: list[int], settings: Any
) -> None:
    settings.WORK_MAX_IN_FLIGHT_PER_COMPANY = 2
    a1, a2, a3 = (queued(company_a, n) for n in range(3))
    b1 = queued(company_b, 1)
    # The company with fewer in flight goes first (a tie: the smaller company id); A's third waits for a slot.
    assert dispatch.dispatch() == 3
    assert sent == ([a1, b1, a2] if company_a.id < company_b.id else [b1, a1, a2])
    WorkItem.objects.filter(id=a1).update(state=WorkItem.State.DONE)  # a slot frees
    assert dispatch.dispatch() == 1
    assert sent[-1] == a3


def test_creating_an_item_twice_under_one_key_keeps_one(company_a: Any, sent: list[int]) -> None:
    # A retried request or a redelivered task may create the same work again: the key makes it a no-op.
    for _ in range(2):
        dispatch.work_create(company_id=company_a.id, kind="test.item", subject_id=1, key="test:once")
        dispatch.work_create_parts(company_id=company_a.id, kind="test.part", subject_id=1, parts=3)
    assert WorkItem.objects.filter(key="test:once").count() == 1
    assert sorted(WorkItem.objects.filter(kind="test.part").values_list("args", flat=True), key=str) == [
        {"part": part, "parts": 3} for part in range(3)
    ]


@pytest.mark.parametrize(("attempts", "backoff"), [(0, 2), (1, 4), (3, 16), (5, 60)])
def test_an_expired_claim_backs_off_exponentially_up_to_the_cap(
    company_a: Any, settings: Any, time_machine: Any, attempts: int, backoff: int
) -> None:
    settings.WORK_BACKOFF_MAX_SECONDS = 60
    settings.WORK_MAX_ATTEMPTS = 10  # every case is queued again, none given up
    time_machine.move_to(timezone.now(), tick=False)
    WorkItem.objects.filter(id=queued(company_a, 1)).update(state="running", claim=1, attempts=attempts)
    dispatch.expire(WorkItem.objects.get(key=f"test:{company_a.id}:1"), reason="x" * 5000)
    expired = WorkItem.objects.get(key=f"test:{company_a.id}:1")
    assert (expired.state, expired.attempts) == ("queued", attempts + 1)
    assert expired.available_at == timezone.now() + timedelta(seconds=backoff)  # 2 ** attempts, at most the cap
    assert expired.last_error == "x" * 4000  # a reason is cut to what an admin page shows


def test_retry_queues_an_item_again_with_its_attempts_reset(company_a: Any, sent: list[int]) -> None:
    item_id = queued(company_a, 1)
    WorkItem.objects.filter(id=item_id).update(state="failed", attempts=5, last_error="gave up")
    assert dispatch.work_retry(WorkItem.objects.filter(id=item_id)) == 1
    retried = WorkItem.objects.get(id=item_id)
    assert (retried.state, retried.attempts, retried.last_error) == ("queued", 0, "")


def test_a_cap_of_one_keeps_one_item_in_flight(company_a: Any, sent: list[int], settings: Any) -> None:
    settings.WORK_MAX_IN_FLIGHT_PER_COMPANY = 1  # the smallest cap that is on (0 is off)
    first = queued(company_a, 1)
    queued(company_a, 2)
    assert dispatch.dispatch() == 1
    assert sent == [first]


def test_dispatch_stops_at_the_first_refusal_of_the_broker(
    company_a: Any, company_b: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The broker is down: one refused send says so; the others are not tried (each would wait on a dead broker),
    # and every item stays queued and unsent, for a reconciler to send once the broker is back.
    tried: list[int] = []

    def refuse(task: str, item_id: int, group: str) -> None:
        tried.append(item_id)
        raise ConnectionError("broker down")

    ids = [queued(company_a, 1), queued(company_b, 1), queued(company_a, 2)]
    monkeypatch.setattr(dispatch, "async_task", refuse)
    assert dispatch.dispatch() == 0
    assert len(tried) == 1
    [warning] = [r for r in caplog.records if "the broker refused item" in r.getMessage()]
    logged = warning.exc_info[0] if warning.exc_info else None
    assert logged is ConnectionError  # the operator sees why it refused
    assert list(WorkItem.objects.filter(id__in=ids).values_list("state", "enqueued_at")) == [("queued", None)] * 3
