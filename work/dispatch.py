"""Creating work, sending it to the broker fairly, and reconciling rows with reality (DESIGN.md §6).

The broker is only a doorbell: whatever it does with a message (the ORM broker re-delivers after its lock expires,
Redis's BLPOP loses a message whose worker dies), the rows say what is left to do, and `reconcile` rings again.
Fairness: no company has more than WORK_MAX_IN_FLIGHT_PER_COMPANY items running or on their way at once, and a
free slot goes to the company with the fewest in flight, so one company's 20,000-sample evaluation cannot queue
ahead of another's small one.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict, deque
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from .models import WorkItem
from .registry import HANDLERS, SWEEPS

logger = logging.getLogger(__name__)


def work_create(*, company_id: int, kind: str, subject_id: int, key: str, args: dict[str, Any] | None = None) -> None:
    """Create a queued item (once per key) and send work to the broker once the surrounding transaction commits."""
    WorkItem.objects.bulk_create(
        [WorkItem(company_id=company_id, kind=kind, subject_id=subject_id, key=key, args=args or {})],
        ignore_conflicts=True,
    )
    transaction.on_commit(dispatch)


def work_create_parts(*, company_id: int, kind: str, subject_id: int, parts: int) -> None:
    """Split one subject's work into `parts` items run side by side: item i has args {"part": i, "parts": parts}
    and takes its own share of the subject (the handler decides which). Created once each, like work_create."""
    WorkItem.objects.bulk_create(
        [
            WorkItem(
                company_id=company_id,
                kind=kind,
                subject_id=subject_id,
                key=f"{kind}:{subject_id}:{part}",
                args={"part": part, "parts": parts},
            )
            for part in range(parts)
        ],
        ignore_conflicts=True,
    )
    transaction.on_commit(dispatch)


def work_cancel(*, kind_prefix: str, subject_id: int, reason: str) -> int:
    """End every open item of a subject; a worker running one sees its claim gone at its next tick and stops.
    Items whose handler started something outside (a provider's batch) have it canceled once this commits."""
    now = timezone.now()
    items = WorkItem.objects.for_subject(kind_prefix, subject_id).open()
    stoppable = [kind for kind, handler in HANDLERS.items() if handler.cancel and kind.startswith(kind_prefix)]
    outside = list(items.filter(kind__in=stoppable)) if stoppable else []
    canceled = items.update(state=WorkItem.State.CANCELED, last_error=reason, finished_at=now, lease_until=None)
    for item in outside:
        transaction.on_commit(partial(_cancel_outside, item))
    return canceled


def _cancel_outside(item: WorkItem) -> None:
    handler = HANDLERS[item.kind]
    try:
        handler.cancel(item)  # type: ignore[misc]
    except Exception:
        logger.exception("could not stop what work item %s started", item.key)


def work_retry(items: QuerySet[WorkItem]) -> int:
    """Queue items again with their attempts reset (staff's "retry"); sent once the transaction commits."""
    count = items.update(
        state=WorkItem.State.QUEUED,
        attempts=0,
        last_error="",
        available_at=timezone.now(),
        enqueued_at=None,
        lease_until=None,
        finished_at=None,
    )
    transaction.on_commit(dispatch)
    return count


# The item this process runs (set by work/runner.py): the items it creates for its own subject (the classify items a
# start creates, the finalize the last classify creates) are not sent to the broker while it runs. When it ends, the
# runner claims the next one itself, with no broker round trip, or sends them (DESIGN.md §6). Anyone else's dispatch
# (another process, the web) still sends them: this only keeps this process from ringing for work it will take.
running: WorkItem | None = None


def redeliver_before() -> datetime:
    """Items sent to the broker before this are presumed lost (never started) and may be sent again."""
    return timezone.now() - timedelta(seconds=settings.WORK_REDELIVER_SECONDS)


def dispatch(*, lost_before: datetime | None = None) -> int:
    """Send ready items to the broker, fairly across companies, within the in-flight caps. Returns how many.
    Items sent before `lost_before` (an idle worker's word, see reconcile) are taken for lost, as well as those sent
    before redeliver_before().

    Safe to run anywhere at any time, concurrently too: an item is sent only by whoever marks it sent first.
    """
    now, sent_before = timezone.now(), redeliver_before()
    if lost_before is not None:
        sent_before = max(sent_before, lost_before)
    cap = settings.WORK_MAX_IN_FLIGHT_PER_COMPANY
    busy: Counter[int] = Counter(
        dict(
            WorkItem.objects.in_flight(sent_after=sent_before)
            .values_list("company_id")
            .annotate(n=Count("id"))
            .order_by()
        )
    )
    queues: dict[int, deque[int]] = defaultdict(deque)  # company -> its ready items, oldest first
    ready = WorkItem.objects.ready(now=now, sent_before=sent_before).order_by("created_at", "id")
    if running is not None and running.started_at is not None:
        ready = ready.exclude(id__in=WorkItem.objects.next_steps(running))
    for item_id, company in ready.values_list("id", "company_id")[: settings.WORK_DISPATCH_BATCH]:
        queues[company].append(item_id)
    sent = 0
    while True:
        # The company with the fewest items in flight goes next (ties: the smaller id, for determinism).
        # A cap of 0 is off, as for every other limit.
        open_companies = [c for c, items in queues.items() if items and (cap <= 0 or busy[c] < cap)]
        if not open_companies:
            break
        company = min(open_companies, key=lambda c: (busy[c], c))
        item_id = queues[company].popleft()
        # Only whoever marks it sent first sends it: a concurrent dispatch finds it no longer ready.
        marked = WorkItem.objects.ready(now=now, sent_before=sent_before).filter(id=item_id).update(enqueued_at=now)
        if marked:
            try:
                async_task("work.tasks.run_item", item_id, group=str(company))
            except Exception:
                # The broker is down: the row still says queued, and a reconciler sends it once the broker is back.
                # Never raised to the caller: a request that created work has committed it, and must not answer 5xx.
                logger.warning("the broker refused item %s; it is sent again later", item_id, exc_info=True)
                WorkItem.objects.filter(id=item_id, enqueued_at=now).update(enqueued_at=None)
                break
            busy[company] += 1
            sent += 1
    return sent


def reconcile(*, idle_since: datetime | None = None) -> None:
    """Re-queue running items whose lease expired (their worker died) and give up on those out of attempts;
    then dispatch, which also re-sends queued items whose message was lost; then the apps' sweeps.

    `idle_since`: when the calling worker process last had nothing to run. A message still in the broker reaches an
    idle worker at once (Redis wakes it; the ORM broker is polled every Q_POLL_MS), so an item sent while this one
    sat idle for WORK_RECONCILE_SECONDS, and still not started, is lost: a killed worker had it from the broker
    already (Redis pops it; the ORM broker locks it for Q_TIMEOUT + 60 s). Sent again now rather than after
    WORK_REDELIVER_SECONDS (issue #26: 52 s after a cluster's SIGKILL). If another cluster's worker holds it after
    all, one of the two deliveries finds it claimed and does nothing."""
    now = timezone.now()
    for item in WorkItem.objects.filter(state=WorkItem.State.RUNNING, lease_until__lt=now):
        expire(item, reason="the worker stopped while working on it (its lease expired)")
    settled = now - timedelta(seconds=settings.WORK_RECONCILE_SECONDS)
    dispatch(lost_before=settled if idle_since is not None and idle_since <= settled else None)
    for sweep in SWEEPS:
        sweep()


def expire(item: WorkItem, *, reason: str) -> None:
    """Count a lost or failed claim; queue the item again, or give up after the last attempt."""
    attempts = item.attempts + 1
    give_up = attempts >= settings.WORK_MAX_ATTEMPTS
    backoff = timedelta(seconds=min(settings.WORK_BACKOFF_MAX_SECONDS, 2**attempts))
    updated = WorkItem.objects.filter(id=item.id, claim=item.claim, state=WorkItem.State.RUNNING).update(
        state=WorkItem.State.FAILED if give_up else WorkItem.State.QUEUED,
        attempts=F("attempts") + 1,
        last_error=reason[:4000],
        lease_until=None,
        enqueued_at=None,
        available_at=timezone.now() + backoff,
        finished_at=timezone.now() if give_up else None,
    )
    if updated and give_up:
        logger.warning("work item %s gave up after %s attempts: %s", item.key, attempts, reason)
        handler = HANDLERS.get(item.kind)
        if handler is not None:
            handler.give_up(item, f"gave up after {attempts} attempts: {reason}")
