from __future__ import annotations

from django.apps import AppConfig


class RedteamConfig(AppConfig):
    name = "redteam"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Red teaming"

    def ready(self) -> None:
        from companies.extensions import home_sections

        from . import tasks, views  # they import models: only once the models are ready

        tasks.register_all()
        home_sections.append(views.home_section)
