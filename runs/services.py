from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from companies.models import Company

from .imports import build_samples, read_jsonl
from .models import Run, Sample, Spec, SpecVersion
from .specfile import ParsedSpec, parse_spec

if TYPE_CHECKING:
    from django.contrib.auth.models import User

IMPORT_BATCH_SIZE = 1000


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
    """Add the next version of a spec; raises SpecError (nothing saved) if the YAML is invalid."""
    parsed = parse_spec(content_yaml)  # before the transaction, as in spec_create
    with transaction.atomic():
        return _version_create(spec=spec, created_by=created_by, content_yaml=content_yaml, parsed=parsed)


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


@transaction.atomic
def spec_delete(*, spec: Spec, force: bool) -> None:
    if not force and spec.runs.exists():
        raise RunError("This spec has runs; delete them first or pass force=true to delete the spec with its runs.")
    # Runs go first: they hold the spec version they used (PROTECT), which the spec's cascade would hit.
    spec.runs.all().delete()
    spec.delete()


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
    versions = spec.versions.all()
    version = versions.filter(number=spec_version).first() if spec_version else versions.order_by("-number").first()
    if version is None:
        raise RunError(f"spec '{spec.name}' has no version {spec_version}")
    # Every sample is checked before the transaction; inside it there are only inserts.
    samples = build_samples(rows, version.parsed_properties)
    with transaction.atomic():
        run = Run.objects.create(
            company=company,
            spec=spec,
            spec_version=version,
            name=name,
            status=Run.Status.SUCCEEDED,
            source=Run.Source.IMPORT,
            samples_completed=len(samples),
            runtime_params={"number_of_samples": len(samples), "source": "import"},
            created_by=created_by,
        )
        # An import starts and ends as it is created: the times are created_at's own (auto_now_add stamps it at
        # save, so a now() taken before create() would read earlier than it).
        run.started_at = run.completed_at = run.created_at
        run.save(update_fields=["started_at", "completed_at"])
        for sample in samples:
            sample.run = run
        Sample.objects.bulk_create(samples, batch_size=IMPORT_BATCH_SIZE)
    return run


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
