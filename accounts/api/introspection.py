"""Opaque bearer tokens: RFC 7662 introspection with a destination and a budget.

An opaque token names no issuer, and anybody can send one. So:

- **Destination.** Only providers that opt in (``introspect``, ``OIDC_OP_INTROSPECT``) are
  asked. A provider with an ``opaque_token_prefix`` gets the tokens that start with it (the
  longest prefix wins); the tokens without a matching prefix go to the one opted-in provider
  that has no prefix. With none, or several, such providers the token is refused in words:
  it is never shown to a provider that may not have issued it.
- **Budget.** Tokens the provider refuses cost at most ``OIDC_INTROSPECTION_BUDGET`` calls per
  client address (IPv6: per /64) and provider a minute; past that the caller's opaque tokens
  are refused in words without a call until the minute ends.
- **Memory.** Answers are kept under the token's SHA-256 (never the token): an accepted one
  for ``OIDC_BEARER_CACHE_TTL`` and never past its ``exp``, a refusal for
  ``OIDC_INTROSPECTION_NEGATIVE_TTL`` seconds, so a repeated junk token costs nothing.

Counters and answers live in ``accounts.security.shared_cache``, shared by every process and
kept in this process while the shared cache is down.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from typing import Any

from accounts.api.access_tokens import BearerError
from accounts.conf import oidc_settings
from accounts.oidc.discovery import endpoint
from accounts.oidc.token_endpoint import token_request
from accounts.providers.provider import Provider
from accounts.providers.registry import enabled_providers
from accounts.security import shared_cache

logger = logging.getLogger("accounts.api")

BUDGET_WINDOW = 60  # seconds

# What an introspection answer is kept for: the caller, its scopes, a new user's fields.
KEPT_CLAIMS = (
    *("active", "iss", "sub", "client_id", "scope", "scp", "exp", "cnf"),
    *("preferred_username", "email", "email_verified", "name", "given_name", "family_name"),
)


def opaque_token_provider(token: str) -> Provider:
    """The one provider this opaque token may be shown to, or ``BearerError`` in words."""
    candidates = [p for p in enabled_providers() if p.introspect]
    prefixed = [p for p in candidates if p.opaque_token_prefix]
    matching = [p for p in prefixed if token.startswith(p.opaque_token_prefix)]
    if matching:
        return max(matching, key=lambda p: len(p.opaque_token_prefix))
    plain = [p for p in candidates if not p.opaque_token_prefix]
    if len(plain) == 1:
        return plain[0]
    if not candidates:
        raise BearerError(
            "opaque_unsupported",
            "This site accepts only JWT access tokens: no identity provider is set up to check "
            "opaque ones.",
        )
    raise BearerError(
        "opaque_unrouted",
        "This site cannot tell which identity provider issued this access token, so it does "
        "not send it to any.",
    )


def _address_key(address: str | None) -> str:
    """A client address for the budget: IPv6 by its /64, which one customer usually holds."""
    if not address:
        return "unknown"
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address) + "/64"
    return str(ip)


def _budget_key(provider: Provider, address: str | None, now: float) -> str:
    bucket = int(now // BUDGET_WINDOW)
    return provider.cache_key("introspect-budget", _address_key(address), str(bucket))


def _budget_spent(key: str) -> bool:
    return int(shared_cache.get(key, 0) or 0) >= int(oidc_settings.OIDC_INTROSPECTION_BUDGET)


def _spend(key: str) -> None:
    if not shared_cache.add(key, 1, BUDGET_WINDOW * 2):
        try:
            shared_cache.incr(key)
        except ValueError:  # expired between add and incr
            shared_cache.add(key, 1, BUDGET_WINDOW * 2)


def issued_to_us(answer: dict[str, Any], provider: Provider) -> bool:
    """Whether an introspection answer names this site as the token's client or audience."""
    aud = answer.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    return answer.get("client_id") == provider.client_id or provider.client_id in audiences


def introspect(token: str, provider: Provider) -> dict[str, Any]:
    """The provider's verdict on a token: ``{}`` unless active, ours and from its issuer."""
    url = endpoint("introspection_endpoint", required=False, provider=provider)
    if not url:
        raise BearerError(
            "bearer_unsupported",
            "Access tokens cannot be checked: the identity provider offers no introspection.",
        )
    answer = token_request(
        url, {"token": token, "token_type_hint": "access_token"}, provider=provider
    )
    valid = (
        answer.get("active") is True
        and issued_to_us(answer, provider)
        and answer.get("iss", provider.issuer) == provider.issuer
    )
    return answer if valid else {}


def introspected_claims(
    token: str, provider: Provider, *, client: str | None = None
) -> dict[str, Any]:
    """The kept claims of an active opaque token of ours; ``BearerError`` otherwise.

    From the cache when this token was judged lately; else one introspection call, on the
    budget of the caller's address when the answer is a refusal.
    """
    key = provider.cache_key("bearer", hashlib.sha256(token.encode()).hexdigest())
    cached = shared_cache.get(key)
    if cached is None:
        now = time.time()
        budget = _budget_key(provider, client, now)
        if _budget_spent(budget):
            raise BearerError(
                "introspection_budget",
                "Too many unknown access tokens came from your address; wait a minute and "
                "send a valid one.",
            )
        answer = introspect(token, provider)
        cached = {name: answer[name] for name in KEPT_CLAIMS if name in answer}
        if cached:
            ttl = int(oidc_settings.OIDC_BEARER_CACHE_TTL)
            if isinstance(cached.get("exp"), (int, float)):
                ttl = max(1, min(ttl, int(cached["exp"] - now)))
        else:
            _spend(budget)
            ttl = int(oidc_settings.OIDC_INTROSPECTION_NEGATIVE_TTL)
        shared_cache.set(key, cached, ttl)
    if not cached:
        raise BearerError()
    return cached
