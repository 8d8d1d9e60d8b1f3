"""The provider's Shared Signals transmitter: its configuration and its stream API (SSF 1.0).

``ssf_configuration`` reads the transmitter metadata (section 7) from the well-known URL
section 7.2 builds from the issuer (``https://host/.well-known/ssf-configuration/path``),
else ``{issuer}/.well-known/ssf-configuration``; cached in the shared cache like the
discovery document, the stale copy kept while the provider is down, and "none published"
remembered briefly. The stream calls (section 8) authenticate with this site's own
client-credentials token.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from accounts.conf import oidc_settings
from accounts.errors import OIDCError, ProviderError
from accounts.oidc.discovery import endpoint
from accounts.oidc.http import json_object, provider_request
from accounts.oidc.token_endpoint import token_request
from accounts.providers.provider import Provider
from accounts.security import shared_cache

logger = logging.getLogger("accounts.ssf")

_STALE_KEEP_SECONDS = 7 * 24 * 3600


def configuration_urls(issuer: str) -> list[str]:
    """Where the transmitter's metadata lives: section 7.2's URL first, then the suffix form."""
    parts = urlsplit(issuer)
    urls = [f"{parts.scheme}://{parts.netloc}/.well-known/ssf-configuration{parts.path}"]
    urls[0] = urls[0].rstrip("/")
    suffix = issuer.rstrip("/") + "/.well-known/ssf-configuration"
    return urls if suffix in urls else [*urls, suffix]


def _fetch(provider: Provider) -> dict[str, Any]:
    problems = []
    for url in configuration_urls(provider.issuer):
        try:
            response = provider_request("GET", url)
            if response.status_code != 200:
                problems.append(f"{url} answered {response.status_code}")
                continue
            document = json_object(response, url)
        except ProviderError as exc:
            problems.append(exc.detail or exc.code)
            continue
        if document.get("issuer") not in (None, provider.issuer):
            problems.append(f"{url} names another issuer")
            continue
        return document
    logger.info(
        "no SSF configuration of %s (%s): using its JWKS", provider.slug, "; ".join(problems)
    )
    return {}


def ssf_configuration(provider: Provider) -> dict[str, Any]:
    """The transmitter's metadata, ``{}`` when the provider publishes none."""
    key = provider.cache_key("ssf-configuration")
    entry = shared_cache.get(key)
    now = time.time()
    if entry and now < entry["fresh_until"]:
        return entry["document"]
    document = _fetch(provider)
    if not document and entry and entry["document"]:
        return entry["document"]  # the provider is down: the stale copy stands in
    ttl = (
        oidc_settings.OIDC_DISCOVERY_CACHE_TTL
        if document
        else oidc_settings.OIDC_JWKS_REFETCH_INTERVAL
    )
    shared_cache.set(key, {"document": document, "fresh_until": now + ttl}, _STALE_KEEP_SECONDS)
    return document


def set_keys_uri(provider: Provider) -> str | None:
    """The JWKS that signs the provider's SETs: the transmitter's, else None (the provider's)."""
    uri = ssf_configuration(provider).get("jwks_uri")
    return uri if isinstance(uri, str) and uri else None


class StreamError(OIDCError):
    """The transmitter refused or failed a stream call."""

    code = "ssf_stream_error"
    message = "The identity provider's Shared Signals transmitter refused the request."
    status = 502


def metadata_endpoint(provider: Provider, name: str) -> str:
    url = ssf_configuration(provider).get(name)
    if not isinstance(url, str) or not url:
        raise StreamError(
            "ssf_unsupported",
            f"The identity provider's Shared Signals configuration has no {name}.",
        )
    return url


def access_token(provider: Provider) -> str:
    """This site's client-credentials token for the transmitter's stream API."""
    answer = token_request(
        endpoint("token_endpoint", provider=provider),
        {"grant_type": "client_credentials"},
        provider=provider,
    )
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise StreamError("no_access_token", "The token endpoint answered without an access token.")
    return token


def _said(response: Any) -> str:
    """The transmitter's own error words, short and printable, if it gave any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    words = body.get("error_description") or body.get("error") or ""
    text = "".join(c for c in str(words)[:200] if c.isprintable())
    return f": {text}" if text else ""


def stream_call(
    provider: Provider,
    method: str,
    url: str,
    *,
    token: str,
    json: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One call of the stream API (section 8); ``{}`` for an empty answer."""
    response = provider_request(
        method, url, json=json, params=params, headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code >= 400:
        raise StreamError(
            "ssf_stream_refused",
            f"The transmitter refused {method} {url} ({response.status_code}{_said(response)}).",
            detail=f"{method} {url} answered {response.status_code}",
        )
    if response.status_code == 204 or not response.content:
        return {}
    return json_object(response, url)
