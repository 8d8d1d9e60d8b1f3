"""Checks of the provider configuration, for ``manage.py oidc_check`` and for people on call.

``config_describe`` lists the effective OIDC settings with the secrets masked;
``provider_check`` fetches discovery and the JWKS live (bypassing the caches), compares
the issuer and the signing algorithms with the settings, tries each endpoint and, when
asked, a client-credentials grant. Each check says why it failed in words a person can
act on; none ever prints a secret or a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .conf import DEFAULTS, oidc_settings
from .discovery import ENDPOINT_SETTINGS, discovery_url
from .errors import OIDCError
from .http import get_json, provider_request, token_request
from .jwks import _fits, public_key

SECRET_SUFFIXES = ("_SECRET", "_TOKEN", "_PASSWORD")
SUPPORTED_ALG_PREFIXES = ("RS", "PS", "ES")
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
    return [(name, mask(name, getattr(oidc_settings, name))) for name in DEFAULTS]


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


def _metadata(checks: _Checks, issuer: str) -> dict[str, Any] | None:
    """Discovery (when on) overlaid by the endpoint settings; None when discovery failed."""
    metadata: dict[str, Any] = {"issuer": issuer}
    if not oidc_settings.discovery_enabled:
        checks.add("discovery", True, "off: using the configured endpoints")
    else:
        document = checks.fetch_json("discovery", discovery_url(issuer))
        if document is None:
            return None
        said = document.get("issuer")
        mismatch = "" if said == issuer else f", but OIDC_OP_ISSUER is {issuer!r}"
        checks.add("issuer match", said == issuer, f"the provider names itself {said!r}{mismatch}")
        metadata.update(document)
    for name, setting in ENDPOINT_SETTINGS.items():
        if getattr(oidc_settings, setting):
            metadata[name] = getattr(oidc_settings, setting)
    return metadata


def _check_algorithms(checks: _Checks, metadata: dict[str, Any]) -> None:
    configured = oidc_settings.OIDC_RP_SIGN_ALGO
    unusable = [alg for alg in configured if not alg.startswith(SUPPORTED_ALG_PREFIXES)]
    if unusable or not configured:
        checks.add("algorithms", False, f"OIDC_RP_SIGN_ALGO must be RS*, PS* or ES*: {configured}")
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


def _check_jwks(checks: _Checks, uri: str | None) -> None:
    if not uri:
        checks.add("jwks", False, "no jwks_uri: set OIDC_OP_JWKS_ENDPOINT or turn discovery on")
        return
    document = checks.fetch_json("jwks fetch", uri)
    if document is None:
        return
    keys = [k for k in document.get("keys") or [] if isinstance(k, dict)]
    for alg in oidc_settings.OIDC_RP_SIGN_ALGO:
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


def _check_endpoints(checks: _Checks, metadata: dict[str, Any]) -> None:
    required = {"authorization_endpoint", "token_endpoint"}
    if oidc_settings.OIDC_FETCH_USERINFO:
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


def _check_client_credentials(checks: _Checks, token_endpoint: str | None) -> None:
    if not token_endpoint:
        checks.add("client credentials", False, "no token endpoint")
        return
    data = {"grant_type": "client_credentials"}
    if oidc_settings.OIDC_SYNC_SCOPE:
        data["scope"] = oidc_settings.OIDC_SYNC_SCOPE
    try:
        answer = token_request(token_endpoint, data)
    except OIDCError as exc:
        checks.add(
            "client credentials",
            False,
            f"grant refused ({exc.code}): check OIDC_RP_CLIENT_ID/SECRET and the client's grants",
        )
        return
    ok = isinstance(answer.get("access_token"), str)
    checks.add("client credentials", ok, "token issued" if ok else "answer has no access_token")


def _check_client(checks: _Checks) -> None:
    client_id = oidc_settings.OIDC_RP_CLIENT_ID
    if not client_id:
        checks.add("client", False, "OIDC_RP_CLIENT_ID is not set")
    elif not oidc_settings.OIDC_RP_CLIENT_SECRET:
        checks.add("client", False, "OIDC_RP_CLIENT_SECRET is not set")
    else:
        checks.add("client", True, f"client id {client_id!r}, secret set")


def provider_check(*, client_credentials: bool = False) -> list[CheckResult]:
    """Run every check against the live provider; return the results in order."""
    checks = _Checks()
    issuer = oidc_settings.OIDC_OP_ISSUER
    if not checks.add("issuer", bool(issuer), issuer or "OIDC_OP_ISSUER is not set"):
        return checks.results
    _check_client(checks)
    metadata = _metadata(checks, issuer)
    if metadata is None:
        return checks.results
    _check_algorithms(checks, metadata)
    _check_jwks(checks, metadata.get("jwks_uri"))
    _check_endpoints(checks, metadata)
    if client_credentials:
        _check_client_credentials(checks, metadata.get("token_endpoint"))
    return checks.results
