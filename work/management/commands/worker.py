"""`manage.py worker`: a django-q2 cluster whose SIGTERM is a graceful stop.

django-q2's own `qcluster` hangs on SIGTERM to its process group (what systemd sends): its children die first and
its main process then blocks on their shared event. Here SIGTERM, to the group or to this process alone, reaches
every process of the cluster: each worker hands back the item it holds and exits (work/runner.py), the other
processes stop at once, and this one exits without waiting on them. Handed-back items go to the next worker.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand
from django_q.cluster import Cluster


class Command(BaseCommand):
    help = "Run background workers (a django-q2 cluster) that stop gracefully on SIGTERM."

    def handle(self, *args: Any, **options: Any) -> None:
        if os.getpgid(0) != os.getpid():
            os.setpgid(0, 0)  # lead a process group of our own: SIGTERM is forwarded to it, and only to it
        cluster = Cluster()  # installs django-q2's own SIGTERM/SIGINT handlers, replaced below

        def stop(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the signal below comes back to this process too
            os.killpg(os.getpgid(0), signal.SIGTERM)
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        cluster.start()
        while cluster.sentinel is not None and cluster.sentinel.is_alive():
            time.sleep(1)
