from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Everything loaded so far (Django, every app, the URL configuration and its views, the providers' SDKs) lives as
# long as the process: frozen out of the garbage collector, a collection no longer walks it (PYTHON_GC_THRESHOLD in
# settings.py says what that saved).
import config.urls  # noqa: E402, F401
from llm.providers import import_sdks  # noqa: E402

import_sdks()

gc.freeze()
