"""Work item handlers of the runs app (the work app runs them in django-q2 workers): thin functions that take the
item and call services (STYLE.md rule 9). Registered in RunsConfig.ready()."""

from __future__ import annotations

from work.models import WorkItem
from work.registry import Result, register, register_sweep
from work.runner import Context

from . import batch, generation, services


def generate_spec(item: WorkItem, ctx: Context) -> Result:
    return services.spec_generate(spec_id=item.subject_id, ctx=ctx)


def give_up_spec(item: WorkItem, reason: str) -> None:
    services.spec_generation_fail(spec_id=item.subject_id, message=f"The spec could not be generated: {reason}")


def start(item: WorkItem, ctx: Context) -> Result:
    generation.run_generation_start(run_id=item.subject_id)
    return Result.DONE


def write(item: WorkItem, ctx: Context) -> Result:
    return generation.run_generation_write(
        run_id=item.subject_id, part=item.args["part"], parts=item.args["parts"], ctx=ctx
    )


def write_in_batches(item: WorkItem, ctx: Context) -> Result:
    return batch.run_generation_batch(item=item, ctx=ctx)


def settle_batches(item: WorkItem, ctx: Context) -> Result:
    return batch.batch_settle(item=item, ctx=ctx)


def give_up(item: WorkItem, reason: str) -> None:
    generation.run_generation_fail(run_id=item.subject_id, message=f"The run could not finish: {reason}")


def register_all() -> None:
    register("spec.generate", run=generate_spec, give_up=give_up_spec)
    register("run.start", run=start, give_up=give_up)
    register("run.write", run=write, give_up=give_up)
    register("run.batch", run=write_in_batches, give_up=give_up, cancel=batch.batch_cancel)
    # An ended run's give_up changes nothing (run_generation_fail): the item's last error is the record.
    register(batch.SETTLE, run=settle_batches, give_up=give_up)
    register_sweep(services.abandoned_imports_delete)
