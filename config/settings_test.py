"""Thin test override: fast hashing, tasks run inline unless a test starts a real worker."""

from __future__ import annotations

import os
from pathlib import Path

from .settings import *  # noqa: F403
from .settings import Q_CLUSTER

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
