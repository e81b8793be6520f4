from __future__ import annotations

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "llm"
    verbose_name = "LLM calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The monthly budget (companies/quotas.py) is read from this app's ledger; companies never imports llm.
        from companies.quotas import sources

        from .ledger import spend_since

        sources.spend_since = spend_since
