"""Running one work item in a worker: claim it, keep its lease alive, record how it ended (DESIGN.md §6).

No exception leaves `run_item` without the row recording it: a handler's error puts the item back in the queue
(or gives up after the last attempt), and django-q never sees a failure it could drop. A worker killed outright
leaves a lease that expires; the reconciler takes it from there.

Attempts count failures, not interruptions of work that progressed: a heartbeat after the handler reported
progress (`Context.progressed`) gives the item a fresh allowance, and a claim that an outage of the database or
the cache interrupts is handed back without counting.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F, Q
from django.utils import timezone
from django_q.conf import Conf

from config.outages import outage_of
from llm.deadline import stop_calls  # the one thing work knows of llm: how to make provider calls stop

from . import dispatch
from .models import WorkItem
from .registry import HANDLERS, Handler, Result

logger = logging.getLogger(__name__)

# Set by SIGTERM in a worker process: running items hand themselves back, and the process exits.
STOPPING = threading.Event()
_busy = threading.Event()  # an item is running in this process
_current: WorkItem | None = None  # the item this process runs, for the stop's backstop to hand back
_idle_since: datetime | None = None  # when this worker process last had nothing to run (None: busy), for reconcile


class Context:
    """What a running handler needs from the runner: `tick()` (call it often) and the time it has left."""

    def __init__(self, item: WorkItem, *, task_began: float | None = None) -> None:
        self.item = item
        started = time.monotonic()
        # The engine never starts a provider call it could not finish before django-q's own timeout, which counts
        # from the start of the django-q task: the first item's, when this one runs as the next step of a chain.
        self.deadline = (started if task_began is None else task_began) + settings.WORK_HARD_SECONDS
        self._slice_ends = started + settings.WORK_SLICE_SECONDS
        self._last_beat = started
        self._progressed = False
        self.stop_reason = ""
        # Set by a handler that yields to wait for something outside (a provider's batch): not sent again before.
        self.come_back_in: float | None = None

    def progressed(self) -> None:
        """The handler wrote a result: the next heartbeat gives the item a fresh allowance of attempts."""
        self._progressed = True

    def tick(self) -> bool:
        """Extend the lease when due. False once the item must stop now: its claim is gone (canceled, or taken
        over after an expired lease), the worker is stopping, its time is up, or its slice is over while other
        work waits. Cheap: at most one UPDATE per WORK_HEARTBEAT_SECONDS."""
        if self.stop_reason:
            return False
        now = time.monotonic()
        if STOPPING.is_set():
            self.stop_reason = "the worker is stopping"
        elif now >= self.deadline:
            self.stop_reason = "out of time for this run"
        elif now - self._last_beat >= settings.WORK_HEARTBEAT_SECONDS:
            self._last_beat = now
            progressed, self._progressed = self._progressed, False
            if not _heartbeat(self.item, progressed=progressed):
                self.stop_reason = "lost"
            elif now >= self._slice_ends and _others_waiting(self.item):
                self.stop_reason = "its time slice is over and other work waits"
        return not self.stop_reason

    @property
    def lost(self) -> bool:
        return self.stop_reason == "lost"

    def save_args(self, args: dict[str, Any]) -> bool:
        """Store the item's state (its args) while this claim is its own: what a handler must find again after a
        kill (a provider's batch id). Runs in the caller's transaction; False when the claim is lost."""
        saved = WorkItem.objects.filter(id=self.item.id, claim=self.item.claim, state=WorkItem.State.RUNNING).update(
            args=args
        )
        if saved:
            self.item.args = args
        else:
            self.stop_reason = "lost"
        return bool(saved)


def _lease() -> timedelta:
    return timedelta(seconds=settings.WORK_LEASE_SECONDS)


def _heartbeat(item: WorkItem, *, progressed: bool) -> bool:
    """Extend the lease, and after progress reset the attempts (a kill after progress is not a failure to count
    against the next five); False when this claim is no longer the item's (canceled, or taken over)."""
    fresh: dict[str, Any] = {"attempts": 0} if progressed else {}
    return bool(
        WorkItem.objects.filter(id=item.id, claim=item.claim, state=WorkItem.State.RUNNING).update(
            lease_until=timezone.now() + _lease(), **fresh
        )
    )


def _others_waiting(item: WorkItem) -> bool:
    ready = WorkItem.objects.ready(now=timezone.now(), sent_before=dispatch.redeliver_before())
    return ready.exclude(id=item.id).exists()


def _claim(item_id: int) -> WorkItem | None:
    """Queued and due → running under a fresh lease and claim token; None for a duplicate or early delivery."""
    now = timezone.now()
    claimed = WorkItem.objects.filter(Q(id=item_id), Q(state=WorkItem.State.QUEUED), Q(available_at__lte=now)).update(
        state=WorkItem.State.RUNNING,
        claim=F("claim") + 1,
        lease_until=now + _lease(),
        worker=f"{socket.gethostname()}:{os.getpid()}"[:100],
        started_at=now,
    )
    return WorkItem.objects.get(id=item_id) if claimed else None


def _finish(item: WorkItem, state: str, **fields: Any) -> bool:
    return bool(
        WorkItem.objects.filter(id=item.id, claim=item.claim, state=WorkItem.State.RUNNING).update(
            state=state, lease_until=None, **fields
        )
    )


def _hand_back(item: WorkItem, **fields: Any) -> bool:
    """Straight back to the queue, as if never sent, not counted as an attempt: the next dispatch sends it."""
    return _finish(item, WorkItem.State.QUEUED, enqueued_at=None, **fields)


def run_item(item_id: int) -> None:
    """Run the item the broker sent, then its subject's next steps as they come due (see _next_step)."""
    began = time.monotonic()  # django-q's timeout counts from here, for the whole chain
    item = _claim(item_id)
    while item is not None:
        item = _run_claimed(item, task_began=began)


def _run_claimed(item: WorkItem, *, task_began: float) -> WorkItem | None:
    """Run a claimed item; return the next step of its subject, claimed, or None."""
    global _current, _idle_since
    _current = dispatch.running = item
    _busy.set()
    _idle_since = None
    following: WorkItem | None = None
    try:
        handler = HANDLERS.get(item.kind)
        if handler is None:
            last_error = f"no handler for {item.kind!r}"
            _finish(item, WorkItem.State.FAILED, last_error=last_error, finished_at=timezone.now())
            return None
        following = _run(item, handler, task_began=task_began)
        return following
    finally:
        # A next step claimed is work held like any other: the process stays busy, and a stop hands it back.
        _current = dispatch.running = following
        if following is None:
            _busy.clear()
            _idle_since = timezone.now()
        if STOPPING.is_set():
            if following is not None:
                _hand_back(following, last_error="")
                dispatch.dispatch()
            os._exit(0)  # graceful stop: what this process held is back in the queue


def _next_step(item: WorkItem, *, task_began: float) -> WorkItem | None:
    """The item's next step (an item it created for its own subject: the classify after a start, the finalize after
    the last classify), claimed here and now: the broker round trip and another process's start cost more than the
    step itself (issue #26: a third of an evaluation's fixed cost). Not when another company's work is due (a free
    process goes to dispatch's fair choice), when the worker is stopping, or when the django-q task has used half
    its time (the next step would get too little of it). A kill from here on is a kill of a claimed item: its lease
    expires and the reconciler queues it again."""
    if not settings.WORK_CHAIN_STEPS or STOPPING.is_set():
        return None
    if time.monotonic() - task_began > settings.WORK_HARD_SECONDS / 2:
        return None
    due = WorkItem.objects.filter(state=WorkItem.State.QUEUED, available_at__lte=timezone.now())
    if due.exclude(company_id=item.company_id).exists():
        return None
    following = (
        WorkItem.objects.next_steps(item)
        .filter(available_at__lte=timezone.now())
        .order_by("created_at", "id")
        .values_list("id", flat=True)
        .first()
    )
    return None if following is None else _claim(following)


def _run(item: WorkItem, handler: Handler, *, task_began: float) -> WorkItem | None:
    ctx = Context(item, task_began=task_began)
    try:
        result = handler.run(item, ctx)
    except BaseException as exc:
        # Recorded first, whatever it is: django-q's timeout (a SystemExit), a bug, a database error.
        logger.exception("work item %s failed", item.key)
        summary = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        outage = outage_of(exc)
        if outage is not None:
            _hand_back_after_outage(item, reason=f"interrupted by a {outage} outage: {summary}")
        else:
            dispatch.expire(item, reason=summary)
        if not isinstance(exc, Exception):
            raise
        return None
    if ctx.lost:
        return None  # canceled, or another worker holds it now: this one writes nothing more
    following = None
    if result is Result.YIELD:
        # A time slice ended, or a graceful stop; or the handler waits for something outside until a given time.
        later = (
            {} if ctx.come_back_in is None else {"available_at": timezone.now() + timedelta(seconds=ctx.come_back_in)}
        )
        _hand_back(item, last_error="", **later)
    elif _finish(item, WorkItem.State.DONE, finished_at=timezone.now(), last_error=""):
        following = _next_step(item, task_began=task_began)
    dispatch.running = following  # its own next steps stay ours; the rest (other parts, other subjects) is sent
    dispatch.dispatch()
    return following


def _hand_back_after_outage(item: WorkItem, *, reason: str) -> None:
    """An outage is nobody's failure: hand the item back uncounted, as soon as the database answers again (tried
    every second while the lease lasts; past it, the reconciler's expiry takes over, as for a killed worker)."""
    until = time.monotonic() + settings.WORK_LEASE_SECONDS
    while True:
        try:
            _hand_back(item, last_error=reason[:4000], available_at=timezone.now() + timedelta(seconds=1))
            return
        except Exception as exc:
            if outage_of(exc) is None or time.monotonic() >= until:
                logger.exception("work item %s could not be handed back after an outage", item.key)
                return
            connection.close()  # broken by the outage: the next try opens a fresh one
        time.sleep(1)


def _stop_backstop() -> None:
    """WORK_STOP_GRACE_SECONDS after SIGTERM, whatever the item is doing: hand it back (uncounted) and exit."""
    item = _current
    try:
        if item is not None:
            _hand_back(item, last_error="")
            dispatch.dispatch()
    except Exception:
        logger.exception("the stopping worker could not hand back its item; its lease will expire")
    finally:
        os._exit(0)


def on_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """In each django-q worker process: start the reconciler loop, and make SIGTERM a graceful stop.

    SIGTERM stops taking work: an idle worker exits at once; in a busy one no provider call starts and none is
    retried, calls in flight get WORK_STOP_CALLS_SECONDS to answer and are then abandoned, the item hands itself
    back and the process exits; the backstop hands it back and exits after WORK_STOP_GRACE_SECONDS whatever the
    item is doing. Without this, SIGTERM to the process group (what systemd sends) leaves workers nobody stops.
    """
    if Conf.SYNC or threading.current_thread() is not threading.main_thread():
        return  # tasks running inline (tests, sync mode): this is not a worker process

    def on_sigterm(signum: int, frame: Any) -> None:
        STOPPING.set()
        if not _busy.is_set():
            os._exit(0)
        stop_calls(after=settings.WORK_STOP_CALLS_SECONDS)
        threading.Timer(settings.WORK_STOP_GRACE_SECONDS, _stop_backstop).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    global _idle_since
    _idle_since = timezone.now()
    threading.Thread(target=_reconcile_forever, name="work-reconciler", daemon=True).start()


def _reconcile_forever() -> None:
    """Every WORK_RECONCILE_SECONDS: re-queue expired leases, re-send lost messages, dispatch fairly. Every worker
    process runs it (it is idempotent), so it needs no scheduler and no cron, and runs wherever workers run."""
    while not STOPPING.is_set():
        time.sleep(settings.WORK_RECONCILE_SECONDS)
        try:
            dispatch.reconcile(idle_since=_idle_since)
        except Exception:
            logger.exception("the reconciler failed; it tries again in %s s", settings.WORK_RECONCILE_SECONDS)
        finally:
            close_old_connections()
