from __future__ import annotations

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "llm"
    verbose_name = "LLM calls"
    default_auto_field = "django.db.models.BigAutoField"
