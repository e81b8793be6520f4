from __future__ import annotations

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "evaluations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Fill the slots of the apps below (imported here: models are ready only now): runs' (runs/extensions.py: the
        # run page's evaluations card, the latest score on the runs list, the judged values in the run ZIP, the judge of generation's conformance filter), the home
        # dashboard's card (companies/extensions.py), and the in-flight counts for the quotas (companies/quotas.py).
        from companies.extensions import home_sections
        from companies.quotas import sources
        from runs.extensions import extensions

        from . import run_card, services, tasks, trace, views

        tasks.register_all()
        sources.in_flight["evaluations"] = trace.evaluations_in_flight  # companies/quotas.py counts them
        extensions.run_page_section = views.run_evaluations_section
        extensions.annotate_latest_score = run_card.annotate_latest_score
        extensions.latest_classifications = run_card.latest_classifications
        extensions.conformance_judge = services.conformance_judge
        home_sections.append(views.home_section)
