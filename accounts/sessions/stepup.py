"""Admin step-up: the admin wants a recent authentication at the provider, of a given strength.

The ID token's ``auth_time`` and ``acr`` are kept in the session at sign-in. An admin page
asked for with an older authentication (``OIDC_ADMIN_MAX_AUTH_AGE``) or another ``acr``
(``OIDC_ADMIN_ACR_VALUES``) sends the browser to the provider with ``max_age`` and
``acr_values``; the answer's ID token is held to the same rule (``accounts.oidc.requirement``)
and refused in words when it falls short, so the flow can never loop. Site pages never ask
for this. Only sessions made through the provider are concerned: a break-glass
password sign-in has no ``auth_time`` to judge.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from accounts.conf import admin_acr_values, admin_max_auth_age
from accounts.errors import OIDCError
from accounts.oidc.authorization import authorization_url
from accounts.oidc.requirement import Requirement, shortfall
from accounts.providers.registry import provider_get
from accounts.responses import error_response, wants_json
from accounts.sessions import lifecycle as sessions

logger = logging.getLogger("accounts.stepup")


def admin_requirement(provider: Any = None) -> Requirement:
    """What the admin wants of an authentication at ``provider`` (default: ``default``)."""
    return Requirement(
        max_age=admin_max_auth_age(provider), acr_values=tuple(admin_acr_values(provider))
    )


def is_admin_url(url: str | None) -> bool:
    """Whether a (safe, local) ``next`` URL points into the admin."""
    return bool(url) and urlsplit(url).path.startswith(reverse("admin:index"))


def session_authentication(request: HttpRequest) -> dict[str, Any]:
    return {
        "auth_time": request.session.get(sessions.SESSION_AUTH_TIME),
        "acr": request.session.get(sessions.SESSION_ACR),
    }


def admin_gate(request: HttpRequest) -> HttpResponse | None:
    """None when this staff session may see the admin; else the way to the provider."""
    if sessions.SESSION_EXPIRES_AT not in request.session:
        return None  # not a session made through the provider (break-glass password)
    try:  # the provider this session signed in at: its requirement, its sign-in again
        provider = provider_get(request.session.get(sessions.SESSION_PROVIDER, "default"))
    except OIDCError as exc:
        return error_response(request, exc, event="admin step-up could not start")
    requirement = admin_requirement(provider)
    reason = shortfall(session_authentication(request), requirement)
    if reason is None:
        return None
    logger.info("admin step-up required: reason=%s user=%s", reason, request.user.pk)
    next_url = request.get_full_path() if request.method == "GET" else reverse("admin:index")
    if wants_json(request):
        return JsonResponse(
            {
                "error": "step_up_required",
                "message": "The admin needs you to sign in again at your identity provider.",
                "sign_in_url": reverse("oidc_authentication_init")
                + "?"
                + urlencode(
                    {"next": next_url}
                    if provider.is_default
                    else {"provider": provider.slug, "next": next_url}
                ),
            },
            status=401,
        )
    try:
        url = authorization_url(
            request, next_url=next_url, requirement=requirement, provider=provider
        )
    except OIDCError as exc:
        return error_response(request, exc, event="admin step-up could not start")
    return HttpResponseRedirect(url)
