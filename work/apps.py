from __future__ import annotations

from django.apps import AppConfig


class WorkConfig(AppConfig):
    name = "work"
    verbose_name = "Background work"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django_q.signals import post_spawn

        from . import runner, schedules

        post_migrate.connect(schedules.ensure_schedules, sender=self)
        # In every django-q worker process: SIGTERM means "hand back what you hold and exit" (runner.py).
        post_spawn.connect(runner.install_sigterm_handler)
