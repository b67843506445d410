"""Squirrel settings, read from environment variables (every one is listed in README.md)."""

import sys
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF

from squirrel_site.env import SettingError, env_bool, env_float, env_int, env_list, env_named_urls, env_str
from squirrel_site.epics_env import apply_loopback_defaults

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("SQUIRREL_DEBUG", False)
SECRET_KEY = env_str(
    "SQUIRREL_SECRET_KEY",
    "insecure-dev-key-do-not-use-in-production" if DEBUG else None,
    hint="50 or more random characters (python3 -c 'import secrets; print(secrets.token_urlsafe(50))'), "
    "or SQUIRREL_DEBUG=1 for development (the demo's settings: . .local/demo.env).",
)
ALLOWED_HOSTS = env_list("SQUIRREL_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("SQUIRREL_CSRF_TRUSTED_ORIGINS", [])

# Channel Access stays on loopback unless the operator sets the EPICS_* variables; they must be
# in the environment before libca loads, which happens after the settings are read.
apply_loopback_defaults()

# daphne's app only makes `manage.py runserver` serve ASGI (WebSockets included). Loading it
# installs Twisted's reactor: 0.34 s of every other process's start-up (the monitor must have
# every value in Redis within 3 s of starting). Web processes run the daphne server itself.
RUNSERVER = sys.argv[1:2] == ["runserver"]

INSTALLED_APPS = [
    *(["daphne"] if RUNSERVER else []),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "channels",
    "django_celery_beat",
    "axes",
    "tags",
    "pvs",
    "snapshots",
    "jobs",
    "monitor",
    "squirrel_site",
]

MIDDLEWARE = [
    # First, so that it sees (and gives the API's error shape to) every other middleware's answer.
    "squirrel_site.errors.ApiErrorMiddleware",
    "squirrel_site.request_limits.RequestBodySizeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Beside SecurityMiddleware, the other response-header middleware; it sets the CSP header on
    # every answer, static files included (WhiteNoise answers those itself below).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After the middlewares that add security headers (its 400 carries them), before any view: a
    # %00 in a query would reach PostgreSQL from an admin list filter.
    "squirrel_site.untrusted.RefuseNulQueryMiddleware",
    # Replaces a locked-out login's answer with the lockout page. It only looks at the view's
    # answer, so it sits after the middleware whose request the page renders with (sessions,
    # user, messages), and before the last, which must see a view's exception first.
    "axes.middleware.AxesMiddleware",
    # Last, so its process_exception sees a view's exception first: PostgreSQL or the broker
    # unreachable is a 503 with Retry-After, not a 500.
    "squirrel_site.errors.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "squirrel_site.urls"

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

ASGI_APPLICATION = "squirrel_site.asgi.application"

# Web processes (docs/operations.md, "Requests and database connections"): at most this many HTTP
# requests run at once (squirrel_site.admission), this many more wait at most this long, the rest
# are answered 503 at once.
WEB_CONCURRENCY = env_int("SQUIRREL_WEB_CONCURRENCY", 8)
WEB_QUEUE = env_int("SQUIRREL_WEB_QUEUE", 64)
WEB_QUEUE_TIMEOUT = env_float("SQUIRREL_WEB_QUEUE_TIMEOUT", 10.0)
# A pool of database connections per process, on in web processes (asgi.py sets the default): one
# connection per running request plus one for the WebSocket consumers, whose database work shares
# the process's one thread for code outside a request. Never in workers: the job runner and a
# restore hold session-level advisory locks, which a pool would hand to the next borrower.
DB_POOL = env_bool("SQUIRREL_DB_POOL", False)
DB_POOL_SIZE = WEB_CONCURRENCY + 1
_DB_OPTIONS = {
    # An unreachable database host fails a request (and the health probe) in seconds instead
    # of waiting for the kernel's TCP timeout.
    "connect_timeout": env_int("SQUIRREL_DB_CONNECT_TIMEOUT", 5),
}
if DB_POOL:
    # Waiting longer than `timeout` for a connection raises PoolTimeout, an OperationalError: 503.
    _DB_OPTIONS["pool"] = {
        "min_size": min(2, DB_POOL_SIZE),
        "max_size": DB_POOL_SIZE,
        "timeout": env_float("SQUIRREL_DB_POOL_TIMEOUT", 5.0),
    }
    if env_int("SQUIRREL_DB_CONN_MAX_AGE", 0) != 0:
        raise SettingError(
            "SQUIRREL_DB_CONN_MAX_AGE must be 0 with the pool (SQUIRREL_DB_POOL=1): unset it, or set "
            "SQUIRREL_DB_POOL=0."
        )

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env_str("SQUIRREL_DB_NAME", "squirrel"),
        "USER": env_str("SQUIRREL_DB_USER", "postgres"),
        "PASSWORD": env_str("SQUIRREL_DB_PASSWORD", ""),
        "HOST": env_str("SQUIRREL_DB_HOST", "127.0.0.1"),
        "PORT": env_int("SQUIRREL_DB_PORT", 5432),
        "CONN_MAX_AGE": env_int("SQUIRREL_DB_CONN_MAX_AGE", 0),
        # A pooled connection that died (PostgreSQL restarted) is replaced before a request gets it.
        "CONN_HEALTH_CHECKS": DB_POOL,
        "OPTIONS": _DB_OPTIONS,
    }
}

