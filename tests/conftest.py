"""Shared fixtures: PostgreSQL for the whole suite, the scripted provider, keys and tokens."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache

from tests.support.fakeop import CLIENT_ID, CLIENT_SECRET, FakeOP, serve
from tests.support.postgres import start_postgres

pytest_plugins = ["tests.support.browser", "tests.support.providers", "tests.support.fapiop"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request: pytest.FixtureRequest) -> None:
    """Run the suite on a throwaway PostgreSQL cluster (one per xdist worker).

    ``TEST_DATABASE=sqlite`` keeps the project's default SQLite instead.
    """
    if os.environ.get("TEST_DATABASE") == "sqlite":
        request.getfixturevalue("django_db_modify_db_settings_parallel_suffix")
        return
    from django.conf import settings

    cluster = start_postgres()
    request.addfinalizer(cluster.stop)
    settings.DATABASES["default"].update(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": "127.0.0.1",
            "PORT": str(cluster.port),
            "OPTIONS": {},  # the SQLite options of project.settings do not apply
        }
    )
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = "test_site"
    # Connections made before this point (during Django's setup) still point at SQLite.
    from django.db import connections

    connections.close_all()
    connections.__dict__.pop("settings", None)
    for alias in list(connections.settings):
        if hasattr(connections._connections, alias):
            delattr(connections._connections, alias)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """The JWKS, discovery and lock entries live in the cache: no test inherits another's.

    So do the admin's providers that this process remembers (rolled-back rows send no signal).
    """
    from accounts.oidc import breaker
    from accounts.providers.registry import registry_forget
    from accounts.security import shared_cache
    from accounts.sessions import refresh

    cache.clear()
    shared_cache.local.clear()
    breaker.reset()
    refresh._slow_until.clear()
    registry_forget()


@pytest.fixture(scope="session")
def _op_server() -> FakeOP:
    op = FakeOP()
    server, _ = serve(op)
    yield op
    server.shutdown()


@pytest.fixture
def op(_op_server: FakeOP, settings) -> FakeOP:
    """The scripted provider, reset, with the site's settings pointing at it."""
    _op_server.reset()
    base = _op_server.base_url
    settings.OIDC_OP_ISSUER = base
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{base}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{base}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{base}/me"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{base}/jwks"
    settings.OIDC_OP_LOGOUT_ENDPOINT = f"{base}/session/end"
    settings.OIDC_OP_INTROSPECTION_ENDPOINT = f"{base}/introspect"
    settings.OIDC_OP_INTROSPECT = True  # the site under test checks opaque tokens there
    settings.OIDC_OP_DISCOVERY = False
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    return _op_server
