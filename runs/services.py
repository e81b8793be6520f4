from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from companies.models import Company
from companies.quotas import quota_check, storage_check
from config.sqlite.base import bulk_writes
from llm.engine import Outcome, ask_each
from llm.judges import resolve_writer
from llm.ledger import CallLedger, record_calls
from work.dispatch import work_cancel, work_create
from work.registry import Result

from . import spec_generation
from .imports import build_samples, read_jsonl
from .models import Run, Sample, SeedDataset, SeedFile, Spec, SpecVersion
from .seeds import Entry, SeedError, check_layout, delete_stored, detect_type, store_files
from .specfile import ParsedSpec, parse_spec

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from work.runner import Context

IMPORT_BATCH_SIZE = 250


class RunError(ValueError):
    pass


def spec_create(
    *,
    company: Company,
    created_by: User | None,
    name: str,
    content_yaml: str,
    description: str = "",
) -> Spec:
    """Create a spec and its first version; raises SpecError (nothing saved) if the YAML is invalid."""
    # Parsed before the transaction: on SQLite an atomic block holds the database's only write lock, and no
    # company's input may hold it while it is being checked.
    parsed = parse_spec(content_yaml)
    with transaction.atomic():
        spec = Spec.objects.create(
            company=company,
            name=name,
            description=description or parsed.description,
            created_by=created_by,
        )
        _version_create(spec=spec, created_by=created_by, content_yaml=content_yaml, parsed=parsed)
    return spec


def spec_add_version(*, spec: Spec, created_by: User | None, content_yaml: str) -> SpecVersion:
    """Add the next version of a spec; raises SpecError (nothing saved) if the YAML is invalid, RunError while an
    LLM is still writing it. A spec whose generation failed becomes SUCCEEDED with the YAML given by hand."""
    if spec.status == Spec.Status.PROCESSING:
        raise RunError("This spec is still being generated: wait until it is SUCCEEDED or FAILED.")
    parsed = parse_spec(content_yaml)  # before the transaction, as in spec_create
    with transaction.atomic():
        version = _version_create(spec=spec, created_by=created_by, content_yaml=content_yaml, parsed=parsed)
        Spec.objects.filter(pk=spec.pk, status=Spec.Status.FAILED).update(status=Spec.Status.SUCCEEDED, error="")
        return version


def _version_create(*, spec: Spec, created_by: User | None, content_yaml: str, parsed: ParsedSpec) -> SpecVersion:
    # Lock the spec so two concurrent updates cannot both take the same version number.
    Spec.objects.select_for_update().filter(pk=spec.pk).update(updated_at=timezone.now())
    latest = spec.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = SpecVersion.objects.create(
        spec=spec,
        number=latest + 1,
        content_yaml=content_yaml,
        properties=[p.to_dict() for p in parsed.properties],
        created_by=created_by,
    )
    spec.__dict__.pop("latest_version", None)
    return version


def runs_work_cancel(*, run_ids: list[int]) -> None:
    """End the work of runs about to be deleted, and of their evaluations (deleted with them)."""
    for run_id in run_ids:
        work_cancel(kind_prefix="run.", subject_id=run_id, reason="the run was deleted")
    evaluation_ids = Run.with_importing.filter(id__in=run_ids, evaluations__isnull=False).values_list(
        "evaluations__id", flat=True
    )
    for evaluation_id in evaluation_ids:
        work_cancel(kind_prefix="evaluation.", subject_id=evaluation_id, reason="its run was deleted")


@transaction.atomic
def spec_delete(*, spec: Spec, force: bool) -> None:
    if not force and spec.runs.exists():
        raise RunError("This spec has runs; delete them first or pass force=true to delete the spec with its runs.")
    # Runs go first: they hold the spec version they used (PROTECT), which the spec's cascade would hit. An import
    # still writing loses its run too (it then fails, keeping nothing).
    runs = Run.with_importing.filter(spec=spec)
    runs_work_cancel(run_ids=list(runs.values_list("id", flat=True)))
    runs.delete()
    spec.delete()


_imports_running = 0
_imports_done = threading.Condition()


