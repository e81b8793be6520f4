"""Work item handlers of red teaming (the work app runs them in django-q2 workers). Registered in ready()."""

from __future__ import annotations

from work.models import WorkItem
from work.registry import Result, register
from work.runner import Context

from . import services, steps


def run(item: WorkItem, ctx: Context) -> Result:
    return steps.red_team_run_work(run_id=item.subject_id, ctx=ctx)


def give_up(item: WorkItem, reason: str) -> None:
    services.red_team_run_fail(run_id=item.subject_id, message=f"The run could not finish: {reason}")


def register_all() -> None:
    register(services.KIND, run=run, give_up=give_up)
