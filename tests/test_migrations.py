"""The layout migration keeps every row: ledger and cache copied to llm, guardrail evaluations renamed into
guardrails with their ids, content types moved (run on SQLite and on PostgreSQL by the two CI legs)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("evaluations", "0002_guardrailevaluation"),
    ("llm", None),
    ("guardrails", None),
]
AFTER = [("evaluations", "0003_move_ledger_and_guardrails"), ("guardrails", "0001_initial"), ("llm", "0001_initial")]


def _migrate(targets: list[tuple[str, str | None]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # the applied set changed
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


@pytest.fixture
def _back_to_latest() -> Any:
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_back_to_latest")
def test_it_moves_the_ledger_the_cache_and_guardrail_evaluations_without_losing_a_row() -> None:
    old = _migrate(BEFORE)
    Company = old.get_model("companies", "Company")
    Spec = old.get_model("runs", "Spec")
    SpecVersion = old.get_model("runs", "SpecVersion")
    Run = old.get_model("runs", "Run")
    Sample = old.get_model("runs", "Sample")
    Evaluation = old.get_model("evaluations", "Evaluation")
    Guardrail = old.get_model("evaluations", "GuardrailEvaluation")
    Call = old.get_model("evaluations", "JudgeCall")
    Cache = old.get_model("evaluations", "JudgeCache")

    company = Company.objects.create(name="Migrated", code=uuid.uuid4())
    spec = Spec.objects.create(company=company, name="s")
    version = SpecVersion.objects.create(spec=spec, number=1, content_yaml="spec: {}", properties=[])
    run = Run.objects.create(company=company, spec=spec, spec_version=version, name="r")
    sample = Sample.objects.create(run=run, identifier="a", path="a.txt", content="x", position=0)
    evaluation = Evaluation.objects.create(company=company, run=run, requested_model="m")
    guardrail = Guardrail.objects.create(company=company, model_output="out", nametag="kept")
    common = {"company": company, "provider": "openai", "model": "m", "outcome": "ok", "cost_usd": Decimal("0.5")}
    Call.objects.create(evaluation=evaluation, sample=sample, purpose="classify", input_tokens=7, **common)
    Call.objects.create(guardrail_evaluation=guardrail, purpose="guardrail", **common)
    Cache.objects.create(company=company, config_hash="c" * 64, content_hash="d" * 64, result={"k": "v"})

    new = _migrate(AFTER)
    NewGuardrail = new.get_model("guardrails", "GuardrailEvaluation")
    NewCall = new.get_model("llm", "JudgeCall")
    NewCache = new.get_model("llm", "JudgeCache")
    ContentType = new.get_model("contenttypes", "ContentType")

    moved = NewGuardrail.objects.get(id=guardrail.id)
    assert (moved.code, moved.nametag, moved.model_output) == (guardrail.code, "kept", "out")
    evaluation_type = ContentType.objects.get(app_label="evaluations", model="evaluation")
    guardrail_type = ContentType.objects.get(app_label="guardrails", model="guardrailevaluation")
    assert not ContentType.objects.filter(app_label="evaluations", model="guardrailevaluation").exists()
    classify = NewCall.objects.get(purpose="classify")
    assert (classify.subject_type_id, classify.subject_id, classify.item_id) == (
        evaluation_type.id,
        evaluation.id,
        sample.id,
    )
    assert classify.input_tokens == 7
    assert classify.cost_usd == Decimal("0.5")
    graded = NewCall.objects.get(purpose="guardrail")
    assert (graded.subject_type_id, graded.subject_id, graded.item_id) == (guardrail_type.id, guardrail.id, None)
    assert NewCache.objects.get().result == {"k": "v"}
