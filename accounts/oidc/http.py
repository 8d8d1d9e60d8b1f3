"""Calls to the provider: one place for timeouts, TLS verification and error mapping.

Generic HTTP only: how the client authenticates itself belongs to the token request
(``token_endpoint``), not here.
"""

from __future__ import annotations

import functools
import os
import time
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.utils import get_environ_proxies

from accounts import metrics
from accounts.conf import oidc_settings
from accounts.errors import ProviderError, ProviderNotAnswering
from accounts.oidc import breaker

_session = requests.Session()
# One session serves every user and thread: never let a provider's cookie travel from one
# user's call to the next.
_session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
# The environment (HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read once per process
# below, not by requests on every call; ~/.netrc is not read (it could replace the
# Authorization header of a userinfo request).
_session.trust_env = False
_CA_BUNDLE = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


@functools.lru_cache(maxsize=64)
def _proxies(origin: str) -> dict[str, str]:
    """The environment's proxies for this origin (none when ``NO_PROXY`` names it)."""
    return get_environ_proxies(origin)


def provider_request(method: str, url: str, **kwargs: Any) -> requests.Response:
    """Send one request to the provider with the configured timeout; raise ProviderError.

    Connection failures and 5xx answers become ``ProviderError`` whose ``detail`` names the
    URL (never a body or a header) for the caller's one log line; the caller decides how to
    read 4xx answers. While the provider's circuit breaker is open the call is not made:
    ``ProviderNotAnswering`` (a 503) at once.
    """
    kwargs.setdefault("timeout", oidc_settings.OIDC_TIMEOUT)
    kwargs.setdefault("verify", oidc_settings.OIDC_VERIFY_SSL)
    if kwargs["verify"] is True and _CA_BUNDLE:
        kwargs["verify"] = _CA_BUNDLE  # what requests would take from the environment
    parts = urlsplit(url)
    kwargs.setdefault("proxies", _proxies(f"{parts.scheme}://{parts.netloc}"))
    if not breaker.allow(url):
        metrics.provider_request(url, None, failure="circuit_open")
        raise ProviderNotAnswering(
            detail=f"{method} {url} not sent: the provider stopped answering, retrying later"
        )
    began = time.monotonic()
    try:
        response = _session.request(method, url, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as exc:
        breaker.failure(url)
        failure = "timeout" if isinstance(exc, requests.Timeout) else "connection_error"
        metrics.provider_request(url, time.monotonic() - began, failure=failure)
        raise ProviderError(
            "provider_unreachable", detail=f"{method} {url} failed: {type(exc).__name__}"
        ) from exc
    except requests.RequestException as exc:
        breaker.success(url)  # it answered, with something we could not use
        raise ProviderError(
            "provider_unreachable", detail=f"{method} {url} failed: {type(exc).__name__}"
        ) from exc
    except BaseException:
        breaker.success(url)  # never leave a probe marked as in flight
        raise
    breaker.success(url)
    metrics.provider_request(url, time.monotonic() - began)
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
    return json_object(response, url)


def json_object(response: requests.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError("provider_bad_response", detail=f"{url} answered non-JSON") from exc
    if not isinstance(body, dict):
        raise ProviderError("provider_bad_response", detail=f"{url} answered a non-object")
    return body
