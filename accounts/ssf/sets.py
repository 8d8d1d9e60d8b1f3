"""Verification of a Security Event Token (RFC 8417) as SSF 1.0 section 4 and RFC 8935 ask.

Like a back-channel logout token: signed with the transmitter's keys (the ``jwks_uri`` of
its SSF configuration, else the provider's JWKS; an unknown ``kid`` refetches on the budget
of tokens anybody can send), never ``none`` nor HMAC, ``typ`` ``secevent+jwt``, exactly the
provider's ``iss``, the site's ``aud`` (``OIDC_SSF_AUDIENCE``, default the client id),
``iat`` neither in the future nor older than ``OIDC_SSF_MAX_AGE``, and a ``jti`` (used once:
``receiver`` remembers it). Every refusal is a ``SetRefused`` with the RFC 8935 code.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from accounts.conf import oidc_settings
from accounts.errors import ProviderError, TokenError
from accounts.oidc import jwks
from accounts.oidc.tokens import pyjwt_reason
from accounts.providers.provider import Provider
from accounts.ssf.errors import SetRefused
from accounts.ssf.transmitter import set_keys_uri

SET_TYPES = {"secevent+jwt", "application/secevent+jwt"}
ASYMMETRIC = {
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
}  # fmt: skip
REQUIRED = ["iss", "aud", "iat", "jti", "events"]

_WORDS = {
    "wrong_type": (
        "invalid_request",
        "The token is not a Security Event Token (its typ is not secevent+jwt).",
    ),
    "alg_not_allowed": (
        "invalid_request",
        "The Security Event Token must be signed with the transmitter's key; unsigned and "
        "HMAC-signed tokens are refused.",
    ),
    "wrong_issuer": ("invalid_issuer", "The Security Event Token names another issuer."),
    "wrong_audience": ("invalid_audience", "The Security Event Token is for another audience."),
    "unknown_key": ("invalid_key", "The Security Event Token is signed with an unknown key."),
    "bad_signature": ("invalid_key", "The Security Event Token's signature is not valid."),
    "missing_claim": (
        "invalid_request",
        "The Security Event Token lacks iss, aud, iat, jti or events.",
    ),
    "expired": ("invalid_request", "The Security Event Token has expired."),
    "issued_in_future": ("invalid_request", "The Security Event Token was issued in the future."),
    "stale": ("invalid_request", "The Security Event Token is too old to be acted on."),
    "bad_events": ("invalid_request", "The Security Event Token's events are not readable."),
    "malformed": ("invalid_request", "The Security Event Token could not be read."),
    "replayed": ("invalid_request", "This Security Event Token (its jti) was already received."),
}


def refused(reason: str) -> SetRefused:
    err, words = _WORDS[reason]
    return SetRefused(err, words, reason=reason)


def set_audience(provider: Provider) -> str:
    """The ``aud`` this provider's SETs must carry."""
    return provider.ssf_audience or provider.client_id


def _key(header: dict[str, Any], provider: Provider) -> Any:
    kid = header.get("kid")
    try:
        return jwks.signing_key(
            header["alg"],
            kid if isinstance(kid, str) else None,
            from_provider=False,
            provider=provider,
            uri=set_keys_uri(provider),
        )
    except TokenError as exc:
        raise refused("unknown_key") from exc
    except ProviderError as exc:
        raise SetRefused(
            "temporarily_unavailable",
            "The transmitter's keys cannot be fetched right now; send the event again later.",
            reason="keys_unavailable",
            status=503,
        ) from exc


def check_header(header: dict[str, Any]) -> None:
    if str(header.get("typ", "")).lower() not in SET_TYPES:
        raise refused("wrong_type")
    if header.get("alg") not in ASYMMETRIC:
        raise refused("alg_not_allowed")


def verify_set(
    token: str, header: dict[str, Any], unverified: dict[str, Any], provider: Provider
) -> dict[str, Any]:
    """The verified claims of one SET of ``provider``; ``SetRefused`` otherwise."""
    check_header(header)
    if unverified.get("iss") != provider.issuer:
        raise refused("wrong_issuer")
    key = _key(header, provider)
    leeway = oidc_settings.OIDC_CLOCK_LEEWAY
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[header["alg"]],
            audience=set_audience(provider),
            issuer=provider.issuer,
            leeway=leeway,
            options={"require": REQUIRED, "strict_aud": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise refused(pyjwt_reason(exc)) from exc
    except (ValueError, TypeError, RecursionError) as exc:
        raise refused("malformed") from exc
    _check_claims(claims, leeway)
    return claims


def _check_claims(claims: dict[str, Any], leeway: float) -> None:
    iat = claims.get("iat")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool):
        raise refused("missing_claim")
    now = time.time()
    if iat > now + leeway:
        raise refused("issued_in_future")
    if now - iat > oidc_settings.OIDC_SSF_MAX_AGE + leeway:
        raise refused("stale")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise refused("missing_claim")
    events = claims.get("events")
    if not isinstance(events, dict) or not events:
        raise refused("bad_events")
    if not all(isinstance(name, str) and isinstance(body, dict) for name, body in events.items()):
        raise refused("bad_events")
