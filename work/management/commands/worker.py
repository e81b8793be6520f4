"""`manage.py worker`: a django-q2 cluster whose SIGTERM is a graceful stop.

django-q2's own `qcluster` hangs on SIGTERM to its process group (what systemd sends): its children die first and
its main process then blocks on their shared event. Here SIGTERM, to the group or to this process alone, reaches
every process of the cluster: each worker hands back the item it holds and exits (work/runner.py), the other
processes stop at once, and this one exits without waiting on them. Handed-back items go to the next worker.
SIGINT (Ctrl-C) does the same.

Which group is the cluster's: if this process leads its own group (systemd, a terminal, the tests), that group. If it
sits in a group that someone else leads (honcho runs each Procfile line as `sh -c ...`, the shell leading), the
cluster's processes get a group of their own, led by the sentinel, and this process stays in the caller's group, so
that the caller's Ctrl-C or SIGTERM to that group still reaches it and it relays the stop. (It used to leave the
caller's group instead, with `setpgid`: the stop then never arrived and `make run` hung on orphaned workers.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand
from django_q.cluster import Cluster

from llm.providers import import_sdks


class Command(BaseCommand):
    help = "Run background workers (a django-q2 cluster) that stop gracefully on SIGTERM or SIGINT."
    # No system checks at start: they are the web process's (and `migrate`'s), and settings.py refuses a bad
    # configuration at import anyway. They cost each worker start 0.35 s of CPU, most of it importing every view for
    # the URL check, which a worker never serves.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        me = os.getpid()
        leads_own_group = os.getpgid(0) == me
        if not leads_own_group:
            # The sentinel is the only process forked from this one; it leads the cluster's group from its first
            # instruction, before it forks the others, so every later process of the cluster is born in it.
            def lead_cluster_group() -> None:
                if os.getppid() == me:
                    os.setpgid(0, 0)

            os.register_at_fork(after_in_child=lead_cluster_group)
        import_sdks()  # before the cluster forks: no claimed item pays for it (llm/providers.py import_sdks)
        cluster = Cluster()  # installs django-q2's own SIGTERM/SIGINT handlers, replaced below

        def cluster_group() -> int | None:
            if leads_own_group:
                return me
            return cluster.sentinel.pid if cluster.sentinel is not None else None  # None: not forked yet

        def stop(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # in our own group the signal below comes back here too
            group = cluster_group()
            if group is not None:
                # Never the caller's group: only the cluster's (killpg there would stop the caller itself).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGTERM)
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        cluster.start()
        while cluster.sentinel is not None and cluster.sentinel.is_alive():
            time.sleep(1)
