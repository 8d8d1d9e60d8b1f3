"""Django settings, read from the environment (see README, "Configuration reference").

Every variable has a development-safe default except the secrets, which are required
when debug is off. With debug off the production security settings are on.
"""

from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else []
)
if not ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "accounts.apps.SSOAdminConfig",
    # Before django.contrib.sessions: its clearsessions also removes the OIDC state of the
    # sessions it clears (accounts/management/commands/clearsessions.py).
    "accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "mozilla_django_oidc",
    "rest_framework",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "accounts.views.csp.SiteCSPMiddleware",  # CSP on every page (django-csp 4)
    # Before all that reads the session: a request that met a database outage answers 503
    # in words, whatever raised (accounts/views/availability.py).
    "accounts.views.availability.OutageMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.sessions.middleware.OIDCSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

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
                "csp.context_processors.nonce",  # {{ CSP_NONCE }} on inline scripts and styles
                "accounts.views.context.sign_in_choice",
            ],
        },
    },
]

# --- Database and cache -------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=0))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent requests wait for each other instead of failing with "database is locked":
    # writers take the lock when their transaction begins (no read-then-write upgrade that
    # cannot wait), wait up to 20 s for it, and WAL lets readers go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("DJANGO_SQLITE_TIMEOUT", default=20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_cache_url = env.str("CACHE_URL", default="locmemcache://")
CACHES = {
    "default": environ.Env.cache_url_config(
        _cache_url,
        backend=(
            "django.core.cache.backends.redis.RedisCache"
            if _cache_url.startswith(("redis://", "rediss://"))
            else None
        ),
    )
}

SESSION_ENGINE = env.str("DJANGO_SESSION_ENGINE", default="django.contrib.sessions.backends.db")
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=60 * 60 * 12)

# --- Authentication ------------------------------------------------------------------
# The class lives in accounts.users.backend; this path is what every signed-in session stores
# (_auth_user_backend), so it stays: renaming it would sign everybody out.
AUTHENTICATION_BACKENDS = ["accounts.backends.OIDCBackend"]
if env.bool("OIDC_ADMIN_PASSWORD_LOGIN", default=False):
    # Break-glass access: local passwords work only when this is switched on.
    AUTHENTICATION_BACKENDS.append("django.contrib.auth.backends.ModelBackend")
