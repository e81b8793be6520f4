from __future__ import annotations

from django.apps import AppConfig


class WorkConfig(AppConfig):
    name = "work"
    verbose_name = "Background work"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from . import runner

        # In every django-q worker process: a reconciler loop, and SIGTERM meaning "hand back and exit".
        post_spawn.connect(runner.on_worker_start)
