"""The userinfo endpoint: fetched after sign-in, and used to recognise bearer tokens."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.cache import cache

from .conf import oidc_settings
from .discovery import endpoint
from .errors import ProviderError, TokenError
from .http import provider_request
from .tokens import unverified_claims, validate_signed_userinfo

logger = logging.getLogger(__name__)


def fetch_userinfo(access_token: str) -> tuple[int, dict[str, Any] | str]:
    """GET userinfo with the access token; return (status, JSON object or JWT text)."""
    response = provider_request(
        "GET", endpoint("userinfo_endpoint"), headers={"Authorization": f"Bearer {access_token}"}
    )
    if response.status_code != 200:
        return response.status_code, {}
    if response.headers.get("Content-Type", "").lower().startswith("application/jwt"):
        return 200, response.text.strip()
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError("userinfo_malformed") from exc
    if not isinstance(body, dict):
        raise ProviderError("userinfo_malformed")
    return 200, body


def userinfo_claims(access_token: str, *, sub: str) -> dict[str, Any]:
    """Userinfo claims for the user of an ID token; their ``sub`` must match (OIDC Core 5.3.4)."""
    status, body = fetch_userinfo(access_token)
    if status != 200:
        logger.warning("userinfo refused the access token: status=%s sub=%s", status, sub)
        raise ProviderError(
            "userinfo_refused", "The identity provider refused to share your details."
        )
    if isinstance(body, str):
        return validate_signed_userinfo(body, sub=sub)
    if body.get("sub") != sub:
        raise TokenError(
            "sub_mismatch", "The identity provider returned details of a different user."
        )
    return body


def claims_for_bearer(access_token: str) -> dict[str, Any] | None:
    """Claims for an access token presented as ``Authorization: Bearer``, or None if refused.

    The provider's userinfo endpoint is the judge; its answer is cached briefly under a
    hash of the token (never the token itself).
    """
    key = "oidc:bearer:" + hashlib.sha256(access_token.encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    status, body = fetch_userinfo(access_token)
    claims: dict[str, Any] = {}
    if status == 200:
        if isinstance(body, str):
            try:
                claims = validate_signed_userinfo(
                    body, sub=str(unverified_claims(body).get("sub", ""))
                )
            except TokenError:
                claims = {}
        elif isinstance(body.get("sub"), str):
            claims = body
    cache.set(key, claims, oidc_settings.OIDC_USERINFO_CACHE_TTL)
    return claims or None
