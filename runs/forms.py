from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from companies.models import Company
from llm.batchwork import MODES, mode_choices
from llm.catalog import picker_choices

from .models import SeedDataset, Spec
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
        # Only specs that are written: a spec still being generated (or that failed) has no properties yet.
        self.fields["spec"].queryset = (  # type: ignore[attr-defined]
            Spec.objects.for_company(company).filter(status=Spec.Status.SUCCEEDED).order_by("name")
        )


class SpecGenerateForm(forms.Form):
    """Have an LLM write a spec from objectives and/or a seed dataset (the page's side of specs.create)."""

    name = forms.CharField(max_length=200)
    generation_objectives = forms.CharField(
        label="Objectives",
        required=False,
        max_length=settings.SPEC_MAX_TEXT_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the data is for and how its samples should vary. Required without a seed dataset.",
    )
    dataset = forms.ModelChoiceField(
        queryset=SeedDataset.objects.none(), to_field_name="code", required=False, label="Seed dataset",
        empty_label="None (seedless)",
    )  # fmt: skip
    model = forms.ChoiceField(label="Model")
    generate_distributions = forms.BooleanField(
        required=False, initial=True, help_text="Off: every value of every property gets the same share."
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "generate")  # two forms on the specs page: their fields must not collide
        super().__init__(*args, **kwargs)
        self.company = company
        self.fields["dataset"].queryset = SeedDataset.objects.for_company(company).order_by("name")  # type: ignore[attr-defined]
        # The models that can write: never the embedded judge. Whether its provider is configured is checked on submit.
        self.fields["model"].choices = _writer_choices()  # type: ignore[attr-defined]
        self.fields["model"].initial = settings.SPEC_GENERATION_DEFAULT_MODEL

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if Spec.objects.for_company(self.company).filter(name=name).exists():
            raise forms.ValidationError(f"A spec named '{name}' already exists.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("generation_objectives") or "").strip() and not data.get("dataset"):
            raise forms.ValidationError("Give objectives, or pick a seed dataset to generate the spec from.")
        return data


class SeedDatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=settings.SPEC_MAX_TEXT_CHARS)
    zip_file = forms.FileField(
        label="ZIP file",
        help_text="One CSV / JSON / JSONL file (every row a sample), files at the root (one sample each), or "
        "folders of files (one sample per folder).",
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if SeedDataset.objects.for_company(self.company).filter(name=name).exists():
            raise forms.ValidationError(f"A seed dataset named '{name}' already exists.")
        return name


def _writer_choices() -> list[tuple[str, str]]:
    # Every model of the table but the embedded judge, which does not write data; one without credentials is marked
    # (choosing it anyway gets the message that says how to configure the provider).
    return picker_choices(writers=True)


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
    mode = forms.ChoiceField(label="Mode", required=False, initial="auto")

    def __init__(self, *args: Any, prices: tuple[Decimal, Decimal] | None = None, **kwargs: Any) -> None:
        """`prices`: 1,000 samples' expected cost with the default model, interactive and in batch mode (labels)."""
        super().__init__(*args, **kwargs)
        self.fields["generation_model"].initial = settings.GENERATION_DEFAULT_MODEL
        self.fields["mode"].choices = mode_choices(  # type: ignore[attr-defined]
            settings.GENERATION_BATCH_MIN_SAMPLES, prices, per=" per 1,000 samples"
        )

    @property
    def batch(self) -> bool | None:
        return MODES.get(self.cleaned_data.get("mode") or "auto")
