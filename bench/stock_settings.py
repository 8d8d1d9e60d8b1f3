"""Stock mozilla-django-oidc 5.0.2 as a project would set it up, for bench_api.py.

The project's settings (same database, cache, Django middleware stack, apps, the same
Content-Security-Policy), with the library's own backend and ``SessionRefresh`` middleware
in place of this project's, django-csp's own ``CSPMiddleware`` in place of the site's (which
adds the providers' origins to ``form-action``), no outage middleware (stock has none), and
``bench.stock_api_urls`` serving an ``/api/me/`` with the same response fields.
"""

from project.settings import *  # noqa: F403

AUTHENTICATION_BACKENDS = ["mozilla_django_oidc.auth.OIDCAuthenticationBackend"]
STOCK_MIDDLEWARE = {
    "accounts.sessions.middleware.OIDCSessionMiddleware": (
        "mozilla_django_oidc.middleware.SessionRefresh"
    ),
    "accounts.views.csp.SiteCSPMiddleware": "csp.middleware.CSPMiddleware",
    "accounts.views.availability.OutageMiddleware": None,
}
MIDDLEWARE = [
    STOCK_MIDDLEWARE.get(name, name)
    for name in MIDDLEWARE  # noqa: F405
    if STOCK_MIDDLEWARE.get(name, name)
]
ROOT_URLCONF = "bench.stock_api_urls"
OIDC_USE_PKCE = True
OIDC_RP_SIGN_ALGO = "RS256"  # the library takes one algorithm, not a list
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
