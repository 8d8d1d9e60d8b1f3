"""How a rejected request is answered: a page in words, JSON under /api/, and a log line."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from accounts.errors import OIDCError

logger = logging.getLogger("accounts.signin")

TITLES = {
    "invalid_state": "This sign-in link is no longer valid",
    "provider_error": "The identity provider is unavailable",
    "provider_circuit_open": "The identity provider is not answering",
    "configuration_error": "Sign-in is misconfigured",
    "account_error": "Your account cannot sign in",
    "access_denied": "Sign-in was cancelled",
    "step_up_refused": "The admin needs a fresh sign-in",
    "unknown_provider": "No such sign-in option",
    "no_provider_for_email": "No sign-in option for that email",
    "wrong_redirect_uri": "This sign-in answer was refused",
}


_UNSAFE_IN_LOGS = re.compile(r"[^\w.:/@+=~-]")


def loggable(value: str, limit: int = 200) -> str:
    """A value from the request, safe for one log line: no newlines or control characters."""
    return _UNSAFE_IN_LOGS.sub("?", str(value))[:limit]


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        request.path.startswith("/api/")
        or request.headers.get("X-Requested-With") == "XMLHttpRequest"
        or ("application/json" in accept and "text/html" not in accept)
    )


def retry_urls(request: HttpRequest) -> tuple[str, str]:
    """ "Sign in again" at the failed attempt's provider, and the chooser; ``next`` kept.

    The views set ``request.oidc_retry_slug`` once an attempt's provider is known (its
    state was valid) and there are several, and ``request.oidc_next_url`` (already checked:
    same site only). Without a provider, "Sign in again" lets the site decide.
    """
    slug = getattr(request, "oidc_retry_slug", "") or ""
    next_url = getattr(request, "oidc_next_url", None)
    params = {"provider": slug} if slug else {}
    if next_url:
        params["next"] = next_url
    sign_in = reverse("oidc_authentication_init")
    choose = reverse("signin")
    return (
        f"{sign_in}?{urlencode(params)}" if params else sign_in,
        f"{choose}?{urlencode({'next': next_url})}" if next_url else choose,
    )


def log_refusal(error: OIDCError, *, event: str, iss: str = "-", sub: str = "-") -> None:
    """The one log line of a refusal: its reason, iss and sub (never a token or code)."""
    logger.warning(
        "%s: reason=%s iss=%s sub=%s%s",
        event,
        loggable(error.code),
        loggable(iss),
        loggable(sub),
        f" ({error.detail})" if error.detail else "",
    )


def error_response(
    request: HttpRequest,
    error: OIDCError,
    *,
    event: str = "sign-in rejected",
    iss: str = "-",
    sub: str = "-",
) -> HttpResponse:
    """Log the reason with iss and sub (never a token or code) and answer in words."""
    log_refusal(error, event=event, iss=iss, sub=sub)
    sign_in, choose = retry_urls(request)
    if wants_json(request):
        response = JsonResponse(
            {"error": error.code, "message": error.message, "sign_in_url": sign_in},
            status=error.status,
        )
    else:
        title = TITLES.get(error.code) or TITLES.get(type(error).code, "Sign-in failed")
        response = render(
            request,
            "accounts/error.html",
            {
                "title": title,
                "message": error.message,
                "code": error.code,
                "sign_in_url": sign_in,
                "choose_url": choose,
            },
            status=error.status,
        )
    # Logged above, once: Django's request logger would add a second line for a 5xx page.
    response._has_been_logged = True
    return response
