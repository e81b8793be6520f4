from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from llm.catalog import judge_models


def model_choices() -> list[tuple[str, str]]:
    choices = []
    for name, model in sorted(judge_models().items()):
        label = name
        if model.is_offline:
            label += " (offline heuristic: no LLM)"
        elif model.api_key() is None:
            label += " (no credentials: offline fallback)" if settings.JUDGE_OFFLINE_FALLBACK else " (no credentials)"
        choices.append((name, label))
    return choices


class EvaluateForm(forms.Form):
    evaluation_model = forms.ChoiceField(label="Judge model")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["evaluation_model"]
        field.choices = model_choices()  # type: ignore[attr-defined]
        field.initial = settings.JUDGE_DEFAULT_MODEL
