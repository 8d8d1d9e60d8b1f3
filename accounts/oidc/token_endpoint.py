"""The token endpoint (OIDC Core 3.1.3, RFC 6749 3.2): one POST with the client's authentication.

Every grant goes through ``token_request``: the authorization code, refresh, client
credentials, and the introspection call that authenticates the client the same way.
"""

from __future__ import annotations

from typing import Any

import requests

from accounts.errors import ConfigurationError, InvalidGrant, ProviderError
from accounts.oidc.client_auth import client_authentication
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
    client = client_authentication(provider)
    data = {**data, **client.data}
    extra = {} if timeout is None else {"timeout": timeout}
    response = provider_request("POST", url, data=data, auth=client.basic, **extra)
    if response.status_code == 200:
        return json_object(response, url)
    error = _error_code(response)
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


# Errors that say this client is not what the provider has registered (RFC 6749 5.2).
CLIENT_ERRORS = {"invalid_client", "unauthorized_client"}


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "unknown"
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:64] if error else "unknown"
