"""Checks of the provider configuration, for ``manage.py oidc_check`` and for people on call.

``config_describe`` lists the effective OIDC settings with the secrets masked;
``provider_check`` fetches discovery and the JWKS live, compares the issuer and the signing
algorithms with the settings, tries each endpoint and, when asked, a client-credentials
grant. Each check says why it failed in words a person can act on; none ever prints a
secret or a token.

The checks run the site's own code wherever it exists, so that they cannot disagree with
sign-in: discovery is ``discovery.fetch_metadata`` (with its issuer rule) overlaid through
the provider's endpoint settings, the algorithms are those ``checks`` and ``tokens`` accept,
and the grant is the directory sync's ``ClientCredentials``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.conf import (
    DEFAULTS,
    FAPI2_ALGORITHMS,
    PROVIDER_SETTINGS,
    SUPPORTED_ALGORITHMS,
    oidc_settings,
    token_auth_method,
)
from accounts.errors import OIDCError
from accounts.oidc import signing_keys
from accounts.oidc.discovery import discovery_url, fetch_metadata
from accounts.oidc.fapi2 import fapi2_requirements
from accounts.oidc.http import get_json, provider_request
from accounts.oidc.jwks import _fits, public_key
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider
from accounts.sync.errors import SourceError
from accounts.sync.tokens import ClientCredentials

# The default provider's checks name its OIDC_* settings; the others' name their keys.
_DEFAULT_NAMES = {key: name for name, (key, _default) in PROVIDER_SETTINGS.items()}

SECRET_SUFFIXES = ("_SECRET", "_TOKEN", "_PASSWORD")
ISSUER_MISMATCH = "discovery_issuer_mismatch"  # the code of discovery.fetch_metadata
ENDPOINTS = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "end_session_endpoint",
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def mask(name: str, value: Any) -> str:
    """The printable value of a setting: secrets become ``********`` (or ``(not set)``)."""
    if name.endswith(SECRET_SUFFIXES):
        return "******** (set)" if value else "(not set)"
    if isinstance(value, list):
        return ", ".join(value) or "(empty)"
    return "(not set)" if value in ("", None) else str(value)


def config_describe() -> list[tuple[str, str]]:
    """Every OIDC setting with its effective value, secrets masked."""
    return [
        (name, mask(name, getattr(oidc_settings, name)))
        for name in DEFAULTS
        if name != "OIDC_PROVIDERS"  # described provider by provider, secrets masked
    ]


def setting_name(provider: Provider, key: str) -> str:
    """How a person finds this provider setting: ``OIDC_RP_CLIENT_ID`` or ``partner.client_id``."""
    if provider.is_default:
        return _DEFAULT_NAMES.get(key, key)
    return f"{provider.slug}.{key}"


def provider_describe(provider: Provider) -> list[tuple[str, str]]:
    """A provider's effective settings, the secret masked (for providers besides default)."""
    rows = [
        ("source", provider.source),
        ("label", provider.display_name),
        ("enabled", "yes" if provider.enabled else "no"),
        ("issuer", provider.issuer),
        ("client_id", provider.client_id),
        ("client_secret", mask("_SECRET", provider.client_secret)),
        ("discovery", "on" if provider.discovery_enabled else "off"),
        *sorted(provider.endpoints.items()),
        ("sign_algo", ", ".join(provider.sign_algo)),
        ("scopes", provider.scopes),
        ("token_auth_method", provider.token_auth_method),
        ("email_domains", ", ".join(provider.email_domains) or "(none)"),
        ("profile", provider.profile or "(none)"),
        ("use_par", provider.par_mode),
        ("dpop", "on" if provider.dpop_enabled else "off"),
    ]
    return rows


class _Checks:
    """Collects results; a failing step returns None so that later steps can skip."""

    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.results.append(CheckResult(name, ok, detail))
        return ok

    def fetch_json(self, name: str, url: str) -> dict[str, Any] | None:
        try:
            document = get_json(url)
        except OIDCError as exc:
            self.add(name, False, f"{url} failed: {exc.code}")
            return None
        self.add(name, True, f"fetched {url}")
        return document


