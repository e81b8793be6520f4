"""Thin test override: fast hashing, tasks run inline unless a test starts a real worker."""

from __future__ import annotations

import os
import re
from pathlib import Path

# Under pytest-xdist (`make test` runs `pytest -n`), each worker process gets its own of everything shared: the
# database (pytest-django suffixes the test database's name, SQLite file and PostgreSQL alike, with "_gw<N>"), the
# Redis database (a test's cache.clear() is a FLUSHDB: worker N uses REDIS_URL's database + N, so CI's leg 2 on
# db 0 uses 0, 1, ...), and the media folder. Set before the settings read them; the real workers a test starts
# inherit them through the environment. Ports are picked free by the OS (live server, stand-in, `make run` tests).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...; empty without xdist
if XDIST_WORKER and not os.environ.get("EVALSERVICE_TEST_WORKER_SET_UP"):
    os.environ["EVALSERVICE_TEST_WORKER_SET_UP"] = XDIST_WORKER
    offset = int(XDIST_WORKER.removeprefix("gw"))
    if os.environ.get("REDIS_URL"):
        base = re.match(r"^(redis://[^/]*)(?:/(\d+))?$", os.environ["REDIS_URL"])
        if base is None:
            raise ValueError(f"REDIS_URL {os.environ['REDIS_URL']!r}: expected redis://host:port/db for per-worker dbs")
        os.environ["REDIS_URL"] = f"{base.group(1)}/{int(base.group(2) or 0) + offset}"
    os.environ.pop("MEDIA_ROOT", None)  # the controller's folder: this worker makes its own below

from .settings import *  # noqa: E402, F403
from .settings import Q_CLUSTER  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER["sync"] = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "config.sqlite":  # noqa: F405
    # A file, not memory: the live server's request threads and a worker process (tests that start a real
    # qcluster) must open their own connections to the same test database.
    # TEST_SQLITE_NAME lets two suites run side by side in one checkout.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.environ.get("TEST_SQLITE_NAME", str(BASE_DIR / "test-db.sqlite3"))  # noqa: F405
    }

# Uploaded seed files go to a temporary folder, never the checkout; the environment carries it to the real workers
# some tests start (they read the files to generate specs).
if not os.environ.get("MEDIA_ROOT"):
    import tempfile

    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="evalservice-test-media-")
MEDIA_ROOT = Path(os.environ["MEDIA_ROOT"])
