"""Who calls with ``Authorization: Bearer``: a user, or a machine (a client of its own).

A JWT access token (RFC 9068) is checked locally (``access_tokens.py``); an opaque one by
the provider's RFC 7662 introspection endpoint, whose answers are cached briefly under a
hash of the token (never the token itself, never past its ``exp``). Either way the token
must be ours: issued by our provider, for our API (introspection: to our client or naming
it in ``aud``). A token about an end user authenticates the user of (issuer, subject),
created like a first sign-in when the provider allows creating users; a client-credentials
token (no end user: ``sub`` missing or equal to ``client_id``) is a machine caller.

With several providers a token only ever goes to the provider that issued it: a JWT names
its issuer (``iss``, and the audience decides when two providers share an issuer), and an
issuer this site does not know is refused in words without any call; an opaque token
names no issuer and is introspected at the provider ``default`` only.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from accounts.api.access_tokens import BearerError, looks_like_jwt, scopes_of, validate_access_token
from accounts.api.dpop import ProofCheck, bound_as_bearer, bound_jkt
from accounts.conf import oidc_settings
from accounts.errors import AccountError
from accounts.oidc.discovery import endpoint
from accounts.oidc.token_endpoint import token_request
from accounts.oidc.tokens import unverified_claims
from accounts.providers.provider import DEFAULT_SLUG, Provider
from accounts.providers.registry import (
    UnknownProvider,
    default_provider,
    provider_for_token,
    provider_get,
)
from accounts.users.identities import user_for_subject

__all__ = ["Caller", "authenticate_bearer"]


@dataclass(frozen=True)
class Caller:
    """The caller a valid bearer token stands for."""

    issuer: str
    subject: str
    client_id: str
    scopes: frozenset[str]
    user: Any = None  # None for a machine caller
    provider: str | None = None  # the slug of the provider that issued the token or session
    dpop: bool = False  # authenticated by a DPoP-bound token and its proof (RFC 9449)

    @property
    def is_machine(self) -> bool:
        return self.user is None


def issued_to_us(answer: dict[str, Any], provider: Provider | None = None) -> bool:
    """Whether an introspection answer names this site as the token's client or audience."""
    client_id = (provider or default_provider()).client_id
    aud = answer.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    return answer.get("client_id") == client_id or client_id in audiences


def token_provider(token: str) -> Provider:
    """The provider that issued this token: by its ``iss`` when a JWT, else ``default``."""
    claims = unverified_claims(token) if looks_like_jwt(token) else {}
    try:
        if claims.get("iss") is not None:
            return provider_for_token(claims.get("iss"), claims.get("aud"))
        return provider_get(DEFAULT_SLUG)
    except UnknownProvider as exc:
        raise BearerError(
            "unknown_issuer",
            "This access token was issued by an identity provider this site does not know.",
        ) from exc


def introspect(token: str, provider: Provider | None = None) -> dict[str, Any]:
    """The provider's verdict on a token: ``{}`` unless active, ours and from its issuer."""
    provider = provider or default_provider()
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


# What an introspection answer is kept for: the caller, its scopes, a new user's fields.
KEPT_CLAIMS = (
    *("active", "iss", "sub", "client_id", "scope", "scp", "exp", "cnf"),
    *("preferred_username", "email", "email_verified", "name", "given_name", "family_name"),
)


def introspected_claims(token: str, provider: Provider | None = None) -> dict[str, Any]:
    """The introspection answer of an opaque token, from the cache or the provider."""
    provider = provider or default_provider()
    key = provider.cache_key("bearer", hashlib.sha256(token.encode()).hexdigest())
    cached = cache.get(key)
    if cached is None:
        cached = introspect(token, provider)
        ttl = oidc_settings.OIDC_BEARER_CACHE_TTL
        if isinstance(cached.get("exp"), (int, float)):
            ttl = max(1, min(ttl, int(cached["exp"] - time.time())))
        cached = {name: cached[name] for name in KEPT_CLAIMS if name in cached}
        cache.set(key, cached, ttl)  # a refusal is remembered too
    if not cached:
        raise BearerError()
    return cached


def _is_machine(claims: dict[str, Any]) -> bool:
    sub = claims.get("sub")
    return not sub or sub == claims.get("client_id")


def authenticate_bearer(token: str, *, proof: ProofCheck | None = None) -> Caller:
    """Return the caller of a valid access token; raise ``BearerError`` or ``AccountError``.

    ``proof``: the request came as ``Authorization: DPoP``; its proof must hold the key the
    token is bound to. Without one, a bound token is refused (RFC 9449 7.2).
    """
    if not token:
        raise BearerError("missing_token", "No access token was sent.")
    provider = token_provider(token)
    claims = (
        validate_access_token(token, provider)
        if looks_like_jwt(token)
        else introspected_claims(token, provider)
    )
    if proof is not None:
        proof.finish(claims)
    elif bound_jkt(claims):
        raise bound_as_bearer()
    issuer, slug = provider.issuer, provider.slug
    client_id = str(claims.get("client_id") or "")
    scopes = scopes_of(claims)
    if _is_machine(claims):
        return Caller(
            issuer=issuer,
            subject=client_id,
            client_id=client_id,
            scopes=scopes,
            provider=slug,
            dpop=proof is not None,
        )
    if not isinstance(claims["sub"], str):
        raise BearerError("missing_claim", "The access token does not say whose it is.")
    try:
        user = user_for_subject(issuer=issuer, claims=claims, provider=provider)
    except AccountError as exc:
        raise BearerError(exc.code, exc.message) from exc
    return Caller(
        issuer=issuer,
        subject=claims["sub"],
        client_id=client_id,
        scopes=scopes,
        user=user,
        provider=slug,
        dpop=proof is not None,
    )
