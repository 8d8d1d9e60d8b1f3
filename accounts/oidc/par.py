"""Pushed authorization requests (RFC 9126): the request goes to the provider, not the browser.

The authorization request's parameters are POSTed to the provider's
``pushed_authorization_request_endpoint`` with the client's authentication (and a DPoP
proof when the provider's ``dpop`` is on); the browser is sent with only ``client_id`` and
the ``request_uri`` the provider answered. Nothing of the request can then be read or
changed in the browser, and the provider knows it came from this site.

``use_par`` (``OIDC_USE_PAR``) decides: ``auto`` pushes whenever the metadata names the
endpoint, ``1`` always (a provider without one is a configuration error), ``0`` never;
FAPI 2.0 means ``1``. A provider that cannot be reached is a 502 page; one that refuses the
request (a client it does not know, a redirect URI it does not allow) a 503 page saying
that an administrator must act.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from accounts.errors import ConfigurationError, ProviderError
from accounts.oidc.discovery import get_metadata
from accounts.oidc.http import json_object
from accounts.oidc.token_endpoint import client_post, error_code
from accounts.providers.provider import Provider

PAR_ENDPOINT = "pushed_authorization_request_endpoint"
REFUSED_MESSAGE = (
    "Sign-in is misconfigured: the identity provider refused this site's sign-in request. "
    "Please tell the site's administrators; trying again will not help."
)


def par_endpoint(provider: Provider) -> str | None:
    """The PAR endpoint this sign-in pushes to, or None for a plain authorization request."""
    mode = provider.par_mode
    if mode == "0":
        return None
    url = get_metadata(provider).get(PAR_ENDPOINT) or ""
    if isinstance(url, str) and url:
        return url
    if mode == "1":
        setting = f"{provider.slug}.{PAR_ENDPOINT}"
        if provider.is_default:
            setting = "OIDC_OP_PAR_ENDPOINT"
        raise ConfigurationError(
            "par_endpoint_missing",
            "Sign-in is misconfigured: this site must push its sign-in requests to the identity "
            "provider, and the provider names no endpoint for them. Please tell the site's "
            "administrators.",
            detail=f"use_par=1 (or profile fapi2) and the provider's metadata has no "
            f"{PAR_ENDPOINT}: set {setting}, or use_par=auto",
        )
    return None


def push_authorization_request(url: str, params: dict[str, str], *, provider: Provider) -> str:
    """POST the request (RFC 9126 2.1); return its ``request_uri`` (2.2) or raise in words."""
    response, client = client_post(url, params, provider=provider, with_proof=provider.dpop_enabled)
    if response.status_code in (200, 201):
        body = json_object(response, url)
        request_uri = body.get("request_uri")
        if not isinstance(request_uri, str) or not request_uri:
            raise ProviderError(
                "par_malformed", detail=f"POST {url} answered without a request_uri"
            )
        return request_uri
    answer = f"POST {url} answered {response.status_code} error={error_code(response)}"
    if response.status_code == 429:
        raise ProviderError("par_busy", detail=f"{answer}: the provider is rate-limiting")
    raise ConfigurationError(
        "par_refused",
        REFUSED_MESSAGE,
        detail=f"{answer}: the provider refused the pushed authorization request; check "
        f"{client.settings_to_check}, and the redirect URI and scopes registered for the client",
    )


def pushed_authorization_url(
    base: str, par_url: str, params: dict[str, Any], *, provider: Provider
) -> str:
    """Push ``params`` to ``par_url``; the browser's URL: ``client_id`` and ``request_uri``."""
    request_uri = push_authorization_request(par_url, params, provider=provider)
    separator = "&" if "?" in base else "?"
    query = urlencode({"client_id": provider.client_id, "request_uri": request_uri})
    return f"{base}{separator}{query}"
