"""RelayAPI settings: everything comes from the environment, with safe defaults for a laptop.

See the README's "Configuration" section for every variable.
"""

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from relayapi import deployment
from relayapi.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name):
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
# Encrypts secrets at rest (relays/crypto.py): Fernet keys, newest first; the first encrypts,
# each of them decrypts. ACCESS_KEY_ENCRYPTION_KEY, the access-key key of releases before
# migration 0009, still decrypts as the oldest one.
RELAYAPI_ENCRYPTION_KEYS = env_list("RELAYAPI_ENCRYPTION_KEY")
ACCESS_KEY_ENCRYPTION_KEY = os.environ.get("ACCESS_KEY_ENCRYPTION_KEY", "")
_refusals = deployment.refusals(
    debug=DEBUG,
    secret_key=SECRET_KEY,
    allowed_hosts=ALLOWED_HOSTS,
    encryption_keys=RELAYAPI_ENCRYPTION_KEYS,
    old_access_key_key=ACCESS_KEY_ENCRYPTION_KEY,
)
if _refusals:
    raise ImproperlyConfigured("\n".join(_refusals))
if DEBUG:
    # A laptop default only: DEBUG is off unless asked for, and then this key signs nothing
    # that matters outside the machine.
    SECRET_KEY = SECRET_KEY or deployment.DEVELOPMENT_SECRET_KEY
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]"]
    RELAYAPI_ENCRYPTION_KEYS = RELAYAPI_ENCRYPTION_KEYS or [
        deployment.derived_fernet_key(deployment.DEVELOPMENT_KEY_LABEL, SECRET_KEY)
    ]
if ACCESS_KEY_ENCRYPTION_KEY and ACCESS_KEY_ENCRYPTION_KEY not in RELAYAPI_ENCRYPTION_KEYS:
    RELAYAPI_ENCRYPTION_KEYS = [*RELAYAPI_ENCRYPTION_KEYS, ACCESS_KEY_ENCRYPTION_KEY]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # The GreenArrow API's OpenAPI schema and docs page; the sidecar ships the docs page's
    # JavaScript and CSS as static files (served by WhiteNoise, no CDN).
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "relays",
]

