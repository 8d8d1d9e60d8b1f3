"""The authorization request and its single-use state, for the sign-in view and middleware.

Each request stores ``state -> {provider, nonce, code_verifier, next, created}`` in the
session, so several tabs can sign in at once, each at its own provider; a state is consumed
on first use, expires after ``OIDC_STATE_TTL``, and answers only at its provider's own
redirect URI (the mix-up defence of RFC 9700 4.4 with distinct redirect URIs).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.conf import oidc_settings
from accounts.errors import StateError
from accounts.oidc.discovery import endpoint
from accounts.oidc.dpop import dpop_key
from accounts.oidc.par import par_endpoint, pushed_authorization_url
from accounts.oidc.requirement import Requirement
from accounts.providers.provider import DEFAULT_SLUG, Provider
from accounts.providers.registry import default_provider

SESSION_STATES = "oidc_states"


def pkce_pair() -> tuple[str, str]:
    """Return (code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def safe_next_url(request: HttpRequest, url: str | None) -> str | None:
    """Keep ``next`` only when it points to this site."""
    if not url:
        return None
    allowed = {request.get_host(), *oidc_settings.OIDC_REDIRECT_ALLOWED_HOSTS}
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts=allowed, require_https=request.is_secure()
    ):
        return url
    return None


def callback_url(request: HttpRequest, provider: Provider | None = None) -> str:
    """The provider's own redirect URI: ``/oidc/callback/`` or ``/oidc/callback/<slug>/``."""
    if provider is None:
        return request.build_absolute_uri(reverse("oidc_authentication_callback"))
    return request.build_absolute_uri(provider.callback_path)


def _states(request: HttpRequest) -> dict[str, dict[str, Any]]:
    states = request.session.get(SESSION_STATES)
    return states if isinstance(states, dict) else {}


def _remember(request: HttpRequest, state: str, entry: dict[str, Any]) -> None:
    now = time.time()
    ttl = oidc_settings.OIDC_STATE_TTL
    states = {k: v for k, v in _states(request).items() if now - v.get("created", 0) < ttl}
    while len(states) >= oidc_settings.OIDC_MAX_STATES:
        states.pop(min(states, key=lambda k: states[k].get("created", 0)))
    states[state] = entry
    request.session[SESSION_STATES] = states
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        # An anonymous browser's session holds nothing but pending states: it lives as
        # long as they do, so a flood of sign-in starts leaves no row behind for 12 hours.
        request.session.set_expiry(ttl)


def authorization_url(
    request: HttpRequest,
    *,
    next_url: str | None,
    prompt: str | None = None,
    requirement: Requirement | None = None,
    provider: Provider | None = None,
    login_hint: str | None = None,
    remember: bool = False,
) -> str:
    """Build the provider's URL for a new sign-in and remember its state in the session.

    ``requirement`` (admin step-up) adds ``max_age``/``acr_values``; the state records it so
    that the callback holds the ID token to exactly what was asked. ``remember``: the user
    ticked "remember my organisation"; the callback remembers it once the sign-in succeeds.
    """
    provider = provider or default_provider()
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": callback_url(request, provider),
        "scope": provider.scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if prompt:
        params["prompt"] = prompt
    if requirement is not None:
        params.update(requirement.as_params())
    if login_hint:
        params["login_hint"] = login_hint
    if provider.dpop_enabled:
        params["dpop_jkt"] = dpop_key().jkt  # RFC 9449 10: the code is bound to the key
    base = endpoint("authorization_endpoint", provider=provider)
    par_url = par_endpoint(provider)
    if par_url:
        url = pushed_authorization_url(base, par_url, params, provider=provider)
    else:
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}{urlencode(params)}"
    _remember(
        request,
        state,
        {
            "provider": provider.slug,
            "nonce": nonce,
            "code_verifier": verifier,
            "next": safe_next_url(request, next_url),
            "created": time.time(),
            "prompt": prompt or "",
            **({"remember": True} if remember else {}),
            **(requirement.to_state() if requirement is not None else {}),
        },
    )
    return url


def consume_state(
    request: HttpRequest, state: str | None, *, provider_slug: str = DEFAULT_SLUG
) -> dict[str, Any]:
    """Pop the entry for ``state``: single use, bound to this browser session, expiring.

    ``provider_slug`` is the provider whose redirect URI the response came to: a state
    issued for another provider is spent and refused (a mix-up), before any code is used.
    """
    if not state:
        raise StateError(
            "missing_state", "The sign-in response did not say which sign-in it answers."
        )
    states = _states(request)
    entry = states.pop(state, None)
    if entry is None:
        raise StateError(
            "unknown_state",
            "This sign-in response does not match a sign-in started in this browser. It may have "
            "been used already (back button or reload), or started in another browser.",
        )
    request.session[SESSION_STATES] = states
    if time.time() - entry.get("created", 0) > oidc_settings.OIDC_STATE_TTL:
        raise StateError("expired_state", "This sign-in took too long and has expired.")
    if entry.get("provider", DEFAULT_SLUG) != provider_slug:
        raise StateError(
            "wrong_redirect_uri",
            "This sign-in response came back to another identity provider's address than "
            "the one the sign-in started at, so it was refused. Start the sign-in again.",
        )
    return entry
