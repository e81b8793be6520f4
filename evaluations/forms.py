from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from llm.catalog import judge_models

from .models import Evaluation


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


class EvaluationListForm(forms.Form):
    """The evaluations list's filters and sort, read from the URL; a bad value is dropped, never an error page."""

    SORTS = {
        "date": "created_at",
        "score": "conformance_score",
        "status": "status",
        "judge": "model_used",
        "spec": "run__spec__name",
    }

    spec = forms.UUIDField(required=False)
    run = forms.UUIDField(required=False)
    judge = forms.ChoiceField(required=False, choices=[("", "any"), ("embedded", "embedded judge"), ("llm", "LLM")])
    status = forms.ChoiceField(required=False)
    date_from = forms.DateField(required=False, label="From")
    date_to = forms.DateField(required=False, label="To")
    sort = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "any"), *Evaluation.Status.choices]  # type: ignore[attr-defined]
        self.fields["sort"].choices = [  # type: ignore[attr-defined]
            (f"{sign}{key}", f"{sign}{key}") for key in self.SORTS for sign in ("", "-")
        ]

    def filters(self) -> dict[str, Any]:
        """The valid filters only (an invalid field is left out of cleaned_data)."""
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}


class SampleTableForm(forms.Form):
    """The sample table's search, sort and page size, read from the URL (composed with the value filters); a bad
    value is dropped for its default, never an error page."""

    q = forms.CharField(required=False, max_length=200, strip=True)
    sort = forms.ChoiceField(required=False)
    size = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)

    def __init__(self, *args: Any, sorts: list[tuple[str, str]], sizes: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sort"].choices = sorts  # type: ignore[attr-defined]
        self.fields["size"].choices = [(str(n), str(n)) for n in sizes]  # type: ignore[attr-defined]

    def values(self) -> dict[str, Any]:
        self.is_valid()
        data = self.cleaned_data
        return {"q": data.get("q", ""), "sort": data.get("sort") or "position", "size": data.get("size") or 0}