MIDDLEWARE = [
    # First, so that every request, whatever answers it, gets an id and one log line.
    "relayapi.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves STATIC_ROOT (the admin's CSS and JS) under gunicorn, before sessions are touched.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # The two APIs are exempt from CSRF tokens; this refuses writes a browser made cross-site.
    "relayapi.cross_site.CrossSiteWriteMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees a view's database errors first: a statement timeout in the admin is a 503
    # page (the APIs answer theirs in their own shapes before it).
    "relayapi.unavailable.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "relayapi.urls"
WSGI_APPLICATION = "relayapi.wsgi.application"
# The vendor's paths have no trailing slash; redirecting a POST to add one would lose its body.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own pages (the home page at GET /); the apps' templates come after.
        "DIRS": [BASE_DIR / "relayapi" / "templates"],
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

VAR_DIR = Path(os.environ.get("RELAYAPI_VAR_DIR", BASE_DIR / "var"))


def database_from_env():
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        # Owner-only: the database holds password hashes and encrypted secrets (the file itself
        # is made 0600 when a connection opens it, relays/apps.py).
        VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        url = f"sqlite:///{VAR_DIR / 'relayapi.sqlite3'}"
    pool = env_bool("DATABASE_POOL")
    config = dj_database_url.parse(
        url,
        # A persistent connection per worker, checked before reuse: opening one costs more than
        # most requests (see BENCHMARKS.md). A pool replaces it when DATABASE_POOL is on.
        conn_max_age=0 if pool else int(os.environ.get("CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
    if config["ENGINE"] == "django.db.backends.postgresql":
        options = config.setdefault("OPTIONS", {})
        if pool:
            # A request waits at most this long for a pooled connection, then answers 503 (the
            # default, 30 s, is gunicorn's worker timeout: an outage held requests, no 503).
            options["pool"] = {"min_size": 1, "max_size": 4, "timeout": 5}
        # A database host that is gone (not just refusing) fails a connect within seconds, and
        # unacknowledged traffic (a network partition) within 10 s, not after the TCP defaults.
        options.update(connect_timeout=5, tcp_user_timeout=10_000)
        # No statement runs (or waits for a lock) longer than this, so no request holds locks
        # that stall other writers for long; a statement cut off answers 503, try again.
        timeout = int(os.environ.get("DATABASE_STATEMENT_TIMEOUT_MS", "5000"))
        options["options"] = (
            f"-c statement_timeout={timeout} -c idle_in_transaction_session_timeout={timeout * 2}"
        )
        # A server that hangs without closing connections is seen by neither timeout above nor
        # TCP: each answer is awaited at most this long by the client (relayapi/postgresql/),
        # longer than any statement may run, then the request answers 503.
        options["answer_deadline"] = timeout / 1000 + 5
        config["ENGINE"] = "relayapi.postgresql"
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes SQLite's write lock when a transaction starts, so two concurrent writes
        # queue up instead of one failing half-way with "database is locked".
        config.setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
    return config


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # collectstatic also writes gzip copies that WhiteNoise serves to clients that accept them.
    # Not the manifest variant: it refuses to render a page before collectstatic has run.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# A request body over 1 MiB is refused with 413 before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# Behind a TLS-terminating reverse proxy: trust its X-Forwarded-Host / -Proto headers.
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST")
if env_bool("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS only, for a deployment behind a TLS proxy (README "Deployment"): HSTS, plain HTTP
# redirected, cookies sent over HTTPS only. Off unless set, so that `make serve` answers plain
# HTTP on loopback. The probes are exempt from the redirect: they reach the app server directly.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS") or "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Reuse the proxy's X-Request-Id (when it has the shape of an id) instead of making a new one.
# Only from RELAYAPI_TRUSTED_PROXIES, and only behind a proxy that sets or replaces the header.
RELAYAPI_TRUST_REQUEST_ID = env_bool("RELAYAPI_TRUST_REQUEST_ID")
# The reverse proxies whose X-Forwarded-For tells the client's address (relayapi/clients.py):
# addresses, networks, or `unix` for gunicorn's Unix socket (the production path: only nginx
# may open it). Empty: the connection's own address is the client's.
RELAYAPI_TRUSTED_PROXIES = env_list("RELAYAPI_TRUSTED_PROXIES")
for _proxy in RELAYAPI_TRUSTED_PROXIES:
    try:
        if _proxy != "unix":
            ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"RELAYAPI_TRUSTED_PROXIES: {_proxy!r} is not an IP address, a network or `unix`"
        ) from None

# Brute-force protection (relays/lockout.py): this many refused logins within the window lock
# one (username, address) pair, this many an address whatever the names, and this many one
# username whatever the addresses (IPv6 addresses count per /64), until enough of them leave
# the window.
RELAYAPI_LOGIN_FAILURE_LIMIT = int(os.environ.get("RELAYAPI_LOGIN_FAILURE_LIMIT", "10"))
RELAYAPI_LOGIN_FAILURE_ADDRESS_LIMIT = int(
    os.environ.get("RELAYAPI_LOGIN_FAILURE_ADDRESS_LIMIT", "100")
)
RELAYAPI_LOGIN_FAILURE_ACCOUNT_LIMIT = int(
    os.environ.get("RELAYAPI_LOGIN_FAILURE_ACCOUNT_LIMIT", "30")
)
RELAYAPI_LOGIN_FAILURE_WINDOW_SECONDS = int(
    os.environ.get("RELAYAPI_LOGIN_FAILURE_WINDOW_SECONDS", "60")
)
# At most this many password hashes at once on the machine (relays/password_slots.py), counted
# by lock files in this directory; as many more logins may wait this long for one, the rest get
# 429 without hashing. No directory: no bound (tests, runserver); deploy/gunicorn.conf.py gives
# every gunicorn one.
RELAYAPI_PASSWORD_HASH_SLOTS = int(
    os.environ.get("RELAYAPI_PASSWORD_HASH_SLOTS") or max(1, (os.cpu_count() or 2) // 2)
)
RELAYAPI_PASSWORD_HASH_WAIT_SECONDS = float(
    os.environ.get("RELAYAPI_PASSWORD_HASH_WAIT_SECONDS") or "2"
)
RELAYAPI_PASSWORD_HASH_SLOT_DIR = os.environ.get("RELAYAPI_PASSWORD_HASH_SLOT_DIR", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["relays.greenarrow.authentication.StaffBasicAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["relays.greenarrow.permissions.ModelPermissions"],
    "DEFAULT_RENDERER_CLASSES": ["relays.greenarrow.envelope.EnvelopeRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "EXCEPTION_HANDLER": "relays.greenarrow.envelope.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "relays.greenarrow.schema.GreenArrowAutoSchema",
}

# The OpenAPI 3 schema of the GreenArrow API (/ga/api/v3/schema, docs page /ga/api/v3/docs),
# generated from the views and serializers; relays/greenarrow/schema.py adds the envelope, the
# errors, the field rules and the links.
SPECTACULAR_SETTINGS = {
    "TITLE": "RelayAPI: GreenArrow Engine API v3",
    "DESCRIPTION": (
        "The GreenArrow Engine REST API v3 as RelayAPI serves it: relay servers, IP addresses, "
        "routing rules and VirtualMTAs. Every answer is the vendor's envelope "
        "`{success, data, error_code, error_messages}`; HTTP Basic with an active staff user."
    ),
    "VERSION": "3",
    "OAS_VERSION": "3.0.3",
    # Request and response shapes differ (read-only attributes, required ones, PUT is partial).
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/ga/api/v3/eng",
    # The docs page shows the resources in this order.
    "TAGS": [
        {"name": "relay_servers", "description": "Relay servers: SMTP destinations."},
        {"name": "ip_addresses", "description": "IP addresses: local addresses and HELO names."},
        {"name": "routing_rules", "description": "Routing rules: mail spread over VirtualMTAs."},
        {"name": "virtual_mtas", "description": "Every VirtualMTA, its referrers, the default."},
    ],
    # Reading the schema and the docs page needs no login (and a wrong one is not refused).
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": ["relays.greenarrow.schema.postprocess"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# How long a successful HTTP Basic password check is remembered in each process (0: never).
# See relays/greenarrow/authentication.py for why this is safe.
RELAYAPI_AUTH_CACHE_SECONDS = int(os.environ.get("RELAYAPI_AUTH_CACHE_SECONDS", "300"))

# SigV4 requests older or newer than this are refused, as AWS does; inside it the very same
# signed request is accepted again (an SDK retry resends it; ClientToken makes that safe).
SIGV4_MAX_SKEW_SECONDS = int(os.environ.get("SIGV4_MAX_SKEW_SECONDS", str(15 * 60)))

# Mail Manager facade: the region and account in RelayArns, and the source IP / HELO name that
# relays created through it use (Mail Manager has no such attributes; GreenArrow requires them).
MAILMANAGER_REGION = os.environ.get("MAILMANAGER_REGION", "us-east-1")
MAILMANAGER_ACCOUNT = os.environ.get("MAILMANAGER_ACCOUNT", "000000000000")
MAILMANAGER_SOURCE_IP = os.environ.get("MAILMANAGER_SOURCE_IP", "127.0.0.1")
MAILMANAGER_HELO_HOSTNAME = os.environ.get("MAILMANAGER_HELO_HOSTNAME", "localhost")

# At most this many relay servers (unset: unlimited; AWS's own Mail Manager quota is 40).
RELAYAPI_MAX_RELAYS = (
    int(os.environ["RELAYAPI_MAX_RELAYS"]) if os.environ.get("RELAYAPI_MAX_RELAYS") else None
)
# The SMTP probe (relays/probe.py) refuses destinations that resolve to loopback, link-local,
# private, multicast, unspecified or reserved addresses: it must not reach this host or the
# networks behind it. On for relays that really are on an internal network (and the tests'
# sinks on 127.0.0.1).
RELAYAPI_PROBE_ALLOW_PRIVATE = env_bool("RELAYAPI_PROBE_ALLOW_PRIVATE")
# At most this many tags on one relay (the AWS norm).
MAILMANAGER_MAX_TAGS = 50

# Lists of the GreenArrow API: fixed page size, as every vendor example shows.
GREENARROW_PER_PAGE = 100

# One JSON line per event on standard error, Django's own records included (relayapi/logging.py).
LOGGING_CONFIG = "relayapi.logging.configure"
LOGGING = logging_config(level=os.environ.get("LOG_LEVEL", "INFO"))
