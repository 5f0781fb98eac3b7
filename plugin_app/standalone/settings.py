"""
Settings of the standalone project: the app outside Open edX, configured from the environment.

    EXPORTBULK_HOME           state folder: SQLite database, local bucket, keys (default ~/.exportbulk)
    EXPORTBULK_OLX_ROOT       folder of OLX course directories (default $EXPORTBULK_HOME/courses,
                              seeded with the sample course)
    EXPORTBULK_DATABASE_URL   sqlite:///path (default) or mysql://user:password@host:port/name
    CELERY_BROKER_URL         e.g. redis://127.0.0.1:6379/0; unset: tasks run in-process
    EXPORTBULK_BUCKET, EXPORTBULK_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION        S3 storage; without a bucket files go to $EXPORTBULK_HOME/storage
    EXPORTBULK_ALLOWED_HOSTS  host names the server answers, comma-separated (default: loopback only)
    EXPORTBULK_BASE_URL       e.g. https://exports.example.com: the base of the URLs the API answers
                              (default: the request's own, once its host is allowed)
    EXPORTBULK_*              every other setting of plugin_app/settings/common.py, with its type
                              (see plugin_app/standalone/environment.py)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from openedx_content.settings_api import openedx_content_backcompat_apps_to_install

from plugin_app.settings import common
from plugin_app.standalone.environment import settings_from_environment
from plugin_app.standalone.keys import jwt_keys, secret_key

HOME = Path(os.environ.get("EXPORTBULK_HOME", Path.home() / ".exportbulk")).resolve()
HOME.mkdir(parents=True, exist_ok=True)

DEBUG = os.environ.get("EXPORTBULK_DEBUG", "") == "1"
SECRET_KEY = os.environ.get("EXPORTBULK_SECRET_KEY") or secret_key(HOME)
# A forged Host header is refused (400), never echoed into the URLs the API answers.
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("EXPORTBULK_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]
# Error pages (DEBUG) mask credentials inside URL settings too, e.g. CELERY_BROKER_URL's password.
DEFAULT_EXCEPTION_REPORTER_FILTER = "plugin_app.standalone.errors.CredentialMaskingFilter"
ROOT_URLCONF = "plugin_app.standalone.urls"
WSGI_APPLICATION = "plugin_app.standalone.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
MEDIA_ROOT = str(HOME / "media")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
OPENEDX_TELEMETRY: list[str] = []  # edx-django-utils monitoring: no New Relic here

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "oauth2_provider",
    "drf_spectacular",
    # Learning Core: where v2 content libraries live (backed up and restored beside courses).
    "openedx_content",
    *openedx_content_backcompat_apps_to_install(),  # type: ignore[no-untyped-call]
    "plugin_app.apps.ExportBulkConfig",
]
# Learning Core's file media (a library component's static files), never served to browsers here.
OPENEDX_LEARNING = {
    "MEDIA": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(HOME / "learning_core_media")},
    }
}
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def database(url: str) -> dict[str, Any]:
    """A Django DATABASES entry from ``sqlite:///path`` or ``mysql://user:pw@host:port/name``."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parsed.path) or ":memory:",
            # The server and a worker write the same file: readers never wait for a writer (WAL),
            # a transaction takes the write lock when it begins (a read upgraded to a write would
            # fail at once, "database is locked"), and a writer waits its turn for up to 30 s.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    if parsed.scheme == "mysql":
        import pymysql

        pymysql.install_as_MySQLdb()
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": parsed.path.lstrip("/"),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "127.0.0.1",
            "PORT": str(parsed.port or 3306),
            # TLS to a server on this machine protects nothing, and PyMySQL's default (try TLS, fall
            # back) builds an SSL context, its CA certificates loaded, for every new connection.
            "OPTIONS": {"charset": "utf8mb4", "ssl_disabled": (parsed.hostname or "127.0.0.1") in _LOOPBACK},
            "CONN_MAX_AGE": 60,
            # A connection the server dropped is replaced at the next request, not failed with.
            "CONN_HEALTH_CHECKS": True,
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    raise ValueError(f"EXPORTBULK_DATABASE_URL: unsupported scheme {parsed.scheme!r} (sqlite or mysql)")


DATABASES = {
    "default": database(os.environ.get("EXPORTBULK_DATABASE_URL") or f"sqlite:///{HOME / 'db.sqlite3'}")
}

