from __future__ import annotations

from django.apps import AppConfig


class RedteamConfig(AppConfig):
    name = "redteam"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Red teaming"

    def ready(self) -> None:
        from . import tasks  # imports work.models: only once the models are ready

        tasks.register_all()
