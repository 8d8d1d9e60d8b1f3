"""Stock mozilla-django-oidc 5.0.2 as a project would set it up, for bench_api.py.

The project's settings (same database, cache, Django middleware stack, apps), with the
library's own backend and ``SessionRefresh`` middleware in place of this project's, and
``bench.stock_api_urls`` serving an ``/api/me/`` with the same response fields.
"""

from project.settings import *  # noqa: F403

AUTHENTICATION_BACKENDS = ["mozilla_django_oidc.auth.OIDCAuthenticationBackend"]
MIDDLEWARE = [
    "mozilla_django_oidc.middleware.SessionRefresh"
    if name == "accounts.sessions.middleware.OIDCSessionMiddleware"
    else name
    for name in MIDDLEWARE  # noqa: F405
]
ROOT_URLCONF = "bench.stock_api_urls"
OIDC_USE_PKCE = True
OIDC_RP_SIGN_ALGO = "RS256"  # the library takes one algorithm, not a list
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
