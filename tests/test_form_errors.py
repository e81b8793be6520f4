"""Clear errors where they happen (issue #25): a form's errors at its top, its values kept, the answer opening on
the form; models without credentials marked in every model picker; empty states that fit their page."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from runs.models import Run, Spec

HAIKU = "anthropic/claude-haiku-4-5"


def _section(page: str, section_id: str) -> str:
    start = page.index(f'id="{section_id}"')
    return page[start : page.index("</section>", start)]


def test_generate_without_a_provider_keeps_the_form_and_says_why_at_its_top(
    client: Client, alice: Any, spec_a: Spec
) -> None:
    client.force_login(alice)
    form = {"number_of_samples": 7, "generation_model": HAIKU, "assignment_mode": "random", "conformance_filter": "on"}
    response = client.post(f"/specs/{spec_a.code}/generate/", form)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    section = _section(response.content.decode(), "generate")
    # The errors take the focus: the answer opens on them, however far down the page the form is.
    errors = section.index('class="form-errors" role="alert" tabindex="-1" autofocus')
    assert "ANTHROPIC_API_KEY is not set" in section[errors:]
    assert errors < section.index('name="number_of_samples"')  # above the first field
    assert 'value="7"' in section
    assert f'<option value="{HAIKU}" selected>' in section
    assert '<option value="random" selected>' in section
    assert 'name="conformance_filter" id="id_conformance_filter" checked' in section
    assert not Run.objects.exists()


def test_a_field_error_is_listed_at_the_top_with_a_link_to_its_field(client: Client, alice: Any, spec_a: Spec) -> None:
    client.force_login(alice)
    response = client.post(f"/specs/{spec_a.code}/generate/", {"number_of_samples": 0, "generation_model": HAIKU})
    section = _section(response.content.decode(), "generate")
    summary = section[section.index('class="form-errors"') : section.index("</div>", section.index("form-errors"))]
    assert '<a href="#id_number_of_samples">Number of samples</a>: Ensure this value is greater than' in summary
    assert '<a href="#id_assignment_mode">Values assigned</a>: This field is required.' in summary


@pytest.mark.parametrize(
    ("path", "section_id"),
    [
        ("/runs/import/", "import"),
        ("/specs/", "new-spec"),
        ("/seed-datasets/", "upload"),
        ("/guardrails/", "create-guardrail"),
    ],
)
def test_every_create_form_opens_on_its_errors(
    client: Client, alice: Any, spec_a: Spec, path: str, section_id: str
) -> None:
    client.force_login(alice)
    response = client.post(path, {"name": ""})  # not empty: /specs/ reads an empty post as no post
    assert response.status_code == HTTPStatus.BAD_REQUEST
    section = _section(response.content.decode(), section_id)
    assert 'class="form-errors" role="alert" tabindex="-1" autofocus' in section


def test_model_pickers_mark_models_without_credentials(
    client: Client, alice: Any, spec_a: Spec, run_a: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key")  # openai configured, anthropic not
    client.force_login(alice)
    pickers = {
        "spec page, generate a run": (f"/specs/{spec_a.code}/", "generate"),
        "run page, evaluate": (f"/runs/{run_a.code}/", "evaluations"),
        "specs, generate a spec": ("/specs/", "generate-spec"),
    }
    for where, (path, section_id) in pickers.items():
        section = _section(client.get(path).content.decode(), section_id)
        assert f'<option value="{HAIKU}">{HAIKU} (no credentials' in section, where
        assert '<option value="openai/gpt-5.4">openai/gpt-5.4</option>' in section, where


def test_the_guardrail_list_empty_state_fits_its_page(client: Client, alice: Any, bob: Any) -> None:
    client.force_login(alice)
    page = client.get("/guardrails/").content.decode()
    table = page[page.index('id="guardrails-table"') : page.index("</table>")]
    assert "score a first pair with the form below" in table
    assert "POST /evaluate" not in table  # not "send one with POST /evaluate" right above the form that sends one
    assert 'id="create-guardrail"' in page
    client.force_login(bob)  # read only: no form below, so the way in is the API
    page = client.get("/guardrails/").content.decode()
    assert 'id="create-guardrail"' not in page
    assert "programs send them with <code>POST /evaluate</code>" in page