@contextmanager
def _import_turn() -> Iterator[None]:
    """At most IMPORTS_AT_ONCE_PER_PROCESS imports check and write their samples at once in this process (0: no
    limit); the others wait their turn. An import is CPU-bound Python: under runserver (the default setup, every
    request a thread of one process) each one running takes its share of the GIL from every other request, and two
    20,000-sample imports left another company's short request a third of it (issue #22)."""
    global _imports_running
    limit = settings.IMPORTS_AT_ONCE_PER_PROCESS
    with _imports_done:
        _imports_done.wait_for(lambda: not limit or _imports_running < limit)
        _imports_running += 1
    try:
        yield
    finally:
        with _imports_done:
            _imports_running -= 1
            _imports_done.notify()


def run_import(
    *,
    company: Company,
    created_by: User | None,
    spec: Spec,
    rows: Any,
    spec_version: int | None = None,
    name: str = "",
) -> Run:
    """Create a SUCCEEDED run from samples the user brings; raises ImportProblems and saves nothing if any is bad."""
    if spec.company_id != company.id:
        raise RunError("unknown spec")
    if spec.status != Spec.Status.SUCCEEDED:
        raise RunError(
            f"Spec '{spec.name}' is {spec.status}: only a SUCCEEDED spec has properties to check samples by."
        )
    versions = spec.versions.all()
    version = versions.filter(number=spec_version).first() if spec_version else versions.order_by("-number").first()
    if version is None:
        raise RunError(f"spec '{spec.name}' has no version {spec_version}")
    with _import_turn():
        return _import_samples(company=company, created_by=created_by, spec=spec, version=version, rows=rows, name=name)


def _import_samples(
    *, company: Company, created_by: User | None, spec: Spec, version: SpecVersion, rows: Any, name: str
) -> Run:
    # Every sample is checked before any transaction; inside them there are only inserts.
    samples = build_samples(rows, version.parsed_properties)
    stored_bytes = sum(sample.size_bytes for sample in samples)
    with transaction.atomic():
        storage_check(company=company, adding=stored_bytes, what=f"this import of {len(samples):,} samples")
        # Counted by the storage quota at once (a concurrent import sees it), shown by nothing until complete.
        run = Run.with_importing.create(
            company=company,
            spec=spec,
            spec_version=version,
            name=name,
            status=Run.Status.SUCCEEDED,
            source=Run.Source.IMPORT,
            importing=True,
            samples_completed=len(samples),
            stored_bytes=stored_bytes,
            runtime_params={"number_of_samples": len(samples), "source": "import"},
            created_by=created_by,
        )
    try:
        # One transaction per batch: on SQLite every writer waits for the one write lock, and another company's
        # write then waits for one batch (tens of milliseconds), not for a 20,000-sample import. Bulk: a short
        # write waiting goes before this import's next batch and any other import's (config/sqlite).
        with bulk_writes():
            for start in range(0, len(samples), IMPORT_BATCH_SIZE):
                batch = samples[start : start + IMPORT_BATCH_SIZE]
                for sample in batch:
                    sample.run = run
                with transaction.atomic():
                    Sample.objects.bulk_create(batch)
        # An import starts as it is created (auto_now_add stamps created_at at save) and ends as it is shown.
        run.started_at, run.completed_at, run.importing = run.created_at, timezone.now(), False
        Run.with_importing.filter(pk=run.pk).update(
            started_at=run.started_at, completed_at=run.completed_at, importing=False
        )
    except BaseException as exc:
        Run.with_importing.filter(pk=run.pk).delete()  # with the batches already written
        if isinstance(exc, IntegrityError):  # the spec (and with it the run) was deleted meanwhile
            raise RunError(f"Spec '{spec.name}' was deleted during the import; nothing was kept.") from exc
        raise
    return run


def abandoned_imports_delete() -> int:
    """Delete the hidden runs, with their samples, of imports stopped half-way: a process killed between batches
    leaves one that nothing else removes (run_import deletes its run on any error it lives to see)."""
    _rows, deleted = Run.with_importing.abandoned_imports().delete()
    return deleted.get(Run._meta.label, 0)


DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_SPEC_NAME = "Customer support (demo)"


