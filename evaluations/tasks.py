"""django-q2 tasks: thin functions that take ids and call services (STYLE.md rule 9)."""

from __future__ import annotations

from typing import Any

from . import services


def start_evaluation(evaluation_id: int, **kwargs: Any) -> None:
    services.start_evaluation(evaluation_id=evaluation_id)


def classify_chunk(evaluation_id: int, first_position: int, last_position: int, **kwargs: Any) -> None:
    services.classify_chunk(
        evaluation_id=evaluation_id,
        first_position=first_position,
        last_position=last_position,
    )
