"""Settings for the test suite: the project's settings, with fast hashers and test values.

The database is replaced at run time by the throwaway PostgreSQL cluster that
``tests/conftest.py`` starts (``TEST_DATABASE=sqlite`` keeps SQLite instead).
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("OIDC_OP_ISSUER", "http://op.test")

from project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
OIDC_OP_ISSUER = "http://op.test"  # never fetched: discovery is off
OIDC_OP_AUTHORIZATION_ENDPOINT = "http://127.0.0.1:9/auth"
OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token"
OIDC_OP_USER_ENDPOINT = "http://127.0.0.1:9/me"
OIDC_OP_JWKS_ENDPOINT = "http://127.0.0.1:9/jwks"
OIDC_OP_LOGOUT_ENDPOINT = "http://127.0.0.1:9/session/end"
OIDC_OP_DISCOVERY = False
OIDC_RP_CLIENT_ID = "site-client"
OIDC_RP_CLIENT_SECRET = "site-secret"
OIDC_GROUPS_PREFIX = "app-"
OIDC_STAFF_GROUPS = ["app-staff"]
OIDC_SUPERUSER_GROUPS = ["app-admins"]
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT = None
