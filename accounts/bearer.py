"""Recognise ``Authorization: Bearer`` access tokens through the provider's userinfo."""

from __future__ import annotations

from typing import Any

from .conf import oidc_settings
from .errors import OIDCError
from .models import OIDCIdentity
from .userinfo import claims_for_bearer


class BearerError(OIDCError):
    code = "invalid_token"
    message = "The access token is not valid or has expired."
    status = 401


def user_for_bearer(token: str) -> tuple[Any, OIDCIdentity]:
    """Return (user, identity) for a valid access token of a known, active user."""
    claims = claims_for_bearer(token) if token else None
    if not claims:
        raise BearerError()
    identity = (
        OIDCIdentity.objects.select_related("user")
        .filter(issuer=oidc_settings.OIDC_OP_ISSUER, subject=claims["sub"])
        .first()
    )
    if identity is None or not identity.user.is_active:
        raise BearerError("unknown_user", "This access token belongs to no active user here.")
    return identity.user, identity
