"""Work item handlers (the work app runs them in django-q2 workers): thin functions that take the item and call
services (STYLE.md rule 9). Registered in EvaluationsConfig.ready()."""

from __future__ import annotations

from work.models import WorkItem
from work.registry import Result, register
from work.runner import Context

from . import batch, services


def start(item: WorkItem, ctx: Context) -> Result:
    services.evaluation_start(evaluation_id=item.subject_id)
    return Result.DONE


def classify(item: WorkItem, ctx: Context) -> Result:
    return services.evaluation_classify(
        evaluation_id=item.subject_id, part=item.args["part"], parts=item.args["parts"], ctx=ctx
    )


def judge_in_batches(item: WorkItem, ctx: Context) -> Result:
    return batch.evaluation_batch(item=item, ctx=ctx)


def settle_batches(item: WorkItem, ctx: Context) -> Result:
    return batch.batch_settle(item=item, ctx=ctx)


def finalize(item: WorkItem, ctx: Context) -> Result:
    return services.evaluation_finalize(evaluation_id=item.subject_id, ctx=ctx)


def give_up(item: WorkItem, reason: str) -> None:
    services.evaluation_fail(evaluation_id=item.subject_id, message=f"The evaluation could not finish: {reason}")


def register_all() -> None:
    register("evaluation.start", run=start, give_up=give_up)
    register("evaluation.classify", run=classify, give_up=give_up)
    register("evaluation.finalize", run=finalize, give_up=give_up)
    register("evaluation.batch", run=judge_in_batches, give_up=give_up, cancel=batch.batch_cancel)
    # An ended evaluation's give_up changes nothing (evaluation_fail): the item's last error is the record.
    register(batch.SETTLE, run=settle_batches, give_up=give_up)
