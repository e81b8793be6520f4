from __future__ import annotations

from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    name = "guardrails"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import tasks

        tasks.register_all()
