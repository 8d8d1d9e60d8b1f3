"""Who calls with ``Authorization: Bearer``: a user, or a machine (a client of its own).

A JWT access token (RFC 9068) is checked locally (``access_tokens.py``); an opaque one by
the provider's RFC 7662 introspection endpoint, whose answers are cached briefly under a
hash of the token (never the token itself, never past its ``exp``). Either way the token
must be ours: issued by our provider, for our API (introspection: to our client or naming
it in ``aud``). A token about an end user authenticates the user of (issuer, subject),
created like a first sign-in when the provider allows creating users; a client-credentials
token (no end user: ``sub`` missing or equal to ``client_id``) is a machine caller.

With several providers a token only ever goes to the provider that issued it: a JWT names
its issuer (``iss``; one issuer belongs to one provider), and an
issuer this site does not know is refused in words without any call; an opaque token
names no issuer and goes only to the one provider ``introspection`` routes it to, on a
budget per client address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.api.access_tokens import (
    BearerError,
    check_not_before,
    fail,
    looks_like_jwt,
    scopes_of,
    validate_access_token,
)
from accounts.api.dpop import ProofCheck, bound_as_bearer, bound_jkt
from accounts.api.introspection import introspected_claims, opaque_token_provider
from accounts.errors import AccountError
from accounts.oidc.jose_safe import MAX_TOKEN_BYTES, UnreadableToken, check_size
from accounts.oidc.tokens import unverified_claims
from accounts.providers.provider import DEFAULT_SLUG, Provider
from accounts.providers.registry import (
    UnknownProvider,
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


def token_provider(token: str) -> Provider:
    """The provider that issued this token: by its ``iss`` when a JWT, else by the opaque rule."""
    if not looks_like_jwt(token):
        return opaque_token_provider(token)
    claims = unverified_claims(token, limit=MAX_TOKEN_BYTES)
    try:
        if claims.get("iss") is not None:
            return provider_for_token(claims.get("iss"), claims.get("aud"))
        return provider_get(DEFAULT_SLUG)
    except UnknownProvider as exc:
        raise BearerError(
            "unknown_issuer",
            "This access token was issued by an identity provider this site does not know.",
        ) from exc


def _is_machine(claims: dict[str, Any]) -> bool:
    sub = claims.get("sub")
    return not sub or sub == claims.get("client_id")


def authenticate_bearer(
    token: str, *, client: str | None = None, proof: ProofCheck | None = None
) -> Caller:
    """Return the caller of a valid access token; raise ``BearerError`` or ``AccountError``.

    ``client`` is the caller's address: opaque tokens refused by the provider are counted
    against it (``introspection``). ``proof``: the request came as ``Authorization: DPoP``;
    its proof must hold the key the token is bound to. Without one, a bound token is refused
    (RFC 9449 7.2).
    """
    if not token:
        raise BearerError("missing_token", "No access token was sent.")
    try:
        check_size(token)  # opaque tokens too: none longer goes to a provider
    except UnreadableToken as exc:
        raise fail(exc.code) from exc
    provider = token_provider(token)
    claims = (
        validate_access_token(token, provider)
        if looks_like_jwt(token)
        else introspected_claims(token, provider, client=client)
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
    check_not_before(claims, user.pk)
    return Caller(
        issuer=issuer,
        subject=claims["sub"],
        client_id=client_id,
        scopes=scopes,
        user=user,
        provider=slug,
        dpop=proof is not None,
    )