@transaction.atomic
def demo_run_ensure(*, company: Company, created_by: User | None) -> Run:
    """The demo spec and its hand-written 72-sample run, created once per company."""
    spec = Spec.objects.for_company(company).filter(name=DEMO_SPEC_NAME).first()
    if spec is None:
        spec = spec_create(
            company=company, created_by=created_by, name=DEMO_SPEC_NAME,
            content_yaml=(DEMO_DIR / "spec.yaml").read_text(),
        )  # fmt: skip
    existing = spec.runs.order_by("created_at").first()
    if existing is not None:
        return existing
    with (DEMO_DIR / "samples.jsonl").open("rb") as stream:
        rows = read_jsonl(stream)
    return run_import(
        company=company,
        created_by=created_by,
        spec=spec,
        rows=rows,
        name="Demo support run",
    )


def seed_dataset_create(
    *,
    company: Company,
    created_by: User | None,
    name: str,
    entries: list[Entry],
    description: str = "",
    dataset_type: str | None = None,
) -> SeedDataset:
    """Check the layout, stream every file into storage, then save the dataset and its files in one transaction.

    `dataset_type` None: detected from the layout (a ZIP). Raises SeedError (nothing saved, nothing left in
    storage) if the layout or a file breaks a rule or a limit.
    """
    detected = detect_type(entries)
    if dataset_type is not None and dataset_type != detected:
        raise SeedError(f"the files make a {detected} dataset, not the {dataset_type} that was asked for")
    check_layout(detected, entries)
    dataset = SeedDataset(
        company=company,
        name=name,
        description=description,
        dataset_type=detected,
        created_by=created_by,
    )
    # Streamed before the transaction: on SQLite an atomic block holds the only write lock, and no upload may
    # hold it while 50 MB are written.
    files = store_files(dataset, entries)
    try:
        with transaction.atomic():
            dataset.file_count = len(files)
            dataset.folder_count = len({f.folder for f in files if f.folder})
            dataset.total_bytes = sum(f.size_bytes for f in files)
            storage_check(company=company, adding=dataset.total_bytes, what=f"this dataset's {len(files)} files")
            dataset.save()
            for seed_file in files:
                seed_file.dataset = dataset
            SeedFile.objects.bulk_create(files)
    except IntegrityError:  # the same name, saved by a concurrent upload since the serializer checked it
        delete_stored([f.storage_name for f in files])
        raise SeedError(f"a seed dataset named '{name}' already exists") from None
    except BaseException:
        delete_stored([f.storage_name for f in files])
        raise
    return dataset


def seed_dataset_delete(*, dataset: SeedDataset) -> None:
    """Delete a dataset and its stored files; refused (SeedError, naming them) while specs were made from it."""
    with transaction.atomic():
        users = list(Spec.objects.filter(dataset=dataset).order_by("name").values_list("name", flat=True)[:11])
        if users:
            shown = ", ".join(f"'{n}'" for n in users[:10]) + (" and more" if len(users) > 10 else "")
            raise SeedError(f"This seed dataset is used by the spec(s) {shown}: delete them first.")
        names = list(dataset.files.values_list("storage_name", flat=True))
        dataset.delete()
        # The bytes go once the rows are gone for good (a rolled-back delete keeps both).
        transaction.on_commit(lambda: delete_stored(names))


# --- Spec generation (a `spec.generate` work item; registered in runs/tasks.py) ---


@transaction.atomic
def spec_generate_create(
    *,
    company: Company,
    created_by: User | None,
    name: str,
    description: str = "",
    dataset: SeedDataset | None,
    objectives: str,
    model_name: str,
    generate_distributions: bool,
    generate_conditional_distributions: bool = False,
    extrapolate_axes: bool = False,
    extrapolate_values: bool = False,
) -> Spec:
    """A PROCESSING spec and its generation item (sent to a worker once committed). Raises NoWriter first if no LLM
    can write it, so nothing is created that could only fail."""
    resolve_writer(model_name)
    # The monthly LLM budget (a 429 once spent): the writer's calls are paid for like a judge's.
    quota_check(company=company, evaluations=0, samples=0)
    if dataset is not None and dataset.company_id != company.id:
        raise RunError("unknown seed dataset")
    if not objectives.strip() and dataset is None:
        raise RunError("Give generation_objectives (a seedless spec) or a dataset_id to generate the spec from.")
    spec = Spec.objects.create(
        company=company,
        name=name,
        description=description,
        status=Spec.Status.PROCESSING,
        dataset=dataset,
        created_by=created_by,
        runtime_params={
            "spec_generation_model_name": model_name,
            "generation_objectives": objectives or None,
            "generate_distributions": generate_distributions,
            # Accepted from the client and recorded; only base distributions are generated.
            "generate_conditional_distributions": generate_conditional_distributions,
            "extrapolate_axes": extrapolate_axes,
            "extrapolate_values": extrapolate_values,
            "prompt_version": spec_generation.PROMPT_VERSION,
        },
    )
    work_create(company_id=company.id, kind="spec.generate", subject_id=spec.id, key=f"spec.generate:{spec.id}")
    return spec


