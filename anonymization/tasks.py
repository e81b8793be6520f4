"""Work item handlers of the anonymization app: thin functions that take the item and call services (STYLE.md
rule 9). Registered in AnonymizationConfig.ready()."""

from __future__ import annotations

from work.models import WorkItem
from work.registry import Result, register
from work.runner import Context

from . import services


def process(item: WorkItem, ctx: Context) -> Result:
    return services.anonymization_run_process(run_id=item.subject_id, ctx=ctx)


def give_up(item: WorkItem, reason: str) -> None:
    services.anonymization_run_fail(run_id=item.subject_id, message=f"The run could not finish: {reason}")


def build_archive(item: WorkItem, ctx: Context) -> Result:
    services.anonymization_archive_build(run_id=item.subject_id)
    return Result.DONE


def give_up_archive(item: WorkItem, reason: str) -> None:
    services.anonymization_archive_give_up(run_id=item.subject_id)


def register_all() -> None:
    register("anonymization.run", run=process, give_up=give_up)
    register("anonymization.archive", run=build_archive, give_up=give_up_archive)
