from __future__ import annotations

from django import forms

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
