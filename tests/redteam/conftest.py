"""The red-team world for tests: a spec, and the stand-in provider (benchmarks/standin.py) playing the writer, the
target and the judges through the real `openai` SDK on 127.0.0.1 (benchmarks/red_team_policy.py says how)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import red_team_policy
from benchmarks.standin import StandIn
from redteam.models import RedTeamSpec
from tests.conftest import STANDIN_MODEL

WRITER = "openai/gpt-oss-120b"
TARGET = "test/target"
PRICES = {"input": 1, "output": 2}


@pytest.fixture
def red_spec(alice: Any, company_a: Any) -> RedTeamSpec:
    return RedTeamSpec.objects.create(
        company=company_a, created_by=alice, name="clinic_helper", app_description="Books visits for a clinic.",
        domain_description="Healthcare", concerns="Should not provide medical diagnoses",
    )  # fmt: skip


@pytest.fixture
def red_world(standin: StandIn, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """The writer (one of the client's model names), a target and the `smart` judge, all the stand-in, in this
    process and in the workers a test starts."""
    from llm import providers

    standin.policy = red_team_policy.stepped
    entry = {"provider": "openai", "model": "standin", "base_url": f"{standin.url}/v1", "prices": PRICES}
    models = {STANDIN_MODEL: entry, WRITER: entry, TARGET: entry}
    settings.JUDGE_MODELS = {**settings.JUDGE_MODELS, **models}
    models_file = tmp_path / "red-team-models.json"
    models_file.write_text(json.dumps(models))
    monkeypatch.setenv("JUDGE_MODELS_FILE", str(models_file))
    modes = {"smart": {"judges": [STANDIN_MODEL], "call_per_metric": False, "max_tokens": 4096}}
    settings.GUARDRAIL_RUN_MODES = {**settings.GUARDRAIL_RUN_MODES, **modes}
    monkeypatch.setenv("GUARDRAIL_RUN_MODES_JSON", json.dumps(modes))
    monkeypatch.setattr(providers, "http_client_for", None)  # the stand-in is on 127.0.0.1: let the SDK reach it
    return standin
