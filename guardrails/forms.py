from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator

from .metrics import DEFAULT_METRICS, DEFAULT_RUN_MODE, METRICS, RUN_MODES


class GuardrailCreateForm(forms.Form):
    """The list page's "evaluate a pair" form: the fields of `POST /evaluate` an analyst types by hand."""

    user_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    system_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    model_output = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}))
    run_mode = forms.ChoiceField(choices=[(m, m) for m in RUN_MODES], initial=DEFAULT_RUN_MODE)
    guardrail_metrics = forms.MultipleChoiceField(
        label="Metrics",
        choices=[(m, m) for m in METRICS],
        initial=list(DEFAULT_METRICS),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None chosen: the defaults for the input given.",
    )
    nametag = forms.CharField(max_length=255, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The API's limit (GUARDRAIL_MAX_TEXT_CHARS, 0 is off), read when the form is built so a change applies.
        limit = settings.GUARDRAIL_MAX_TEXT_CHARS
        if limit > 0:
            for name in ("user_prompt", "system_prompt", "model_output"):
                self.fields[name].validators.append(MaxLengthValidator(limit))