REDIS_URL = env_str("SQUIRREL_REDIS_URL", "redis://127.0.0.1:6379/0")

# The health report calls a monitor shard, and an IOC, degraded when fewer than this fraction of
# its addresses are connected (docs/operations.md).
HEALTH_MIN_CONNECTED = env_float("SQUIRREL_HEALTH_MIN_CONNECTED", 0.9)
if not 0.0 <= HEALTH_MIN_CONNECTED <= 1.0:
    raise SettingError(
        f"SQUIRREL_HEALTH_MIN_CONNECTED must be a fraction from 0 to 1, not {HEALTH_MIN_CONNECTED:g}: "
        "set it to e.g. 0.9 (the default), or unset it."
    )

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "squirrel:channels:"},
    }
}

CELERY_BROKER_URL = env_str("SQUIRREL_CELERY_BROKER_URL", REDIS_URL)
# kombu's Redis transport with a fix that keeps a worker alive when Redis goes away while it
# runs a task (squirrel_site/broker.py explains).
CELERY_BROKER_TRANSPORT = "squirrel_site.broker:Transport"
# Reconnect to the broker for as long as it takes, at start-up too (Celery's default gives up
# after 100 attempts and the worker exits).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A task running when the broker connection drops finishes: its job row in PostgreSQL says what
# happened, and the job runner ignores a second delivery of a finished job's message.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Redis holds only the messages; PostgreSQL holds the jobs (the outbox): each worker's relay
# (jobs.outbox) sends what was not sent, and again what was lost or orphaned.
# A restore not started this many seconds after its request is never started (status expired).
RESTORE_START_DEADLINE = env_float("SQUIRREL_RESTORE_START_DEADLINE", 60.0)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task whose worker died is delivered again after the visibility timeout, which must exceed
# the longest job (a 50K-PV restore takes seconds); unacknowledged messages are swept every 5 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("SQUIRREL_CELERY_VISIBILITY_TIMEOUT", 600),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("SQUIRREL_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# Dates with the day, 24-hour, in TIME_ZONE, on the pages and in the admin (squirrel_site/formats/).
FORMAT_MODULE_PATH = ["squirrel_site.formats"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("SQUIRREL_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Request bodies, per route (squirrel_site/request_limits.py): the file imports take uploads up to
# SQUIRREL_MAX_UPLOAD_BYTES (a registry of 50K PVs is about 4 MB), the rest of the API JSON up to
# SQUIRREL_API_MAX_BODY_BYTES, and every other route (login, forms, the admin) SQUIRREL_MAX_FORM_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("SQUIRREL_MAX_UPLOAD_BYTES", 64 * 1024 * 1024)
MAX_FORM_BYTES = env_int("SQUIRREL_MAX_FORM_BYTES", 2_621_440)
# An uploaded file above this goes to a temporary file on disk, not memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# The JSON API's bodies (docs/api.md, "Limits"): a bulk request of 50,000 PVs is about 10 MB.
API_MAX_BODY_BYTES = env_int("SQUIRREL_API_MAX_BODY_BYTES", 16 * 1024 * 1024)
# At most this many items in one list of a request: a bulk PV request, a selection's addresses.
API_MAX_ITEMS = env_int("SQUIRREL_API_MAX_ITEMS", 50_000)
# The admin's "select all" action posts one id per row on a page; a page is at most a few hundred.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

REST_FRAMEWORK = {
    # Tokens for scripts (knox: stored as SHA-512 digests), sessions for browsers. Tokens come
    # first so an anonymous request is answered 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "squirrel_site.schema.SquirrelAutoSchema",
    # The API speaks JSON only; `?format=` belongs to the endpoints (snapshot export: json, csv).
    # Request bodies are JSON too (imports take multipart): a cross-site form cannot send JSON, and
    # one format is one thing to document, size-limit and test. The interactive docs
    # (/api/v1/docs/) replace DRF's browsable API.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["squirrel_site.limits.StrictJSONParser"],
    "EXCEPTION_HANDLER": "squirrel_site.errors.api_exception_handler",
}

REST_KNOX = {
    # Script tokens do not expire unless created with an expiry; they are revoked by deletion.
    "TOKEN_TTL": None,
    # A recognisable prefix lets secret scanners and people spot a leaked token.
    "TOKEN_PREFIX": "sqt_",
    "AUTH_HEADER_PREFIX": "Token",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Squirrel API",
    "DESCRIPTION": "Save, compare and restore EPICS process variables.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Like the rest of the API, the schema and its docs page need a role (docs/api.md).
    "SERVE_PERMISSIONS": ["squirrel_site.permissions.HasRole"],
    # Separate request and response components: read-only fields are not asked for.
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for a choice set that several fields use (value_type and kind; the severities).
    "ENUM_NAME_OVERRIDES": {
        "ValueTypeEnum": "snapshots.capture.models.ValueType",
        "SeverityEnum": "snapshots.capture.models.Severity",
        "ComparisonStatusEnum": "snapshots.comparison.rules.ComparisonStatus",
        "ProtocolEnum": "pvs.protocols.CHOICES",  # an address's protocol: ca or pva
    },
    # The interactive docs load their assets from this server, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# An open WebSocket re-checks its user this often: logged out, deactivated, or without the role,
# the socket is closed (squirrel_site.ws_security.SessionWatch).
WEBSOCKET_RECHECK_SECONDS = env_float("SQUIRREL_WS_RECHECK_SECONDS", 5.0)
# Live cells are greyed with their age once the page has had no news that they are current for
# this long (docs/live_updates.md); health messages come every second.
LIVE_STALE_SECONDS = env_float("SQUIRREL_LIVE_STALE_SECONDS", 5.0)
if not 2.0 <= LIVE_STALE_SECONDS <= 3600.0:
    raise SettingError(
        f"SQUIRREL_LIVE_STALE_SECONDS must be from 2 to 3600 seconds, not {LIVE_STALE_SECONDS:g}: "
        "live values get news every second"
    )

# --- Deployment: HTTPS, cookies, Content-Security-Policy, login throttling -------------------
# docs/security.md ("Deployment") explains each; README.md lists the production variables, with
# which `manage.py check --deploy` is clean (squirrel_site/tests/test_deployment.py).

# Cookies travel over HTTPS only, unless in debug mode: the demo is plain http://127.0.0.1:8000.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SQUIRREL_SECURE_COOKIES", not DEBUG)
# Off by default: behind a TLS proxy that does not say so (SQUIRREL_BEHIND_TLS_PROXY) every request
# looks like plain HTTP, and redirecting it would loop.
SECURE_SSL_REDIRECT = env_bool("SQUIRREL_SSL_REDIRECT", False)
# Load balancers probe the health endpoint over plain HTTP on the instance itself.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
# HSTS makes browsers refuse plain HTTP to this host for that long: set it once HTTPS works.
SECURE_HSTS_SECONDS = env_int("SQUIRREL_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SQUIRREL_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SQUIRREL_HSTS_PRELOAD", False)
# A proxy that terminates TLS tells Django the request came over HTTPS (X-Forwarded-Proto) and
# from whom (it appends the client to X-Forwarded-For). Only trusted when the proxy always sets
# them: otherwise clients could claim HTTPS, or another address to dodge login throttling.
BEHIND_TLS_PROXY = env_bool("SQUIRREL_BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None

# Pages, the admin and the API docs load everything from this server, and run no inline script
# or style. `connect-src 'self'` covers the same origin's WebSockets (ws: and wss:).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Login throttling (django-axes): after this many failed logins for one user name from one
# address, that pair is locked out for the cool-off; a success resets the count. Counting the
# pair rather than the name alone means nobody can lock an operator out from elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("SQUIRREL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SQUIRREL_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "squirrel_site.login_throttle.lockout_response"
# Behind the proxy every request comes from the proxy: the client is in X-Forwarded-For.
AXES_CLIENT_IP_CALLABLE = "squirrel_site.login_throttle.client_ip_address"
# Failed logins are in axes' own log (admin: Axes → Access attempts); successes need no copy.
AXES_DISABLE_ACCESS_LOG = True
# No banner from every process at start-up; log lines name the lockout parameters only.
AXES_VERBOSE = False

# Archiver Appliances (pvs/archiver.py): (name, base URL) each, asked in this order, each for what the
# ones before it lack. SQUIRREL_ARCHIVER_URL: comma-separated `name=http://host:port` or bare URLs.
ARCHIVERS = env_named_urls("SQUIRREL_ARCHIVER_URL")
# Names per getDataAtTime request, and requests in flight at once per archiver.
ARCHIVER_BATCH = env_int("SQUIRREL_ARCHIVER_BATCH", 2000, minimum=1)
ARCHIVER_THREADS = env_int("SQUIRREL_ARCHIVER_THREADS", 8, minimum=1)

# Simulated IOC defaults used by run_sim_ioc and the demo.
SIM_IOC_PREFIX = env_str("SQUIRREL_SIM_PREFIX", "SIM:")
SIM_IOC_CHANGE_RATE_HZ = env_float("SQUIRREL_SIM_CHANGE_RATE_HZ", 1.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("SQUIRREL_LOG_LEVEL", "INFO")},
}
