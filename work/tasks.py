"""django-q2 tasks: thin functions that take ids (STYLE.md rule 9)."""

from __future__ import annotations

from typing import Any

from . import dispatch, runner


def run_item(item_id: int, **kwargs: Any) -> None:
    runner.run_item(item_id)


def reconcile(**kwargs: Any) -> None:
    dispatch.reconcile()
