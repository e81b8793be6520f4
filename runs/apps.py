from __future__ import annotations

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from companies.quotas import sources

        from . import selectors, tasks  # imports work.models: only once the models are ready

        tasks.register_all()
        sources.stored_bytes["runs"] = selectors.runs_stored_bytes  # companies/quotas.py counts them
