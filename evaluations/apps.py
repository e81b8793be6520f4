from __future__ import annotations

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "evaluations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Fill runs' extension slots (runs/extensions.py): the run page's evaluations card, the latest score on the
        # runs list, and the judged values in the run ZIP. Imported here: models are ready only now.
        from companies.quotas import sources
        from runs.extensions import extensions

        from . import selectors, tasks, views

        tasks.register_all()
        sources.in_flight["evaluations"] = selectors.evaluations_in_flight  # companies/quotas.py counts them
        extensions.run_page_section = views.run_evaluations_section
        extensions.annotate_latest_score = selectors.annotate_latest_score
        extensions.latest_classifications = selectors.latest_classifications
