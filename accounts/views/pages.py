"""Site pages for signed-in people, and the health check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.security.client_info import describe_user_agent
from accounts.sessions import lifecycle as sessions
from accounts.users.backend import identity_for


def home(request: HttpRequest) -> HttpResponse:
    from accounts.views.chooser import chooser_links

    providers = [] if request.user.is_authenticated else chooser_links(request, None)
    return render(request, "home.html", {"several_providers": len(providers) > 1})


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    row = sessions.current(request)
    started = request.session.get(sessions.SESSION_STARTED_AT)
    expiry = session_end(request, started)
    auth_time = request.session.get(sessions.SESSION_AUTH_TIME)
    return render(
        request,
        "accounts/profile.html",
        {
            "identity": identity_for(request.user),
            "groups": sorted(request.user.groups.values_list("name", flat=True)),
            "session_expires_at": expiry,
            "session_started_at": (datetime.fromtimestamp(started, tz=UTC) if started else None),
            "access_expires_at": row.access_expires_at if row else None,
            "has_refresh_token": bool(row and row.refresh_token),
            "oidc_session": sessions.SESSION_EXPIRES_AT in request.session,
            "auth_time": datetime.fromtimestamp(auth_time, tz=UTC) if auth_time else None,
            "acr": request.session.get(sessions.SESSION_ACR),
            "signed_in_sessions": _signed_in_sessions(request),
            "provider_name": _provider_name(row.provider) if row else None,
        },
    )


def session_end(request: HttpRequest, started: float | None) -> datetime:
    """When this session really ends: sign-in + ``OIDC_SESSION_MAX_AGE``, or Django's expiry.

    Whichever comes first. Django's expiry is the one stored with the session (database
    engines), not "now + SESSION_COOKIE_AGE", which would move on every page load.
    """
    from accounts.conf import oidc_settings

    stored = None
    model = getattr(request.session, "model", None)  # the database engines
    if request.session.session_key and model is not None:
        stored = (
            model.objects.filter(session_key=request.session.session_key)
            .values_list("expire_date", flat=True)
            .first()
        )
    ends = [stored or request.session.get_expiry_date()]
    if started:
        ends.append(
            datetime.fromtimestamp(float(started) + oidc_settings.OIDC_SESSION_MAX_AGE, tz=UTC)
        )
    return min(ends)


def _signed_in_sessions(request: HttpRequest) -> list[dict]:
    """The user's sessions as the profile lists them (never a session key or a token)."""
    current = request.session.session_key
    return [
        {
            "provider": _provider_name(row.provider),
            "started": row.created_at,
            "refreshed": row.refreshed_at,
            "browser": describe_user_agent(row.user_agent),
            "ip_address": row.ip_address,
            "is_current": row.session_key == current,
        }
        for row in sessions.user_sessions(request.user)
    ]


@require_POST
@login_required
def end_other_sessions(request: HttpRequest) -> HttpResponse:
    """ "Sign out everywhere else": end the user's other sessions (POST, CSRF-protected).

    Their refresh tokens are revoked at the provider; a provider session the other browser
    may still have is the provider's: the message says so, and links to its account page.
    """
    providers = {row.provider for row in sessions.user_sessions(request.user)}
    ended = sessions.end_other_sessions(request)
    noun = "session" if ended == 1 else "sessions"
    messages.success(
        request,
        f"Signed out {ended} other {noun} here, and asked your identity provider to revoke "
        f"{'its' if ended == 1 else 'their'} access.",
    )
    if ended:
        for slug in sorted(providers):
            messages.warning(request, _provider_session_note(slug))
    return HttpResponseRedirect(reverse("profile"))


def _provider_session_note(slug: str) -> str:
    """Words (and a link, where the provider advertises an account page) about its session."""
    from django.utils.html import format_html

    from accounts.providers.registry import all_providers

    name = _provider_name(slug)
    text = (
        "The other browser may still be signed in at {name} itself, and could then sign in "
        "here again without a password."
    )
    provider = next((p for p in all_providers() if p.slug == slug), None)
    account = provider_account_url(provider) if provider else ""
    if not account:
        return format_html(text + " To end that too, sign out of {name} there.", name=name)
    return format_html(
        text + " To end that too, sign out of {name} there, or visit "
        '<a href="{url}" class="provider-account">your account at {name}</a>.',
        name=name,
        url=account,
    )


def provider_account_url(provider: Any) -> str:
    """The provider's account page from its metadata (``account_management_uri``), if any."""
    from accounts.errors import OIDCError
    from accounts.oidc.discovery import get_metadata

    try:
        url = str(get_metadata(provider).get("account_management_uri") or "")
    except OIDCError:
        return ""
    return url if url.startswith(("https://", "http://")) else ""


def _provider_name(slug: str) -> str:
    from accounts.providers.registry import all_providers

    return next((p.display_name for p in all_providers() if p.slug == slug), slug)


@login_required
def members(request: HttpRequest) -> HttpResponse:
    return render(request, "members.html")


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for ``/favicon.ico`` whatever a page names: the static icon, no 404."""
    from django.templatetags.static import static

    return HttpResponsePermanentRedirect(static("favicon.svg"))


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def signin(request: HttpRequest) -> HttpResponse:
    """The chooser: one button per provider and a "work email" field; ended sessions land here.

    A signed-in visitor is told who they are, with "continue" and "sign in as someone else".
    """
    from accounts.oidc.authorization import safe_next_url

    return signin_page(request, safe_next_url(request, request.GET.get("next")))


def signin_page(
    request: HttpRequest, next_url: str | None, *, error: Any = None, email: str = ""
) -> HttpResponse:
    """Render the chooser; ``error`` (an unknown email domain) is shown above the buttons."""
    from accounts.responses import TITLES
    from accounts.views.chooser import chooser_links, remembered_provider

    row = sessions.current(request) if request.user.is_authenticated else None
    remembered = remembered_provider(request)
    context = {
        "next": next_url,
        "providers": chooser_links(request, next_url),
        "remembered": remembered.display_name if remembered else "",
        "signed_in_provider": _provider_name(row.provider) if row else "",
        "continue_url": next_url or reverse("home"),
        "switch_next": f"{reverse('signin')}?{urlencode({'next': next_url})}"
        if next_url
        else reverse("signin"),
        "email": email,
        "error": error,
        "error_title": (TITLES.get(error.code) or TITLES.get(type(error).code, "Sign-in failed"))
        if error
        else "",
    }
    return render(request, "accounts/signin.html", context, status=error.status if error else 200)


@require_POST
def forget_organisation(request: HttpRequest) -> HttpResponse:
    """Clear "remember my organisation" (POST, CSRF-protected): the chooser shows again."""
    from accounts.oidc.authorization import safe_next_url
    from accounts.views.chooser import chooser_url, forget_provider

    response = HttpResponseRedirect(chooser_url(safe_next_url(request, request.POST.get("next"))))
    forget_provider(response)
    messages.info(request, "This browser no longer remembers your organisation.")
    return response
