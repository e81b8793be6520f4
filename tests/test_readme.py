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
