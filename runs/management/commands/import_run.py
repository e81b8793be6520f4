from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from companies.models import Company
from companies.quotas import QuotaExceeded
from runs.imports import ImportProblems, read_jsonl, read_zip
from runs.models import Spec
from runs.services import RunError, run_import, spec_add_version, spec_create
from runs.specfile import SpecError


class Command(BaseCommand):
    help = "Import a run: a spec YAML plus samples (JSONL, or a ZIP with samples.jsonl). Prints the run id last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--company", required=True, help="company name (must exist; case and surrounding spaces ignored)"
        )
        parser.add_argument("--spec", required=True, type=Path, help="spec YAML file")
        parser.add_argument("--spec-name", help="spec name (default: the YAML file's stem)")
        parser.add_argument("--samples", required=True, type=Path, help="samples .jsonl or .zip")
        parser.add_argument("--name", default="", help="run name")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        company = Company.objects.named(options["company"]).first()
        if company is None:
            raise CommandError(f"No company named {options['company']!r}.")
        content_yaml = options["spec"].read_text()
        name = options["spec_name"] or options["spec"].stem
        try:
            spec = Spec.objects.for_company(company).filter(name=name).first()
            if spec is None:
                spec = spec_create(
                    company=company,
                    created_by=None,
                    name=name,
                    content_yaml=content_yaml,
                )
            elif spec.latest_version is None or spec.latest_version.content_yaml != content_yaml:
                spec_add_version(spec=spec, created_by=None, content_yaml=content_yaml)
            with options["samples"].open("rb") as stream:
                rows = read_zip(stream) if options["samples"].suffix == ".zip" else read_jsonl(stream)
            run = run_import(
                company=company,
                created_by=None,
                spec=spec,
                rows=rows,
                name=options["name"],
            )
        except SpecError as exc:
            raise CommandError(f"{options['spec']}: {exc}") from exc
        except ImportProblems as exc:
            raise CommandError("\n".join([f"{options['samples']}:", *exc.problems])) from exc
        except (RunError, QuotaExceeded) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Imported {run.samples_completed} samples into spec '{spec.name}' v{run.spec_version.number}."
        )
        self.stdout.write(str(run.code))
