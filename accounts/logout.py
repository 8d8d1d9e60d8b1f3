"""Back-channel logout: validate a logout token once, then end the sessions it names."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from . import sessions
from .conf import oidc_settings
from .errors import TokenError
from .models import UsedTokenId
from .tokens import REASONS, validate_logout_token

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
    """Validate the logout token and end the matching sessions; return how many ended."""
    claims = validate_logout_token(token)
    exp = claims.get("exp")
    remember_jti(
        issuer=claims["iss"], jti=claims["jti"], exp=exp if isinstance(exp, (int, float)) else None
    )
    ended = sessions.end_by_claims(
        issuer=claims["iss"], sid=claims.get("sid"), subject=claims.get("sub"), request=request
    )
    logger.info(
        "back-channel logout: iss=%s sub=%s sid=%s ended=%d",
        claims["iss"],
        claims.get("sub", "-"),
        "yes" if claims.get("sid") else "no",
        ended,
    )
    return ended
