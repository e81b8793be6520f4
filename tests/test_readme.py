"""The README tells the exact truth: its examples run, and its lists match what the code does."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from runs.models import Spec

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def python_block_containing(text: str) -> str:
    """The README's one ```python block that contains `text`."""
    [block] = [b for b in re.findall(r"```python\n(.*?)```", README, re.DOTALL) if text in b]
    return block


@pytest.mark.django_db(transaction=True)
def test_the_spec_from_yaml_example_runs_as_written(
    live_server: Any, alice_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = python_block_containing('open("spec.yaml"')
    shutil.copy(ROOT / "runs" / "demo" / "spec.yaml", tmp_path / "spec.yaml")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(block.replace("http://127.0.0.1:8000", live_server.url), {"KEY": alice_key})
    assert printed.getvalue() == "SUCCEEDED\n"
    spec = Spec.objects.get(name="Support")
    assert spec.versions.get().content_yaml == (tmp_path / "spec.yaml").read_text(encoding="utf-8")


def markdown_table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped, header and rule left out) of the first table under `heading`."""
    section = README.split(heading, 1)[1]
    lines = section[section.index("\n|") + 1 :].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_the_management_commands_table_lists_every_option() -> None:
    from django.core.management import get_commands, load_command_class
    from django.core.management.base import BaseCommand

    ours = {name: app for name, app in get_commands().items() if app in {"companies", "runs", "work", "evaluations"}}
    django_options = {o for a in BaseCommand().create_parser("manage.py", "x")._actions for o in a.option_strings}
    documented = {
        row[0].strip("`"): set(re.findall(r"--[a-z-]+", row[1]))
        for row in markdown_table_after("## Management commands")
    }
    actual = {
        name: {
            option
            for action in load_command_class(app, name).create_parser("manage.py", name)._actions
            for option in action.option_strings
            if option.startswith("--") and option not in django_options
        }
        for name, app in ours.items()
    }
    assert documented == actual


ENV_READERS = {"env_bool", "env_int", "env_decimal", "env_secret"}  # config/settings.py's typed helpers


def environment_read_by_settings() -> set[str]:
    """Every variable name config/settings.py reads: os.environ.get("X"), os.environ["X"], env_*("X", ...), and the
    X_FILE that env_secret("X") also reads."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / "config" / "settings.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = ast.unparse(node.func)
            if function in ENV_READERS or function in {"os.environ.get", "os.getenv"}:
                name = str(node.args[0].value)
                names.add(name)
                if function == "env_secret":
                    names.add(f"{name}_FILE")
        elif (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(str(node.slice.value))
    return names


def test_the_configuration_tables_list_every_variable_the_settings_read() -> None:
    listed = set()  # the first column of every "| variable | default | ..." table: Configuration's and Security's
    for table in README.split("| variable | default |")[1:]:
        for line in table.split("\n\n", 1)[0].splitlines():
            if line.startswith("| `"):
                listed |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    assert environment_read_by_settings() - listed == set()  # read, but not in the table
    # Listed but not read by the settings: read elsewhere (a provider's key by its SDK, make run's HOST and PORT).
    elsewhere = listed - environment_read_by_settings()
    sources = "".join(p.read_text(encoding="utf-8") for p in ROOT.glob("*/*.py")) + (ROOT / "Makefile").read_text()
    assert {name for name in elsewhere if name not in sources} == set()


def test_the_openai_compatible_recipe_sends_every_kind_of_work_to_that_server(tmp_path: Path) -> None:
    import json
    import shlex
    import subprocess
    import sys

    [block] = [b for b in re.findall(r"```sh\n(.*?)```", README, re.DOTALL) if "judges.json <<'JSON'" in b]
    catalog, command = block.split("<<'JSON'\n", 1)[1].split("\nJSON\n", 1)
    (tmp_path / "judges.json").write_text(catalog)
    [model] = json.loads(catalog)
    words = shlex.split(command.replace("\\\n", " "))
    assert words[-2:] == ["make", "run"]
    environment = dict(word.split("=", 1) for word in words[:-2])
    defaults = {name for name in environment_read_by_settings() if name.endswith("_DEFAULT_MODEL")}
    assert defaults <= environment.keys()  # every default model the settings know is set by the recipe
    # The settings, read as `make run` would with these variables, and the catalog entry each default resolves to.
    script = (
        "import django, json; django.setup(); from django.conf import settings; from llm.catalog import get_judge_model;"
        f"names = [getattr(settings, n) for n in {sorted(defaults)!r}]"
        " + [j for mode in settings.GUARDRAIL_RUN_MODES.values() for j in mode['judges']];"
        "print(json.dumps(sorted({(n, get_judge_model(n).base_url) for n in names})))"
    )
    env = {**os.environ, **environment, "DJANGO_SETTINGS_MODULE": "config.settings"}
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert output.returncode == 0, output.stderr
    assert json.loads(output.stdout) == [[model, json.loads(catalog)[model]["base_url"]]]


@pytest.mark.django_db
def test_the_fuzzing_paragraph_counts_the_operations_the_schema_serves(client: Any) -> None:
    from tests.test_fuzz import EXCLUDED

    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    operations = {(method.upper(), path) for path, item in paths.items() for method in item if method in methods}
    fuzzed = len(operations - EXCLUDED)
    assert f"sends every operation ({fuzzed} of the {len(operations)};" in README
