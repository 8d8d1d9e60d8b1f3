"""Validation of the JWTs the provider sends: ID tokens, signed userinfo, logout tokens.

Implements OpenID Connect Core 3.1.3.7 (ID token), 12.2 (refreshed ID token) and
Back-Channel Logout 1.0 section 2.6 (logout token). Every rejection raises ``TokenError``
with a stable ``code`` for the log and words for the person.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from django.utils.crypto import constant_time_compare

from accounts.conf import FAPI2_ALGORITHMS, oidc_settings
from accounts.errors import TokenError
from accounts.oidc import jwks
from accounts.oidc.jose_safe import (
    MAX_PROVIDER_TOKEN_BYTES,
    MAX_TOKEN_BYTES,
    UnreadableToken,
    read_jws,
)
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

REASONS = {
    "malformed": "The sign-in token could not be read.",
    "too_large": "The token is too long to be one this site accepts.",
    "alg_not_allowed": "The sign-in token uses a signing algorithm this site does not accept.",
    "bad_signature": "The sign-in token's signature is not valid.",
    "unknown_key": "The sign-in token was signed with a key the identity provider does not list.",
    "wrong_issuer": "The sign-in token was issued by a different identity provider.",
    "wrong_audience": "The sign-in token was issued for a different application.",
    "wrong_azp": "The sign-in token was issued for a different application.",
    "missing_azp": "The sign-in token names several audiences but not which one it is for.",
    "untrusted_audience": "The sign-in token is also meant for an application this site does "
    "not trust.",
    "expired": "The sign-in token has already expired: the identity provider's clock and this "
    "site's disagree. Please tell the site's administrators.",
    "issued_in_future": "The identity provider's clock is ahead of this site's (its sign-in "
    "token was issued in the future). Please tell the site's administrators; signing in again "
    "will not help until the clocks agree.",
    "missing_claim": "The sign-in token is missing required information.",
    "wrong_nonce": "The sign-in token does not belong to this sign-in attempt.",
    "sub_mismatch": "The identity provider returned details of a different user.",
    "nonce_present": "The logout token is not valid.",
    "missing_event": "The logout token is not valid.",
    "missing_sid_and_sub": "The logout token does not say whose session to end.",
    "replayed": "This logout token was already used.",
}


def _fail(code: str) -> TokenError:
    return TokenError(code, REASONS.get(code, TokenError.message))


def header_of(token: str, *, limit: int = MAX_TOKEN_BYTES) -> dict[str, Any]:
    """The JOSE header of a JWT, WITHOUT checking anything else; ``malformed`` if unreadable.

    Read by ``jose_safe.read_jws``: the size is capped at ``limit`` and no decoding failure
    escapes as anything but ``TokenError`` (``too_large`` or ``malformed``).
    """
    try:
        header, _ = read_jws(token, limit=limit)
    except UnreadableToken as exc:
        raise _fail(exc.code) from exc
    return header


def _provider(provider: Provider | None) -> Provider:
    return provider or default_provider()


def verification_key(
    header: dict[str, Any], *, from_provider: bool, provider: Provider | None = None
) -> Any:
    """Pick the provider's key for the token's algorithm, refusing what is not allowed.

    ``none`` is never accepted; an HMAC algorithm only when listed and then keyed with the
    client secret (OIDC Core 10.1); everything else comes from the JWKS, whose refetch
    budget depends on where the token came from (see ``jwks.signing_key``).
    """
    provider = _provider(provider)
    alg = header["alg"]
    if alg == "none" or alg not in provider.sign_algo:
        raise _fail("alg_not_allowed")
    if provider.fapi2 and alg not in FAPI2_ALGORITHMS:  # FAPI 2.0 5.4, whatever sign_algo says
        raise _fail("alg_not_allowed")
    if alg.startswith("HS"):
        secret = provider.client_secret
        if not secret:
            raise _fail("alg_not_allowed")
        return secret.encode()
    kid = header.get("kid")
    return jwks.signing_key(
        alg,
        kid if isinstance(kid, str) else None,
        from_provider=from_provider,
        provider=provider,
    )


_PYJWT_ERRORS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "issued_in_future"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidIssuedAtError, "missing_claim"),
]


def pyjwt_reason(exc: jwt.PyJWTError) -> str:
    """The reason code of one of PyJWT's validation errors."""
    for error_class, code in _PYJWT_ERRORS:
        if isinstance(exc, error_class):
            return code
    return "malformed"


