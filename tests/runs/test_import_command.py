from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from runs.models import Run
from tests.conftest import SPEC_YAML, make_rows


def files(tmp_path: Path, rows: list[dict[str, Any]]) -> tuple[str, str]:
    spec = tmp_path / "support.yaml"
    spec.write_text(SPEC_YAML)
    samples = tmp_path / "samples.jsonl"
    samples.write_text("\n".join(json.dumps(r) for r in rows))
    return str(spec), str(samples)


def import_run(company: str, spec: str, samples: str) -> str:
    out = StringIO()
    call_command("import_run", "--company", company, "--spec", spec, "--samples", samples, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_import_run_command(tmp_path: Path, company_a: Any) -> None:
    spec, samples = files(tmp_path, make_rows(8))
    run = Run.objects.get(code=import_run("Alpha Corp", spec, samples))
    assert (run.company, run.spec.name, run.samples.count()) == (company_a, "support", 8)
    # Importing again reuses the unchanged spec.
    import_run("Alpha Corp", spec, samples)
    assert run.spec.versions.count() == 1


def test_import_run_command_reports_problems(tmp_path: Path, company_a: Any) -> None:
    rows = make_rows(2)
    rows[1]["properties"]["priority"] = "urgent"
    spec, samples = files(tmp_path, rows)
    with pytest.raises(CommandError, match="sample 2 \\('sample_2'\\): property 'priority' is 'urgent'"):
        import_run("Alpha Corp", spec, samples)
    with pytest.raises(CommandError, match="No company named"):
        import_run("Nope", spec, samples)
    assert not Run.objects.exists()


def test_import_run_matches_the_company_as_create_api_key_does(tmp_path: Path, company_a: Any) -> None:
    # "Alpha Corp" typed in another case with spaces around it: the same company, as create_api_key finds it.
    spec, samples = files(tmp_path, make_rows(2))
    run = Run.objects.get(code=import_run("  alpha CORP ", spec, samples))
    assert run.company == company_a
    with pytest.raises(CommandError, match="No company named 'Alpha'"):
        import_run("Alpha", spec, samples)  # a prefix is another name


def test_import_run_names_the_spec_with_spec_name(tmp_path: Path, company_a: Any) -> None:
    spec, samples = files(tmp_path, make_rows(2))
    call_command(
        "import_run",
        *("--company", "Alpha Corp", "--spec", spec, "--spec-name", "Support chats", "--samples", samples),
        stdout=StringIO(),
    )
    assert Run.objects.get().spec.name == "Support chats"
