"""The token endpoint (OIDC Core 3.1.3, RFC 6749 3.2): one POST with the client's authentication.

Every grant goes through ``token_request``: the authorization code, refresh, client
credentials, and the introspection call that authenticates the client the same way.
"""

from __future__ import annotations

from typing import Any

import requests

from accounts.errors import ConfigurationError, InvalidGrant, ProviderError
from accounts.oidc import dpop
from accounts.oidc.client_auth import ClientAuth, client_authentication
from accounts.oidc.http import json_object, provider_request
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider


def token_request(
    url: str,
    data: dict[str, str],
    *,
    provider: Provider | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """POST to a provider's token endpoint with its client authentication; return the JSON.

    ``invalid_grant`` becomes ``InvalidGrant`` so that callers can tell a revoked grant
    (sign the user out) from a provider that is down (keep the session for a while).
    ``timeout``: the refresh grant waits longer than other calls (``OIDC_REFRESH_TIMEOUT``).
    """
    provider = provider or default_provider()
    bound = provider.dpop_enabled and data.get("grant_type") in DPOP_GRANTS
    response, client = client_post(url, data, provider=provider, with_proof=bound, timeout=timeout)
    if response.status_code == 200:
        answer = json_object(response, url)
        if bound:
            check_token_type(answer, url)
        return answer
    error = error_code(response)
    if error == "invalid_grant":
        raise InvalidGrant()
    answer = f"POST {url} answered {response.status_code} error={error}"
    if error in CLIENT_ERRORS or response.status_code == 401:
        raise ConfigurationError(
            "invalid_client",
            ConfigurationError.message,
            detail=f"{answer}: the provider refused this site's client credentials, "
            f"check {client.settings_to_check}",
        )
    raise ProviderError(
        "token_request_failed",
        "The identity provider refused the sign-in.",
        detail=f"{answer} (grant_type={data.get('grant_type') or '-'})",
    )


# The grants whose tokens are DPoP-bound when the provider's ``dpop`` is on; client
# credentials (directory sync) and introspection stay plain.
DPOP_GRANTS = {"authorization_code", "refresh_token"}


def client_post(
    url: str,
    data: dict[str, str],
    *,
    provider: Provider,
    with_proof: bool,
    timeout: float | None = None,
) -> tuple[requests.Response, ClientAuth]:
    """POST a form with the client's authentication, and a DPoP proof when asked.

    A ``use_dpop_nonce`` answer is retried once with the new nonce and a new assertion.
    """
    used: list[ClientAuth] = []
    extra = {} if timeout is None else {"timeout": timeout}

    def send(headers: dict[str, str]) -> requests.Response:
        client = client_authentication(provider)
        used.append(client)
        form = {**data, **client.data}
        return provider_request("POST", url, data=form, auth=client.basic, headers=headers, **extra)

    if not with_proof:
        return send({}), used[-1]
    return dpop.send_with_proof("POST", url, send), used[-1]


def check_token_type(answer: dict[str, Any], url: str) -> None:
    """RFC 9449 5: a DPoP request gets ``token_type`` DPoP (compared case-insensitively)."""
    token_type = str(answer.get("token_type") or "")
    if token_type.lower() != "dpop":
        raise ConfigurationError(
            "dpop_not_bound",
            "Sign-in is misconfigured: this site asks the identity provider for DPoP-bound "
            "tokens and it sent plain bearer tokens. Please tell the site's administrators.",
            detail=f"POST {url} answered token_type={token_type[:20]!r} to a DPoP request: "
            "enable DPoP for this client at the provider, or turn off dpop for it here",
        )


# Errors that say this client is not what the provider has registered (RFC 6749 5.2).
CLIENT_ERRORS = {"invalid_client", "unauthorized_client"}


def error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "unknown"
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:64] if error else "unknown"