# OAuth2 and JWT as the LMS issues them (oauth_dispatch), so clients talk to us as to Open edX.
JWT_ISSUER = os.environ.get("EXPORTBULK_JWT_ISSUER", "http://localhost/oauth2")
JWT_AUDIENCE = "exportbulk-standalone"
# The keys live only inside JWT_AUTH, a name Django's error reporter masks (no module global).
JWT_AUTH = {
    "JWT_ISSUER": JWT_ISSUER,
    "JWT_AUDIENCE": JWT_AUDIENCE,
    # No symmetric key: HS256 tokens (which SECRET_KEY would sign) are never accepted.
    "JWT_ISSUERS": [{"ISSUER": JWT_ISSUER, "AUDIENCE": JWT_AUDIENCE, "SECRET_KEY": ""}],
    "JWT_ALGORITHM": "RS512",
    **dict(zip(("JWT_PRIVATE_SIGNING_JWK", "JWT_PUBLIC_SIGNING_JWK_SET"), jwt_keys(HOME), strict=True)),
    "JWT_DECODE_HANDLER": (
        "edx_rest_framework_extensions.auth.jwt.decoder.get_asymmetric_only_jwt_decode_handler"
    ),
    "JWT_AUTH_HEADER_PREFIX": "JWT",
    "JWT_VERIFY_EXPIRATION": True,
    "JWT_EXPIRATION_DELTA_SECONDS": int(os.environ.get("EXPORTBULK_TOKEN_EXPIRE_SECONDS", "3600")),
}
# As edx-platform does (cms/envs/common.py): a JWT's claims are possibly stale, so they never
# rewrite the user (edx-drf-extensions' default mapping copies "administrator" into is_staff).
EDX_DRF_EXTENSIONS: dict[str, Any] = {
    "JWT_PAYLOAD_USER_ATTRIBUTE_MAPPING": {},
    "JWT_PAYLOAD_MERGEABLE_USER_ATTRIBUTES": [],
}
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "plugin_app.standalone.oauth.StandaloneOAuth2Validator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": JWT_AUTH["JWT_EXPIRATION_DELTA_SECONDS"],
    "PKCE_REQUIRED": False,
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "plugin_app.authentication.ExistingUserJwtAuthentication",
        "oauth2_provider.contrib.rest_framework.OAuth2Authentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tutor-exportbulk",
    "DESCRIPTION": "Bulk course export to S3 and bulk content upload for Open edX (Studio's API).",
    "VERSION": "v0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema documents the app's API only, not the standalone project's own helpers.
    "PREPROCESSING_HOOKS": ["plugin_app.standalone.urls.only_the_apps_endpoints"],
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: a real broker when one is given, else tasks run in the web process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connections around every task unless told to reuse
# them: a new connection per item is most of a small item's time. Tasks drop connections past
# CONN_MAX_AGE themselves (``tasks.BulkTask.before_start``).
CELERY_DB_REUSE_MAX = 100
# A task whose worker died is delivered again once unacknowledged for this long (Redis transport);
# kombu looks for such tasks every interval x throttle seconds (100 s by default: here 10 s).
_VISIBILITY_TIMEOUT = int(os.environ.get("EXPORTBULK_VISIBILITY_TIMEOUT", "3600"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT,
    "unacked_restore_interval": min(10, _VISIBILITY_TIMEOUT),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("EXPORTBULK_CELERY_QUEUE", "exportbulk")

# The app's own settings: the standalone project's defaults, then every EXPORTBULK_* setting of
# plugin_app/settings/common.py that the environment sets, read with its type.
EXPORTBULK_HOME = str(HOME)
globals().update(
    settings_from_environment(
        {
            **common.DEFAULTS,
            "EXPORTBULK_AUTHENTICATION_CLASSES": REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
            "EXPORTBULK_COURSE_BACKEND": "olx_directory",
            "EXPORTBULK_OLX_ROOT": str(HOME / "courses"),
            "EXPORTBULK_LOCAL_ROOT": str(HOME / "storage"),
            # boto3's own variables, as AWS tools read them.
            "EXPORTBULK_AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
            "EXPORTBULK_AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            "EXPORTBULK_S3_REGION": os.environ.get("AWS_DEFAULT_REGION", ""),
            "EXPORTBULK_CELERY_QUEUE": CELERY_TASK_DEFAULT_QUEUE,
        },
        os.environ,
    )
)

# Failed sign-ins allowed per source address (standalone.throttle), whatever the client or user,
# counted in the cache shared by every server process: Redis when there is one, else files.
EXPORTBULK_AUTH_FAILURE_RATE = os.environ.get("EXPORTBULK_AUTH_FAILURE_RATE", "10/m")
_CACHE_URL = os.environ.get("EXPORTBULK_CACHE_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""
)
CACHES = {
    "default": (
        {
            # A Redis outage (the broker's, by default) must not fail a sign-in: see standalone.cache.
            "BACKEND": "plugin_app.standalone.cache.OutageTolerantRedisCache",
            "LOCATION": _CACHE_URL,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
        if _CACHE_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(HOME / "cache"),
        }
    )
}

# While the cache is unreachable, sign-ins are not throttled rather than all refused.
RATELIMIT_FAIL_OPEN = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("EXPORTBULK_LOG_LEVEL", "INFO")},
}
