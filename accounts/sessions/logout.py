"""Back-channel logout: validate a logout token once, then end the sessions it names."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.conf import oidc_settings
from accounts.errors import TokenError
from accounts.models import UsedTokenId
from accounts.oidc.jose_safe import UnreadableToken, read_jws
from accounts.oidc.tokens import REASONS, validate_logout_token
from accounts.providers.registry import provider_for_token
from accounts.sessions import lifecycle as sessions

logger = logging.getLogger("accounts.logout")

# A logout token without exp is remembered this long to refuse a replay.
JTI_MEMORY = timedelta(minutes=10)


def remember_jti(*, issuer: str, jti: str, exp: float | None) -> None:
    """Record a used ``jti``; raise TokenError if it was seen before (section 2.6, step 8)."""
    UsedTokenId.objects.filter(expires_at__lt=timezone.now()).delete()
    expires = sessions.timestamp_to_datetime(exp) if exp else timezone.now() + JTI_MEMORY
    expires += timedelta(seconds=oidc_settings.OIDC_CLOCK_LEEWAY)
    try:
        with transaction.atomic():
            UsedTokenId.objects.create(issuer=issuer, jti=str(jti)[:255], expires_at=expires)
    except IntegrityError as exc:
        raise TokenError("replayed", REASONS["replayed"]) from exc


def accept_logout_token(token: str, *, request: HttpRequest | None = None) -> int:
    """Validate the logout token and end the matching sessions; return how many ended.

    One receiver serves every provider: the token's ``iss`` (one issuer, one provider)
    picks the provider, whose keys and client id then verify it,
    and only sessions signed in at that provider can end. An unknown issuer is refused.
    """
    try:
        _, unverified = read_jws(token)  # size capped, any decoding failure in words
    except UnreadableToken as exc:
        raise TokenError(exc.code, REASONS[exc.code]) from exc
    provider = provider_for_token(unverified.get("iss"), unverified.get("aud"))
    claims = validate_logout_token(token, provider=provider)
    exp = claims.get("exp")
    remember_jti(
        issuer=claims["iss"], jti=claims["jti"], exp=exp if isinstance(exp, (int, float)) else None
    )
    ended = sessions.end_by_claims(
        issuer=claims["iss"],
        sid=claims.get("sid"),
        subject=claims.get("sub"),
        request=request,
        provider=provider,
    )
    logger.info(
        "back-channel logout: provider=%s iss=%s sub=%s sid=%s ended=%d",
        provider.slug,
        claims["iss"],
        claims.get("sub", "-"),
        "yes" if claims.get("sid") else "no",
        ended,
    )
    return ended
