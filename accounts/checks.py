"""System checks for the OIDC configuration: found once by ``manage.py check``, not per request."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from accounts.conf import (
    FAPI2_ALGORITHMS,
    PAR_MODES,
    SUPPORTED_ALGORITHMS,
    TOKEN_AUTH_METHODS,
    oidc_settings,
    token_auth_method,
)
from accounts.oidc import dpop, signing_keys
from accounts.providers.provider import declaration_problems, is_loopback, provider_build
from accounts.providers.registry import declared_providers, issuer_key, settings_provider

SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
MESSAGE_MIDDLEWARE = "django.contrib.messages.middleware.MessageMiddleware"
OIDC_MIDDLEWARE = "accounts.sessions.middleware.OIDCSessionMiddleware"
# The path settings files written before the packages name; it still imports the same class.
OIDC_MIDDLEWARE_COMPAT = "accounts.middleware.OIDCSessionMiddleware"


@checks.register(checks.Tags.security)
def check_provider(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The provider's identity and endpoints."""
    errors: list[checks.CheckMessage] = []
    issuer = oidc_settings.OIDC_OP_ISSUER
    if not (issuer or oidc_settings.OIDC_RP_CLIENT_ID) and oidc_settings.OIDC_PROVIDERS:
        return []  # no provider "default": the providers of OIDC_PROVIDERS serve instead
    if not issuer:
        errors.append(
            checks.Error(
                "OIDC_OP_ISSUER is not set.",
                hint="Set OIDC_OP_ISSUER to the provider's issuer URL, e.g. "
                "https://login.example.com/realms/main.",
                id="accounts.E001",
            )
        )
    if not oidc_settings.OIDC_RP_CLIENT_ID:
        errors.append(
            checks.Error(
                "OIDC_RP_CLIENT_ID is not set.",
                hint="Set OIDC_RP_CLIENT_ID to the client id registered at the provider.",
                id="accounts.E002",
            )
        )
    if not oidc_settings.discovery_enabled:
        missing = [
            name
            for name in ("AUTHORIZATION", "TOKEN", "JWKS")
            + (("USER",) if oidc_settings.OIDC_FETCH_USERINFO else ())
            if not getattr(oidc_settings, f"OIDC_OP_{name}_ENDPOINT")
        ]
        if missing:
            errors.append(
                checks.Error(
                    "Discovery is off and these endpoints are not set: "
                    + ", ".join(f"OIDC_OP_{name}_ENDPOINT" for name in missing)
                    + ".",
                    hint="Set them, or set OIDC_OP_DISCOVERY=1 to read them from the provider.",
                    id="accounts.E003",
                )
            )
    parts = urlsplit(issuer)
    if issuer and parts.scheme == "http" and not settings.DEBUG and not is_loopback(parts.hostname):
        errors.append(
            checks.Error(
                "OIDC_OP_ISSUER uses http:// for a host that is not this machine.",
                hint="Use the provider's https:// issuer; tokens and codes must not cross a "
                "network in clear text.",
                id="accounts.E006",
            )
        )
    return errors