LOGIN_URL = "oidc_authentication_init"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# OpenID Connect: the names of ../shared/INTERFACE.md, then this project's extensions.
OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_OP_LOGOUT_ENDPOINT = env.str("OIDC_OP_LOGOUT_ENDPOINT", default="")
OIDC_OP_INTROSPECTION_ENDPOINT = env.str("OIDC_OP_INTROSPECTION_ENDPOINT", default="")
OIDC_OP_INTROSPECT = env.bool("OIDC_OP_INTROSPECT", default=False)  # opaque tokens: opt in
OIDC_OP_OPAQUE_TOKEN_PREFIX = env.str("OIDC_OP_OPAQUE_TOKEN_PREFIX", default="")
OIDC_OP_DISCOVERY = env.bool("OIDC_OP_DISCOVERY", default=None)  # None: on without endpoints
OIDC_OP_LABEL = env.str("OIDC_OP_LABEL", default="")  # the default provider's button
OIDC_OP_EMAIL_DOMAINS = env.list("OIDC_OP_EMAIL_DOMAINS", default=[])
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
# FAPI 2.0 (OIDC_FAPI2): PAR, DPoP, private_key_jwt; ID tokens PS256, ES256 or EdDSA only
OIDC_FAPI2 = env.bool("OIDC_FAPI2", default=False)
OIDC_RP_SIGN_ALGO = env.list(
    "OIDC_RP_SIGN_ALGO", default=["PS256", "ES256", "EdDSA"] if OIDC_FAPI2 else ["RS256"]
)
OIDC_USE_PAR = env.str("OIDC_USE_PAR", default="auto")  # auto, 1 or 0
OIDC_OP_PAR_ENDPOINT = env.str("OIDC_OP_PAR_ENDPOINT", default="")
OIDC_DPOP = env.bool("OIDC_DPOP", default=False)
OIDC_DPOP_KEY_FILE = env.str("OIDC_DPOP_KEY_FILE", default="")
OIDC_API_DPOP_NONCE = env.bool("OIDC_API_DPOP_NONCE", default=False)
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=10.0)
OIDC_CLOCK_LEEWAY = env.int("OIDC_CLOCK_LEEWAY", default=30)
OIDC_FETCH_USERINFO = env.bool("OIDC_FETCH_USERINFO", default=True)
OIDC_CREATE_USER = env.bool("OIDC_CREATE_USER", default=True)
OIDC_LINK_BY_EMAIL = env.bool("OIDC_LINK_BY_EMAIL", default=False)
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_GROUPS_ALLOWLIST = env.list("OIDC_GROUPS_ALLOWLIST", default=[])
OIDC_GROUPS_PREFIX = env.str("OIDC_GROUPS_PREFIX", default="")
OIDC_STAFF_GROUPS = env.list("OIDC_STAFF_GROUPS", default=[])
OIDC_SUPERUSER_GROUPS = env.list("OIDC_SUPERUSER_GROUPS", default=[])
OIDC_ADMIN_PASSWORD_LOGIN = env.bool("OIDC_ADMIN_PASSWORD_LOGIN", default=False)
OIDC_REFRESH_LEEWAY = env.int("OIDC_REFRESH_LEEWAY", default=60)
OIDC_REFRESH_GRACE = env.int("OIDC_REFRESH_GRACE", default=300)
OIDC_SESSION_MAX_AGE = env.int("OIDC_SESSION_MAX_AGE", default=SESSION_COOKIE_AGE)
OIDC_VERIFY_SSL = env.bool("OIDC_VERIFY_SSL", default=True)
OIDC_TOKEN_USE_BASIC_AUTH = env.bool("OIDC_TOKEN_USE_BASIC_AUTH", default=True)
# "" keeps OIDC_TOKEN_USE_BASIC_AUTH's choice; or client_secret_basic/_post, private_key_jwt
OIDC_TOKEN_AUTH_METHOD = env.str("OIDC_TOKEN_AUTH_METHOD", default="")
OIDC_RP_SIGNING_KEY_FILE = env.str("OIDC_RP_SIGNING_KEY_FILE", default="")
OIDC_RP_SIGNING_KEY_DELAY = env.int("OIDC_RP_SIGNING_KEY_DELAY", default=300)
OIDC_ADMIN_MAX_AUTH_AGE = env.int("OIDC_ADMIN_MAX_AUTH_AGE", default=3600)
OIDC_ADMIN_ACR_VALUES = env.list("OIDC_ADMIN_ACR_VALUES", default=[])
OIDC_STATE_TTL = env.int("OIDC_STATE_TTL", default=600)
OIDC_REDIRECT_ALLOWED_HOSTS = env.list("OIDC_REDIRECT_ALLOWED_HOSTS", default=[])
OIDC_TRUSTED_AUDIENCES = env.list("OIDC_TRUSTED_AUDIENCES", default=[])
OIDC_JWKS_CACHE_TTL = env.int("OIDC_JWKS_CACHE_TTL", default=3600)
OIDC_JWKS_REFETCH_INTERVAL = env.int("OIDC_JWKS_REFETCH_INTERVAL", default=30)
OIDC_DISCOVERY_CACHE_TTL = env.int("OIDC_DISCOVERY_CACHE_TTL", default=3600)
OIDC_BEARER_CACHE_TTL = env.int("OIDC_BEARER_CACHE_TTL", default=60)
OIDC_INTROSPECTION_BUDGET = env.int("OIDC_INTROSPECTION_BUDGET", default=30)
OIDC_INTROSPECTION_NEGATIVE_TTL = env.int("OIDC_INTROSPECTION_NEGATIVE_TTL", default=30)
OIDC_API_AUDIENCE = env.str("OIDC_API_AUDIENCE", default="")  # empty: the client id
OIDC_ACCESS_TOKEN_TYPES = env.list(
    "OIDC_ACCESS_TOKEN_TYPES", default=["at+jwt", "application/at+jwt"]
)
OIDC_REFRESH_LOCK_TIMEOUT = env.int("OIDC_REFRESH_LOCK_TIMEOUT", default=15)
# A refresh grant waits this long for the provider (a grant that timed out may be spent) ...
OIDC_REFRESH_TIMEOUT = env.float("OIDC_REFRESH_TIMEOUT", default=30.0)
# ... while the request that started it waits at most this long, then goes on.
OIDC_REFRESH_WAIT = env.float("OIDC_REFRESH_WAIT", default=2.0)
# GET /metrics (Prometheus): for these addresses (networks allowed), or with this bearer token
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
OIDC_BREAKER_THRESHOLD = env.int("OIDC_BREAKER_THRESHOLD", default=3)
OIDC_BREAKER_INTERVAL = env.float("OIDC_BREAKER_INTERVAL", default=5.0)
OIDC_BREAKER_MAX_INTERVAL = env.float("OIDC_BREAKER_MAX_INTERVAL", default=60.0)
# More providers (JSON: slug -> settings; see the README) besides those added in the admin
try:
    OIDC_PROVIDERS = env.json("OIDC_PROVIDERS", default={})
