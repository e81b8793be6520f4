from __future__ import annotations

from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    name = "guardrails"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from companies.extensions import home_sections

        from . import tasks, views

        tasks.register_all()
        home_sections.append(views.home_section)
