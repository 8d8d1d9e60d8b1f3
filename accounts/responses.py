"""How a rejected request is answered: a page in words, JSON under /api/, and a log line."""

from __future__ import annotations

import logging
import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from accounts.errors import OIDCError

logger = logging.getLogger("accounts.signin")

TITLES = {
    "invalid_state": "This sign-in link is no longer valid",
    "provider_error": "The identity provider is unavailable",
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


def error_response(
    request: HttpRequest,
    error: OIDCError,
    *,
    event: str = "sign-in rejected",
    iss: str = "-",
    sub: str = "-",
) -> HttpResponse:
    """Log the reason with iss and sub (never a token or code) and answer in words."""
    logger.warning(
        "%s: reason=%s iss=%s sub=%s%s",
        event,
        loggable(error.code),
        loggable(iss),
        loggable(sub),
        f" ({error.detail})" if error.detail else "",
    )
    sign_in = reverse("oidc_authentication_init")
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
            {"title": title, "message": error.message, "code": error.code, "sign_in_url": sign_in},
            status=error.status,
        )
    # Logged above, once: Django's request logger would add a second line for a 5xx page.
    response._has_been_logged = True
    return response
