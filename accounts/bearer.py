"""Recognise ``Authorization: Bearer`` access tokens, by RFC 7662 token introspection.

The provider's introspection endpoint says whether the token is active, whose it is and
which client it was issued to. A token issued to another client of the same provider is
refused: accepting it would let any application holding a user's token act as that user
here. Answers are cached briefly under a hash of the token, never the token itself.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.core.cache import cache

from .conf import oidc_settings
from .discovery import endpoint
from .errors import OIDCError
from .http import token_request
from .models import OIDCIdentity


class BearerError(OIDCError):
    code = "invalid_token"
    message = "The access token is not valid or has expired."
    status = 401


def issued_to_us(answer: dict[str, Any]) -> bool:
    """Whether an introspection answer names this site as the token's client or audience."""
    client_id = oidc_settings.OIDC_RP_CLIENT_ID
    aud = answer.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    return answer.get("client_id") == client_id or client_id in audiences


def introspect(token: str) -> dict[str, Any]:
    """The provider's verdict on a token: ``{}`` unless active, ours and about a subject."""
    url = endpoint("introspection_endpoint", required=False)
    if not url:
        raise BearerError(
            "bearer_unsupported",
            "Access tokens cannot be checked: the identity provider offers no introspection.",
        )
    answer = token_request(url, {"token": token, "token_type_hint": "access_token"})
    valid = (
        answer.get("active") is True
        and isinstance(answer.get("sub"), str)
        and answer["sub"]
        and issued_to_us(answer)
        and answer.get("iss", oidc_settings.OIDC_OP_ISSUER) == oidc_settings.OIDC_OP_ISSUER
    )
    return answer if valid else {}


def bearer_subject(token: str) -> str | None:
    """The ``sub`` of a valid access token, from the cache or the provider."""
    key = "oidc:bearer:" + hashlib.sha256(token.encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    answer = introspect(token)
    ttl = oidc_settings.OIDC_BEARER_CACHE_TTL
    if isinstance(answer.get("exp"), (int, float)):
        ttl = max(1, min(ttl, int(answer["exp"] - time.time())))
    subject = answer.get("sub", "")
    cache.set(key, subject, ttl)  # a refusal is remembered too
    return subject or None


def user_for_bearer(token: str) -> tuple[Any, OIDCIdentity]:
    """Return (user, identity) for a valid access token of a known, active user."""
    subject = bearer_subject(token) if token else None
    if not subject:
        raise BearerError()
    identity = (
        OIDCIdentity.objects.select_related("user")
        .filter(issuer=oidc_settings.OIDC_OP_ISSUER, subject=subject)
        .first()
    )
    if identity is None or not identity.user.is_active:
        raise BearerError("unknown_user", "This access token belongs to no active user here.")
    return identity.user, identity
