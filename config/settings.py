"""One env-driven settings module. Defaults run a fresh clone: DEBUG, SQLite, the ORM broker.

Over 500 lines on purpose: every environment variable the service reads is here, each beside the comment that says
why its default is what it is, so README's Configuration table has one place to be checked against
(tests/test_readme.py); splitting it per app would scatter that one list."""

from __future__ import annotations

import gc
import os
import secrets
import sys
import tempfile
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_decimal(name: str, default: str) -> Decimal:
    raw = os.environ.get(name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"{name} must be a number of 0 or more, got {raw!r}")
    return value


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (for Docker/Kubernetes secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def install_secret_key(path: Path) -> str:
    """The key this install made for itself the first time it started, kept outside the repository.

    A constant development key let anyone who read the source forge session cookies and download links for
    every install started with `make run`. The web process and the worker start together: os.link publishes
    the new file atomically, so the one that loses the race reads the winner's key.
    """
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read {path} ({exc}): set SECRET_KEY or DATA_DIR.") from None
    key = secrets.token_urlsafe(50)
    draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(key)
        try:
            os.link(draft, path)
        except FileExistsError:
            key = path.read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"Cannot write a secret key to {path} ({exc}): set SECRET_KEY or DATA_DIR."
        ) from None
    finally:
        draft.unlink(missing_ok=True)
    return key


# --- Core ---
DEBUG = env_bool("DEBUG", True)
# The SQLite database and the generated development secret key live here (both git-ignored by default).
DATA_DIR = Path(os.environ.get("DATA_DIR") or BASE_DIR)
SECRET_KEY = env_secret("SECRET_KEY")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if DEBUG:
    SECRET_KEY = SECRET_KEY or install_secret_key(DATA_DIR / ".secret_key")
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]
else:
    if not SECRET_KEY:
        raise ImproperlyConfigured("DEBUG is off: set SECRET_KEY (or SECRET_KEY_FILE) to a long random string.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DEBUG is off: set ALLOWED_HOSTS to the comma-separated host names you serve.")
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "config.apps.ThrottledAdminConfig",  # django.contrib.admin, its sign-in throttled like /login/
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_htmx",
    "template_partials",
    "companies",
    "llm",
    "runs",
    "work",
    "evaluations",
    "guardrails",
    "anonymization",
    "redteam",
]

MIDDLEWARE = [
    # First, so it sees every answer: API paths get JSON errors (413 before a body is read, 404/405/500 too).
    "config.errors.JsonErrorsMiddleware",
    # Every answer carries CONTENT_SECURITY_POLICY (below).
    "config.security.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Query strings (every path) and page forms holding a NUL: a 400 naming the field, before any view filters.
    "config.text.StorableTextMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Scripts only from our origin, none inline (config/security.py says why styles may be inline). Empty: no header.
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
# The Dataframer and DeepRails clients POST to exact paths; a redirect would turn a POST into a GET.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "companies.context_processors.active_company",
                "llm.context_processors.judge_notes",
            ],
        },
    },
]

# --- Database ---
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker share one file: WAL lets readers run beside a writer, the busy
    # timeout waits instead of failing, and IMMEDIATE takes the write lock up front so two writers
    # queue rather than deadlock into "database is locked".
    # config/sqlite: the threads of one process take their write transactions in turn (see its docstring).
    DATABASES["default"]["ENGINE"] = "config.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# How often (microseconds) the interpreter makes a thread busy in Python hand the GIL to one waiting for it; Python's
# own is 5,000. The default setup serves every request as a thread of one process (runserver): a short request
# gives the GIL up at each query and socket read and waits up to this long to get it back from a thread checking a
# 20,000-sample import, ~20 times per request. At 500 another company's POST /evaluate p95 was 2-3x shorter while
# imports ran (README "Running at scale"). 0 leaves Python's own.
PYTHON_SWITCH_INTERVAL_US = env_int("PYTHON_SWITCH_INTERVAL_US", 500)
if PYTHON_SWITCH_INTERVAL_US > 0:
    sys.setswitchinterval(PYTHON_SWITCH_INTERVAL_US / 1_000_000)
