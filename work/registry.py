"""What each kind of work item does. Apps register their handlers in AppConfig.ready(); work imports none of them."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import WorkItem
    from .runner import Context


class Result(enum.Enum):
    DONE = "done"
    YIELD = "yield"  # more to do: back in the queue, not counted as an attempt (a time slice ended, a graceful stop)


@dataclass(frozen=True)
class Handler:
    # Does (part of) the work. Checks ctx.tick() often and returns YIELD as soon as it says stop; raises on errors
    # (the runner records them and retries the item later, up to WORK_MAX_ATTEMPTS).
    run: Callable[[WorkItem, Context], Result]
    # After the last attempt: end the subject in a terminal state carrying `reason` (e.g. the evaluation FAILED).
    give_up: Callable[[WorkItem, str], None]
    # When the open item is canceled (after the commit): stop what it started outside (a provider's batch).
    cancel: Callable[[WorkItem], None] | None = None


HANDLERS: dict[str, Handler] = {}
# Housekeeping the reconciler runs each round in every worker process: idempotent, one cheap query when there is
# nothing to do.
SWEEPS: list[Callable[[], object]] = []


def register_sweep(sweep: Callable[[], object]) -> None:
    if sweep not in SWEEPS:
        SWEEPS.append(sweep)


def register(
    kind: str,
    *,
    run: Callable[[WorkItem, Context], Result],
    give_up: Callable[[WorkItem, str], None],
    cancel: Callable[[WorkItem], None] | None = None,
) -> None:
    HANDLERS[kind] = Handler(run, give_up, cancel)
