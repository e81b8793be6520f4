"""django-q2 tasks: thin functions that take ids and call services (STYLE.md rule 9)."""

from __future__ import annotations

from typing import Any

from . import services


def run_guardrail_evaluation(evaluation_id: int, **kwargs: Any) -> None:
    services.run_guardrail_evaluation(evaluation_id=evaluation_id)