def _metadata(checks: _Checks, provider: Provider) -> dict[str, Any] | None:
    """Discovery fetched now (when on) overlaid by the endpoint settings; None when it failed.

    The document comes from ``discovery.fetch_metadata``, live: ``get_metadata`` would
    answer from the cache, and with a stale copy while the provider is down. A document
    that names another issuer is refused by sign-in, so the checks stop there too.
    """
    issuer = provider.issuer
    document: dict[str, Any] = {}
    if not provider.discovery_enabled:
        checks.add("discovery", True, "off: using the configured endpoints")
    else:
        url = discovery_url(issuer)
        try:
            document = fetch_metadata(issuer)
        except OIDCError as exc:
            fetched = exc.code == ISSUER_MISMATCH
            checks.add(
                "discovery", fetched, f"fetched {url}" if fetched else f"{url} failed: {exc.code}"
            )
            if fetched:
                checks.add("issuer match", False, _mismatch(url, provider))
            return None
        checks.add("discovery", True, f"fetched {url}")
        checks.add("issuer match", True, f"the provider names itself {issuer!r}")
    return {"issuer": issuer, **document, **provider.endpoints}


def _mismatch(url: str, provider: Provider) -> str:
    """Why the issuers differ: the document is read once more, to quote the issuer it names."""
    try:
        said = get_json(url).get("issuer")
    except OIDCError as exc:
        said = f"(unknown: {exc.code})"
    name = setting_name(provider, "issuer")
    return f"the provider names itself {said!r}, but {name} is {provider.issuer!r}"


def _symmetric(alg: str) -> bool:
    """HMAC algorithms are keyed with the client secret, not with a key from the JWKS."""
    return alg.startswith("HS")


def _check_algorithms(checks: _Checks, metadata: dict[str, Any], provider: Provider) -> None:
    configured = list(provider.sign_algo)
    unusable = [alg for alg in configured if alg not in SUPPORTED_ALGORITHMS]
    if unusable or not configured:
        supported = ", ".join(sorted(SUPPORTED_ALGORITHMS))
        name = setting_name(provider, "sign_algo")
        checks.add("algorithms", False, f"{name} must be some of {supported}: {configured}")
        return
    hmac = [alg for alg in configured if _symmetric(alg)]
    if hmac and not provider.client_secret:
        name = setting_name(provider, "client_secret")
        checks.add("algorithms", False, f"{', '.join(hmac)} needs {name}: it is not set")
        return
    offered = metadata.get("id_token_signing_alg_values_supported")
    if not isinstance(offered, list):
        checks.add("algorithms", True, f"{', '.join(configured)} (the provider publishes no list)")
        return
    missing = [alg for alg in configured if alg not in offered]
    detail = (
        f"{', '.join(missing)} not offered; the provider signs ID tokens with {', '.join(offered)}"
        if missing
        else f"{', '.join(configured)} offered by the provider"
    )
    checks.add("algorithms", not missing, detail)


def _check_jwks(checks: _Checks, uri: str | None, provider: Provider) -> None:
    """A usable key for each asymmetric algorithm; HS* take the client secret instead."""
    algorithms = [alg for alg in provider.sign_algo if not _symmetric(alg)]
    if not algorithms:
        checks.add("jwks", True, "not used: the algorithms are keyed with the client secret")
        return
    if not uri:
        name = setting_name(provider, "jwks_uri")
        checks.add("jwks", False, f"no jwks_uri: set {name} or turn discovery on")
        return
    document = checks.fetch_json("jwks fetch", uri)
    if document is None:
        return
    keys = [k for k in document.get("keys") or [] if isinstance(k, dict)]
    for alg in algorithms:
        usable = [k for k in keys if _fits(k, alg)]
        try:
            for key in usable:
                public_key(key)
        except OIDCError:
            checks.add(f"jwks {alg}", False, f"a {alg} key in the JWKS cannot be parsed")
            continue
        checks.add(
            f"jwks {alg}",
            bool(usable),
            f"{len(usable)} key(s) for {alg}"
            if usable
            else f"no key for {alg} in {len(keys)} keys",
        )


