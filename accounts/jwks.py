"""The provider's signing keys, cached in Django's cache and rotated without a restart.

The JWKS document is kept in the shared cache (Redis when ``CACHE_URL`` says so), so every
process reuses one fetch. It is refreshed after ``OIDC_JWKS_CACHE_TTL``; a token signed with
an unknown ``kid`` triggers one refetch, at most once per ``OIDC_JWKS_REFETCH_INTERVAL``;
when the provider is down, the keys already cached keep working.
josepy parses the keys; PyJWT (in ``tokens.py``) checks the signatures.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import josepy
from cryptography.hazmat.primitives import serialization
from django.core.cache import cache

from .conf import oidc_settings
from .discovery import endpoint
from .errors import ProviderError, TokenError
from .http import get_json

logger = logging.getLogger(__name__)

# Long enough to outlive any provider outage we want to ride out; freshness is decided by
# the ``fetched_at`` stamp inside the cached value, not by the cache's own expiry.
_STALE_KEEP_SECONDS = 7 * 24 * 3600

_KTY_FOR_ALG_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC"}

# Parsed keys per process, keyed by the key's JSON: parsing is the slow part.
_parsed: dict[str, Any] = {}


def _cache_key(uri: str) -> str:
    return f"oidc:jwks:{uri}"


def _fetch(uri: str) -> dict[str, Any]:
    document = get_json(uri)
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ProviderError("jwks_malformed", "The identity provider's keys could not be read.")
    entry = {"keys": [k for k in keys if isinstance(k, dict)], "fetched_at": time.time()}
    cache.set(_cache_key(uri), entry, _STALE_KEEP_SECONDS)
    logger.info("fetched JWKS from %s (%d keys)", uri, len(entry["keys"]))
    return entry


def _load(uri: str, *, force: bool = False) -> list[dict[str, Any]]:
    entry = cache.get(_cache_key(uri))
    fresh = entry and time.time() - entry["fetched_at"] < oidc_settings.OIDC_JWKS_CACHE_TTL
    if entry and fresh and not force:
        return entry["keys"]
    try:
        return _fetch(uri)["keys"]
    except ProviderError:
        if entry:
            logger.warning("JWKS endpoint unavailable, using cached keys from %s", uri)
            return entry["keys"]
        raise


def _may_refetch(uri: str) -> bool:
    """Allow one forced refetch per interval, across every process sharing the cache."""
    return cache.add(f"oidc:jwks:refetch:{uri}", 1, oidc_settings.OIDC_JWKS_REFETCH_INTERVAL)


def _fits(jwk: dict[str, Any], alg: str) -> bool:
    if jwk.get("use", "sig") != "sig":
        return False
    if jwk.get("alg") and jwk["alg"] != alg:
        return False
    return jwk.get("kty") == _KTY_FOR_ALG_PREFIX.get(alg[:2])


def _select(keys: list[dict[str, Any]], alg: str, kid: str | None) -> dict[str, Any] | None:
    candidates = [k for k in keys if _fits(k, alg)]
    if kid is not None:
        candidates = [k for k in candidates if k.get("kid") == kid]
        return candidates[0] if candidates else None
    # No kid in the header: accept only when exactly one key can have signed it.
    return candidates[0] if len(candidates) == 1 else None


def public_key(jwk: dict[str, Any]) -> Any:
    """Turn one JWK into a cryptography public key (parsed once per process)."""
    marker = json.dumps(jwk, sort_keys=True)
    key = _parsed.get(marker)
    if key is None:
        try:
            parsed = josepy.JWK.from_json(jwk).public_key()
        except (josepy.errors.DeserializationError, KeyError, ValueError, TypeError) as exc:
            raise TokenError("bad_key", "The identity provider's signing key is unusable.") from exc
        pem = parsed.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key = serialization.load_pem_public_key(pem)
        if len(_parsed) > 64:
            _parsed.clear()
        _parsed[marker] = key
    return key


def signing_key(alg: str, kid: str | None) -> Any:
    """Return the public key that should have signed a token with this header."""
    uri = endpoint("jwks_uri")
    jwk = _select(_load(uri), alg, kid)
    if jwk is None and _may_refetch(uri):
        logger.info("no JWKS key for kid=%s alg=%s, refetching", kid, alg)
        jwk = _select(_load(uri, force=True), alg, kid)
    if jwk is None:
        raise TokenError("unknown_key", "The sign-in token was signed with an unknown key.")
    return public_key(jwk)