except ValueError as exc:
    raise ImproperlyConfigured(f"OIDC_PROVIDERS is not valid JSON: {exc}") from exc
OIDC_PROVIDERS_RELOAD_INTERVAL = env.int("OIDC_PROVIDERS_RELOAD_INTERVAL", default=5)

# Directory sync (sync_users)
OIDC_SYNC_MAX_DEACTIVATE_RATIO = env.float("OIDC_SYNC_MAX_DEACTIVATE_RATIO", default=0.10)
OIDC_SYNC_BATCH_SIZE = env.int("OIDC_SYNC_BATCH_SIZE", default=1000)
OIDC_SYNC_SCOPE = env.str("OIDC_SYNC_SCOPE", default="")
OIDC_SCIM_URL = env.str("OIDC_SCIM_URL", default="")
OIDC_SCIM_TOKEN = env.str("OIDC_SCIM_TOKEN", default="")
OIDC_SCIM_SUBJECT_ATTRIBUTE = env.str("OIDC_SCIM_SUBJECT_ATTRIBUTE", default="externalId")
OIDC_KEYCLOAK_URL = env.str("OIDC_KEYCLOAK_URL", default="")
OIDC_KEYCLOAK_REALM = env.str("OIDC_KEYCLOAK_REALM", default="")
# Shared Signals receiver (accounts/ssf/): the push Authorization value, the SETs' aud, max age
OIDC_SSF_PUSH_AUTHORIZATION = env.str("OIDC_SSF_PUSH_AUTHORIZATION", default="")
OIDC_SSF_AUDIENCE = env.str("OIDC_SSF_AUDIENCE", default="")
OIDC_SSF_MAX_AGE = env.int("OIDC_SSF_MAX_AGE", default=300)

# Django REST framework: the API's own views set their classes (accounts.drf); nothing here
# lets a DRF view through by default.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.drf.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.drf.ApiAccess"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Audit log (accounts/audit/log.py) and the client address of sessions and audit rows
OIDC_AUDIT_RETENTION_DAYS = env.int("OIDC_AUDIT_RETENTION_DAYS", default=180)
OIDC_AUDIT_LOG_JSON = env.bool("OIDC_AUDIT_LOG_JSON", default=False)
OIDC_CLIENT_IP_HEADER = env.str("OIDC_CLIENT_IP_HEADER", default="")

# --- Internationalisation, static files ----------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
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

# --- Production security (debug off) --------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Content-Security-Policy on every page (django-csp 4; the providers' origins are added to
# form-action by accounts.views.csp). DJANGO_CSP_REPORT_ONLY=1 only reports; DJANGO_CSP_REPORTS=1
# has browsers post violations to /csp-report/.
_CSP = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        **(
            {"report-uri": ["/csp-report/"]}
            if env.bool("DJANGO_CSP_REPORTS", default=False)
            else {}
        ),
    }
}
if env.bool("DJANGO_CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
    CONTENT_SECURITY_POLICY = None
else:
    CONTENT_SECURITY_POLICY = _CSP

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Logging: one line per event, never a token or secret -----------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "outage": {"()": "accounts.views.availability.DatabaseOutageLogFilter"},
        "quiet_oidc_queries": {"()": "project.logfilters.QuietOIDCQueries"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own "django" logger has a console handler of its own (in debug) and also
        # passes its records up to the root: one handler, the root's, prints each line once.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A database outage is logged once a minute by accounts.views.availability instead
        # of a traceback per request.
        "django.request": {"level": "ERROR", "filters": ["outage"]},
        # runserver's request lines (make run): no code, state or sid from /oidc/ query strings
        "django.server": {"handlers": [], "filters": ["quiet_oidc_queries"], "propagate": True},
    },
}
