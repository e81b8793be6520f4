from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from runs.models import Run
from tests.conftest import SPEC_YAML, make_rows


def test_import_run_command(tmp_path: Path, company_a: Any) -> None:
    spec = tmp_path / "support.yaml"
    spec.write_text(SPEC_YAML)
    samples = tmp_path / "samples.jsonl"
    samples.write_text("\n".join(json.dumps(r) for r in make_rows(8)))
    out = StringIO()
    call_command(
        "import_run",
        "--company",
        "Alpha Corp",
        "--spec",
        str(spec),
        "--samples",
        str(samples),
        stdout=out,
    )
    run = Run.objects.get(code=out.getvalue().strip().splitlines()[-1])
    assert (run.company, run.spec.name, run.samples.count()) == (
        company_a,
        "support",
        8,
    )
    # Importing again reuses the unchanged spec.
    call_command(
        "import_run",
        "--company",
        "Alpha Corp",
        "--spec",
        str(spec),
        "--samples",
        str(samples),
        stdout=out,
    )
    assert run.spec.versions.count() == 1


def test_import_run_command_reports_problems(tmp_path: Path, company_a: Any) -> None:
    spec = tmp_path / "support.yaml"
    spec.write_text(SPEC_YAML)
    rows = make_rows(2)
    rows[1]["properties"]["priority"] = "urgent"
    samples = tmp_path / "samples.jsonl"
    samples.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(CommandError, match="sample 2 \\('sample_2'\\): property 'priority' is 'urgent'"):
        call_command(
            "import_run",
            "--company",
            "Alpha Corp",
            "--spec",
            str(spec),
            "--samples",
            str(samples),
        )
    with pytest.raises(CommandError, match="No company named"):
        call_command(
            "import_run",
            "--company",
            "Nope",
            "--spec",
            str(spec),
            "--samples",
            str(samples),
        )
    assert not Run.objects.exists()
