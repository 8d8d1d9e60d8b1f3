"""Provider metadata: explicit endpoint settings, else the discovery document (cached)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache

from .conf import oidc_settings
from .errors import ProviderError
from .http import get_json

logger = logging.getLogger(__name__)

# metadata name -> the setting that overrides it
ENDPOINT_SETTINGS = {
    "authorization_endpoint": "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "token_endpoint": "OIDC_OP_TOKEN_ENDPOINT",
    "userinfo_endpoint": "OIDC_OP_USER_ENDPOINT",
    "jwks_uri": "OIDC_OP_JWKS_ENDPOINT",
    "end_session_endpoint": "OIDC_OP_LOGOUT_ENDPOINT",
}


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _cache_key(issuer: str) -> str:
    return f"oidc:discovery:{issuer}"


def fetch_metadata(issuer: str) -> dict[str, Any]:
    """Fetch the discovery document and check that it names exactly our issuer."""
    document = get_json(discovery_url(issuer))
    if document.get("issuer") != issuer:
        logger.warning(
            "discovery issuer mismatch: configured=%s document=%s", issuer, document.get("issuer")
        )
        raise ProviderError(
            "discovery_issuer_mismatch",
            "The identity provider's configuration does not match this site's settings.",
        )
    return document


def get_metadata() -> dict[str, Any]:
    """Return the provider metadata: discovery (when on) overlaid by explicit settings."""
    issuer = oidc_settings.OIDC_OP_ISSUER
    metadata: dict[str, Any] = {"issuer": issuer}
    if oidc_settings.discovery_enabled:
        document = cache.get(_cache_key(issuer))
        if document is None:
            document = fetch_metadata(issuer)
            cache.set(_cache_key(issuer), document, oidc_settings.OIDC_DISCOVERY_CACHE_TTL)
        metadata.update(document)
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


def clear_cache() -> None:
    cache.delete(_cache_key(oidc_settings.OIDC_OP_ISSUER))