def decode(
    token: str,
    *,
    require: list[str],
    from_provider: bool,
    iss_aud_optional: bool = False,
    provider: Provider | None = None,
) -> dict[str, Any]:
    """Verify signature, ``iss``, ``aud`` and times of a JWT from one provider.

    The keys, issuer, client id and algorithms are that provider's only: a token another
    provider issued or signed fails here. ``from_provider``: the site fetched the token
    from the provider itself (token endpoint, userinfo), as opposed to a token anybody can
    send (a logout token). ``iss_aud_optional``: check ``iss`` and ``aud`` only when present
    (signed userinfo, OIDC Core 5.3.2, where they are SHOULD, not MUST).
    """
    provider = _provider(provider)
    header = header_of(token, limit=MAX_PROVIDER_TOKEN_BYTES if from_provider else MAX_TOKEN_BYTES)
    key = verification_key(header, from_provider=from_provider, provider=provider)
    # Which optional claims the token carries (an unreadable one is fully checked, and fails).
    present = unverified_claims(token).keys() if iss_aud_optional else {"aud", "iss"}
    leeway = oidc_settings.OIDC_CLOCK_LEEWAY
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[header["alg"]],
            audience=provider.client_id,
            issuer=provider.issuer,
            leeway=leeway,
            options={
                "require": require,
                "verify_iat": True,
                "strict_aud": False,
                "verify_aud": not iss_aud_optional or "aud" in present,
                "verify_iss": not iss_aud_optional or "iss" in present,
            },
        )
    except jwt.PyJWTError as exc:
        raise _fail(pyjwt_reason(exc)) from exc
    except (ValueError, TypeError, RecursionError) as exc:  # read_jws let it by: never a 500
        raise _fail("malformed") from exc
    if "iss" in claims and claims["iss"] != provider.issuer:  # exact match
        raise _fail("wrong_issuer")
    iat = claims.get("iat")
    if isinstance(iat, (int, float)) and iat > time.time() + leeway:
        raise _fail("issued_in_future")
    if not isinstance(claims.get("sub", ""), str):
        raise _fail("missing_claim")
    _check_azp(claims, provider)
    return claims


def unverified_claims(token: str, *, limit: int = MAX_PROVIDER_TOKEN_BYTES) -> dict[str, Any]:
    """The payload of a token WITHOUT checking it: only to choose checks or name a log line.

    ``{}`` for anything ``jose_safe.read_jws`` cannot read, a token over ``limit`` included.
    """
    try:
        _, claims = read_jws(token, limit=limit)
    except UnreadableToken:
        return {}
    return claims


def _check_azp(claims: dict[str, Any], provider: Provider) -> None:
    """``azp`` rules, and no audience beyond the client id unless trusted (3.1.3.7 steps 3-5)."""
    client_id = provider.client_id
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    trusted = {client_id, None, *provider.trusted_audiences}
    if set(audiences) - trusted:
        raise _fail("untrusted_audience")
    if "azp" in claims:
        if claims["azp"] != client_id:
            raise _fail("wrong_azp")
    elif len(audiences) > 1:
        raise _fail("missing_azp")


def validate_id_token(
    token: str, *, nonce: str | None, provider: Provider | None = None
) -> dict[str, Any]:
    """Validate an ID token from the authorization-code exchange (OIDC Core 3.1.3.7)."""
    claims = decode(
        token, require=["iss", "aud", "exp", "iat", "sub"], from_provider=True, provider=provider
    )
    if not claims["sub"]:
        raise _fail("missing_claim")
    if nonce is not None:
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not constant_time_compare(token_nonce, nonce):
            raise _fail("wrong_nonce")
    return claims


def validate_refreshed_id_token(
    token: str, *, previous: dict[str, Any], provider: Provider | None = None
) -> dict[str, Any]:
    """Validate an ID token from a refresh grant (OIDC Core 12.2): same iss, sub and aud."""
    claims = decode(
        token, require=["iss", "aud", "exp", "iat", "sub"], from_provider=True, provider=provider
    )
    if claims["sub"] != previous.get("sub"):
        raise _fail("sub_mismatch")
    return claims


def validate_signed_userinfo(
    token: str, *, sub: str, provider: Provider | None = None
) -> dict[str, Any]:
    """Validate a userinfo answer sent as a JWT (OIDC Core 5.3.2)."""
    claims = decode(
        token, require=["sub"], from_provider=True, iss_aud_optional=True, provider=provider
    )
    if claims["sub"] != sub:
        raise _fail("sub_mismatch")
    return claims


def validate_logout_token(token: str, *, provider: Provider | None = None) -> dict[str, Any]:
    """Validate a back-channel logout token (Back-Channel Logout 1.0, section 2.6)."""
    claims = decode(
        token, require=["iss", "aud", "iat", "jti"], from_provider=False, provider=provider
    )
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise _fail("missing_event")
    if "nonce" in claims:
        raise _fail("nonce_present")
    if not claims.get("sid") and not claims.get("sub"):
        raise _fail("missing_sid_and_sub")
    return claims
