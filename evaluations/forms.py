from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.http import QueryDict

from llm.batchwork import MODES, mode_choices
from llm.catalog import picker_choices

from .models import Evaluation


class EvaluateForm(forms.Form):
    evaluation_model = forms.ChoiceField(label="Judge model")
    mode = forms.ChoiceField(label="Mode", required=False, initial="auto")

    def __init__(self, *args: Any, prices: tuple[Decimal, Decimal] | None = None, **kwargs: Any) -> None:
        """`prices`: the run's expected cost with the default judge, interactive and in batch mode, for the labels."""
        super().__init__(*args, **kwargs)
        field = self.fields["evaluation_model"]
        field.choices = picker_choices()  # type: ignore[attr-defined]
        field.initial = settings.JUDGE_DEFAULT_MODEL
        self.fields["mode"].choices = mode_choices(settings.JUDGE_BATCH_MIN_SAMPLES, prices)  # type: ignore[attr-defined]

    @property
    def batch(self) -> bool | None:
        return MODES.get(self.cleaned_data.get("mode") or "auto")


class EvaluationListForm(forms.Form):
    """The evaluations list's filters and sort, read from the URL; a bad value is dropped, never an error page."""

    SORTS = {
        "date": "created_at",
        "name": "name",
        "score": "conformance_score",
        "status": "status",
        "judge": "model_used",
        "spec": "run__spec__name",
    }

    q = forms.CharField(required=False, max_length=200, strip=True, label="Search")
    spec = forms.UUIDField(required=False)
    run = forms.UUIDField(required=False)
    judge = forms.ChoiceField(required=False, choices=[("", "any"), ("embedded", "embedded judge"), ("llm", "LLM")])
    score_min = forms.FloatField(required=False, min_value=0, max_value=100, label="Score from")
    score_max = forms.FloatField(required=False, min_value=0, max_value=100, label="to")
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


SKIPPED_KEPT = 50  # sample codes a reviewer may pass over in one sitting (they travel in the URL)


class EvaluationNameForm(forms.ModelForm):  # type: ignore[type-arg]
    """An evaluation's name and note, edited on its page."""

    class Meta:
        model = Evaluation
        fields = ["name", "note"]
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}


class ReviewQueueForm(forms.Form):
    """Which card the review queue shows: the property, the queue, samples passed over, or one sample to see again
    (`back`: the reviewer's n-th most recent label; `sample`: one sample, after an undo, with the `undone` value),
    and the sample just `answered`.
    Bad values are dropped."""

    property = forms.CharField(required=False, max_length=200)
    mode = forms.ChoiceField(required=False, choices=[("random", "random"), ("disagreement", "disagreement")])
    back = forms.IntegerField(required=False, min_value=0, max_value=10_000)
    sample = forms.UUIDField(required=False)
    # The value whose label on `sample` was just undone (a plain form post's redirect says it like HTMX's answer).
    undone = forms.CharField(required=False, max_length=500)
    # The sample just labelled in the random queue: the next card first shows what the judge said about it.
    answered = forms.UUIDField(required=False)

    def queue(self) -> dict[str, Any]:
        """The valid fields, and `skip`: the last SKIPPED_KEPT well-formed sample codes passed over."""
        self.is_valid()
        skip = []
        given = self.data.getlist("skip") if isinstance(self.data, QueryDict) else []
        for code in given[-SKIPPED_KEPT:]:
            try:
                skip.append(str(uuid.UUID(code)))
            except ValueError:
                continue
        return {
            "prop": self.cleaned_data.get("property") or "",
            "mode": self.cleaned_data.get("mode") or "random",
            "back": self.cleaned_data.get("back") or 0,
            "sample": self.cleaned_data.get("sample"),
            "undone": self.cleaned_data.get("undone") or "",
            "answered": self.cleaned_data.get("answered"),
            "skip": skip,
        }


class ReviewLabelForm(forms.Form):
    """One label from the queue or the sample table; the service checks the property and the value."""

    sample = forms.UUIDField()
    property = forms.CharField(max_length=200)
    value = forms.CharField(max_length=500)


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
