"""RFC 9068 JWT access tokens, checked locally with the provider's cached keys.

No provider request in steady state: the signature is checked with the JWKS in the cache.
The rules: ``typ`` is ``at+jwt`` (or one of ``OIDC_ACCESS_TOKEN_TYPES``, for providers whose
access tokens say ``JWT``); the algorithm is on the allow-list and asymmetric (never
``none``, never HMAC: a public key must not become an HMAC secret); ``iss`` is exactly the
provider's issuer (checked before any key is looked up, so a foreign token costs nothing);
``aud`` contains ``OIDC_API_AUDIENCE``; ``exp``, ``nbf`` and ``iat`` hold with the clock
leeway; ``client_id`` is present and ``nonce`` absent, so an ID token (whose audience is
our client id too) is never taken for an access token. An unknown ``kid`` refetches the
JWKS on the budget of tokens anybody can send (``jwks.py``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any

import jwt

from accounts.conf import oidc_settings
from accounts.errors import OIDCError, TokenError
from accounts.oidc import jwks
from accounts.oidc.jose_safe import UnreadableToken, check_size, read_jws
from accounts.oidc.tokens import pyjwt_reason
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider
from accounts.users.not_before import tokens_not_before


class BearerError(OIDCError):
    """A bearer token that cannot be accepted: 401 ``invalid_token`` (RFC 6750 3.1)."""

    code = "invalid_token"
    message = "The access token is not valid or has expired."
    status = 401


REASONS = {
    "malformed": "The access token could not be read.",
    "too_large": "The access token is too long to be one this site accepts.",
    "wrong_type": "The token is not an access token (its typ header is not at+jwt).",
    "id_token": "An ID token cannot be used as an access token.",
    "alg_not_allowed": "The access token uses a signing algorithm this site does not accept.",
    "unknown_issuer": "The access token was issued by an identity provider this site does not "
    "know.",
    "unknown_key": "The access token was signed with a key the identity provider does not list.",
    "bad_signature": "The access token's signature is not valid.",
    "wrong_issuer": "The access token was issued by a different identity provider.",
    "wrong_audience": "The access token was issued for a different API.",
    "expired": "The access token has expired.",
    "issued_in_future": "The access token is not valid yet.",
    "missing_claim": "The access token is missing required information.",
    "revoked": "The access token was issued before the identity provider ended this user's "
    "sessions. Sign in again for a new one.",
}

REQUIRED = ["iss", "exp", "aud", "sub", "client_id", "iat"]


def fail(code: str) -> BearerError:
    return BearerError(code, REASONS.get(code, BearerError.message))


def looks_like_jwt(token: str) -> bool:
    """A JWS compact serialisation has three parts; anything else is an opaque token."""
    return token.count(".") == 2


def _provider(provider: Provider | None) -> Provider:
    return provider or default_provider()


def api_audience(provider: Provider | None = None) -> str:
    """``OIDC_API_AUDIENCE``, one for the site; unset: the client id of the token's provider."""
    return oidc_settings.OIDC_API_AUDIENCE or _provider(provider).client_id


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims WITHOUT any check, to choose the checks (size capped, one decode)."""
    try:
        return read_jws(token)
    except UnreadableToken as exc:
        raise fail(exc.code) from exc


def _checked_header(header: dict[str, Any], claims: dict[str, Any], provider: Provider) -> None:
    typ = str(header.get("typ", "")).lower()
    if _is_id_token(claims):
        raise fail("id_token")
    if typ not in {t.lower() for t in oidc_settings.OIDC_ACCESS_TOKEN_TYPES}:
        raise fail("wrong_type")
    alg = header["alg"]
    if alg == "none" or alg.startswith("HS") or alg not in provider.sign_algo:
        raise fail("alg_not_allowed")


def _is_id_token(claims: dict[str, Any]) -> bool:
    """Claims only an ID token carries (OIDC Core 2, 3.3.2.11); RFC 9068 tokens have none."""
    return any(name in claims for name in ("nonce", "at_hash", "c_hash"))


# Tokens this process has verified: a client sends the same token for minutes, and the
# signature check is the costly part. Kept under the token's SHA-256, never past its
# ``exp``, at most VERIFIED_MEMORY seconds (less than the JWKS cache keeps a withdrawn key),
# and only for the settings that judged it.
VERIFIED_MEMORY = 60
_MAX_REMEMBERED = 4096
_verified: OrderedDict[str, tuple[float, tuple[Any, ...], dict[str, Any]]] = OrderedDict()
_verified_lock = threading.Lock()


def _judges(provider: Provider) -> tuple[Any, ...]:
    return (
        provider.slug,
        provider.issuer,
        api_audience(provider),
        tuple(oidc_settings.OIDC_ACCESS_TOKEN_TYPES),
        tuple(provider.sign_algo),
    )


def validate_access_token(token: str, provider: Provider | None = None) -> dict[str, Any]:
    """Return the claims of a valid JWT access token of ``provider`` for this site's API."""
    provider = _provider(provider)
    try:
        check_size(token)  # the size cap, before even the hash
    except UnreadableToken as exc:
        raise fail(exc.code) from exc
    digest = hashlib.sha256(token.encode()).hexdigest()
    now = time.time()
    judges = _judges(provider)
    hit = _verified.get(digest)
    if hit is not None and hit[0] > now and hit[1] == judges:
        return hit[2]
    claims = _verify(token, provider)
    until = min(float(claims["exp"]), now + VERIFIED_MEMORY)
    with _verified_lock:
        _verified[digest] = (until, judges, claims)
        while len(_verified) > _MAX_REMEMBERED:
            _verified.popitem(last=False)
    return claims


def _verify(token: str, provider: Provider) -> dict[str, Any]:
    header, unverified = _peek(token)
    _checked_header(header, unverified, provider)
    if unverified.get("iss") != provider.issuer:
        raise fail("unknown_issuer")
    kid = header.get("kid")
    try:
        key = jwks.signing_key(
            header["alg"],
            kid if isinstance(kid, str) else None,
            from_provider=False,
            provider=provider,
        )
    except TokenError as exc:
        raise fail("unknown_key") from exc
    leeway = oidc_settings.OIDC_CLOCK_LEEWAY
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[header["alg"]],
            audience=api_audience(provider),
            issuer=provider.issuer,
            leeway=leeway,
            options={"require": REQUIRED, "strict_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise fail(pyjwt_reason(exc)) from exc
    except (ValueError, TypeError, RecursionError) as exc:  # read_jws let it by: never a 500
        raise fail("malformed") from exc
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise fail("missing_claim")
    if claims["iat"] > time.time() + leeway:
        raise fail("issued_in_future")
    return claims


def check_not_before(claims: dict[str, Any], user_id: int) -> None:
    """Refuse a token issued before the user's "not before" (a Shared Signals event).

    One shared-cache read. A token without ``iat`` (an introspected opaque one) cannot be
    judged here: the provider's introspection answers for it.
    """
    iat = claims.get("iat")
    if isinstance(iat, (int, float)) and iat < tokens_not_before(user_id):
        raise fail("revoked")


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """``scope`` (space-separated, RFC 9068 / RFC 7662) and ``scp`` (a list, Entra ID)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(str(item) for item in value)
    return frozenset(found)
