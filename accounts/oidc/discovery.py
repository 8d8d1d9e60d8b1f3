"""Provider metadata: explicit endpoint settings, else the discovery document (cached)."""

from __future__ import annotations

import logging
import time
from typing import Any

from accounts.conf import oidc_settings
from accounts.errors import ConfigurationError, ProviderError
from accounts.oidc.http import get_json
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider
from accounts.security import shared_cache

logger = logging.getLogger("accounts.discovery")  # the name operators filter on, kept across moves


def _provider(provider: Provider | None) -> Provider:
    return provider or default_provider()


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def fetch_metadata(issuer: str, *, setting: str = "OIDC_OP_ISSUER") -> dict[str, Any]:
    """Fetch the discovery document and check that it names exactly our issuer.

    ``setting`` names where the issuer is configured, for the log line.
    """
    document = get_json(discovery_url(issuer))
    if document.get("issuer") != issuer:
        raise ConfigurationError(
            "discovery_issuer_mismatch",
            "Sign-in is misconfigured: the identity provider's configuration does not match "
            "this site's settings. Please tell the site's administrators.",
            detail=f"the discovery document names issuer={str(document.get('issuer'))[:200]!r}, "
            f"{setting} is {issuer!r}: they must be exactly equal",
        )
    return document


# The document is kept well past its TTL so that it can stand in while the provider is down.
_STALE_KEEP_SECONDS = 7 * 24 * 3600


def _document(provider: Provider) -> dict[str, Any]:
    """The discovery document: cached, refreshed after the TTL, stale while unreachable."""
    issuer, key = provider.issuer, provider.cache_key("discovery")
    entry = shared_cache.get(key, remember=True)
    if entry and time.time() - entry["fetched_at"] < oidc_settings.OIDC_DISCOVERY_CACHE_TTL:
        return entry["document"]
    try:
        setting = "OIDC_OP_ISSUER" if provider.is_default else f"{provider.slug}.issuer"
        document = fetch_metadata(issuer, setting=setting)
    except ProviderError as exc:
        if entry:
            logger.warning("discovery unavailable, using the cached document: %s", exc.detail)
            return entry["document"]
        raise
    entry = {"document": document, "fetched_at": time.time()}
    shared_cache.set(key, entry, _STALE_KEEP_SECONDS, keep_local=True)
    return document


def get_metadata(provider: Provider | None = None) -> dict[str, Any]:
    """Return a provider's metadata: discovery (when on) overlaid by explicit endpoints."""
    provider = _provider(provider)
    metadata: dict[str, Any] = {"issuer": provider.issuer}
    if provider.discovery_enabled:
        metadata.update(_document(provider))
    metadata.update(provider.endpoints)
    return metadata


def endpoint(name: str, *, required: bool = True, provider: Provider | None = None) -> str:
    """Return one endpoint URL (``token_endpoint``, ``jwks_uri``, ...) of a provider."""
    url = get_metadata(provider).get(name) or ""
    if required and not url:
        raise ProviderError(
            "endpoint_missing", "This site's identity provider settings are incomplete."
        )
    return url
