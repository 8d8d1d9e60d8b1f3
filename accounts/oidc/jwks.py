"""The provider's signing keys, cached in Django's cache and rotated without a restart.

The JWKS document is kept in the shared cache (Redis when ``CACHE_URL`` says so), so every
process reuses one fetch. It is refreshed after ``OIDC_JWKS_CACHE_TTL``; when the provider is
down, the keys already cached keep working.

A token signed with an unknown ``kid`` may trigger a refetch, on one of two budgets:

* a token the site fetched from the provider itself (an ID token from the token endpoint,
  signed userinfo) always may: the provider has rotated its key. Concurrent refetches are
  coalesced into one (a lock on the shared cache, and a waiter uses what the holder stored);
* a token anybody can send (a logout token, a bearer token) refetches at most once per
  ``kid`` and at most once overall per ``OIDC_JWKS_REFETCH_INTERVAL``, on counters of its
  own, so random ``kid`` values can neither hammer the provider nor block sign-in.

josepy parses the keys; PyJWT (in ``tokens.py``) checks the signatures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import josepy
import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import OKPAlgorithm

from accounts import metrics
from accounts.conf import oidc_settings
from accounts.errors import ProviderError, TokenError
from accounts.oidc.discovery import endpoint
from accounts.oidc.http import get_json
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider
from accounts.security import shared_cache
from accounts.security.locks import CacheUnavailable, LockTimeout, cache_lock

logger = logging.getLogger("accounts.jwks")  # the name operators filter on, kept across moves

# Long enough to outlive any provider outage we want to ride out; freshness is decided by
# the ``fetched_at`` stamp inside the cached value, not by the cache's own expiry.
_STALE_KEEP_SECONDS = 7 * 24 * 3600

_KTY_FOR_ALG_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}

# Parsed keys per process, keyed by the key's JSON: parsing is the slow part.
_parsed: dict[str, Any] = {}


@dataclass(frozen=True)
class _KeySet:
    """One provider's JWKS URI; every cache key of it carries the provider's prefix."""

    provider: Provider
    uri: str

    def key(self, kind: str, *parts: str) -> str:
        return self.provider.cache_key(kind, self.uri, *parts)


def _cache_key(keyset: _KeySet) -> str:
    return keyset.key("jwks")


def _fetch(keyset: _KeySet, budget: str = "ttl") -> dict[str, Any]:
    """Fetch the keys; ``budget`` says why (``ttl``, ``provider`` rotation, ``outsider``)."""
    metrics.jwks_fetch(keyset.provider.slug, budget)
    uri = keyset.uri
    document = get_json(uri)
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ProviderError("jwks_malformed", "The identity provider's keys could not be read.")
    entry = {"keys": [k for k in keys if isinstance(k, dict)], "fetched_at": time.time()}
    shared_cache.set(_cache_key(keyset), entry, _STALE_KEEP_SECONDS, keep_local=True)
    logger.info(
        "fetched JWKS of %s from %s (%d keys)", keyset.provider.slug, uri, len(entry["keys"])
    )
    return entry


def _cached(keyset: _KeySet) -> dict[str, Any] | None:
    return shared_cache.get(_cache_key(keyset), remember=True)


def _load(keyset: _KeySet) -> list[dict[str, Any]]:
    """The cached keys while fresh, else fetched again (stale keys while unreachable)."""
    entry = _cached(keyset)
    if entry and time.time() - entry["fetched_at"] < oidc_settings.OIDC_JWKS_CACHE_TTL:
        return entry["keys"]
    try:
        return _fetch(keyset)["keys"]
    except ProviderError as exc:
        if entry:
            logger.warning("JWKS endpoint unavailable, using cached keys: %s", exc.detail)
            return entry["keys"]
        raise


# Coalesces the refetches of one process when the cache is local to it.
_refetch_lock = threading.Lock()


def _refetch(keyset: _KeySet, *, asked_at: float) -> list[dict[str, Any]]:
    """Fetch the keys again unless somebody did since ``asked_at``; one fetch at a time."""
    wait = 2 * oidc_settings.OIDC_TIMEOUT
    try:
        with _refetch_lock, cache_lock(keyset.key("jwks-fetching"), ttl=wait + 5, wait=wait):
            return _fetch_unless_fetched(keyset, asked_at)
    except LockTimeout:
        entry = _cached(keyset)
        return entry["keys"] if entry else []
    except CacheUnavailable:  # coalesced within this process only, while the cache is down
        with _refetch_lock:
            return _fetch_unless_fetched(keyset, asked_at)


def _fetch_unless_fetched(keyset: _KeySet, asked_at: float) -> list[dict[str, Any]]:
    """The keys a concurrent caller fetched since ``asked_at``, else fetched now (lock held)."""
    if not _not_fetched_since(keyset, asked_at):
        return _cached(keyset)["keys"]
    return _fetch(keyset, "provider")["keys"]


def _not_fetched_since(keyset: _KeySet, moment: float) -> bool:
    entry = _cached(keyset)
    return not entry or entry["fetched_at"] < moment


def _outsider_may_refetch(keyset: _KeySet, kid: str | None) -> bool:
    """The budget of tokens anybody can send: once per ``kid`` and once overall per interval."""
    interval = oidc_settings.OIDC_JWKS_REFETCH_INTERVAL
    marker = hashlib.sha256(str(kid).encode()).hexdigest()[:32]
    if not shared_cache.add(keyset.key("jwks-outsider-kid", marker), 1, interval):
        return False
    return shared_cache.add(keyset.key("jwks-outsider"), 1, interval)


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
        if jwk.get("kty") == "OKP":  # EdDSA (FAPI 2.0): josepy does not read OKP keys
            return _okp_public_key(jwk)
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


def _okp_public_key(jwk: dict[str, Any]) -> Any:
    try:
        key = OKPAlgorithm.from_jwk(json.dumps(jwk))
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise TokenError("bad_key", "The identity provider's signing key is unusable.") from exc
    return key


def signing_key(
    alg: str,
    kid: str | None,
    *,
    from_provider: bool,
    provider: Provider | None = None,
    uri: str | None = None,
) -> Any:
    """Return the key of ``provider`` (default: ``default``) that should have signed a token.

    ``from_provider``: the site fetched this token from the provider itself, so an unknown
    ``kid`` means a rotated key; otherwise the token came from outside and refetches on the
    outsiders' budget. Keys, caches and budgets are the provider's own. ``uri``: another
    key set of the provider's than its ``jwks_uri`` (its Shared Signals transmitter's).
    """
    provider = provider or default_provider()
    asked_at = time.time()
    keyset = _KeySet(provider, uri or endpoint("jwks_uri", provider=provider))
    jwk = _select(_load(keyset), alg, kid)
    if jwk is None:
        if from_provider:
            logger.info("no JWKS key for kid=%.40r alg=%s, refetching", kid, alg)
            try:
                jwk = _select(_refetch(keyset, asked_at=asked_at), alg, kid)
            except ProviderError as exc:
                raise ProviderError(
                    "jwks_unavailable",
                    "The identity provider signed in with a new key that this site could not "
                    "fetch yet. Please try again in a moment.",
                    detail=f"unknown kid={str(kid)[:40]!r}, refetch failed: {exc.detail}",
                ) from exc
        elif _not_fetched_since(keyset, asked_at) and _outsider_may_refetch(keyset, kid):
            logger.info(
                "no JWKS key for kid=%.40r alg=%s, refetching (token from outside)", kid, alg
            )
            try:
                jwk = _select(_fetch(keyset, "outsider")["keys"], alg, kid)
            except ProviderError:
                jwk = None
    if jwk is None:
        raise TokenError("unknown_key", "The sign-in token was signed with an unknown key.")
    return public_key(jwk)
