"""Admin step-up: the admin wants a recent authentication at the provider, of a given strength.

The ID token's ``auth_time`` and ``acr`` are kept in the session at sign-in. An admin page
asked for with an older authentication (``OIDC_ADMIN_MAX_AUTH_AGE``) or another ``acr``
(``OIDC_ADMIN_ACR_VALUES``) sends the browser to the provider with ``max_age`` and
``acr_values``; the answer's ID token is held to the same rule (OIDC Core 3.1.3.7 steps 12
and 13) and refused in words when it falls short, so the flow can never loop. Site pages
never ask for this. Only sessions made through the provider are concerned: a break-glass
password sign-in has no ``auth_time`` to judge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from . import sessions
from .conf import admin_acr_values, admin_max_auth_age, oidc_settings
from .errors import OIDCError, StepUpError
from .flows import authorization_url
from .views.errors import error_response, wants_json

logger = logging.getLogger("accounts.stepup")

REASONS = {
    "auth_time_missing": "The identity provider did not say when you last signed in there, "
    "and the admin needs a recent sign-in.",
    "auth_too_old": "The admin needs a sign-in at your identity provider from the last "
    "{minutes} minutes, and the identity provider reported an older one.",
    "auth_in_future": "The identity provider reported a sign-in in the future. A clock is wrong.",
    "acr_not_satisfied": "The admin needs a stronger sign-in ({acr}) than the one the "
    "identity provider reported.",
}


@dataclass(frozen=True)
class Requirement:
    """What an authentication must satisfy: at most ``max_age`` seconds old, an ``acr``."""

    max_age: int | None = None
    acr_values: tuple[str, ...] = ()

    def as_params(self) -> dict[str, str]:
        """The authorization request parameters that ask the provider for it."""
        params = {}
        if self.max_age is not None:
            params["max_age"] = str(self.max_age)
        if self.acr_values:
            params["acr_values"] = " ".join(self.acr_values)
        return params

    def to_state(self) -> dict[str, Any]:
        return {"max_age": self.max_age, "acr_values": list(self.acr_values)}

    @classmethod
    def from_state(cls, entry: Mapping[str, Any]) -> Requirement | None:
        """The requirement a sign-in's state recorded, if it asked for one."""
        max_age = entry.get("max_age")
        acr_values = tuple(entry.get("acr_values") or ())
        if max_age is None and not acr_values:
            return None
        return cls(max_age=None if max_age is None else int(max_age), acr_values=acr_values)


def admin_requirement(provider: Any = None) -> Requirement:
    """What the admin wants of an authentication at ``provider`` (default: ``default``)."""
    return Requirement(
        max_age=admin_max_auth_age(provider), acr_values=tuple(admin_acr_values(provider))
    )


def is_admin_url(url: str | None) -> bool:
    """Whether a (safe, local) ``next`` URL points into the admin."""
    return bool(url) and urlsplit(url).path.startswith(reverse("admin:index"))


def shortfall(
    authentication: Mapping[str, Any], requirement: Requirement, now: float | None = None
) -> str | None:
    """Why ``auth_time``/``acr`` fall short of the requirement, or None when they satisfy it.

    The clock leeway applies here exactly as to the ID token, so that an authentication
    accepted at the callback is accepted by the admin right after: no loop.
    """
    now = time.time() if now is None else now
    leeway = oidc_settings.OIDC_CLOCK_LEEWAY
    if requirement.max_age is not None:
        auth_time = authentication.get("auth_time")
        if not isinstance(auth_time, (int, float)) or isinstance(auth_time, bool):
            return "auth_time_missing"
        if auth_time > now + leeway:
            return "auth_in_future"
        if now - auth_time > requirement.max_age + leeway:
            return "auth_too_old"
    if requirement.acr_values and authentication.get("acr") not in requirement.acr_values:
        return "acr_not_satisfied"
    return None


def refusal(reason: str, requirement: Requirement) -> StepUpError:
    minutes = max(1, round((requirement.max_age or 0) / 60))
    acr = ", ".join(requirement.acr_values)
    return StepUpError(reason, REASONS[reason].format(minutes=minutes, acr=acr))


def check_id_token(claims: Mapping[str, Any], requirement: Requirement | None) -> None:
    """OIDC Core 3.1.3.7 steps 12 and 13 for an ID token answering ``requirement``."""
    if requirement is None:
        return
    reason = shortfall(claims, requirement)
    if reason is not None:
        raise refusal(reason, requirement)


def session_authentication(request: HttpRequest) -> dict[str, Any]:
    return {
        "auth_time": request.session.get(sessions.SESSION_AUTH_TIME),
        "acr": request.session.get(sessions.SESSION_ACR),
    }


def admin_gate(request: HttpRequest) -> HttpResponse | None:
    """None when this staff session may see the admin; else the way to the provider."""
    if sessions.SESSION_EXPIRES_AT not in request.session:
        return None  # not a session made through the provider (break-glass password)
    from .registry import provider_get

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
