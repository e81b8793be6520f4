"""Anonymization runs: creating one (every check up front), the `anonymization.run` work item that anonymizes the
dataset's files one at a time, the ZIP of the results (`anonymization.archive`), cancel, retry and delete.

1. `anonymization_run_create` validates the method, types and model, and creates the PENDING run with its item;
2. `anonymization.run` claims it (PROCESSING), then for each file of the dataset without a result yet: reads its
   text (a binary file is recorded as skipped), finds the entities (heuristics and/or the LLM, the union), masks
   them, stores the copy and writes the file's row, so a killed worker loses at most the file it was on;
3. the last file ends the run SUCCEEDED with its samples counted. Every step is safe to run again.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from companies.models import Company
from companies.quotas import quota_check
from llm.engine import Judge, Outcome, ask_each
from llm.judges import NoWriter, resolve_writer
from llm.ledger import record_calls
from runs.models import SeedDataset, SeedFile
from runs.seeds import SeedError, open_stored
from work.dispatch import work_cancel, work_create
from work.models import WorkItem
from work.registry import Result
from work.runner import Context

from . import llm_detect
from .detect import (
    DEFAULT_THRESHOLD,
    HEURISTIC_TYPES,
    LLM_TYPES,
    PII_TYPES,
    Entity,
    detect_in_pieces,
    mask,
    resolve_overlaps,
)
from .models import AnonymizationRun, AnonymizedFile

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# What each method the client can name runs here. `all` would add AIMon's private model, which no one can run
# outside AIMon: it runs its other two parts, and the run's `notes` say so.
METHODS: dict[str, frozenset[str]] = {
    "heuristics": frozenset({"heuristics"}),
    "llm": frozenset({"llm"}),
    "llm+heuristics": frozenset({"llm", "heuristics"}),
    "all": frozenset({"llm", "heuristics"}),
}
VENDOR_ONLY_METHODS = ("aimon_pii_m1", "aimon_pii_m1+heuristics")
ALL_NOTE = "detection_method 'all' ran llm+heuristics: aimon_pii_m1 is AIMon's private model, not available here."
TEXT_TYPES = {SeedFile.FileType.TXT, SeedFile.FileType.MD, SeedFile.FileType.CSV, SeedFile.FileType.JSON,
              SeedFile.FileType.JSONL}  # fmt: skip
ENTITIES_LISTED = 10_000  # entities listed in a run's results (entity_summary counts them all)


class AnonymizationError(ValueError):
    """A request that cannot be run; the message says why and what to do (a 400)."""


def method_help() -> str:
    return f"Use one of: {', '.join(METHODS)} (compound methods run the union of their parts)."


def check_method(method: str) -> frozenset[str]:
    """The parts a detection method runs; AnonymizationError for one we cannot run."""
    if method in VENDOR_ONLY_METHODS:
        raise AnonymizationError(
            f"detection_method '{method}' names AIMon's private model (aimon_pii_m1), which this service cannot "
            f"run. {method_help()}"
        )
    if method not in METHODS:
        raise AnonymizationError(f"Unknown detection_method '{method[:50]}'. {method_help()}")
    return METHODS[method]


def check_types(pii_types: list[str], parts: frozenset[str]) -> list[str]:
    """The types asked for, validated and without repeats; LLM-only types need the llm method."""
    wrong_case = [t for t in pii_types if t != t.lower()]
    if wrong_case:
        raise AnonymizationError(f"pii_types must be lowercase: '{wrong_case[0][:50]}'.")
    unknown = [t for t in pii_types if t not in PII_TYPES]
    if unknown:
        raise AnonymizationError(
            f"Unknown pii_types '{unknown[0][:50]}'. The types are: {', '.join(PII_TYPES)} (see the README)."
        )
    if not pii_types:
        raise AnonymizationError("pii_types is empty: name at least one type to detect.")
    llm_only = [t for t in pii_types if t in LLM_TYPES]
    if llm_only and "llm" not in parts:
        raise AnonymizationError(
            f"pii_types {', '.join(llm_only)} can only be found by an LLM (no pattern tells a name or an address "
            "from other words): use detection_method 'llm+heuristics' or 'llm' with an llm_model_name."
        )
    return list(dict.fromkeys(pii_types))


def writer_for(model_name: str) -> Judge:
    """The LLM of the `llm` method; AnonymizationError saying how to configure one when there is none."""
    if not model_name:
        raise AnonymizationError(
            "detection_method with llm needs llm_model_name: a model of the catalog, e.g. "
            "anthropic/claude-sonnet-4-6 (with ANTHROPIC_API_KEY set) or an OpenAI-compatible server's model "
            "described in JUDGE_MODELS_FILE."
        )
    try:
        return resolve_writer(model_name)
    except NoWriter as exc:
        raise AnonymizationError(str(exc).replace("Generating data needs", "Detecting with an LLM needs")) from exc


@transaction.atomic
def anonymization_run_create(
    *,
    company: Company,
    created_by: User | None,
    dataset: SeedDataset,
    detection_method: str,
    pii_types: list[str],
    llm_model_name: str = "",
    mask_config: dict[str, str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> AnonymizationRun:
    """A PENDING run and its work item (sent to a worker once committed); AnonymizationError (a 400) first when it
    could only fail."""
    if dataset.company_id != company.id:
        raise AnonymizationError("unknown seed dataset")
    parts = check_method(detection_method)
    types = check_types(pii_types, parts)
    mask_config = mask_config or {}
    stray = [key for key in mask_config if key not in types]
    if stray:
        raise AnonymizationError(f"mask_config names '{stray[0][:50]}', which is not one of the pii_types asked for.")
    if "llm" in parts:
        writer_for(llm_model_name)
        quota_check(company=company, evaluations=0, samples=0)  # the monthly LLM budget (a 429 once spent)
    run = AnonymizationRun.objects.create(
        company=company,
        dataset=dataset,
        dataset_name=dataset.name,
        created_by=created_by,
        detection_method=detection_method,
        llm_model_name=llm_model_name if "llm" in parts else "",
        pii_types=types,
        mask_config=mask_config,
        threshold=threshold,
        notes=ALL_NOTE if detection_method == "all" else "",
        files_total=dataset.file_count,
    )
    _enqueue(run)
    return run


def _enqueue(run: AnonymizationRun) -> None:
    work_create(
        company_id=run.company_id, kind="anonymization.run", subject_id=run.id, key=f"anonymization.run:{run.id}"
    )


def _set(run_id: int, *, when: tuple[str, ...], **fields: Any) -> int:
    """Move a run on only from the states in `when`: a canceled or finished run is left alone."""
    return AnonymizationRun.objects.filter(id=run_id, status__in=when).update(**fields)


def anonymization_run_fail(*, run_id: int, message: str) -> None:
    open_states = (AnonymizationRun.Status.PENDING, AnonymizationRun.Status.PROCESSING)
    _set(run_id, when=open_states, status=AnonymizationRun.Status.FAILED, error=message[:5000],
         completed_at=timezone.now())  # fmt: skip
    work_cancel(kind_prefix="anonymization.run", subject_id=run_id, reason=message)


def anonymization_run_cancel(*, run: AnonymizationRun, canceled_by: User) -> None:
    """Stop an unfinished run (a worker stops at its next file). The client knows no CANCELED status: it ends
    FAILED, saying who canceled it; `canceled_at` tells it apart from a failure."""
    if run.is_terminal:
        raise AnonymizationError(f"Only PENDING or PROCESSING runs can be canceled; this one is {run.status}.")
    AnonymizationRun.objects.filter(id=run.id).update(canceled_at=timezone.now())
    anonymization_run_fail(run_id=run.id, message=f"Canceled by {canceled_by.get_username()}.")


@transaction.atomic
def anonymization_run_retry(*, run: AnonymizationRun) -> None:
    """Run a FAILED run again: files already anonymized keep their results, the others are done."""
    if run.status != AnonymizationRun.Status.FAILED:
        raise AnonymizationError(f"Only FAILED runs can be retried; this one is {run.status}.")
    _set(run.id, when=(AnonymizationRun.Status.FAILED,), status=AnonymizationRun.Status.PENDING, error="",
         completed_at=None, canceled_at=None)  # fmt: skip
    WorkItem.objects.for_subject("anonymization.run", run.id).delete()
    _enqueue(run)


def anonymization_run_delete(*, run: AnonymizationRun) -> None:
    """Hide the run (the vendor's soft delete: its data is kept); unfinished work stops."""
    AnonymizationRun.objects.filter(id=run.id).update(deleted_at=timezone.now())
    if not run.is_terminal:
        anonymization_run_fail(run_id=run.id, message="Deleted before it finished.")


# --- The work: `anonymization.run` ---


@dataclass
class Detection:
    entities: list[Entity]
    deferred: bool = False  # the LLM could not be asked to the end in this run of the item: ask again later
    error: str = ""


def _llm_entities(run: AnonymizationRun, judge: Judge, text: str, ctx: Context) -> Detection:
    """The LLM's entities in `text`, every call recorded in the ledger against the run."""
    types = [t for t in run.pii_types if t in PII_TYPES]
    pieces = llm_detect.chunks(text)
    found: list[Entity] = []
    problems: list[str] = []
    deferred = False

    def ask(piece: tuple[int, str]) -> Outcome:
        request = llm_detect.request_for(piece[1], types)
        return judge.ask(request, lambda data: llm_detect.parse_answer(data, types), deadline=ctx.deadline)

    def on_answer(piece: tuple[int, str], outcome: Outcome) -> bool:
        nonlocal deferred
        record_calls(
            company_id=run.company_id, model=judge.model, purpose="anonymization", attempts=outcome.attempts,
            subject=run,
        )  # fmt: skip
        if outcome.deferred:
            deferred = True
            return False
        if not outcome.ok:
            problems.append(outcome.error)
            return False
        found.extend(llm_detect.locate(piece[1], piece[0], outcome.answer, run.threshold))
        return True

    finished = ask_each(pieces, ask, on_answer, tick=ctx.tick)
    if problems:
        return Detection([], error=problems[0])
    return Detection(found, deferred=deferred or not finished)


def original_text(seed_file: SeedFile) -> tuple[str | None, str]:
    """The file's text, or None and why it is skipped (a binary file, a copy gone from storage)."""
    if seed_file.file_type not in TEXT_TYPES:
        return None, f"binary file ({seed_file.file_type}): not anonymized"
    try:
        with open_stored(seed_file) as stored:
            data: bytes = stored.read()
    except SeedError as exc:
        return None, str(exc)
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "not UTF-8 text: not anonymized"


def masked_text(text: str, entities: list[Entity], mask_config: dict[str, str], file_type: str) -> str:
    """The anonymized copy. In JSON the masks are written as JSON string content, so the file stays valid."""
    if file_type in {SeedFile.FileType.JSON, SeedFile.FileType.JSONL}:
        labels = {e.label for e in entities}
        escaped = {label: json.dumps(mask_config.get(label, f"<{label.upper()}>"))[1:-1] for label in labels}
        return mask(text, entities, escaped)
    return mask(text, entities, mask_config)


def _storage_prefix(run: AnonymizationRun) -> str:
    return f"anonymization/{run.company.code}/{run.code}"


def _anonymize_file(run: AnonymizationRun, seed_file: SeedFile, judge: Judge | None, ctx: Context) -> Detection:
    """Anonymize one file and write its row (or its skipped row); Detection says if the LLM must be asked again."""
    text, skipped = original_text(seed_file)
    row = AnonymizedFile(
        run=run, seed_file=seed_file, position=seed_file.position, path=seed_file.path,
        content_type=seed_file.content_type,
    )  # fmt: skip
    if text is None:
        row.skipped_reason = skipped
        AnonymizedFile.objects.bulk_create([row], ignore_conflicts=True)
        return Detection([])
    entities: list[Entity] = []
    if "heuristics" in METHODS[run.detection_method]:
        heuristic_types = [t for t in run.pii_types if t in HEURISTIC_TYPES]
        for found in detect_in_pieces(text, heuristic_types, threshold=run.threshold):
            entities += found
            ctx.tick()  # the lease stays alive through a large file (a piece is a fraction of a second)
            if ctx.lost:
                return Detection([], deferred=True)
    if judge is not None:
        asked = _llm_entities(run, judge, text, ctx)
        if asked.deferred or asked.error:
            return asked
        entities = resolve_overlaps([*entities, *asked.entities])
    data = masked_text(text, entities, run.mask_config, seed_file.file_type).encode("utf-8")
    row.storage_name = default_storage.save(f"{_storage_prefix(run)}/{row.code}", ContentFile(data))
    row.size_in_bytes = len(data)
    row.entities = [[e.start, e.end, e.label, e.score] for e in entities]
    AnonymizedFile.objects.bulk_create([row], ignore_conflicts=True)  # a second delivery's copy is not kept twice
    return Detection(entities)


def _samples(run: AnonymizationRun, dataset: SeedDataset) -> int:
    """Samples processed, as the dataset counts them: rows of a single file, files, or folders."""
    done = run.files.filter(skipped_reason="")
    if dataset.dataset_type == SeedDataset.Type.SINGLE_FILE:
        return dataset.sample_count or 0 if done.exists() else 0
    if dataset.dataset_type == SeedDataset.Type.MULTI_FOLDER:
        return len({posixpath.dirname(path) for path in done.values_list("path", flat=True)})
    return done.count()


def anonymization_run_process(*, run_id: int, ctx: Context) -> Result:
    """Claim the run, anonymize its files without a result, and end it SUCCEEDED (or FAILED with why)."""
    open_states = (AnonymizationRun.Status.PENDING, AnonymizationRun.Status.PROCESSING)
    _set(run_id, when=(AnonymizationRun.Status.PENDING,), status=AnonymizationRun.Status.PROCESSING,
         started_at=timezone.now())  # fmt: skip
    run = (
        AnonymizationRun.objects.select_related("company", "dataset").filter(id=run_id, status__in=open_states).first()
    )
    if run is None:
        return Result.DONE  # canceled, deleted or finished meanwhile
    if run.dataset is None:
        anonymization_run_fail(run_id=run_id, message="The seed dataset was deleted before the run could read it.")
        return Result.DONE
    judge = None
    if "llm" in METHODS[run.detection_method]:
        try:
            judge = writer_for(run.llm_model_name)
        except AnonymizationError as exc:  # the credentials went away since the request
            anonymization_run_fail(run_id=run_id, message=str(exc))
            return Result.DONE
    done = set(run.files.values_list("position", flat=True))
    for seed_file in run.dataset.files.exclude(position__in=done):
        if not ctx.tick() or not AnonymizationRun.objects.filter(id=run_id, status__in=open_states).exists():
            return Result.DONE if ctx.lost else Result.YIELD
        detection = _anonymize_file(run, seed_file, judge, ctx)
        if detection.error:
            anonymization_run_fail(
                run_id=run_id, message=f"The LLM could not read '{seed_file.path}': {detection.error}"
            )
            return Result.DONE
        if detection.deferred:
            return Result.DONE if ctx.lost else Result.YIELD
        ctx.progressed()
    _set(run_id, when=open_states, status=AnonymizationRun.Status.SUCCEEDED, completed_at=timezone.now(),
         samples_processed=_samples(run, run.dataset), files_total=run.files.count())  # fmt: skip
    return Result.DONE


# --- The ZIP of every anonymized file: `anonymization.archive` (download_all answers generating, then ready) ---


def anonymization_archive_request(*, run: AnonymizationRun) -> str:
    """The archive's state ("ready" or "generating"); asks a worker to build it when there is none."""
    if run.status != AnonymizationRun.Status.SUCCEEDED:
        raise AnonymizationError(f"The run must be SUCCEEDED to download its files; it is {run.status}.")
    if run.archive == AnonymizationRun.Archive.READY and default_storage.exists(run.archive_storage_name):
        return "ready"
    with transaction.atomic():
        updated = AnonymizationRun.objects.filter(id=run.id).exclude(archive=AnonymizationRun.Archive.GENERATING)
        if updated.update(archive=AnonymizationRun.Archive.GENERATING, archive_storage_name=""):
            # A new item each time (the last one may have failed or its archive been lost).
            WorkItem.objects.for_subject("anonymization.archive", run.id).delete()
            work_create(company_id=run.company_id, kind="anonymization.archive", subject_id=run.id,
                        key=f"anonymization.archive:{run.id}")  # fmt: skip
    return "generating"


def anonymization_archive_build(*, run_id: int) -> None:
    run = AnonymizationRun.objects.select_related("company").filter(id=run_id).first()
    if run is None or run.archive != AnonymizationRun.Archive.GENERATING:
        return
    with tempfile.TemporaryFile() as spool:
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
            for row in run.files.filter(skipped_reason=""):
                with default_storage.open(row.storage_name, "rb") as stored:
                    archive.writestr(row.path, stored.read())
        spool.seek(0)
        name = default_storage.save(f"{_storage_prefix(run)}/archive.zip", File(spool, name="archive.zip"))
    AnonymizationRun.objects.filter(id=run_id, archive=AnonymizationRun.Archive.GENERATING).update(
        archive=AnonymizationRun.Archive.READY, archive_storage_name=name
    )


def anonymization_archive_give_up(*, run_id: int) -> None:
    AnonymizationRun.objects.filter(id=run_id).update(archive=AnonymizationRun.Archive.NONE)