@checks.register(checks.Tags.security)
def check_algorithms(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The ID-token algorithm allow-list."""
    errors: list[checks.CheckMessage] = []
    algorithms = oidc_settings.OIDC_RP_SIGN_ALGO
    if "none" in algorithms:
        errors.append(
            checks.Error(
                "OIDC_RP_SIGN_ALGO allows 'none': unsigned ID tokens would be accepted.",
                hint="Remove 'none'; use the provider's signing algorithm, usually RS256.",
                id="accounts.E004",
            )
        )
    if any(a.startswith("HS") for a in algorithms) and not oidc_settings.OIDC_RP_CLIENT_SECRET:
        errors.append(
            checks.Error(
                "OIDC_RP_SIGN_ALGO lists an HMAC algorithm but OIDC_RP_CLIENT_SECRET is empty.",
                hint="HMAC-signed ID tokens are keyed with the client secret: set it, or allow "
                "only asymmetric algorithms such as RS256.",
                id="accounts.E005",
            )
        )
    unknown = sorted(set(algorithms) - SUPPORTED_ALGORITHMS - {"none"})
    if unknown:
        errors.append(
            checks.Error(
                f"OIDC_RP_SIGN_ALGO lists unsupported algorithms: {', '.join(unknown)}.",
                hint=f"Use some of: {', '.join(sorted(SUPPORTED_ALGORITHMS))}.",
                id="accounts.E008",
            )
        )
    return errors


@checks.register()
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The refresh middleware needs the session, the user and messages before it."""
    middleware = list(settings.MIDDLEWARE)
    configured = next(
        (m for m in (OIDC_MIDDLEWARE, OIDC_MIDDLEWARE_COMPAT) if m in middleware), None
    )
    if configured is None:
        return [
            checks.Warning(
                f"{OIDC_MIDDLEWARE} is not in MIDDLEWARE: tokens are never refreshed and "
                "sessions outlive the provider's.",
                hint=f"Add it right after {MESSAGE_MIDDLEWARE}.",
                id="accounts.W003",
            )
        ]
    position = middleware.index(configured)
    needed = (SESSION_MIDDLEWARE, AUTH_MIDDLEWARE, MESSAGE_MIDDLEWARE)
    before = [m for m in needed if m not in middleware[:position]]
    if before:
        return [
            checks.Error(
                f"{configured} must come after {' and '.join(before)}.",
                hint=f"Move it right after {MESSAGE_MIDDLEWARE} in MIDDLEWARE.",
                id="accounts.E007",
            )
        ]
    return []


@checks.register(checks.Tags.caches)
def check_cache_and_sessions(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Caches and sessions must be shared between processes for keys, locks and logout."""
    warnings: list[checks.CheckMessage] = []
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    concurrency = os.environ.get("WEB_CONCURRENCY", "1")
    processes = int(concurrency) if concurrency.isdigit() else 1
    if backend.endswith("LocMemCache") and (processes > 1 or not settings.DEBUG):
        warnings.append(
            checks.Warning(
                "The cache is local to each process, but the site runs in several processes.",
                hint="Set CACHE_URL=redis://host:6379/0 so that the JWKS, the refresh locks "
                "and the rate limits are shared by every worker.",
                id="accounts.W001",
            )
        )
    if settings.SESSION_ENGINE.endswith("signed_cookies"):
        warnings.append(
            checks.Warning(
                "Sessions are stored in signed cookies: back-channel logout and end_sessions "
                "cannot end them.",
                hint="Use a server-side session engine (db, cached_db or cache).",
                id="accounts.W002",
            )
        )
    return warnings


@checks.register(checks.Tags.security)
def check_client_auth(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The token-endpoint authentication method, and the key file of ``private_key_jwt``."""
    method = token_auth_method()
    if method not in TOKEN_AUTH_METHODS:
        return [
            checks.Error(
                f"OIDC_TOKEN_AUTH_METHOD is {method!r}, not a known method.",
                hint=f"Use one of: {', '.join(TOKEN_AUTH_METHODS)}.",
                id="accounts.E009",
            )
        ]
    declared = (
        oidc_settings.OIDC_PROVIDERS if isinstance(oidc_settings.OIDC_PROVIDERS, dict) else {}
    )
    uses_key = method == "private_key_jwt" or any(
        isinstance(v, dict) and v.get("token_auth_method") == "private_key_jwt"
        for v in declared.values()
    )
    if not uses_key:
        return []
    path = signing_keys.key_file()
    if not path.exists():
        if settings.DEBUG:
            return []
        return [
            checks.Warning(
                f"The private_key_jwt signing key file {path} does not exist.",
                hint="Set OIDC_RP_SIGNING_KEY_FILE to a PEM key file that every server of the "
                "site shares (manage.py rotate_signing_key writes one); a key generated on "
                "first use belongs to one machine only.",
                id="accounts.W004",
            )
        ]
    try:
        signing_keys.load_keys()
    except signing_keys.KeyFileError as exc:
        return [
            checks.Warning(
                f"The private_key_jwt signing key file cannot be used: {exc}.",
                hint="Make it readable by the site and hold PEM private keys (RSA of 2048 bits "
                "or more, or EC P-256), newest first.",
                id="accounts.W005",
            )
        ]
    return []


@checks.register(checks.Tags.security)
def check_declared_providers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each provider of ``OIDC_PROVIDERS``, named in its messages.

    The admin's providers are checked by the admin's form when saved, and by its "test
    this provider" action; ``manage.py oidc_check`` tests every provider live.
    """
    declared = oidc_settings.OIDC_PROVIDERS or {}
    if not isinstance(declared, dict):
        return [
            checks.Error(
                "OIDC_PROVIDERS must be a JSON object of provider name -> settings.",
                hint='For example OIDC_PROVIDERS={"partner": {"issuer": "https://...", '
                '"client_id": "..."}}.',
                id="accounts.E010",
            )
        ]
    errors: list[checks.CheckMessage] = _duplicate_issuers(declared) + _unrouted_introspection(
        declared
    )
    for slug, values in declared.items():
        problems = declaration_problems(slug, values)
        if problems:
            errors.append(
                checks.Error(
                    f"OIDC_PROVIDERS[{slug!r}]: {'; '.join(problems)}.",
                    hint="Each provider needs at least 'issuer' and 'client_id'; the keys are "
                    "listed in the README's configuration reference.",
                    id="accounts.E010",
                )
            )
            continue
        errors += _declared_provider_errors(provider_build(slug, values, source="OIDC_PROVIDERS"))
    return errors


def _declared_provider_errors(provider: Any) -> list[checks.CheckMessage]:
    name = f"OIDC_PROVIDERS[{provider.slug!r}]"
    errors: list[checks.CheckMessage] = []
    bad = sorted(set(provider.sign_algo) - SUPPORTED_ALGORITHMS)
    if bad:
        errors.append(
            checks.Error(
                f"{name}: sign_algo lists algorithms that are refused or unsupported: "
                f"{', '.join(bad)}.",
                hint=f"Use some of: {', '.join(sorted(SUPPORTED_ALGORITHMS))} ('none' never).",
                id="accounts.E008",
            )
        )
    parts = urlsplit(provider.issuer)
    if parts.scheme == "http" and not settings.DEBUG and not is_loopback(parts.hostname):
        errors.append(
            checks.Error(
                f"{name}: the issuer uses http:// for a host that is not this machine.",
                hint="Use the provider's https:// issuer.",
                id="accounts.E006",
            )
        )
    return errors


# The shortest push Authorization value accepted without a warning (a generated one has 50).
SSF_AUTHORIZATION_MIN_LENGTH = 32


def _ssf_providers() -> list[Any]:
    default = settings_provider()
    return ([default] if default.issuer else []) + declared_providers()


@checks.register(checks.Tags.security)
def check_shared_signals(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Shared Signals: push Authorization values and the SET age (E025, E026, W025)."""
    errors: list[checks.CheckMessage] = []
    max_age = oidc_settings.OIDC_SSF_MAX_AGE
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
        errors.append(
            checks.Error(
                "OIDC_SSF_MAX_AGE must be a positive number of seconds.",
                hint="The default, 300, accepts Security Event Tokens up to 5 minutes old.",
                id="accounts.E025",
            )
        )
    owners: dict[str, str] = {}
    for provider in _ssf_providers():
        value = provider.ssf_push_authorization
        if not value:
            continue
        name = (
            "OIDC_SSF_PUSH_AUTHORIZATION"
            if provider.is_default
            else (f"OIDC_PROVIDERS[{provider.slug!r}]['ssf_push_authorization']")
        )
        if value in owners:
            errors.append(
                checks.Error(
                    f"{name} is the same value as provider {owners[value]}'s.",
                    hint="Give each provider's transmitter its own Authorization value: it "
                    "says which provider a push comes from.",
                    id="accounts.E026",
                )
            )
        owners.setdefault(value, provider.slug)
        if len(value) < SSF_AUTHORIZATION_MIN_LENGTH:
            errors.append(
                checks.Warning(
                    f"{name} is short enough to be guessed.",
                    hint='Use a generated value, e.g. python -c "import secrets; '
                    "print('Bearer ' + secrets.token_urlsafe(32))\", or let manage.py "
                    "ssf_stream create generate one.",
                    id="accounts.W025",
                )
            )
    return errors


def _duplicate_issuers(declared: dict[str, Any]) -> list[checks.CheckMessage]:
    """One issuer, one provider: a second provider of an issuer could sign in as its users."""
    owners: dict[str, str] = {}
    if oidc_settings.OIDC_OP_ISSUER:
        owners[issuer_key(oidc_settings.OIDC_OP_ISSUER)] = "the provider default (OIDC_OP_ISSUER)"
    errors: list[checks.CheckMessage] = []
    for slug, values in declared.items():
        if not isinstance(values, dict) or not values.get("issuer"):
            continue
        owner = owners.setdefault(issuer_key(values["issuer"]), f"OIDC_PROVIDERS[{slug!r}]")
        if owner != f"OIDC_PROVIDERS[{slug!r}]":
            errors.append(
                checks.Error(
                    f"OIDC_PROVIDERS[{slug!r}]: the issuer {values['issuer']} is already the "
                    f"issuer of {owner}.",
                    hint="An issuer belongs to exactly one provider: its tokens could otherwise "
                    "sign in as that provider's users. Remove the duplicate, or use one "
                    "provider for the issuer.",
                    id="accounts.E011",
                )
            )
    return errors


def _unrouted_introspection(declared: dict[str, Any]) -> list[checks.CheckMessage]:
    """Several providers introspect opaque tokens and more than one has no prefix to route by."""
    plain = ["default"] if oidc_settings.OIDC_OP_INTROSPECT and oidc_settings.OIDC_OP_ISSUER else []
    plain += [
        str(slug)
        for slug, values in declared.items()
        if isinstance(values, dict)
        and str(values.get("introspect", "")).lower() in ("1", "true", "yes", "on")
        and not values.get("opaque_token_prefix")
    ]
    if len(plain) < 2:
        return []
    return [
        checks.Warning(
            f"Providers {', '.join(plain)} introspect opaque tokens and none of them has an "
            "opaque_token_prefix: every opaque token will be refused.",
            hint="Give all but one of them an opaque_token_prefix (the start of their opaque "
            "tokens), or switch introspect off where their clients send JWT access tokens.",
            id="accounts.W006",
        )
    ]


def _fapi2_subjects() -> list[tuple[str, Any]]:
    """(how to name it, provider) for the default provider and each declared one."""
    found = []
    default = settings_provider()
    if default.issuer or default.client_id:
        found.append(("OIDC_FAPI2", default))
    found += [(f"OIDC_PROVIDERS[{p.slug!r}]", p) for p in declared_providers()]
    return found


@checks.register(checks.Tags.security)
def check_fapi2(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """FAPI 2.0, PAR and DPoP: what ``profile: fapi2`` demands, and the DPoP key."""
    errors: list[checks.CheckMessage] = []
    if oidc_settings.OIDC_USE_PAR not in PAR_MODES and not isinstance(
        oidc_settings.OIDC_USE_PAR, bool
    ):
        errors.append(
            checks.Error(
                f"OIDC_USE_PAR is {oidc_settings.OIDC_USE_PAR!r}.",
                hint="Use auto (push when the provider offers PAR), 1 (always) or 0 (never).",
                id="accounts.E020",
            )
        )
    subjects = _fapi2_subjects()
    for name, provider in subjects:
        if provider.fapi2:
            errors += _fapi2_errors(name, provider)
    if any(provider.dpop_enabled for _name, provider in subjects):
        errors += _dpop_key_errors()
    return errors


def _fapi2_errors(name: str, provider: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if token_auth_method(provider) != "private_key_jwt":
        errors.append(
            checks.Error(
                f"{name}: FAPI 2.0 needs private_key_jwt, and the client authenticates with "
                f"{token_auth_method(provider)} (a client secret).",
                hint="Set the token_auth_method (OIDC_TOKEN_AUTH_METHOD) to private_key_jwt and "
                "register this site's /oidc/jwks.json for the client at the provider.",
                id="accounts.E021",
            )
        )
    others = sorted(set(provider.sign_algo) - set(FAPI2_ALGORITHMS))
    if others:
        errors.append(
            checks.Error(
                f"{name}: FAPI 2.0 allows ID tokens signed with PS256, ES256 or EdDSA only, and "
                f"the algorithms also name {', '.join(others)}.",
                hint="Leave OIDC_RP_SIGN_ALGO (sign_algo) unset under FAPI 2.0, or name only "
                "PS256, ES256 and EdDSA.",
                id="accounts.E022",
            )
        )
    path = signing_keys.key_file()
    if token_auth_method(provider) == "private_key_jwt" and path.exists():
        try:
            key = signing_keys.signing_key()
        except signing_keys.KeyFileError:
            return errors  # accounts.W005 says why
        if key.alg not in FAPI2_ALGORITHMS:
            errors.append(
                checks.Error(
                    f"{name}: the site's signing key {key.kid} signs {key.alg}; FAPI 2.0 client "
                    "assertions must be PS256 or ES256.",
                    hint="Run manage.py rotate_signing_key (with a FAPI 2.0 provider configured "
                    "it writes an EC P-256 key), or set OIDC_RP_SIGNING_KEY_FILE to one.",
                    id="accounts.E023",
                )
            )
    return errors


def _dpop_key_errors() -> list[checks.CheckMessage]:
    path = dpop.key_file()
    if not oidc_settings.OIDC_DPOP_KEY_FILE and not path.exists():
        return []  # generated on first use
    try:
        dpop.dpop_key()
    except dpop.DPoPKeyError as exc:
        return [
            checks.Error(
                f"The DPoP key cannot be used: {exc.reason}.",
                hint="Set OIDC_DPOP_KEY_FILE to a readable PEM file holding one EC P-256 "
                "private key, or unset it to have one generated.",
                id="accounts.E024",
            )
        ]
    return []