def _check_endpoints(checks: _Checks, metadata: dict[str, Any], provider: Provider) -> None:
    required = {"authorization_endpoint", "token_endpoint"}
    if provider.fetch_userinfo:
        required.add("userinfo_endpoint")
    for name in ENDPOINTS:
        url = metadata.get(name)
        if not url:
            checks.add(
                name, name not in required, "not configured" if name in required else "not offered"
            )
            continue
        try:
            response = provider_request("GET", url, allow_redirects=False)
        except OIDCError as exc:
            checks.add(name, False, f"{url} unreachable ({exc.code})")
            continue
        checks.add(name, True, f"{url} answers (HTTP {response.status_code})")


def _check_client_credentials(
    checks: _Checks, token_endpoint: str | None, provider: Provider
) -> None:
    """The grant directory sync makes (``sync.tokens.ClientCredentials``), made once now."""
    if not token_endpoint:
        checks.add("client credentials", False, "no token endpoint")
        return
    try:
        ClientCredentials(provider=provider).token()
    except (SourceError, OIDCError) as exc:
        refusal = exc if isinstance(exc, OIDCError) else exc.__cause__
        names = (
            "OIDC_RP_CLIENT_ID/SECRET"
            if provider.is_default
            else f"{provider.slug}.client_id/client_secret"
        )
        detail = (
            f"grant refused ({refusal.code}): check {names} and the client's grants"
            if isinstance(refusal, OIDCError)
            else "answer has no access_token"
        )
        checks.add("client credentials", False, detail)
        return
    checks.add("client credentials", True, "token issued")


def _check_client(checks: _Checks, provider: Provider) -> None:
    client_id = provider.client_id
    if not client_id:
        checks.add("client", False, f"{setting_name(provider, 'client_id')} is not set")
    elif token_auth_method(provider) == "private_key_jwt":
        try:
            key = signing_keys.signing_key()
        except signing_keys.KeyFileError as exc:
            checks.add("client", False, f"private_key_jwt: the signing key file: {exc}")
        else:
            detail = f"client id {client_id!r}, private_key_jwt with key {key.kid} ({key.alg})"
            fits = not provider.fapi2 or key.alg in FAPI2_ALGORITHMS
            checks.add("client", fits, detail + ("" if fits else ": FAPI 2.0 needs PS256/ES256"))
    elif provider.fapi2:
        checks.add("client", False, "FAPI 2.0 needs private_key_jwt; a client secret is refused")
    elif not provider.client_secret:
        checks.add("client", False, f"{setting_name(provider, 'client_secret')} is not set")
    else:
        checks.add("client", True, f"client id {client_id!r}, secret set")


def provider_check(
    provider: Provider | None = None, *, client_credentials: bool = False
) -> list[CheckResult]:
    """Run every check against one live provider (``default`` unless given); in order."""
    provider = provider or default_provider()
    checks = _Checks()
    issuer = provider.issuer
    missing = f"{setting_name(provider, 'issuer')} is not set"
    if not checks.add("issuer", bool(issuer), issuer or missing):
        return checks.results
    _check_client(checks, provider)
    metadata = _metadata(checks, provider)
    if metadata is None:
        return checks.results
    _check_algorithms(checks, metadata, provider)
    _check_jwks(checks, metadata.get("jwks_uri"), provider)
    _check_endpoints(checks, metadata, provider)
    if provider.fapi2:
        for name, met, detail in fapi2_requirements(metadata):
            checks.add(name, met, detail)
    if client_credentials:
        _check_client_credentials(checks, metadata.get("token_endpoint"), provider)
    return checks.results
