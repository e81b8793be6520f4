from __future__ import annotations

from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    name = "guardrails"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from companies.extensions import home_sections
        from companies.quotas import sources

        from . import monitor_views, selectors, tasks, views

        tasks.register_all()
        sources.in_flight["guardrails"] = selectors.guardrails_in_flight  # companies/quotas.py counts them
        sources.in_flight["defend"] = selectors.defend_in_flight
        sources.stored_bytes["guardrails"] = selectors.guardrails_stored_bytes
        home_sections.append(views.home_section)
        home_sections.append(monitor_views.home_section)