# Allocations between two young collections of the garbage collector; Python's own is 700. A collection holds the
# GIL, so it stalls every request thread of the process. A 20,000-sample import allocates millions of objects: at
# 700, runserver made 3,743 collections (13 full) in a noisy_neighbour.py run (30 s alone, 30 s under two imports;
# loaded machine), 6.2 s in all, up to 442 ms each; at 10,000, with the start-up objects frozen out of the
# collector (config/wsgi.py), 175 collections, 1.3 s, at most 83 ms (issue #22). 0 leaves Python's own.
PYTHON_GC_THRESHOLD = env_int("PYTHON_GC_THRESHOLD", 10_000)
if PYTHON_GC_THRESHOLD > 0:
    gc.set_threshold(PYTHON_GC_THRESHOLD, 10, 10)

# --- Cache (API throttles live here) ---
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth ---
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "companies:home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)

# --- Proxies and TLS ---
# How many reverse proxies in front of us append to X-Forwarded-For. With 0 the header is ignored (anyone can send
# it) and the client is REMOTE_ADDR; with N the client is the Nth address from the right, the one our own
# outermost proxy saw. Every per-address throttle reads it (DRF's NUM_PROXIES below).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)
if TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES must be 0 or more, got {TRUSTED_PROXIES}")
# Behind a proxy that ends TLS: trust its X-Forwarded-Proto, so request.is_secure() holds and absolute links
# (signed download URLs) are https://. Only set it when the proxy overwrites that header from clients.
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# --- Pages ---
PAGE_SIZE = 25  # rows per page of every list page and sample table

# --- Human review ---
# The share of a reviewer's random-queue labels that go to samples a colleague already labelled: the overlap that
# measures reviewers' agreement with each other (the ceiling for any judge); the rest covers new samples.
REVIEW_OVERLAP_PERCENT = env_int("REVIEW_OVERLAP_PERCENT", 15)
if not 0 <= REVIEW_OVERLAP_PERCENT <= 100:
    raise ImproperlyConfigured(f"REVIEW_OVERLAP_PERCENT must be 0 to 100, got {REVIEW_OVERLAP_PERCENT}")

# --- Regression gate (evaluations/gate.py: the compare page, the API's compare, manage.py gate) ---
# A candidate evaluation regresses from its baseline when its conformance score drops by more than
# GATE_MAX_SCORE_DROP points, a property's TVD rises by more than GATE_MAX_TVD_RISE percentage points, or a property's
# agreement drops by more than GATE_MAX_AGREEMENT_DROP percentage points beyond noise (its 95% interval leaves out 0).
GATE_MAX_SCORE_DROP = env_decimal("GATE_MAX_SCORE_DROP", "5")
GATE_MAX_TVD_RISE = env_decimal("GATE_MAX_TVD_RISE", "5")
GATE_MAX_AGREEMENT_DROP = env_decimal("GATE_MAX_AGREEMENT_DROP", "5")

