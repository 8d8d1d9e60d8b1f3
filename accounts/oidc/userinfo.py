"""The userinfo endpoint, called after sign-in for the user's claims."""

from __future__ import annotations

import logging
from typing import Any

from accounts.errors import ProviderError, TokenError
from accounts.oidc import dpop
from accounts.oidc.discovery import endpoint
from accounts.oidc.http import provider_request
from accounts.oidc.tokens import validate_signed_userinfo
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider

logger = logging.getLogger("accounts.userinfo")  # the name operators filter on, kept across moves


def fetch_userinfo(
    access_token: str, *, provider: Provider | None = None
) -> tuple[int, dict[str, Any] | str]:
    """GET userinfo with the access token; return (status, JSON object or JWT text).

    A DPoP-bound token goes as ``Authorization: DPoP`` with a proof carrying its ``ath``.
    """
    provider = provider or default_provider()
    url = endpoint("userinfo_endpoint", provider=provider)
    if provider.dpop_enabled:
        response = dpop.send_with_proof(
            "GET",
            url,
            lambda proof: provider_request(
                "GET", url, headers={"Authorization": f"DPoP {access_token}", **proof}
            ),
            access_token=access_token,
        )
    else:
        response = provider_request("GET", url, headers={"Authorization": f"Bearer {access_token}"})
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


def userinfo_claims(
    access_token: str, *, sub: str, provider: Provider | None = None
) -> dict[str, Any]:
    """Userinfo claims for the user of an ID token; their ``sub`` must match (OIDC Core 5.3.4)."""
    status, body = fetch_userinfo(access_token, provider=provider)
    if status != 200:
        logger.warning("userinfo refused the access token: status=%s sub=%s", status, sub)
        raise ProviderError(
            "userinfo_refused", "The identity provider refused to share your details."
        )
    if isinstance(body, str):
        return validate_signed_userinfo(body, sub=sub, provider=provider)
    if body.get("sub") != sub:
        raise TokenError(
            "sub_mismatch", "The identity provider returned details of a different user."
        )
    return body
