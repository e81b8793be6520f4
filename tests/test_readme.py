"""The README tells the exact truth: its examples run, and its lists match what the code does."""

from __future__ import annotations

import contextlib
import io
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

    ours = {name: app for name, app in get_commands().items() if app in {"companies", "runs", "work"}}
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
