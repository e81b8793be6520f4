from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from companies.models import Company
from llm.catalog import judge_models

from .models import Spec
from .specfile import SpecError, parse_spec


class SpecForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.TextInput, max_length=settings.SPEC_MAX_TEXT_CHARS)
    content_yaml = forms.CharField(
        label="Spec YAML",
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if Spec.objects.for_company(self.company).filter(name=name).exists():
            raise forms.ValidationError(f"A spec named '{name}' already exists.")
        return name

    def clean_content_yaml(self) -> str:
        text: str = self.cleaned_data["content_yaml"]
        try:
            parse_spec(text)
        except SpecError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return text


class RunImportForm(forms.Form):
    spec = forms.ModelChoiceField(queryset=Spec.objects.none(), to_field_name="code", empty_label=None)
    name = forms.CharField(max_length=200, required=False)
    file = forms.FileField(help_text="JSONL (one sample per line) or ZIP (sample files + samples.jsonl)")

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["spec"].queryset = Spec.objects.for_company(company).order_by("name")  # type: ignore[attr-defined]


def _writer_choices() -> list[tuple[str, str]]:
    # Every model of the table but the embedded judge, which does not write data. A model whose provider has no
    # credentials is still listed: choosing it gets the message that says how to configure the provider.
    return [(name, name) for name, model in sorted(judge_models().items()) if not model.is_offline]


class RunGenerateForm(forms.Form):
    number_of_samples = forms.IntegerField(min_value=1, max_value=settings.GENERATION_MAX_SAMPLES, initial=100)
    generation_model = forms.ChoiceField(choices=_writer_choices, label="Model")
    assignment_mode = forms.ChoiceField(
        choices=[("quota", "By quota (exact shares)"), ("random", "Drawn at random")],
        initial="quota",
        label="Values assigned",
    )
    conformance_filter = forms.BooleanField(
        required=False,
        label="Rewrite samples the judge reads as other values (conformance filter)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["generation_model"].initial = settings.GENERATION_DEFAULT_MODEL
