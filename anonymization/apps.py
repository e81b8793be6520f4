from __future__ import annotations

from django.apps import AppConfig


class AnonymizationConfig(AppConfig):
    name = "anonymization"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from companies.extensions import home_sections

        from . import tasks, views  # import models: only once the models are ready

        tasks.register_all()
        home_sections.append(views.home_section)
