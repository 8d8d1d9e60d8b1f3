"""Provider metadata: explicit endpoint settings, else the discovery document (cached)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import cache

from .conf import oidc_settings
from .errors import ConfigurationError, ProviderError
from .http import get_json

logger = logging.getLogger(__name__)

# metadata name -> the setting that overrides it
ENDPOINT_SETTINGS = {
    "authorization_endpoint": "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "token_endpoint": "OIDC_OP_TOKEN_ENDPOINT",
    "userinfo_endpoint": "OIDC_OP_USER_ENDPOINT",
    "jwks_uri": "OIDC_OP_JWKS_ENDPOINT",
    "end_session_endpoint": "OIDC_OP_LOGOUT_ENDPOINT",
    "introspection_endpoint": "OIDC_OP_INTROSPECTION_ENDPOINT",
}


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _cache_key(issuer: str) -> str:
    return f"oidc:discovery:{issuer}"


def fetch_metadata(issuer: str) -> dict[str, Any]:
    """Fetch the discovery document and check that it names exactly our issuer."""
    document = get_json(discovery_url(issuer))
    if document.get("issuer") != issuer:
        raise ConfigurationError(
            "discovery_issuer_mismatch",
            "Sign-in is misconfigured: the identity provider's configuration does not match "
            "this site's settings. Please tell the site's administrators.",
            detail=f"the discovery document names issuer={str(document.get('issuer'))[:200]!r}, "
            f"OIDC_OP_ISSUER is {issuer!r}: they must be exactly equal",
        )
    return document


# The document is kept well past its TTL so that it can stand in while the provider is down.
_STALE_KEEP_SECONDS = 7 * 24 * 3600


def _document(issuer: str) -> dict[str, Any]:
    """The discovery document: cached, refreshed after the TTL, stale while unreachable."""
    entry = cache.get(_cache_key(issuer))
    if entry and time.time() - entry["fetched_at"] < oidc_settings.OIDC_DISCOVERY_CACHE_TTL:
        return entry["document"]
    try:
        document = fetch_metadata(issuer)
    except ProviderError as exc:
        if entry:
            logger.warning("discovery unavailable, using the cached document: %s", exc.detail)
            return entry["document"]
        raise
    entry = {"document": document, "fetched_at": time.time()}
    cache.set(_cache_key(issuer), entry, _STALE_KEEP_SECONDS)
    return document


def get_metadata() -> dict[str, Any]:
    """Return the provider metadata: discovery (when on) overlaid by explicit settings."""
    issuer = oidc_settings.OIDC_OP_ISSUER
    metadata: dict[str, Any] = {"issuer": issuer}
    if oidc_settings.discovery_enabled:
        metadata.update(_document(issuer))
    for name, setting in ENDPOINT_SETTINGS.items():
        value = getattr(oidc_settings, setting)
        if value:
            metadata[name] = value
    return metadata


def endpoint(name: str, *, required: bool = True) -> str:
    """Return one endpoint URL (``token_endpoint``, ``jwks_uri``, ...)."""
    url = get_metadata().get(name) or ""
    if required and not url:
        raise ProviderError(
            "endpoint_missing", "This site's identity provider settings are incomplete."
        )
    return url
