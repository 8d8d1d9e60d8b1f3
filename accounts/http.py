"""Calls to the provider: one place for timeouts, TLS verification and error mapping."""

from __future__ import annotations

from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests

from .client_auth import client_authentication
from .conf import oidc_settings
from .errors import ConfigurationError, InvalidGrant, ProviderError
from .providers import Provider

_session = requests.Session()
# One session serves every user and thread: never let a provider's cookie travel from one
# user's call to the next.
_session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))


def provider_request(method: str, url: str, **kwargs: Any) -> requests.Response:
    """Send one request to the provider with the configured timeout; raise ProviderError.

    Connection failures and 5xx answers become ``ProviderError`` whose ``detail`` names the
    URL (never a body or a header) for the caller's one log line; the caller decides how to
    read 4xx answers.
    """
    kwargs.setdefault("timeout", oidc_settings.OIDC_TIMEOUT)
    kwargs.setdefault("verify", oidc_settings.OIDC_VERIFY_SSL)
    try:
        response = _session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise ProviderError(
            "provider_unreachable", detail=f"{method} {url} failed: {type(exc).__name__}"
        ) from exc
    if response.status_code >= 500:
        raise ProviderError(
            "provider_unavailable", detail=f"{method} {url} answered {response.status_code}"
        )
    return response


def get_json(url: str, **kwargs: Any) -> dict[str, Any]:
    """GET a JSON document from the provider."""
    response = provider_request("GET", url, **kwargs)
    if response.status_code != 200:
        raise ProviderError(
            "provider_bad_response", detail=f"GET {url} answered {response.status_code}"
        )
    return _json_object(response, url)


def token_request(
    url: str, data: dict[str, str], *, provider: Provider | None = None
) -> dict[str, Any]:
    """POST to a provider's token endpoint with its client authentication; return the JSON.

    ``invalid_grant`` becomes ``InvalidGrant`` so that callers can tell a revoked grant
    (sign the user out) from a provider that is down (keep the session for a while).
    """
    from .registry import default_provider

    provider = provider or default_provider()
    client = client_authentication(provider)
    data = {**data, **client.data}
    response = provider_request("POST", url, data=data, auth=client.basic)
    if response.status_code == 200:
        return _json_object(response, url)
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


def _json_object(response: requests.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError("provider_bad_response", detail=f"{url} answered non-JSON") from exc
    if not isinstance(body, dict):
        raise ProviderError("provider_bad_response", detail=f"{url} answered a non-object")
    return body
