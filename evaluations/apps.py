from __future__ import annotations

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "evaluations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Fill runs' extension slots (runs/extensions.py) and add the home dashboard's card (companies/extensions.py): the run page's evaluations card, the latest score on the
        # runs list, and the judged values in the run ZIP. Imported here: models are ready only now.
        from companies.extensions import home_sections
        from runs.extensions import extensions

        from . import selectors, tasks, views

        tasks.register_all()
        extensions.run_page_section = views.run_evaluations_section
        extensions.annotate_latest_score = selectors.annotate_latest_score
        extensions.latest_classifications = selectors.latest_classifications
        home_sections.append(views.home_section)