def _spec_set(spec_id: int, **fields: Any) -> int:
    """End a PROCESSING spec (a finished, failed or deleted one is left alone); moves updated_at with it."""
    return Spec.objects.filter(id=spec_id, status=Spec.Status.PROCESSING).update(updated_at=timezone.now(), **fields)


def spec_generation_fail(*, spec_id: int, message: str) -> None:
    _spec_set(spec_id, status=Spec.Status.FAILED, error=message[:5000])
    work_cancel(kind_prefix="spec.", subject_id=spec_id, reason=message)


def spec_generate(*, spec_id: int, ctx: Context) -> Result:
    """Ask the writer for the spec, validate it, save it as version 1 and end SUCCEEDED (or FAILED with why).

    Safe to run again (a duplicate delivery, a retry after a worker died mid-call): a spec that is no longer
    PROCESSING is left alone, and the version and the status are saved together, once.
    """
    spec = Spec.objects.select_related("dataset").filter(id=spec_id, status=Spec.Status.PROCESSING).first()
    if spec is None:
        return Result.DONE
    params = spec.runtime_params or {}
    model_name = str(params.get("spec_generation_model_name") or "")
    try:
        writer = resolve_writer(model_name)
    except ValueError as exc:  # NoWriter: the credentials went away since the request
        spec_generation_fail(spec_id=spec_id, message=str(exc))
        return Result.DONE
    distributions = bool(params.get("generate_distributions", True))
    try:
        request = spec_generation.request_for(
            objectives=str(params.get("generation_objectives") or ""),
            dataset=spec.dataset,
            generate_distributions=distributions,
            extrapolate_axes=bool(params.get("extrapolate_axes")),
            extrapolate_values=bool(params.get("extrapolate_values")),
        )
    except SeedError as exc:  # the seed files went from storage: asking again will not bring them back
        spec_generation_fail(spec_id=spec_id, message=f"The spec could not be generated: {exc}")
        return Result.DONE
    answers: list[Outcome] = []

    def on_answer(_request: object, outcome: Outcome) -> bool:
        record_calls(
            company_id=spec.company_id, model=writer.model, purpose="spec", attempts=outcome.attempts, subject=spec
        )
        answers.append(outcome)
        return True

    # Through ask_each for its heartbeat: a thinking model's one call can outlast the lease.
    ask_each(
        [request],
        lambda r: writer.ask(
            r,
            lambda data: spec_generation.spec_yaml(data, generate_distributions=distributions),
            deadline=ctx.deadline,
            ledger=CallLedger(company_id=spec.company_id, purpose="spec", subject=spec),
        ),
        on_answer,
        workers=1,
        tick=ctx.tick,
    )
    outcome = answers[0] if answers else None
    if ctx.lost:
        return Result.DONE  # another worker owns the item now
    if outcome is None or outcome.deferred:
        return Result.YIELD  # stopped, or no time left in this run to ask: the next run asks
    if not outcome.ok:
        spec_generation_fail(spec_id=spec_id, message=f"The spec could not be generated: {outcome.error}")
        return Result.DONE
    content_yaml: str = outcome.answer
    parsed = parse_spec(content_yaml)  # validated already (spec_yaml); parsed again for the stored properties
    with transaction.atomic():
        if _spec_set(spec_id, status=Spec.Status.SUCCEEDED, error="") == 1:
            Spec.objects.filter(id=spec_id, description="").update(description=parsed.description)
            _version_create(spec=spec, created_by=spec.created_by, content_yaml=content_yaml, parsed=parsed)
    return Result.DONE
