from __future__ import annotations

from typing import TYPE_CHECKING

from .catalog import SWITCH_TO_LLM

if TYPE_CHECKING:
    from django.http import HttpRequest


def judge_notes(request: HttpRequest) -> dict[str, str]:
    """How to move from the embedded judge to an LLM judge, for every page that marks an embedded score."""
    return {"switch_to_llm": SWITCH_TO_LLM}