# --- I18N ---
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (served by WhiteNoise; htmx comes from django-htmx, plotly.js from the plotly package) ---
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploaded files (seed datasets) go through Django's storage API: this folder by default; any backend at scale
# (STORAGES["default"]).
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or BASE_DIR / "media")
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "config.staticfinders.PlotlyFinder",
]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- DRF ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "companies.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bounded and strict: NaN, lone surrogates, deep nesting and oversized bodies are a 400/413, never a 500.
    "DEFAULT_PARSER_CLASSES": [
        "config.api.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_METADATA_CLASS": "config.api.MinimalMetadata",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    # Every API view: per company and per key, counted in the cache (REDIS_URL shares it between processes).
    "DEFAULT_THROTTLE_CLASSES": [
        "companies.api.throttles.CompanyRateThrottle",
        "companies.api.throttles.ApiKeyRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"api_key_rotate": os.environ.get("API_KEY_ROTATE_RATE", "5/hour")},
    # Not None: DRF then never takes a client-supplied X-Forwarded-For at its word (see TRUSTED_PROXIES).
    "NUM_PROXIES": TRUSTED_PROXIES,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Bodies larger than this (plus IMPORT_MAX_UPLOAD_BYTES for a multipart upload) are refused with a JSON 413
# before any view reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 50 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

SPECTACULAR_SETTINGS = {
    "TITLE": "LLM evaluation service API",
    "DESCRIPTION": "Dataframer-compatible specs, runs and evaluations; DeepRails-compatible guardrail evaluations.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.document_refused_text",
        "config.schema.document_refusals",
    ],
    # Several models have a `status`; name each choice set after its model rather than by hash.
    "ENUM_NAME_OVERRIDES": {
        "SpecStatusEnum": "runs.models.Spec.Status",
        "RunStatusEnum": "runs.models.Run.Status",
        "DatasetTypeEnum": "runs.models.SeedDataset.Type",
        "SeedFileTypeEnum": "runs.models.SeedFile.FileType",
        "EvaluationStatusEnum": "evaluations.models.Evaluation.Status",
        "GuardrailEvaluationStatusEnum": "guardrails.models.GuardrailEvaluation.Status",
        "ActiveStatusEnum": "guardrails.models.ActiveStatus",
    },
}

# --- API keys ---
API_KEY_LIFETIME = timedelta(days=env_int("API_KEY_LIFETIME_DAYS", 365))

# --- django-q2 ---
# The queue only wakes workers: the work app's rows say what is left to do (DESIGN.md §6). So django-q never
# retries on its own (our rows count attempts), failures are acknowledged (our runner has recorded them), and a
# worker prefetches no more than it can run (a prefetched message dies with its worker; the reconciler re-sends).
Q_TIMEOUT = env_int("Q_TIMEOUT", 600)
Q_WORKERS = env_int("Q_WORKERS", 2)
# How often an idle worker asks the ORM broker for work (Redis wakes it at once): the wait between an API call or a
# finished step and the next item's start. django-q2's 200 ms was a third of an evaluation's fixed cost.
Q_POLL_MS = env_int("Q_POLL_MS", 50)
Q_CLUSTER: dict[str, object] = {
    "name": "evalservice",
    "workers": Q_WORKERS,
    "timeout": Q_TIMEOUT,
    "retry": Q_TIMEOUT + 60,
    "max_attempts": 1,
    "queue_limit": Q_WORKERS,
    "bulk": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "poll": Q_POLL_MS / 1000,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Logging ---
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# --- Limits on what a request may carry (README "Security" lists them all) ---
# Every limit is checked in linear time before any write transaction starts, so one company's oversized input
# can neither hold the SQLite write lock nor slow another company's requests.
# Specs (runs/specfile.py): refused with a 400 that names the line.
SPEC_MAX_BYTES = env_int("SPEC_MAX_BYTES", 1024 * 1024)
SPEC_MAX_PROPERTIES = env_int("SPEC_MAX_PROPERTIES", 100)
SPEC_MAX_VALUES_PER_PROPERTY = env_int("SPEC_MAX_VALUES_PER_PROPERTY", 1000)
SPEC_MAX_NAME_CHARS = env_int("SPEC_MAX_NAME_CHARS", 500)  # a property name or value
SPEC_MAX_TEXT_CHARS = env_int("SPEC_MAX_TEXT_CHARS", 20_000)  # a description or the requirements
SPEC_MAX_DEPTH = env_int("SPEC_MAX_DEPTH", 10)  # YAML nesting; the documented layout needs 8
# Run import (runs/imports.py).
IMPORT_MAX_SAMPLES = env_int("IMPORT_MAX_SAMPLES", 20_000)
# An import still hidden (Run.importing) this long after it began was stopped half-way (its process killed between
# batches; a live 20,000-sample import takes seconds): the storage quota stops counting it and the worker's
# reconciler deletes it with its samples. 0 = off (kept and counted until deleted by hand).
IMPORT_ABANDONED_SECONDS = env_int("IMPORT_ABANDONED_SECONDS", 3600)
# Imports checking and writing their samples at once per process; the others wait (runs/services.py). 0 = no limit.
IMPORTS_AT_ONCE_PER_PROCESS = env_int("IMPORTS_AT_ONCE_PER_PROCESS", 1)
IMPORT_MAX_SAMPLE_BYTES = env_int("IMPORT_MAX_SAMPLE_BYTES", 1024 * 1024)
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
IMPORT_MAX_ZIP_MEMBERS = env_int("IMPORT_MAX_ZIP_MEMBERS", 50_000)
IMPORT_MAX_INFLATED_BYTES = env_int("IMPORT_MAX_INFLATED_BYTES", 256 * 1024 * 1024)  # the whole ZIP, unpacked
IMPORT_MAX_ZIP_RATIO = env_int("IMPORT_MAX_ZIP_RATIO", 200)  # unpacked / packed, per member past its first MiB
# Seed datasets (runs/seeds.py): the vendor's documented limits, refused with a 400 naming the limit. A ZIP is
# inflated as a stream (never whole in memory) against the import budget above (IMPORT_MAX_ZIP_RATIO too).
SEED_MAX_UPLOAD_BYTES = env_int("SEED_MAX_UPLOAD_BYTES", 64 * 1024 * 1024)  # the ZIP (or all files) as uploaded
SEED_MAX_TOTAL_BYTES = env_int("SEED_MAX_TOTAL_BYTES", 50 * 1024 * 1024)  # a dataset's files, unpacked
SEED_MAX_FILE_BYTES = env_int("SEED_MAX_FILE_BYTES", 1024 * 1024)  # one file of a MULTI_FILE / MULTI_FOLDER dataset
SEED_MAX_SINGLE_FILE_BYTES = env_int("SEED_MAX_SINGLE_FILE_BYTES", 50 * 1024 * 1024)  # a SINGLE_FILE dataset's file
SEED_MAX_FILES = env_int("SEED_MAX_FILES", 1000)
SEED_MAX_FILES_PER_FOLDER = env_int("SEED_MAX_FILES_PER_FOLDER", 20)
# A JSON single file is parsed to count its samples only up to this size (parsing holds it whole in memory).
SEED_JSON_COUNT_MAX_BYTES = env_int("SEED_JSON_COUNT_MAX_BYTES", 8 * 1024 * 1024)
# Spec generation: how much of a seed dataset's text the prompt may quote, in bytes.
SPEC_GENERATION_SAMPLE_BYTES = env_int("SPEC_GENERATION_SAMPLE_BYTES", 60_000)
SPEC_GENERATION_DEFAULT_MODEL = os.environ.get("SPEC_GENERATION_DEFAULT_MODEL", "anthropic/claude-sonnet-4-6-thinking")
# JSON request bodies (config/parsers.py): deeper nesting is refused before it reaches a serializer.
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 64)
# Each guardrail text (model_output and model_input's prompts, ground truth, context), in characters; 0 is off.
# Past it POST /evaluate answers 413 naming the field (about 25,000 tokens: far above what a judge grades well).
GUARDRAIL_MAX_TEXT_CHARS = env_int("GUARDRAIL_MAX_TEXT_CHARS", 100_000)
# Signed file download links (GET .../files/.../download/) stay valid this long, and only while the API key
# (or browser session) that asked for them is.
DOWNLOAD_URL_MAX_AGE = env_int("DOWNLOAD_URL_MAX_AGE", 600)
# Failed sign-ins and API-key guesses, counted in the cache per window (companies/throttling.py).
FAILURE_WINDOW_SECONDS = env_int("FAILURE_WINDOW_SECONDS", 15 * 60)
LOGIN_MAX_FAILURES_PER_USERNAME = env_int("LOGIN_MAX_FAILURES_PER_USERNAME", 5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
API_KEY_MAX_FAILURES_PER_ADDRESS = env_int("API_KEY_MAX_FAILURES_PER_ADDRESS", 20)
# Per-company quotas (companies/quotas.py, companies/api/throttles.py); 0 turns a limit off. Over one: 429.
API_REQUESTS_PER_MINUTE = env_int("API_REQUESTS_PER_MINUTE", 600)  # per company, every API path
API_REQUESTS_PER_MINUTE_PER_KEY = env_int("API_REQUESTS_PER_MINUTE_PER_KEY", 300)  # per API key (or session)
# API requests of one company in progress at once: below the web server's own concurrency, so that one company's
# slow requests (large imports) can never hold every web worker (benchmarks/noisy_neighbour.py).
API_CONCURRENT_REQUESTS_PER_COMPANY = env_int("API_CONCURRENT_REQUESTS_PER_COMPANY", 2)
# Unfinished Dataframer plus guardrail evaluations; a guardrail evaluation counts as one sample. 1,000 lets one
# full /evaluate/batch through; the samples cap is what bounds Dataframer evaluations.
MAX_EVALUATIONS_IN_FLIGHT = env_int("MAX_EVALUATIONS_IN_FLIGHT", 1000)
MAX_SAMPLES_IN_FLIGHT = env_int("MAX_SAMPLES_IN_FLIGHT", 100_000)
# USD of judge calls (the JudgeCall ledger) per calendar month, UTC; a company's own budget (admin) wins.
MONTHLY_BUDGET_USD = env_decimal("MONTHLY_BUDGET_USD", "0")
# Bytes one company may store: run samples' content, seed dataset files and guardrail evaluation texts
# (companies.quotas.storage_check). Past it a write is refused whole with a 413 naming the quota.
STORAGE_QUOTA_BYTES = env_int("STORAGE_QUOTA_BYTES", 10 * 1024**3)
# Where "download all" keeps each run ZIP until its link expires; web servers on several machines should share it
# (a link served where its file is missing builds the ZIP again).
DOWNLOAD_ARCHIVE_DIR = Path(
    os.environ.get("DOWNLOAD_ARCHIVE_DIR") or Path(tempfile.gettempdir()) / "evalservice-run-archives"
)

# --- Judges ---
# Model name → provider, provider model id, thinking, prices (USD per million input / output / cache-read /
# cache-write tokens). Operators add their own in a JSON file named by JUDGE_MODELS_FILE, e.g.
# {"local/qwen3-8b": {"provider": "openai", "model": "Qwen/Qwen3-8B", "base_url": "http://gpu:8000/v1"}}.
_OPUS = {"input": 5, "output": 25, "cache_read": 0.5, "cache_write": 6.25}
_SONNET = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}
_HAIKU = {"input": 1, "output": 5, "cache_read": 0.1, "cache_write": 1.25}
_GPT = {"input": 2.5, "output": 15, "cache_read": 0.25, "cache_write": 0}
JUDGE_MODELS: dict[str, dict[str, object]] = {
    "anthropic/claude-opus-4-6": {"provider": "anthropic", "model": "claude-opus-4-6", "prices": _OPUS},
    "anthropic/claude-opus-4-6-thinking": {
        "provider": "anthropic", "model": "claude-opus-4-6", "thinking_budget": 4096, "max_tokens": 8192, "prices": _OPUS,
    },
    "anthropic/claude-sonnet-4-6": {"provider": "anthropic", "model": "claude-sonnet-4-6", "prices": _SONNET},
    "anthropic/claude-sonnet-4-6-thinking": {
        "provider": "anthropic", "model": "claude-sonnet-4-6", "thinking_budget": 4096, "max_tokens": 8192,
        "prices": _SONNET,
    },
    "anthropic/claude-haiku-4-5": {"provider": "anthropic", "model": "claude-haiku-4-5", "prices": _HAIKU},
    "anthropic/claude-haiku-4-5-thinking": {
        "provider": "anthropic", "model": "claude-haiku-4-5", "thinking_budget": 2048, "max_tokens": 6144,
        "prices": _HAIKU,
    },
    "openai/gpt-5.4": {"provider": "openai", "model": "gpt-5.4", "prices": _GPT},
    "openai/gpt-5.4-thinking": {
        "provider": "openai", "model": "gpt-5.4", "reasoning_effort": "medium", "max_tokens": 8192, "prices": _GPT,
    },
    # The embedded judge (llm/embedded.py): local models from installed wheels, no network, no key.
    "local/embeddings": {"provider": "offline", "model": "embeddings"},
}  # fmt: skip
if os.environ.get("JUDGE_MODELS_FILE"):
    import json

    JUDGE_MODELS.update(json.loads(Path(os.environ["JUDGE_MODELS_FILE"]).read_text()))
JUDGE_DEFAULT_MODEL = os.environ.get("JUDGE_DEFAULT_MODEL", "anthropic/claude-sonnet-4-6-thinking")
# Without the provider's credentials: judge offline (development) or fail the evaluation (production).
JUDGE_OFFLINE_FALLBACK = env_bool("JUDGE_OFFLINE_FALLBACK", DEBUG)
JUDGE_CONCURRENCY = env_int("JUDGE_CONCURRENCY", 8)  # simultaneous calls per provider, per worker process
JUDGE_MAX_ATTEMPTS = env_int("JUDGE_MAX_ATTEMPTS", 5)  # per call, for 429 / 5xx / timeouts
JUDGE_TIMEOUT_SECONDS = env_int("JUDGE_TIMEOUT_SECONDS", 120)
JUDGE_BACKOFF_MAX_SECONDS = env_int("JUDGE_BACKOFF_MAX_SECONDS", 60)
# Keep what each classification call sent and got back (the sample page's judge-call view); off for privacy, the
# ledger then keeps numbers only (llm/ledger.py).
LLM_STORE_PROMPTS = env_bool("LLM_STORE_PROMPTS", True)
# Work items classifying one evaluation side by side (each keeps JUDGE_CONCURRENCY calls in flight).
EVALUATION_PARALLEL_ITEMS = env_int("EVALUATION_PARALLEL_ITEMS", 1)
# Batch mode (README "Batch mode: when to use it"): an evaluation of at least this many samples goes through the
# provider's batch API at half the price unless its request says otherwise (0: only when asked).
JUDGE_BATCH_MIN_SAMPLES = env_int("JUDGE_BATCH_MIN_SAMPLES", 10_000)
# Requests per batch and bytes per batch: the lower of the two providers' documented limits (OpenAI: 50,000 and
# 200 MB; Anthropic: 100,000 and 256 MB). A bigger job is split into several batches.
JUDGE_BATCH_MAX_REQUESTS = env_int("JUDGE_BATCH_MAX_REQUESTS", 50_000)
JUDGE_BATCH_MAX_BYTES = env_int("JUDGE_BATCH_MAX_BYTES", 200_000_000)
# A batch is looked at after this many seconds, then twice as long each time it has not ended, up to the maximum.
JUDGE_BATCH_POLL_SECONDS = env_int("JUDGE_BATCH_POLL_SECONDS", 30)
JUDGE_BATCH_POLL_MAX_SECONDS = env_int("JUDGE_BATCH_POLL_MAX_SECONDS", 600)
# --- Run generation (runs.create) ---
# The model that writes samples when runs.create names none: never the embedded judge (it does not write data).
GENERATION_DEFAULT_MODEL = os.environ.get("GENERATION_DEFAULT_MODEL", "anthropic/claude-sonnet-4-6")
GENERATION_MAX_SAMPLES = 20_000  # number_of_samples is 1..this (the Dataframer docs' range)
GENERATION_MAX_TOKENS = env_int("GENERATION_MAX_TOKENS", 4096)  # reply budget for one written sample
GENERATION_MAX_SAMPLE_CHARS = env_int("GENERATION_MAX_SAMPLE_CHARS", 100_000)  # a longer reply is a bad reply
# Work items writing one run side by side (each keeps JUDGE_CONCURRENCY calls in flight).
GENERATION_PARALLEL_ITEMS = env_int("GENERATION_PARALLEL_ITEMS", 1)
# Batch mode (README "Batch mode: when to use it"): a run of at least this many samples is written through the
# provider's batch API at half the price unless its request says otherwise (0: only when asked). The limits and
# polling of a batch are the JUDGE_BATCH_* settings above: the same providers' same batch APIs.
GENERATION_BATCH_MIN_SAMPLES = env_int("GENERATION_BATCH_MIN_SAMPLES", 10_000)
# filtering_types: ["conformance"]: how many times a sample is written before it is given up as failed.
GENERATION_FILTER_ATTEMPTS = env_int("GENERATION_FILTER_ATTEMPTS", 3)
# Guardrail evaluations (DeepRails /evaluate): run mode → the judges that grade, whether each metric gets its own
# call (else one call grades every requested metric), and the reply budget, which a combined call needs more of.
# precision_plus asks two judges from different providers and reports their mean and disagreement.
GUARDRAIL_RUN_MODES: dict[str, dict[str, object]] = {
    "economy": {"judges": ["anthropic/claude-haiku-4-5"], "call_per_metric": False, "max_tokens": 4096},
    "smart": {"judges": ["anthropic/claude-sonnet-4-6"], "call_per_metric": False, "max_tokens": 4096},
    "precision": {"judges": ["anthropic/claude-opus-4-6"], "call_per_metric": True, "max_tokens": 2048},
    "precision_plus": {
        "judges": ["anthropic/claude-opus-4-6", "openai/gpt-5.4"], "call_per_metric": True, "max_tokens": 2048,
    },
}  # fmt: skip
if os.environ.get("GUARDRAIL_RUN_MODES_JSON"):  # overrides, e.g. {"smart": {"judges": ["local/qwen3-8b"]}}
    import json

    GUARDRAIL_RUN_MODES.update(json.loads(os.environ["GUARDRAIL_RUN_MODES_JSON"]))

# Defend workflows (DeepRails /defend): the LLM that rewrites a failing output (regen, fixit). Never the embedded
# judge: a workflow with regen or fixit is refused (400) until this model's provider has credentials.
DEFEND_WRITER_MODEL = os.environ.get("DEFEND_WRITER_MODEL", GENERATION_DEFAULT_MODEL)
DEFEND_MAX_IMPROVEMENT_ATTEMPTS = env_int("DEFEND_MAX_IMPROVEMENT_ATTEMPTS", 20)  # the most a workflow may ask for
DEFEND_WRITER_MAX_TOKENS = env_int("DEFEND_WRITER_MAX_TOKENS", 4096)  # reply budget for one rewritten output

# --- Background work (work app) ---
# A worker that stops heartbeating loses its item after WORK_LEASE_SECONDS: seven missed heartbeats. The heartbeat
# runs between calls' answers (at least every second), never behind a slow call, so a healthy worker keeps it.
WORK_LEASE_SECONDS = env_int("WORK_LEASE_SECONDS", 15)
WORK_HEARTBEAT_SECONDS = env_int("WORK_HEARTBEAT_SECONDS", 2)  # also how soon a running item sees a cancel
WORK_SLICE_SECONDS = env_int("WORK_SLICE_SECONDS", 10)  # a running item yields after this if other work waits
WORK_RECONCILE_SECONDS = env_int("WORK_RECONCILE_SECONDS", 5)  # each worker process reconciles this often
WORK_MAX_ATTEMPTS = env_int("WORK_MAX_ATTEMPTS", 5)  # failed or lost claims without progress before it gives up
# SIGTERM: no call starts and none is retried; calls in flight get WORK_STOP_CALLS_SECONDS to answer, then are
# abandoned, the item is handed back and the process exits. WORK_STOP_GRACE_SECONDS is the backstop: whatever the
# item is doing (a write that hangs), the item is handed back and the process gone by then.
WORK_STOP_CALLS_SECONDS = env_int("WORK_STOP_CALLS_SECONDS", 2)
WORK_STOP_GRACE_SECONDS = env_int("WORK_STOP_GRACE_SECONDS", 4)
WORK_BACKOFF_MAX_SECONDS = env_int("WORK_BACKOFF_MAX_SECONDS", 60)
WORK_REDELIVER_SECONDS = env_int("WORK_REDELIVER_SECONDS", 45)  # a sent item not started by then is sent again
WORK_MAX_IN_FLIGHT_PER_COMPANY = env_int("WORK_MAX_IN_FLIGHT_PER_COMPANY", 2)
# A finished item's next step (an evaluation's classify after its start, its finalize after the last classify) runs
# at once in the same worker process, without a broker round trip, unless another company's work waits.
WORK_CHAIN_STEPS = env_bool("WORK_CHAIN_STEPS", True)
WORK_DISPATCH_BATCH = 500
# A run ends before django-q's timeout would kill it: no provider call starts that could outlast this.
WORK_HARD_SECONDS = Q_TIMEOUT - JUDGE_TIMEOUT_SECONDS - 30
if WORK_HARD_SECONDS < 30:
    raise ImproperlyConfigured(
        f"Q_TIMEOUT ({Q_TIMEOUT}) must exceed JUDGE_TIMEOUT_SECONDS ({JUDGE_TIMEOUT_SECONDS}) by at least 60 s."
    )
