"""System checks of accounts/checks.py: exact messages for bad settings, none for good ones."""

from __future__ import annotations

import pytest
from django.core import checks

from accounts.checks import (
    check_algorithms,
    check_cache_and_sessions,
    check_client_auth,
    check_middleware,
    check_provider,
)
from accounts.conf import SUPPORTED_ALGORITHMS

OIDC_MIDDLEWARE = "accounts.sessions.middleware.OIDCSessionMiddleware"
OLD_MIDDLEWARE = "accounts.middleware.OIDCSessionMiddleware"  # settings written before
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
MESSAGE_MIDDLEWARE = "django.contrib.messages.middleware.MessageMiddleware"
GOOD_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    SESSION_MIDDLEWARE,
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    AUTH_MIDDLEWARE,
    MESSAGE_MIDDLEWARE,
    OIDC_MIDDLEWARE,
]
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://login.example.com/auth",
    "OIDC_OP_TOKEN_ENDPOINT": "https://login.example.com/token",
    "OIDC_OP_USER_ENDPOINT": "https://login.example.com/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://login.example.com/jwks",
}


@pytest.fixture
def good(settings, monkeypatch):
    """A production-like configuration that every check accepts."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    settings.DEBUG = False
    settings.OIDC_OP_ISSUER = "https://login.example.com/realms/main"
    settings.OIDC_OP_DISCOVERY = False
    for name, value in ENDPOINTS.items():
        setattr(settings, name, value)
    settings.OIDC_RP_CLIENT_ID = "site-client"
    settings.OIDC_RP_CLIENT_SECRET = "site-secret"
    settings.OIDC_RP_SIGN_ALGO = ["RS256"]
    settings.OIDC_FETCH_USERINFO = True
    settings.MIDDLEWARE = list(GOOD_MIDDLEWARE)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
        }
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    return settings


def all_checks() -> list[checks.CheckMessage]:
    return (
        check_provider()
        + check_algorithms()
        + check_middleware()
        + check_cache_and_sessions()
        + check_client_auth()
    )


def test_good_configuration_passes_every_accounts_check(good):
    assert all_checks() == []
    registered = checks.run_checks()
    assert [m for m in registered if (m.id or "").startswith("accounts.")] == []


@pytest.mark.parametrize(
    "issuer",
    [
        "http://127.0.0.1:8080/realms/main",
        "http://localhost:8080",
        "http://idp.localhost",
        "http://[::1]:9000",
    ],
)
def test_http_issuer_on_this_machine_passes(good, issuer):
    good.OIDC_OP_ISSUER = issuer
    assert check_provider() == []


def test_http_issuer_elsewhere_passes_in_debug(good):
    good.DEBUG = True
    good.OIDC_OP_ISSUER = "http://login.example.com"
    assert check_provider() == []


def test_discovery_on_needs_no_endpoints(good):
    good.OIDC_OP_DISCOVERY = True
    for name in ENDPOINTS:
        setattr(good, name, "")
    assert check_provider() == []


def test_discovery_on_by_default_when_no_endpoint_is_set(good):
    good.OIDC_OP_DISCOVERY = None
    for name in ENDPOINTS:
        setattr(good, name, "")
    assert check_provider() == []


# --- check_provider -------------------------------------------------------------------------
E001 = checks.Error(
    "OIDC_OP_ISSUER is not set.",
    hint="Set OIDC_OP_ISSUER to the provider's issuer URL, e.g. "
    "https://login.example.com/realms/main.",
    id="accounts.E001",
)
E002 = checks.Error(
    "OIDC_RP_CLIENT_ID is not set.",
    hint="Set OIDC_RP_CLIENT_ID to the client id registered at the provider.",
    id="accounts.E002",
)
E006 = checks.Error(
    "OIDC_OP_ISSUER uses http:// for a host that is not this machine.",
    hint="Use the provider's https:// issuer; tokens and codes must not cross a "
    "network in clear text.",
    id="accounts.E006",
)


def e003(*names: str) -> checks.Error:
    return checks.Error(
        "Discovery is off and these endpoints are not set: " + ", ".join(names) + ".",
        hint="Set them, or set OIDC_OP_DISCOVERY=1 to read them from the provider.",
        id="accounts.E003",
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"OIDC_OP_ISSUER": ""}, [E001]),
        ({"OIDC_RP_CLIENT_ID": ""}, [E002]),
        ({"OIDC_OP_ISSUER": "", "OIDC_RP_CLIENT_ID": ""}, [E001, E002]),
        (
            {"OIDC_OP_TOKEN_ENDPOINT": "", "OIDC_OP_JWKS_ENDPOINT": ""},
            [e003("OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT")],
        ),
        ({"OIDC_OP_USER_ENDPOINT": ""}, [e003("OIDC_OP_USER_ENDPOINT")]),
        ({"OIDC_OP_USER_ENDPOINT": "", "OIDC_FETCH_USERINFO": False}, []),
        (
            {"OIDC_OP_AUTHORIZATION_ENDPOINT": "", "OIDC_OP_DISCOVERY": None},
            [e003("OIDC_OP_AUTHORIZATION_ENDPOINT")],
        ),
        ({"OIDC_OP_ISSUER": "http://login.example.com/realms/main"}, [E006]),
        ({"OIDC_OP_ISSUER": "http://127.0.0.1.example.com"}, [E006]),
        ({"OIDC_OP_ISSUER": "http://localhost.example.com"}, [E006]),
    ],
    ids=[
        "no-issuer",
        "no-client-id",
        "neither",
        "endpoints-missing",
        "userinfo-endpoint-missing",
        "userinfo-endpoint-not-needed",
        "partial-endpoints-turn-discovery-off",
        "http-issuer",
        "http-lookalike-ip",
        "http-lookalike-localhost",
    ],
)
def test_check_provider(good, changes, expected):
    for name, value in changes.items():
        setattr(good, name, value)
    assert check_provider() == expected


# --- check_algorithms -----------------------------------------------------------------------
E004 = checks.Error(
    "OIDC_RP_SIGN_ALGO allows 'none': unsigned ID tokens would be accepted.",
    hint="Remove 'none'; use the provider's signing algorithm, usually RS256.",
    id="accounts.E004",
)
E005 = checks.Error(
    "OIDC_RP_SIGN_ALGO lists an HMAC algorithm but OIDC_RP_CLIENT_SECRET is empty.",
    hint="HMAC-signed ID tokens are keyed with the client secret: set it, or allow "
    "only asymmetric algorithms such as RS256.",
    id="accounts.E005",
)


def e008(*names: str) -> checks.Error:
    return checks.Error(
        f"OIDC_RP_SIGN_ALGO lists unsupported algorithms: {', '.join(names)}.",
        hint=f"Use some of: {', '.join(sorted(SUPPORTED_ALGORITHMS))}.",
        id="accounts.E008",
    )


@pytest.mark.parametrize(
    ("algorithms", "secret", "expected"),
    [
        (["RS256", "none"], "s", [E004]),
        ("RS256,none", "s", [E004]),
        (["HS256"], "", [E005]),
        (["RS256", "HS512"], "", [E005]),
        (["HS256"], "s", []),
        (["RS256", "ES256", "PS256"], "", []),
        (["RS256", "RS1", "foo"], "s", [e008("RS1", "foo")]),
        (["rs256"], "s", [e008("rs256")]),
        (["none", "HS256", "XX"], "", [E004, E005, e008("XX")]),
    ],
    ids=[
        "none",
        "none-in-a-string",
        "hmac-without-secret",
        "hmac-among-others-without-secret",
        "hmac-with-secret",
        "asymmetric-without-secret",
        "unsupported",
        "case-matters",
        "all-three",
    ],
)
def test_check_algorithms(good, algorithms, secret, expected):
    good.OIDC_RP_SIGN_ALGO = algorithms
    good.OIDC_RP_CLIENT_SECRET = secret
    assert check_algorithms() == expected


# --- check_middleware -----------------------------------------------------------------------
W003 = checks.Warning(
    f"{OIDC_MIDDLEWARE} is not in MIDDLEWARE: tokens are never refreshed and "
    "sessions outlive the provider's.",
    hint=f"Add it right after {MESSAGE_MIDDLEWARE}.",
    id="accounts.W003",
)


def e007(*before: str, path: str = OIDC_MIDDLEWARE) -> checks.Error:
    return checks.Error(
        f"{path} must come after {' and '.join(before)}.",
        hint=f"Move it right after {MESSAGE_MIDDLEWARE} in MIDDLEWARE.",
        id="accounts.E007",
    )


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        ([SESSION_MIDDLEWARE, AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE], [W003]),
        (
            [SESSION_MIDDLEWARE, OIDC_MIDDLEWARE, AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE],
            [e007(AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE)],
        ),
        (
            [OIDC_MIDDLEWARE, SESSION_MIDDLEWARE, AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE],
            [e007(SESSION_MIDDLEWARE, AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE)],
        ),
        (
            [AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE, OIDC_MIDDLEWARE],
            [e007(SESSION_MIDDLEWARE)],
        ),
        (
            [SESSION_MIDDLEWARE, AUTH_MIDDLEWARE, OIDC_MIDDLEWARE, MESSAGE_MIDDLEWARE],
            [e007(MESSAGE_MIDDLEWARE)],
        ),
        (
            [SESSION_MIDDLEWARE, AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE, "x.Y", OIDC_MIDDLEWARE],
            [],
        ),
        (
            [SESSION_MIDDLEWARE, AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE, OLD_MIDDLEWARE],
            [],
        ),
        (
            [SESSION_MIDDLEWARE, OLD_MIDDLEWARE, AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE],
            [e007(AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE, path=OLD_MIDDLEWARE)],
        ),
    ],
    ids=[
        "missing",
        "before-auth",
        "first",
        "no-session",
        "before-messages",
        "later-is-fine",
        "old-path-counts",
        "old-path-misplaced",
    ],
)
def test_check_middleware(good, middleware, expected):
    good.MIDDLEWARE = middleware
    assert check_middleware() == expected


# --- check_cache_and_sessions -----------------------------------------------------------
W001 = checks.Warning(
    "The cache is local to each process, but the site runs in several processes.",
    hint="Set CACHE_URL=redis://host:6379/0 so that the JWKS, the refresh locks "
    "and the rate limits are shared by every worker.",
    id="accounts.W001",
)
W002 = checks.Warning(
    "Sessions are stored in signed cookies: back-channel logout and end_sessions cannot end them.",
    hint="Use a server-side session engine (db, cached_db or cache).",
    id="accounts.W002",
)
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.mark.parametrize(
    ("caches", "debug", "processes", "engine", "expected"),
    [
        (LOCMEM, False, None, "django.contrib.sessions.backends.db", [W001]),
        (LOCMEM, True, "4", "django.contrib.sessions.backends.db", [W001]),
        (LOCMEM, True, None, "django.contrib.sessions.backends.db", []),
        (LOCMEM, True, "1", "django.contrib.sessions.backends.cached_db", []),
        (None, False, "8", "django.contrib.sessions.backends.signed_cookies", [W002]),
        (LOCMEM, False, "2", "django.contrib.sessions.backends.signed_cookies", [W001, W002]),
    ],
    ids=[
        "locmem-in-production",
        "locmem-several-processes",
        "locmem-debug-one-process",
        "cached-db-sessions",
        "signed-cookies",
        "both",
    ],
)
def test_check_cache_and_sessions(good, monkeypatch, caches, debug, processes, engine, expected):
    if caches is not None:
        good.CACHES = caches
    good.DEBUG = debug
    if processes is not None:
        monkeypatch.setenv("WEB_CONCURRENCY", processes)
    good.SESSION_ENGINE = engine
    assert check_cache_and_sessions() == expected


def test_checks_are_registered_with_django(good):
    good.OIDC_OP_ISSUER = ""
    good.OIDC_RP_SIGN_ALGO = ["none"]
    ids = {m.id for m in checks.run_checks()}
    assert {"accounts.E001", "accounts.E004"} <= ids


# --- check_client_auth ---------------------------------------------------------------------
def w004(path) -> checks.Warning:
    return checks.Warning(
        f"The private_key_jwt signing key file {path} does not exist.",
        hint="Set OIDC_RP_SIGNING_KEY_FILE to a PEM key file that every server of the "
        "site shares (manage.py rotate_signing_key writes one); a key generated on "
        "first use belongs to one machine only.",
        id="accounts.W004",
    )


def w005(reason: str) -> checks.Warning:
    return checks.Warning(
        f"The private_key_jwt signing key file cannot be used: {reason}.",
        hint="Make it readable by the site and hold PEM private keys (RSA of 2048 bits "
        "or more, or EC P-256), newest first.",
        id="accounts.W005",
    )


@pytest.fixture
def pkjwt_checks(good, tmp_path, monkeypatch):
    from accounts.oidc import signing_keys

    good.OIDC_TOKEN_AUTH_METHOD = "private_key_jwt"
    good.OIDC_RP_CLIENT_SECRET = ""
    monkeypatch.setattr(signing_keys, "GENERATED_KEY_FILE", tmp_path / "generated.pem")
    return good


def test_unknown_token_auth_method_is_an_error(good):
    good.OIDC_TOKEN_AUTH_METHOD = "client_secret_jwt"
    assert check_client_auth() == [
        checks.Error(
            "OIDC_TOKEN_AUTH_METHOD is 'client_secret_jwt', not a known method.",
            hint="Use one of: client_secret_basic, client_secret_post, private_key_jwt.",
            id="accounts.E009",
        )
    ]


def test_missing_key_file_warns_in_production(pkjwt_checks, tmp_path):
    assert check_client_auth() == [w004(tmp_path / "generated.pem")]
    pkjwt_checks.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "site-keys.pem")
    assert check_client_auth() == [w004(tmp_path / "site-keys.pem")]


def test_missing_generated_key_file_is_fine_in_debug(pkjwt_checks):
    pkjwt_checks.DEBUG = True
    assert check_client_auth() == []


def test_unreadable_key_file_warns(pkjwt_checks, tmp_path):
    path = tmp_path / "site-keys.pem"
    path.write_text("not a key")
    pkjwt_checks.OIDC_RP_SIGNING_KEY_FILE = str(path)
    assert check_client_auth() == [w005(f"{path}: it holds no PEM private key")]
    path.unlink()
    path.mkdir()  # unreadable as a file whoever runs the tests (root reads any file)
    assert check_client_auth() == [w005(f"{path} cannot be read (IsADirectoryError)")]


def test_a_good_key_file_passes(pkjwt_checks, tmp_path):
    from accounts.oidc import signing_keys

    pkjwt_checks.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "site-keys.pem")
    signing_keys.rotate()
    assert check_client_auth() == []
    assert all_checks() == []
